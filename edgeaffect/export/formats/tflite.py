"""TFLite: float32, float16 weights, full int8 (float in and out, quantized inside) from the QAT model, and
dynamic-range int8 (int8 weights, float activations quantized at run time)."""

from __future__ import annotations

from contextlib import contextmanager

from edgeaffect.export.formats import ExportFormat, Ranking, register_format
from edgeaffect.io import atomic_path

# The exporter's options for a format that chooses its float layers (``ExportFormat.searches``).
QUANTIZATION_OPTIONS = ("accept", "full_int8", "max_float_layers", "log", "output_range", "speed_here")


def _concrete(model, input_specs: dict[str, tuple], batch: int | None):
    from edgeaffect.keras_backend import tf

    t = tf()
    sig = {name: t.TensorSpec([batch, *shape], t.float32, name=name) for name, shape in input_specs.items()}
    fn = t.function(lambda inputs: model(inputs, training=False), input_signature=[sig])
    return fn.get_concrete_function()


def fixed_batch(model) -> int:
    """The batch a TFLite file is written for: the one the model was built for if it fixes one,
    else 1 -- what a device runs, and the runners take a larger batch a sample at a time
    (``runtime.base.one_at_a_time``). A free batch costs speed and sometimes conversion:
    - a Keras ``Reshape`` reshapes to ``(tf.shape(x)[0], *target)`` and attention splits its
      heads the same way: a free batch leaves SHAPE, STRIDED_SLICE, PACK and dynamic RESHAPE
      ops, which XNNPACK does not take, so each cuts the graph. The spectrotemporal extractor
      (35 squeeze-and-excitation blocks) ran in 8 delegate partitions and its sequence stage
      in 7, int8 tensors handed to the built-in kernels and back at each cut; at batch 1 the
      converter folds the shapes and each is one partition;
    - a recurrent layer: with a free batch the converter cannot fuse the LSTM (it fails on
      TensorListReserve); with batch 1 it emits UNIDIRECTIONAL_SEQUENCE_LSTM."""
    inputs = getattr(model, "inputs", None) or []  # a subclassed model has none until called
    built = inputs[0].shape[0] if inputs else None
    return 1 if built is None else int(built)


def without_lstm_cell_clip(blob: bytes) -> bytes:
    """The model with every fused LSTM's ``cell_clip`` set to 0 (no clipping).

    The converter gives a Keras LSTM ``cell_clip = 10``; Keras never clips the cell state.
    A trained SpeechNet's cell state passes 10 on long utterances, and from there the
    TFLite scores drift from Keras' (measured: LSTM outputs identical for 70 frames, then
    up to 1.77 apart; 7.7e-3 on the final scores; 2e-7 without the clip). The kernels take
    0 as "no clip" (int8 outputs measured unchanged by it).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    import flatbuffers

    lstm = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    if not _has_op(schema.Model.GetRootAsModel(blob, 0), lstm):
        return blob  # unpacking a large model's whole object tree takes minutes and gigabytes
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(blob, 0))
    changed = 0
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) == lstm and op.builtinOptions.cellClip:
                op.builtinOptions.cellClip = 0.0
                changed += 1
    if not changed:
        return blob
    builder = flatbuffers.Builder(len(blob) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _has_op(model, builtin: int) -> bool:
    codes = (model.OperatorCodes(i) for i in range(model.OperatorCodesLength()))
    return any(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == builtin for c in codes)


def _converted(model, input_specs, configure) -> bytes:
    from edgeaffect.keras_backend import tf

    t = tf()
    # The converter saves its trackable object as a SavedModel first: the variables alone in
    # a plain module save in about a second, the Keras model (every layer's metadata) in up to
    # half a minute for a large graph. The function captures the same variables either way.
    holder = t.Module()
    holder.variables_ = list(model.variables)
    converter = t.lite.TFLiteConverter.from_concrete_functions(
        [_concrete(model, input_specs, fixed_batch(model))], holder)
    configure(t, converter)
    return without_lstm_cell_clip(converter.convert())


def _convert(model, input_specs, path, configure) -> None:
    blob = _converted(model, input_specs, configure)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)


def write_fp32(model, input_specs, calibration, path) -> None:
    _convert(model, input_specs, path, lambda t, c: None)


def write_fp16(model, input_specs, calibration, path) -> None:
    def configure(t, c):
        c.optimizations = [t.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [t.float16]

    _convert(model, input_specs, path, configure)


def calibrated_float(model, input_specs, calibration, output_range=None) -> bytes:
    """The float graph with each tensor's range from ``calibration`` (the outputs' covering
    ``output_range`` too): what the int8 files are quantized from
    (``edgeaffect.export.mixed_precision``)."""
    from edgeaffect.export import mixed_precision as mp

    return mp.calibrated(_concrete(model, input_specs, fixed_batch(model)), model.variables, input_specs, calibration,
                         output_range)


def write_int8(model, input_specs, calibration, path, *, accept=None, full_int8: bool = False,
               max_float_layers: int | None = None, log=None, output_range=None, speed_here: bool = True) -> dict:
    """Int8 (float in and out) with the ops int8 makes slower here, and the fewest that make a
    failing file hold (``accept``: the bound failures of a candidate file), left float
    (``edgeaffect.export.mixed_precision``); ``full_int8``: every op int8. ``output_range``:
    the span the output must cover (a regression's score range), beyond the calibration's.
    ``speed_here``: the file runs on this machine, so its timings may choose ops to keep float
    (not for another device: x86 without VNNI runs int8 convs slower than float, a Pi's
    dot-product cores the other way round)."""
    from edgeaffect.export import mixed_precision as mp

    calibrated = calibrated_float(model, input_specs, calibration, output_range)
    check = (lambda blob: accept(without_lstm_cell_clip(blob))) if accept else None
    blob, facts = mp.choose(calibrated, input_specs, calibration, accept=check, full_int8=full_int8,
                            max_float_layers=max_float_layers,
                            speed=speed_here, log=log)
    with atomic_path(path) as tmp:
        tmp.write_bytes(without_lstm_cell_clip(blob))
    return facts


@contextmanager
def int8_sensitivity(model, input_specs, calibration):
    """Every op's int8 error (QuantizationDebugger's RMSE in quantization steps), largest first,
    and what each alone in int8 moves the output (the export's search order)."""
    from edgeaffect.export import mixed_precision as mp

    calibrated = calibrated_float(model, input_specs, calibration)
    layers = [(n, mp.op_of(calibrated, n), e) for n, e in mp.layer_errors(calibrated, input_specs, calibration)]
    at_output = mp.output_errors(calibrated, input_specs, calibration)
    yield Ranking(layers, "RMSE in quantization steps (TFLite's QuantizationDebugger)",
                  lambda nodes: without_lstm_cell_clip(mp.quantize_keeping(calibrated, list(nodes))),
                  None if at_output is None else {layer.node: layer.error for layer in at_output})


def write_dynamic_int8(model, input_specs, calibration, path, *, accept=None, full_int8: bool = False,
                       max_float_layers: int | None = None, log=None, output_range=None,
                       speed_here: bool = True) -> dict:
    """Dynamic-range int8; when the file fails its bounds (``accept``), the fewest ops it takes
    get their float weights back (``edgeaffect.export.dynamic_range``), ranked on ``calibration``
    (the file itself needs no representative data). ``output_range`` and ``speed_here`` are not
    used: the output stays float, and no op is kept float for speed."""
    from edgeaffect.export import dynamic_range as dr

    def configure(t, c):
        c.optimizations = [t.lite.Optimize.DEFAULT]

    dynamic = _converted(model, input_specs, configure)
    blob, facts = dr.choose(dynamic, lambda: _converted(model, input_specs, lambda t, c: None), input_specs,
                            calibration[:4], accept=accept, full_int8=full_int8, log=log,
                            max_float_layers=max_float_layers)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return facts


register_format(ExportFormat("tflite-fp32", ".tflite", "float", "litert", "float32", write_fp32,
                             "TFLite float32"))
register_format(ExportFormat("tflite-fp16", ".tflite", "float", "litert", "float16", write_fp16,
                             "TFLite with float16 weights (float32 compute on CPU)"))
register_format(ExportFormat("tflite-int8", ".tflite", "qat", "litert", "int8", write_int8,
                             "TFLite int8 (float32 input and output, quantized inside the graph) from the QAT model's weights, post-training "
                             "calibrated; the ops int8 makes slower or that break its bounds left float",
                             QUANTIZATION_OPTIONS, searches=True, sensitivity=int8_sensitivity))
# Post-training from the float model: conv and dense weights int8, activations quantized on
# the fly (float in and out); the ops that break its bounds get their float weights back.
register_format(ExportFormat("tflite-dynamic-int8", ".tflite", "float", "litert", "int8", write_dynamic_int8,
                             "TFLite dynamic-range int8 (int8 weights, activations quantized at run time; float "
                             "input and output); the ops that break its bounds keep float weights",
                             QUANTIZATION_OPTIONS, searches=True))
