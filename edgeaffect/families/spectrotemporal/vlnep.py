"""VLNEP (the paper's Eqs. 3-7): a dynamic texture code per pixel from three consecutive
static log-Mel images (previous I, current J, next K segments), and its 256-bin histogram
per segment. NumPy, vectorised over every pixel at once (device side too).

For a pixel c of J and its P = 8 neighbours at radius 1 (J_0..J_7, in circular order),
bit i of the code for frame X in {I, J, K} compares X_i with J_{i+1}, J_{i-1} and J_c
through s(a, b) = 1 if a <= b (Eq. 7). The text says the bit is 1 "if all three
intensity signs match"; the equations write XOR. ``rule="match"`` (the default) is the
text, ``rule="xor"`` the equations (the model card notes the discrepancy). The three
frames' codes are max-pooled (Eq. 6); border pixels (no full neighbourhood) are left out.
"""

from __future__ import annotations

import numpy as np

RULES = ("match", "xor")
# Radius-1 neighbours in circular order, starting east, counter-clockwise (row, column offsets).
NEIGHBOURS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
WEIGHTS = (1 << np.arange(len(NEIGHBOURS))).astype(np.int64)  # 2^i


def _shifted(img: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """The interior of ``img`` moved by (dr, dc): element (r, c) is img[r + 1 + dr, c + 1 + dc]."""
    h, w = img.shape[-2:]
    return img[..., 1 + dr : h - 1 + dr, 1 + dc : w - 1 + dc]


def lnep(x: np.ndarray, j: np.ndarray, rule: str = "match") -> np.ndarray:
    """LNEP code of frame ``x`` against the current frame ``j`` (Eqs. 3-5) [shape=(..., h-2, w-2)].

    Works on stacks: ``x`` and ``j`` of shape (..., h, w)."""
    if rule not in RULES:
        raise ValueError(f"VLNEP rule must be one of {RULES}, not '{rule}'")
    p = len(NEIGHBOURS)
    xs = np.stack([_shifted(x, *o) for o in NEIGHBOURS])  # X_i
    js = np.stack([_shifted(j, *o) for o in NEIGHBOURS])  # J_i
    jc = _shifted(j, 0, 0)[None]
    a = js[(np.arange(p) + 1) % p] <= xs  # s(J_{i+1}, X_i)
    b = js[(np.arange(p) - 1) % p] <= xs  # s(J_{i-1}, X_i)
    c = jc <= xs  # s(J_c, X_i)
    bits = ((a == b) & (b == c)) if rule == "match" else (a ^ b ^ c)
    return np.tensordot(WEIGHTS, bits.astype(np.int64), axes=(0, 0))


def vlnep_codes(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, rule: str = "match") -> np.ndarray:
    """Eq. 6: the max of the three frames' codes per pixel [shape=(..., h-2, w-2)], ints 0..255."""
    return np.maximum(np.maximum(lnep(prev, cur, rule), lnep(cur, cur, rule)), lnep(nxt, cur, rule))


def vlnep_histograms(static: np.ndarray, rule: str = "match") -> np.ndarray:
    """Per segment, the normalised 256-bin histogram of its VLNEP codes [shape=(n, 256)].

    ``static``: the segments' static log-Mel images [shape=(n, frames, n_mels)]. The first
    and last segments have no previous / next one: they stand in for it themselves."""
    s = np.asarray(static, np.float32)
    prev = np.concatenate([s[:1], s[:-1]])
    nxt = np.concatenate([s[1:], s[-1:]])
    codes = vlnep_codes(prev, s, nxt, rule).reshape(len(s), -1)
    offsets = (np.arange(len(s)) * 256)[:, None]
    counts = np.bincount((codes + offsets).ravel(), minlength=256 * len(s)).reshape(len(s), 256)
    return (counts / codes.shape[1]).astype(np.float32)
