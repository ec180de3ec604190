"""Run-to-run reproducibility of a classifier (SpeechNet paper, Eqs. 1-6).

For R training runs that differ only in their seed, evaluated on the same N test samples:
C_i is how many runs give sample i its most common prediction (ties: the smallest label).

- GLR  = mean(C_i >= R/2)                 consistent in at least half the runs
- FLR  = mean(R/2 <= C_i < R)             ... but not in all. Eq. 2 as printed reads
         R/2 <= C_i <= R, which makes it equal to GLR; the text says "occasional
         variability", so the upper bound is read as strict (so GLR = FLR + PLR).
- PLR  = mean(C_i == R)                   identical in every run
- CLR, FCLR, PCLR: the same, and the most common prediction is the true label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgeaffect.errors import InputError


@dataclass(frozen=True)
class Reproducibility:
    runs: int
    samples: int
    glr: float
    flr: float
    plr: float
    clr: float
    fclr: float
    pclr: float
    mean_accuracy: float

    def to_dict(self) -> dict:
        return asdict(self)


def most_common(predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (column): the most common prediction (ties -> smallest label) and its count."""
    n_classes = int(predictions.max()) + 1
    counts = np.stack([(predictions == c).sum(axis=0) for c in range(n_classes)])  # (classes, N)
    mode = counts.argmax(axis=0)  # argmax takes the first, i.e. smallest, label on ties
    return mode, counts.max(axis=0)


def reproducibility(predictions, labels) -> Reproducibility:
    """``predictions``: (R, N) predicted class per run and sample; ``labels``: (N,) truth."""
    p = np.asarray(predictions)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[1] != y.shape[0] or p.shape[0] < 2:
        raise InputError(f"need predictions of shape (runs >= 2, {y.shape[0]}), got {p.shape}")
    runs = p.shape[0]
    mode, c = most_common(p)
    correct = mode == y
    general = c >= runs / 2
    perfect = c == runs
    fractional = general & ~perfect
    return Reproducibility(runs, int(y.size), float(general.mean()), float(fractional.mean()), float(perfect.mean()),
                           float((general & correct).mean()), float((fractional & correct).mean()),
                           float((perfect & correct).mean()), float((p == y).mean()))
