"""The librosa reference for :mod:`edgeaffect.features.mfcc` (training side only)."""

from __future__ import annotations

import numpy as np

from edgeaffect._optional import require
from edgeaffect.features.mfcc import MfccConfig


def mfcc(y: np.ndarray, sr: int, config: MfccConfig = MfccConfig()) -> np.ndarray:
    librosa = require("librosa", "train")
    if config.top_db != 80.0:
        raise ValueError(f"the librosa reference supports only top_db=80 (librosa's default), given {config.top_db}")
    return librosa.feature.mfcc(
        y=np.asarray(y, dtype=np.float32), sr=sr, n_mfcc=config.n_mfcc, n_fft=config.n_fft,
        hop_length=config.hop_length, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax,
    )
