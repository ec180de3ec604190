"""Analytic per-layer cost, with the audio-visual paper's convention (its Eqs. 3-4):
FLOPs of a conv = 2 * Yh * Yw * Ci * Co * Kh * Kw + Yh * Yw * Co (multiply-adds counted
as two, plus the bias adds); a dense layer is a 1x1 conv on a 1x1 map. Pooling,
activations and dropout count zero, as in the paper."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str
    out_shape: tuple
    params: int
    flops: int


def conv(name: str, out_hw: tuple, c_in: int, c_out: int, kernel: tuple) -> LayerCost:
    area = 1
    for d in out_hw:
        area *= d
    k = 1
    for d in kernel:
        k *= d
    return LayerCost(name, f"conv{len(kernel)}d", (*out_hw, c_out), c_in * c_out * k + c_out,
                     2 * area * c_in * c_out * k + area * c_out)


def dense(name: str, c_in: int, c_out: int) -> LayerCost:
    return LayerCost(name, "dense", (c_out,), c_in * c_out + c_out, 2 * c_in * c_out + c_out)
