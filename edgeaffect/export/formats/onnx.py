"""ONNX through tf2onnx: float32 from the trained model, QDQ int8 from the QAT model."""

from __future__ import annotations

from edgeaffect.export.formats import ExportFormat, register_format
from edgeaffect.export.onnx_graph import OPSET, WRITER_OPTIONS, write_onnx
from edgeaffect.export.onnx_quantize import static_int8_sensitivity, write_static_int8

register_format(ExportFormat("onnx-fp32", ".onnx", "float", "onnxruntime", "float32", write_onnx,
                             f"ONNX float32 (opset {OPSET} unless the target sets one)", WRITER_OPTIONS))
# ONNX Runtime runs a QDQ graph with integer kernels whose requantization differs from
# TensorFlow's fake-quant simulation: on near-tie samples single probabilities move by
# 0.07 to 0.25 (measured on clean `make demo` runs) while decisions agree 100 %. So int8
# formats are judged by decisions, the metric and a percentile of the difference.
register_format(ExportFormat("onnx-qdq", ".onnx", "qat", "onnxruntime", "int8", write_onnx,
                             f"ONNX with QuantizeLinear/DequantizeLinear pairs from the QAT model (opset {OPSET} "
                             "unless the target sets one)", WRITER_OPTIONS, post_training_write=write_static_int8,
                             post_training_searches=True, sensitivity=static_int8_sensitivity))
