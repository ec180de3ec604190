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

Mixed precision (static): when the int8 file fails its bounds, the quantized nodes are ranked
by the quantization noise each adds (ONNX Runtime's ``qdq_loss_debug`` collects every tensor of
the float and the Q/DQ graph on the calibration samples; the ratio is computed here; a node's share is the noise-to-signal
power at its output less that at its input), and the most sensitive are handed to the
quantizer's ``nodes_to_exclude`` one by one until the file holds
(``edgeaffect.export.mixed_precision.keep_float_until_held``).
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
NSR_CAP = 1e3  # the noise-to-signal ratio given a tensor that int8 makes non-zero where float is 0


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


def quantize_for_tensorrt(float_onnx: Path, out: Path, calibration: list[dict], keep_float: list[str] = ()) -> None:
    """Static QDQ quantization of ``float_onnx`` into ``out`` with TensorRT's Q/DQ rules; the
    nodes named in ``keep_float`` stay float."""
    q = require("onnxruntime.quantization", "train", "onnxruntime")
    with _quiet_quantizer():
        q.quantize_static(
            str(float_onnx), str(out), _Samples(calibration), quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=list(FUSED_OPS), per_channel=True,
            nodes_to_exclude=batched_weight_matmuls(float_onnx) + list(keep_float),
            activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "QuantizeBias": False,  # an int32 bias DQ is not a TensorRT Q/DQ type
                           "MatMulConstBOnly": False,
                           # Q/DQ on inputs only (NVIDIA's placement): an output pair would sit between
                           # Conv and its Relu / bias Add, where TensorRT fuses in float
                           "OpTypesToExcludeOutputQuantization": list(FUSED_OPS)})


def write_static_int8(model, input_specs, calibration, path, *, accept=None, full_int8: bool = False,
                      max_float_layers: int | None = None, log=None, **options) -> dict:
    """A float Keras model -> TensorRT-style static Q/DQ int8 ONNX from ``calibration``, with the
    fewest nodes left float that make a failing file hold (``accept``: a candidate file's bytes
    -> the bounds it fails); ``full_int8``: none left float. ``options``: the ONNX writer's
    (opset, op rewrites), applied to the float model it quantizes."""
    from edgeaffect.export import mixed_precision as mp

    onnx = require("onnx", "train")
    with tempfile.TemporaryDirectory(prefix="edgeaffect-trt-") as d:
        float_onnx, q_onnx = Path(d) / "float.onnx", Path(d) / "int8.onnx"
        facts = write_onnx(model, input_specs, calibration, float_onnx, **options)
        quantize_for_tensorrt(float_onnx, q_onnx, calibration)
        failures = accept(q_onnx.read_bytes()) if accept and not full_int8 else []
        kept: list = []
        if failures:
            def write(nodes):
                quantize_for_tensorrt(float_onnx, q_onnx, calibration, nodes)
                return q_onnx.read_bytes()

            ranked = [mp.FloatLayer(name, op, "accuracy", detail)
                      for name, op, _, detail in noise_added(float_onnx, q_onnx, calibration)]
            mp.keep_float_until_held(ranked, kept, write, accept, failures,
                                     mp.float_layer_cap(max_float_layers, ranked),
                                     log)
        # the quantizer may raise the opset (per-channel Q/DQ needs 13): record what it wrote
        facts["onnx_opset"] = opset_of(onnx.load(str(q_onnx)))
        facts["float_layers"] = [vars(k) for k in kept]
        facts["mixed_precision"] = ("off (full int8 asked for)" if full_int8 else
                                    f"{len(kept)} node(s) float" if kept else "none needed: every Conv/Gemm/MatMul int8")
        atomic_write_bytes(path, q_onnx.read_bytes())
    return facts


@contextmanager
def static_int8_sensitivity(model, input_specs, calibration):
    """Every quantized node's share of the noise (``noise_added``), largest first."""
    from edgeaffect.export.formats import Ranking

    with tempfile.TemporaryDirectory(prefix="edgeaffect-trt-") as d:
        float_onnx, q_onnx = Path(d) / "float.onnx", Path(d) / "int8.onnx"
        write_onnx(model, input_specs, calibration, float_onnx)
        quantize_for_tensorrt(float_onnx, q_onnx, calibration)
        layers = [(name, op, share) for name, op, share, _ in noise_added(float_onnx, q_onnx, calibration)]

        def write(nodes):
            quantize_for_tensorrt(float_onnx, q_onnx, calibration, list(nodes))
            return q_onnx.read_bytes()

        yield Ranking(layers, "noise power added, over signal power (ONNX Runtime's qdq_loss_debug)", write)


def noise_added(float_onnx: Path, qdq_onnx: Path, calibration: list[dict]) -> list[tuple[str, str, float, str]]:
    """(node, op type, noise share, what was measured) for each quantized Conv / Gemm / MatMul, the most
    quantization noise added first: noise-to-signal power against the float graph at the node's
    output less at its (pre-Q/DQ) input, on up to 64 calibration samples."""
    dbg = require("onnxruntime.quantization.qdq_loss_debug", "train", "onnxruntime")
    onnx = require("onnx", "train")
    samples = [{k: np.asarray(v, np.float32) for k, v in s.items()} for s in calibration[:64]]
    acts = {}
    with tempfile.TemporaryDirectory(prefix="edgeaffect-qdq-debug-") as d, _quiet_quantizer():
        for key, src in (("float", float_onnx), ("qdq", qdq_onnx)):
            augmented = str(Path(d) / f"{key}.onnx")
            dbg.modify_model_output_intermediate_tensors(str(src), augmented, op_types_for_saving=None)
            acts[key] = dbg.collect_activations(augmented, samples)
    quantized = {n.name for n in onnx.load(str(qdq_onnx)).graph.node if n.op_type in FUSED_OPS
                 and any(i.endswith(dbg.DEQUANT_OUTPUT_SUFFIX) for i in n.input)}
    g = onnx.load(str(float_onnx)).graph
    constants = {i.name for i in g.initializer}

    def nsr(tensor: str) -> float:
        """Noise power over signal power; 0 where the graphs agree (a graph input, a tensor that
        is all zeros in both), capped where a zero float tensor is not zero in int8.
        (``qdq_loss_debug``'s own SQNR floors both norms at epsilon: 0 dB for two zero tensors.)"""
        if tensor not in acts["float"] or tensor not in acts["qdq"]:
            return 0.0
        f = np.concatenate([a.ravel() for a in acts["float"][tensor]]).astype(np.float64)
        q = np.concatenate([a.ravel() for a in acts["qdq"][tensor]]).astype(np.float64)
        noise, signal = float(np.sum((f - q) ** 2)), float(np.sum(f ** 2))
        return 0.0 if noise == 0.0 else min(noise / signal, NSR_CAP) if signal > 0.0 else NSR_CAP

    rows = []
    for n in g.node:
        if n.name not in quantized:
            continue
        x = next((i for i in n.input if i and i not in constants), None)
        added = nsr(n.output[0]) - (nsr(x) if x else 0.0)
        rows.append((added, n.name, n.op_type,
                     f"int8 adds {100 * added:.2f} % noise power here (ONNX Runtime's qdq_loss_debug, "
                     f"{len(samples)} calibration samples)"))
    return [(name, op, added, detail) for added, name, op, detail in sorted(rows, key=lambda r: -r[0])]


def quantize_matmuls(float_onnx: Path, out: Path) -> dict:
    """Dynamic int8 of ``float_onnx``'s 2-D-weight MatMuls into ``out``; facts for the manifest."""
    q = require("onnxruntime.quantization", "train", "onnxruntime")
    onnx = require("onnx", "train")
    excluded = batched_weight_matmuls(float_onnx)
    with _quiet_quantizer(), atomic_path(out) as tmp:
        # 7-bit weights (reduce_range): x86 CPUs without VNNI multiply u8 x s8 with vpmaddubsw,
        # whose 16-bit pairwise sums saturate with full 8-bit weights; the file then gives
        # other answers there than on a VNNI or Arm machine. Seven bits hold on every CPU.
        q.quantize_dynamic(str(float_onnx), str(tmp), op_types_to_quantize=["MatMul"], per_channel=True,
                           reduce_range=True, weight_type=q.QuantType.QInt8, nodes_to_exclude=excluded)
    proto = onnx.load(str(out), load_external_data=False)
    quantized = sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in proto.graph.node)
    left = sum(n.op_type == "MatMul" for n in proto.graph.node)
    return {"quantized_matmuls": quantized, "float_matmuls": left, "weight_bits": 7, "onnx_opset": opset_of(proto)}
