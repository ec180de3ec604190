"""int8 of a float ONNX file with ONNX Runtime's quantizer: static Q/DQ in the form
TensorRT takes, and dynamic int8 of the MatMuls. The formats that write them live in
``export/formats/`` (``onnx-int8-trt``, ``onnx-qdq`` of a model without QAT, ``onnx-dyn-int8``).

Static (TensorRT's explicit quantization): tfmot's QAT graph (``onnx-qdq``) quantizes
activations asymmetrically (uint8-style zero points), which TensorRT's ONNX parser refuses:
it takes Q/DQ only as int8 with zero point 0. This follows NVIDIA's explicit-quantization
recipe instead: symmetric int8 activations, per-channel symmetric int8 weights, Q/DQ only on
the inputs of Conv, Gemm and MatMul (where TensorRT fuses them), biases left float (TensorRT
has no int32 DequantizeLinear). Everything else (LSTM, softmax, normalisation, capsule
routing) stays float.

A batched weight (rank > 2, SpeechNet's capsule transform) has no single output-channel
axis for per-channel scales: those MatMuls stay float in both schemes.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.export.onnx_graph import opset_of, write_onnx
from edgeaffect.io import atomic_path, atomic_write_bytes

FUSED_OPS = ("Conv", "Gemm", "MatMul")  # the ops TensorRT runs in int8 from Q/DQ inputs


class _Samples:
    """onnxruntime's CalibrationDataReader protocol over the exporter's representative samples."""

    def __init__(self, calibration: list[dict]):
        self._it = iter([{k: np.asarray(v, np.float32) for k, v in s.items()} for s in calibration])

    def get_next(self):
        return next(self._it, None)


@contextmanager
def _quiet_quantizer():
    """onnxruntime logs "consider pre-processing" on the root logger every call: the graph is
    tf2onnx's, already shape-inferred; keep the export log to our own lines."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def batched_weight_matmuls(float_onnx: Path) -> list[str]:
    """MatMuls whose constant B has rank > 2 (SpeechNet's capsule transform): per-channel int8
    has no single output-channel axis there (ONNX Runtime's kernel refuses it), so they stay float."""
    onnx = require("onnx", "train")
    g = onnx.load(str(float_onnx)).graph
    rank = {i.name: len(i.dims) for i in g.initializer}
    return [n.name for n in g.node if n.op_type == "MatMul" and len(n.input) > 1 and rank.get(n.input[1], 0) > 2]


def quantize_for_tensorrt(float_onnx: Path, out: Path, calibration: list[dict]) -> None:
    """Static QDQ quantization of ``float_onnx`` into ``out`` with TensorRT's Q/DQ rules."""
    q = require("onnxruntime.quantization", "train", "onnxruntime")
    with _quiet_quantizer():
        q.quantize_static(
            str(float_onnx), str(out), _Samples(calibration), quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=list(FUSED_OPS), per_channel=True, nodes_to_exclude=batched_weight_matmuls(float_onnx),
            activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "QuantizeBias": False,  # an int32 bias DQ is not a TensorRT Q/DQ type
                           "MatMulConstBOnly": False,
                           # Q/DQ on inputs only (NVIDIA's placement): an output pair would sit between
                           # Conv and its Relu / bias Add, where TensorRT fuses in float
                           "OpTypesToExcludeOutputQuantization": list(FUSED_OPS)})


def write_static_int8(model, input_specs, calibration, path, **options) -> dict:
    """A float Keras model -> TensorRT-style static Q/DQ int8 ONNX from ``calibration``.
    ``options``: the ONNX writer's (opset, op rewrites), applied to the float model it quantizes."""
    onnx = require("onnx", "train")
    with tempfile.TemporaryDirectory(prefix="edgeaffect-trt-") as d:
        float_onnx, q_onnx = Path(d) / "float.onnx", Path(d) / "int8.onnx"
        facts = write_onnx(model, input_specs, calibration, float_onnx, **options)
        quantize_for_tensorrt(float_onnx, q_onnx, calibration)
        # the quantizer may raise the opset (per-channel Q/DQ needs 13): record what it wrote
        facts["onnx_opset"] = opset_of(onnx.load(str(q_onnx)))
        atomic_write_bytes(path, q_onnx.read_bytes())
    return facts


def quantize_matmuls(float_onnx: Path, out: Path) -> dict:
    """Dynamic int8 of ``float_onnx``'s 2-D-weight MatMuls into ``out``; facts for the manifest."""
    q = require("onnxruntime.quantization", "train", "onnxruntime")
    onnx = require("onnx", "train")
    excluded = batched_weight_matmuls(float_onnx)
    with _quiet_quantizer(), atomic_path(out) as tmp:
        q.quantize_dynamic(str(float_onnx), str(tmp), op_types_to_quantize=["MatMul"], per_channel=True,
                           weight_type=q.QuantType.QInt8, nodes_to_exclude=excluded)
    proto = onnx.load(str(out), load_external_data=False)
    quantized = sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in proto.graph.node)
    left = sum(n.op_type == "MatMul" for n in proto.graph.node)
    return {"quantized_matmuls": quantized, "float_matmuls": left, "onnx_opset": opset_of(proto)}
