"""Per-tensor int8 weights for a convolution whose per-channel quantization parameters are a
large share of the file.

TFLite quantizes a convolution's weights per output channel. Each channel then carries a
float32 weight scale and an int64 zero point, and its int32 bias the same again: 24 bytes of
parameters per channel besides the weights. A convolution with many narrow channels pays more
for them than for its weights: SpeechNet's routing votes (a grouped 1x1 convolution, 21,056
channels of 16 int8 weights) carry about 590 KB of parameters for 337 KB of weights. The
converter offers per-tensor weights only for the whole graph, so the file is rewritten here:
one scale for the op's weights (its largest magnitude / 127), the bias requantized on the
product of the input's scale and it.

The rewrite coarsens those weights, so the exporter keeps it only where the file still holds
its bounds (``mixed_precision.choose``), and tries it only for an op whose parameters outweigh
its weights and alone are ``PARAMETER_SHARE`` of the file: elsewhere the saving is too small
for the risk.
"""

from __future__ import annotations

import numpy as np

PARAMETER_SHARE = 0.10
BYTES_PER_CHANNEL = 4 + 8 + 4 + 8  # weight scale + zero point, bias scale + zero point
_REWRITTEN = ("CONV_2D",)  # not DEPTHWISE_CONV_2D: per-tensor depthwise weights lose too much


def _per_channel(tensor) -> int:
    q = tensor.quantization
    return 0 if q is None or q.scale is None else len(q.scale)


def heavy_ops(blob: bytes) -> list[int]:
    """Indices of the int8 convolutions whose per-channel parameters outweigh their weights
    and are at least ``PARAMETER_SHARE`` of the file."""
    from edgeaffect.runtime.litert_ops import _schema, op_type, read_model

    int8 = _schema().TensorType.INT8
    model = read_model(blob)
    graph = model.subgraphs[0]
    out = []
    for i, op in enumerate(graph.operators):
        if op_type(model, op) not in _REWRITTEN or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        weights = graph.tensors[op.inputs[1]]
        channels = _per_channel(weights)
        parameters = channels * BYTES_PER_CHANNEL
        if (weights.type == int8 and channels > 1 and parameters > np.prod(weights.shape)
                and parameters >= PARAMETER_SHARE * len(blob)):
            out.append(i)
    return out


def _constant(model, tensor, dtype) -> np.ndarray:
    return np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype)


def _set_constant(model, tensor, values: np.ndarray) -> None:
    model.buffers[tensor.buffer].data = np.frombuffer(values.tobytes(), np.uint8)


def _one_scale(tensor, scale: float) -> None:
    tensor.quantization.scale = [float(scale)]
    tensor.quantization.zeroPoint = [0]
    tensor.quantization.quantizedDimension = 0


def per_tensor(blob: bytes, ops: list[int]) -> tuple[bytes, list[str]]:
    """(the file with ``ops``' weights and bias on one scale each, their output names)."""
    from edgeaffect.runtime.litert_ops import read_model, write_model

    model = read_model(blob)
    graph = model.subgraphs[0]
    names = []
    for i in ops:
        op = graph.operators[i]
        x, w, b = (graph.tensors[t] for t in op.inputs[:3])
        scales = np.asarray(w.quantization.scale, np.float64)
        real = _constant(model, w, np.int8).reshape(len(scales), -1) * scales[:, None]
        scale = max(float(np.abs(real).max()), 1e-12) / 127.0
        _set_constant(model, w, np.clip(np.round(real / scale), -127, 127).astype(np.int8))
        _one_scale(w, scale)
        input_scale = float(x.quantization.scale[0])
        bias = _constant(model, b, np.int32) * (input_scale * scales)
        _set_constant(model, b, np.round(bias / (input_scale * scale)).astype(np.int32))
        _one_scale(b, input_scale * scale)
        names.append(graph.tensors[op.outputs[0]].name.decode())
    return write_model(model), names
