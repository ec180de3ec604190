"""TFLite: float32, float16 weights, and full int8 (int8 in and out) from the QAT model."""

from __future__ import annotations

from edgeaffect.export.formats import Bounds, ExportFormat, register_format
from edgeaffect.io import atomic_path


def _concrete(model, input_specs: dict[str, tuple], batch: int | None):
    from edgeaffect.keras_backend import tf

    t = tf()
    sig = {name: t.TensorSpec([batch, *shape], t.float32, name=name) for name, shape in input_specs.items()}
    fn = t.function(lambda inputs: model(inputs, training=False), input_signature=[sig])
    return fn.get_concrete_function()


def fixed_batch(model) -> int | None:
    """1 for models with a recurrent layer: with a free batch the converter cannot fuse the
    LSTM (it fails on TensorListReserve); with batch 1 it emits UNIDIRECTIONAL_SEQUENCE_LSTM."""
    from edgeaffect.keras_backend import keras

    rnn = keras().layers.RNN
    return 1 if any(isinstance(m, rnn) for m in model.submodules) else None


def _convert(model, input_specs, path, configure) -> None:
    from edgeaffect.keras_backend import tf

    t = tf()
    converter = t.lite.TFLiteConverter.from_concrete_functions(
        [_concrete(model, input_specs, fixed_batch(model))], model)
    configure(t, converter)
    blob = converter.convert()
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)


def write_fp32(model, input_specs, calibration, path) -> None:
    _convert(model, input_specs, path, lambda t, c: None)


def write_fp16(model, input_specs, calibration, path) -> None:
    def configure(t, c):
        c.optimizations = [t.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [t.float16]

    _convert(model, input_specs, path, configure)


def write_int8(model, input_specs, calibration, path) -> None:
    def configure(t, c):
        c.optimizations = [t.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([s[name] for name in input_specs] for s in calibration)
        c.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = t.int8
        c.inference_output_type = t.int8

    _convert(model, input_specs, path, configure)


register_format(ExportFormat("tflite-fp32", ".tflite", "float", "litert", Bounds(1e-5, 0.995, 0.005), write_fp32,
                             "TFLite float32"))
register_format(ExportFormat("tflite-fp16", ".tflite", "float", "litert", Bounds(5e-3, 0.99, 0.01), write_fp16,
                             "TFLite with float16 weights (float32 compute on CPU)"))
register_format(ExportFormat("tflite-int8", ".tflite", "qat", "litert", Bounds(0.1, 0.95, 0.03), write_int8,
                             "TFLite full int8 from the QAT model, int8 input and output"))
