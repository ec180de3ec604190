"""Quantization-aware training with tensorflow-model-optimization (Keras 2).

tfmot quantizes Conv2D, Dense, pooling, Flatten, Concatenate out of the box; Conv1D
needs an explicit QuantizeConfig (kernel weights and the activation quantized, as for
Conv2D). The QAT model is fine-tuned briefly from the float weights: Adam at a tenth
of the training learning rate, early stopping on validation loss.
"""

from __future__ import annotations

import sys

import numpy as np


def _config_classes(qk):
    """QuantizeConfigs for the layers tfmot does not cover.

    - Conv1D: per-tensor symmetric int8 kernel, asymmetric int8 output after the
      activation. Per-channel (as tfmot does for Conv2D) breaks the TFLite converter: the
      Conv1D kernel is reshaped to 2D and the quantized axis moves (2 -> 3).
    - MaxPooling1D: nothing to quantize; a max keeps its input's scale, as tfmot's own
      handling of MaxPooling2D.
    """

    class Conv1DQuantizeConfig(qk.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, qk.quantizers.LastValueQuantizer(
                num_bits=8, per_axis=False, symmetric=True, narrow_range=True))]

        def get_activations_and_quantizers(self, layer):
            return [(layer.activation, qk.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False))]

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

        def set_quantize_activations(self, layer, quantize_activations):
            layer.activation = quantize_activations[0]

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    class PassThroughQuantizeConfig(qk.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    return Conv1DQuantizeConfig, PassThroughQuantizeConfig


def quantize_model(float_model):
    """A QAT copy of ``float_model`` (fake-quant nodes inserted, float weights kept)."""
    from edgeaffect.keras_backend import keras, tfmot

    k, mot = keras(), tfmot()
    qk = mot.quantization.keras
    conv1d_cls, pass_cls = _config_classes(qk)

    def annotate(layer):
        if isinstance(layer, k.layers.Conv1D):
            return qk.quantize_annotate_layer(layer, quantize_config=conv1d_cls())
        if isinstance(layer, k.layers.MaxPooling1D):
            return qk.quantize_annotate_layer(layer, quantize_config=pass_cls())
        return qk.quantize_annotate_layer(layer)

    annotated = k.models.clone_model(float_model, clone_function=annotate)
    annotated.set_weights(float_model.get_weights())
    with qk.quantize_scope({"Conv1DQuantizeConfig": conv1d_cls, "PassThroughQuantizeConfig": pass_cls}):
        return qk.quantize_apply(annotated)


def calibrate_ranges(qat, float_model, x: dict[str, np.ndarray]) -> None:
    """Set every activation range of ``qat`` to the float model's observed min / max.

    tfmot starts activation ranges at [-6, 6] and moves them by an EMA with decay 0.999:
    with the few hundred steps a small model's fine-tune takes, they barely move, logits
    above 6 clip and tie, and int8 accuracy drops by points. Calibrating first is what
    post-training quantization would do anyway.
    """
    from edgeaffect.keras_backend import keras

    k = keras()
    layers = [layer for layer in float_model.layers if not isinstance(layer, k.layers.InputLayer)]
    outputs = {layer.name: layer.output for layer in layers}
    outputs.update({f"{layer.name}:in": layer.input for layer in layers if isinstance(layer, k.layers.Dense)})
    seen = k.Model(float_model.inputs, outputs).predict(x, batch_size=256, verbose=0)
    for layer in qat.layers:
        wrapped = getattr(layer, "layer", None)
        for var in layer.non_trainable_variables:
            name = var.name.split("/")[-1].split(":")[0]
            if not name.endswith(("_min", "_max")) or name.startswith("kernel"):
                continue
            if wrapped is None:  # QuantizeLayer on a model input
                data = x[layer.input.name.split(":")[0].split("/")[0]]
            elif name.startswith("pre_activation"):
                kernel, bias = float_model.get_layer(wrapped.name).get_weights()
                data = seen[f"{wrapped.name}:in"] @ kernel + bias
            else:
                data = seen[wrapped.name]
            var.assign(min(float(data.min()), 0.0) if name.endswith("_min") else max(float(data.max()), 0.0))


def qat_finetune(float_model, x_train, y_train, x_val, y_val, *, epochs: int = 20, learning_rate: float = 1e-4,
                 batch_size: int = 128, patience: int = 5, log=sys.stderr):
    from edgeaffect.keras_backend import keras

    k = keras()
    qat = quantize_model(float_model)
    calibrate_ranges(qat, float_model, x_train)
    qat.compile(optimizer=k.optimizers.Adam(learning_rate), loss="categorical_crossentropy", metrics=["accuracy"])
    hist = qat.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                   verbose=0, callbacks=[k.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                                   restore_best_weights=True)])
    print(f"  QAT fine-tune: {len(hist.history['loss'])} epochs, val_acc {hist.history['val_accuracy'][-1]:.3f}",
          file=log, flush=True)
    return qat


def representative_samples(x: dict[str, np.ndarray], n: int = 200, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Single-sample batches for the int8 converter's calibration."""
    size = len(next(iter(x.values())))
    idx = np.random.default_rng(seed).choice(size, min(n, size), replace=False)
    return [{name: arr[i : i + 1] for name, arr in x.items()} for i in idx]
