"""ONNX dynamic int8 of the MatMuls only (``onnx-dyn-int8``): the float ONNX model with every
MatMul whose second input is a 2-D weight turned into ONNX Runtime's dynamic int8 form
(per-channel symmetric int8 weights, activations quantized per tensor at run time, from
their own range on every call). Convolutions, normalisation, softmax, LSTMs and every other
op stay float32, and no calibration data is used.

Where it helps: models whose float work is in dense layers (a transformer) and whose
activations have ranges a calibration set cannot fix in advance, e.g. wav2vec 2.0, where
post-training static int8 of the whole graph (the conv feature encoder included) fails and
this scheme holds (models/wav2vec2/backbone.md). It is ONNX Runtime's scheme: TensorRT's
parser takes no dynamic quantization, so a TensorRT target never lists it.

A batched weight (rank > 2, SpeechNet's capsule transform) has no single output-channel
axis for per-channel scales; those MatMuls stay float, as in ``onnx-int8-trt``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from edgeaffect._optional import require
from edgeaffect.export.formats import ExportFormat, register_format
from edgeaffect.export.onnx import OPSET, WRITER_OPTIONS, opset_of, write_onnx
from edgeaffect.export.onnx_trt import batched_weight_matmuls
from edgeaffect.io import atomic_path

NAME = "onnx-dyn-int8"


def quantize_matmuls(float_onnx: Path, out: Path) -> dict:
    """Dynamic int8 of ``float_onnx``'s 2-D-weight MatMuls into ``out``; facts for the manifest."""
    q = require("onnxruntime.quantization", "train", "onnxruntime")
    onnx = require("onnx", "train")
    excluded = batched_weight_matmuls(float_onnx)
    # onnxruntime logs "consider pre-processing" on the root logger every call: the graph is
    # tf2onnx's, already shape-inferred; keep the export log to our own lines.
    logging.disable(logging.WARNING)
    try:
        with atomic_path(out) as tmp:
            q.quantize_dynamic(str(float_onnx), str(tmp), op_types_to_quantize=["MatMul"], per_channel=True,
                               weight_type=q.QuantType.QInt8, nodes_to_exclude=excluded)
    finally:
        logging.disable(logging.NOTSET)
    proto = onnx.load(str(out), load_external_data=False)
    quantized = sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in proto.graph.node)
    left = sum(n.op_type == "MatMul" for n in proto.graph.node)
    return {"quantized_matmuls": quantized, "float_matmuls": left, "onnx_opset": opset_of(proto)}


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
