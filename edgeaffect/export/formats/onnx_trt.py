"""ONNX int8 for TensorRT (explicit quantization): post-training Q/DQ from the float ONNX model,
in the form TensorRT's parser takes (``edgeaffect.export.onnx_quantize``)."""

from __future__ import annotations

from edgeaffect.export.formats import ExportFormat, register_format
from edgeaffect.export.onnx_graph import OPSET, WRITER_OPTIONS
from edgeaffect.export.onnx_quantize import static_int8_sensitivity, write_static_int8

# Post-training quantization from the float model, verified against it: the same bounds as
# the QAT QDQ model (probabilities near a tie can move a lot; agreement and accuracy are
# the checks that matter). Where it fails them, the most sensitive nodes stay float.
register_format(ExportFormat("onnx-int8-trt", ".onnx", "float", "onnxruntime", "int8",
                             write_static_int8,
                             f"ONNX int8 Q/DQ for TensorRT (symmetric, per-channel weights, post-training "
                             f"calibration on Conv/Gemm/MatMul inputs), opset {OPSET} unless the target sets one",
                             WRITER_OPTIONS, searches=True, sensitivity=static_int8_sensitivity))
