"""Quantization-aware training with tensorflow-model-optimization (Keras 2).

tfmot quantizes Conv2D, Dense, pooling, Flatten, Concatenate out of the box; Conv1D
needs an explicit QuantizeConfig (kernel weights and the activation quantized, as for
Conv2D); LSTM, attention and capsule routing stay float (``quantize_model``). The QAT model is fine-tuned briefly from the float weights: Adam at a tenth
of the training learning rate, early stopping on validation loss.
"""

from __future__ import annotations

import sys

import numpy as np


def _config_classes(qk):
    """QuantizeConfigs for the layers tfmot does not cover, and for layers next to float ones.

    - Conv1D: per-tensor symmetric int8 kernel, asymmetric int8 output after the
      activation. Per-channel (as tfmot does for Conv2D) breaks the TFLite converter: the
      Conv1D kernel is reshaped to 2D and the quantized axis moves (2 -> 3).
    - WeightsOnly (Dense, Conv1D feeding a float layer): int8 kernel, float output. A
      fake-quantized output in front of a float layer makes the converter hand int8 to a
      float kernel ("FULLY_CONNECTED input->type INT8 != FLOAT32", measured on SpeechNet's
      pre-attention -> attention).
    - Output (LeakyReLU): nothing to quantize but the output.
    - PassThrough: nothing (MaxPooling1D keeps its input's scale; float layers).
    """

    def kernel_quantizer():
        return qk.quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)

    def activation_quantizer():
        return qk.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)

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

    class WeightsOnlyQuantizeConfig(PassThroughQuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, kernel_quantizer())]

        def set_quantize_weights(self, layer, quantize_weights):
            layer.kernel = quantize_weights[0]

    class Conv1DQuantizeConfig(WeightsOnlyQuantizeConfig):
        def get_activations_and_quantizers(self, layer):
            return [(layer.activation, activation_quantizer())]

        def set_quantize_activations(self, layer, quantize_activations):
            layer.activation = quantize_activations[0]

    class OutputQuantizeConfig(PassThroughQuantizeConfig):
        def get_output_quantizers(self, layer):
            return [activation_quantizer()]

    return {cls.__name__: cls for cls in (PassThroughQuantizeConfig, WeightsOnlyQuantizeConfig, Conv1DQuantizeConfig,
                                          OutputQuantizeConfig)}


def _views(k):
    """Layers that only move or drop values: a float layer behind one still sees its input."""
    return (k.layers.Dropout, k.layers.Flatten, k.layers.Reshape, k.layers.Lambda)


def _float_layers(model, k, registry) -> set[str]:
    """Layers that stay float in QAT: whatever tfmot cannot quantize and we have no config for."""
    return {layer.name for layer in model.layers
            if not isinstance(layer, (k.layers.InputLayer, k.layers.Conv1D, k.layers.LeakyReLU, k.layers.MaxPooling1D))
            and not registry.supports(layer)}


def _feeds_float(layer, float_names: set[str], views) -> bool:
    """Whether ``layer``'s output reaches a float layer, looking through view layers."""
    for node in layer._outbound_nodes:  # noqa: SLF001 - tf_keras keeps the graph here
        nxt = node.outbound_layer
        if nxt.name in float_names or (isinstance(nxt, views) and _feeds_float(nxt, float_names, views)):
            return True
    return False


def quantize_model(float_model, custom_objects: dict | None = None, keep_float: tuple[str, ...] = ()):
    """A QAT copy of ``float_model`` (fake-quant nodes inserted, float weights kept).

    Layers tfmot supports get its default 8-bit config; Conv1D and LeakyReLU get ours.
    Everything else (LSTM, MultiHeadAttention, SpeechNet's capsule routing) stays float
    during QAT: tfmot has no quantized LSTM or attention, and the routing's
    softmax-and-squash iterations have no fake-quant equivalent. Layers that feed one of
    them keep int8 weights but a float output. The full-int8 TFLite converter then
    quantizes the float parts from the representative data, and the export's
    verification bounds hold the result to the QAT model.
    """
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_module,
    )

    from edgeaffect.keras_backend import keras, tfmot

    k, mot = keras(), tfmot()
    qk = mot.quantization.keras
    configs = _config_classes(qk)
    registry = registry_module.Default8BitQuantizeRegistry()
    # ``keep_float``: layers chosen to stay float (mixed precision, ``export.mixed``)
    float_names = _float_layers(float_model, k, registry) | set(keep_float)
    views = _views(k)

    def annotate(layer):
        def use(name):
            return qk.quantize_annotate_layer(layer, quantize_config=configs[name]())

        if layer.name in float_names or isinstance(layer, k.layers.MaxPooling1D):
            return use("PassThroughQuantizeConfig")
        if isinstance(layer, views):  # tfmot's own no-op handling where it has one
            return qk.quantize_annotate_layer(layer) if registry.supports(layer) else use("PassThroughQuantizeConfig")
        feeds_float = _feeds_float(layer, float_names, views)
        if isinstance(layer, (k.layers.Dense, k.layers.Conv1D)) and feeds_float:
            return use("WeightsOnlyQuantizeConfig")
        if isinstance(layer, k.layers.Conv1D):
            return use("Conv1DQuantizeConfig")
        if isinstance(layer, k.layers.LeakyReLU):
            return use("PassThroughQuantizeConfig" if feeds_float else "OutputQuantizeConfig")
        return qk.quantize_annotate_layer(layer)

    with qk.quantize_scope({**configs, **(custom_objects or {})}):
        annotated = k.models.clone_model(float_model, clone_function=annotate)
        annotated.set_weights(float_model.get_weights())
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
    # A layer called more than once (shared weights: one backbone on several views) gets one
    # range covering every call.
    outputs = {f"{layer.name}#{i}": layer.get_output_at(i) for layer in layers
               for i in range(len(layer._inbound_nodes))}  # noqa: SLF001
    outputs.update({f"{layer.name}:in": layer.input for layer in layers if isinstance(layer, k.layers.Dense)})
    raw = k.Model(float_model.inputs, outputs).predict(x, batch_size=256, verbose=0)
    seen = {key: value for key, value in raw.items() if key.endswith(":in")}
    for layer in layers:
        calls = [raw[f"{layer.name}#{i}"] for i in range(len(layer._inbound_nodes))]  # noqa: SLF001
        seen[layer.name] = np.asarray([min(c.min() for c in calls), max(c.max() for c in calls)])
    for layer in qat.layers:
        wrapped = getattr(layer, "layer", None)
        for var in layer.non_trainable_variables:
            name = var.name.split("/")[-1].split(":")[0]
            if not name.endswith(("_min", "_max")) or "kernel" in name:  # weights (also depthwise_kernel)
                continue
            if wrapped is None:  # QuantizeLayer on a model input
                data = x[layer.input.name.split(":")[0].split("/")[0]]
            elif name.startswith("pre_activation") and f"{wrapped.name}:in" not in seen:
                continue  # a conv's pre-activation (e.g. squeeze-excite's sigmoid): tfmot's range, moved by QAT
            elif name.startswith("pre_activation"):
                kernel, bias = float_model.get_layer(wrapped.name).get_weights()
                data = seen[f"{wrapped.name}:in"] @ kernel + bias
            else:
                data = seen[wrapped.name]
            var.assign(min(float(data.min()), 0.0) if name.endswith("_min") else max(float(data.max()), 0.0))


def qat_finetune(float_model, x_train, y_train, x_val, y_val, *, epochs: int = 20, learning_rate: float = 1e-4,
                 batch_size: int = 128, patience: int = 5, loss="categorical_crossentropy",
                 custom_objects: dict | None = None, seed: int = 0, keep_float: tuple[str, ...] = (),
                 log=sys.stderr):
    """``seed`` (the run's): the fine-tune's shuffling and any dropout draw the same numbers on
    every export of a run, so its int8 figures do not move from one export to the next."""
    from edgeaffect.keras_backend import keras
    from edgeaffect.train import distribute

    k = keras()
    k.utils.set_random_seed(seed)
    # Under a strategy (edgeaffect.train.distribute.using) the QAT copy is made, compiled and
    # fine-tuned on every replica, like the float training; batch_size stays the global batch.
    with distribute.scope():
        qat = quantize_model(float_model, custom_objects, keep_float)
        calibrate_ranges(qat, float_model, x_train)
        qat.compile(optimizer=k.optimizers.Adam(learning_rate), loss=loss)
    hist = qat.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                   verbose=0, callbacks=[k.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                                   restore_best_weights=True)])
    print(f"  QAT fine-tune: {len(hist.history['loss'])} epochs, val_loss {min(hist.history['val_loss']):.4f}",
          file=log, flush=True)
    return qat


def representative_samples(x: dict[str, np.ndarray], n: int = 200, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Single-sample batches for the int8 converter's calibration."""
    size = len(next(iter(x.values())))
    idx = np.random.default_rng(seed).choice(size, min(n, size), replace=False)
    return [{name: arr[i : i + 1] for name, arr in x.items()} for i in idx]


def float_twin(qat, float_model):
    """A float copy of ``float_model`` holding the QAT model's fine-tuned weights.

    The TFLite converter takes a QAT graph's quantization as its fake-quant nodes fix it: no
    op can be left float there. Its twin goes through post-training calibration instead,
    where the quantizer can leave chosen ops float (``export.mixed_precision``), and still
    carries what QAT taught the weights (measured on AVER: the twin's outputs are 5x closer
    to the QAT model's than the float model's are).
    """
    from edgeaffect.keras_backend import keras

    trained = {}
    for v in qat.weights:  # a wrapped layer's variables are named quant_<layer>/<layer>/kernel:0
        name = v.name.split("/", 1)[-1] if v.name.startswith("quant_") else v.name
        trained.setdefault(name, v)
    twin = keras().models.clone_model(float_model)
    twin.set_weights(float_model.get_weights())
    for layer in twin.layers:
        if layer.weights:
            layer.set_weights([trained[v.name].numpy() if v.name in trained else v.numpy() for v in layer.weights])
    return twin
