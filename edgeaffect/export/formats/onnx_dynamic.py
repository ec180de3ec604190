"""ONNX dynamic int8 of the MatMuls only (``onnx-dyn-int8``): the float ONNX model with every
MatMul whose second input is a 2-D weight turned into ONNX Runtime's dynamic int8 form
(per-channel symmetric int8 weights, activations quantized per tensor at run time, from
their own range on every call). Convolutions, normalisation, softmax, LSTMs and every other
op stay float32, and no calibration data is used.

Where it helps: models whose float work is in dense layers (a transformer) and whose
activations have ranges a calibration set cannot fix in advance, e.g. wav2vec 2.0, where
post-training static int8 of the whole graph (the conv feature encoder included) fails and
this scheme holds (the wav2vec2 family's backbone notes). It is ONNX Runtime's scheme: TensorRT's
parser takes no dynamic quantization, so a TensorRT target never lists it.

A batched weight (rank > 2, SpeechNet's capsule transform) has no single output-channel
axis for per-channel scales; those MatMuls stay float, as in ``onnx-int8-trt``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgeaffect.export.formats import ExportFormat, register_format
from edgeaffect.export.onnx_graph import OPSET, WRITER_OPTIONS, write_onnx
from edgeaffect.export.onnx_quantize import quantize_matmuls

NAME = "onnx-dyn-int8"


def write_onnx_dynamic_int8(model, input_specs, calibration, path, **options) -> dict:
    """``options``: the ONNX writer's (opset, op rewrites), applied to the float model it
    quantizes. ``calibration`` is not used: activation ranges are taken at run time."""
    with tempfile.TemporaryDirectory(prefix="edgeaffect-dyn-") as d:
        float_onnx = Path(d) / "float.onnx"
        facts = write_onnx(model, input_specs, calibration, float_onnx, **options)
        facts.update(quantize_matmuls(float_onnx, Path(path)))  # written atomically there
    return facts


# Post-training from the float model (``source="float"``), verified against it with the
# task's int8 bounds, like every int8 format.
register_format(ExportFormat(NAME, ".onnx", "float", "onnxruntime", "int8", write_onnx_dynamic_int8,
                             "ONNX dynamic int8 of the MatMuls only (per-channel int8 weights, activations "
                             "quantized at run time; convolutions and every other op float32), opset "
                             f"{OPSET} unless the target sets one", WRITER_OPTIONS))
