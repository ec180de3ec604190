"""What every runner shares: named float32 inputs in, float32 outputs out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeaffect.errors import InputError


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple  # -1 or None for a free dimension
    dtype: str
    scale: float = 0.0  # int8 quantization: real = scale * (q - zero_point)
    zero_point: int = 0


def quantize(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.scale == 0.0:
        return x.astype(info.dtype)
    lo, hi = np.iinfo(info.dtype).min, np.iinfo(info.dtype).max
    return np.clip(np.round(x / info.scale) + info.zero_point, lo, hi).astype(info.dtype)


def dequantize(q: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.scale == 0.0:
        return q.astype(np.float32)
    return (info.scale * (q.astype(np.float32) - info.zero_point)).astype(np.float32)


def fixed_to_one(inputs: dict[str, TensorInfo]) -> bool:
    """Whether a file was written with batch 1 fixed (a static graph: a fused LSTM, no shape
    ops between a delegate's partitions); larger batches then run a sample at a time."""
    return any(info.shape[0] == 1 for info in inputs.values())


def one_at_a_time(run, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """``run`` over each sample of ``feeds`` in turn, outputs concatenated."""
    n = len(next(iter(feeds.values())))
    return np.concatenate([run({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)])


def match_inputs(feeds: dict[str, np.ndarray], inputs: dict[str, TensorInfo]) -> None:
    missing = set(inputs) - set(feeds)
    if missing:
        raise InputError(f"missing model inputs: {', '.join(sorted(missing))} (model takes {', '.join(inputs)})")
    sizes = {len(v) for v in feeds.values()}
    if len(sizes) != 1:
        raise InputError(f"inputs have different batch sizes: { {k: len(v) for k, v in feeds.items()} }")
