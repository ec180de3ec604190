"""MFCC in NumPy, numerically matching ``librosa.feature.mfcc`` with librosa's defaults.

The device side cannot carry librosa (numba, scipy, slow first call), so this is a
re-implementation of the same maths: centred STFT with zero padding and a periodic
Hann window, power spectrum, Slaney-style mel filter bank (128 bands, 0..sr/2,
area-normalised), ``power_to_db`` (ref 1, amin 1e-10, top_db 80) and an orthonormal
DCT-II. ``tests/test_mfcc.py`` holds it to librosa within a stated tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MfccConfig:
    n_mfcc: int = 40
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None  # None: sr / 2
    top_db: float | None = 80.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mel = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular filters [shape=(n_mels, 1 + n_fft // 2)]."""
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


@lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic, as scipy fftbins=True


@lru_cache(maxsize=4)
def _dct_ortho(n_out: int, n_in: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[0] *= 1.0 / np.sqrt(2.0)
    return basis


def power_spectrogram(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """|STFT|^2 of a centred, zero-padded signal [shape=(1 + n_fft // 2, t)]."""
    y = np.asarray(y, dtype=np.float64)
    padded = np.pad(y, n_fft // 2, mode="constant")
    n_frames = 1 + (padded.size - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(n_frames)[:, None]
    frames = padded[idx] * _hann(n_fft)
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2).T


def mfcc(y: np.ndarray, sr: int, config: MfccConfig = MfccConfig()) -> np.ndarray:
    """MFCCs of a mono signal [shape=(n_mfcc, t)], as librosa.feature.mfcc(y=y, sr=sr, n_mfcc=...)."""
    return mfcc_from_power(power_spectrogram(y, config.n_fft, config.hop_length), sr, config)


def mfcc_from_power(power: np.ndarray, sr: int, config: MfccConfig = MfccConfig()) -> np.ndarray:
    """MFCCs from a power spectrogram [shape=(1 + n_fft // 2, t)] already computed."""
    fmax = config.fmax if config.fmax is not None else sr / 2.0
    mel = mel_filterbank(int(sr), config.n_fft, config.n_mels, float(config.fmin), float(fmax)) @ power
    log_mel = 10.0 * np.log10(np.maximum(1e-10, mel))
    if config.top_db is not None:
        log_mel = np.maximum(log_mel, log_mel.max() - config.top_db)
    return _dct_ortho(config.n_mfcc, config.n_mels) @ log_mel
