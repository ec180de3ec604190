"""The 3-channel log-Mel with librosa (desktop side): the reference ``features.py`` is
held to. Same frames, same filters; deltas by Eq. 1 through librosa's Savitzky-Golay
``delta`` (a first-order fit over 2N + 1 frames is exactly Eq. 1), edges repeated."""

from __future__ import annotations

import numpy as np

from edgeaffect._optional import require
from edgeaffect.families.spectrotemporal.features import SpectroConfig


def log_mel_librosa(y: np.ndarray, config: SpectroConfig) -> np.ndarray:
    """Static log-Mel (dB) of audio at ``config.sample_rate`` [shape=(t, n_mels)]."""
    librosa = require("librosa", "train")
    s = librosa.feature.melspectrogram(y=np.asarray(y, np.float32), sr=config.sample_rate, n_fft=config.n_fft,
                                       win_length=config.win_length, hop_length=config.hop_length, window="hamming",
                                       center=True, pad_mode="constant", power=2.0, n_mels=config.n_mels,
                                       fmin=config.fmin, fmax=config.sample_rate / 2.0)
    return librosa.power_to_db(s, ref=1.0, amin=config.amin, top_db=None).T.astype(np.float32)


def three_channel_librosa(y: np.ndarray, config: SpectroConfig) -> np.ndarray:
    """[shape=(t, n_mels, 3)]: static, Eq. 1 deltas, Eq. 2 delta-deltas (delta of the delta)."""
    librosa = require("librosa", "train")
    static = log_mel_librosa(y, config)
    width = 2 * config.delta_n + 1
    d = librosa.feature.delta(static, width=width, order=1, axis=0, mode="nearest")
    dd = librosa.feature.delta(d, width=width, order=1, axis=0, mode="nearest")
    return np.stack([static, d, dd], axis=-1).astype(np.float32)
