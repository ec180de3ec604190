"""The one place that decides which Keras the project uses.

tensorflow-model-optimization (QAT) only works on Keras 2 models, and importing it
flips ``TF_USE_LEGACY_KERAS`` for the whole process. So every model module gets
Keras from here: the variable is set before TensorFlow is first imported and
``tf_keras`` is used explicitly, never ``tf.keras``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgeaffect._optional import require  # noqa: E402


def tf():
    """TensorFlow, imported lazily (device-side code never calls this)."""
    first = "tensorflow" not in sys.modules
    t = require("tensorflow", "train")
    if first:
        from edgeaffect.logs import quiet_python, verbose

        quiet_python()  # TensorFlow sets its logger up on import
        t.autograph.set_verbosity(3 if verbose() else 0)
    return t


def keras():
    """Keras 2 (``tf_keras``), the API every model in this project is written against."""
    tf()
    return require("tf_keras", "train", package="tf_keras")


def tfmot():
    """tensorflow-model-optimization, after Keras 2 is fixed for the process."""
    keras()
    return require("tensorflow_model_optimization", "train", package="tensorflow-model-optimization")
