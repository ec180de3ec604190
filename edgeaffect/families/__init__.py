"""The model families, one sub-package each (a paper's model: corpus readers, features,
Keras model, recipe, device adapter, card, paper figures, reproduce recipe).

This package holds family folders only. What shared code asks of a family (``Family``,
``DeviceAdapter``, task kinds, the registry) is ``edgeaffect.contract``; its registry
imports every sub-package here on first use, so adding a family is adding a folder.
"""
