"""The paper's 3-channel log-Mel in NumPy (device side), and how a recording becomes
segments and sequences.

Sec. "Data preprocessing": resample to 8 kHz; 25 ms Hamming frames, 10 ms hop; 80 Mel
bands; log; deltas (Eq. 1, N = 3) and delta-deltas (Eq. 2, Eq. 1 applied to the deltas)
-> Z in R^{t x 80 x 3}. Frames follow librosa's conventions (centred, zero padding, a
periodic window zero-padded to ``n_fft``, Slaney Mel filters, ``power_to_db``) so that
``features_librosa.py`` (the reference) and this file agree within the tolerance that
``tests/test_spectrotemporal_features.py`` states. Eq. 1 at the edges repeats the first /
last frame (HTK's convention; librosa's ``delta(mode="nearest")`` does the same).

Segmentation (the paper's S is both a count and a duration; our reading is in the model
card): the log-Mel of the whole recording is cut into non-overlapping segments of
``segment_s`` seconds; the model sees sequences of ``segments_per_sequence`` (S = 30)
consecutive segments, taken every ``sequence_hop`` segments; a recording's score is the
mean over its sequences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from edgeaffect.errors import MediaError
from edgeaffect.features.mfcc import mel_filterbank
from edgeaffect.media.audio import resample  # noqa: F401  (families import it from here)


@dataclass(frozen=True)
class SpectroConfig:
    sample_rate: int = 8000  # the paper's 8 kHz
    win_ms: float = 25.0
    hop_ms: float = 10.0
    # Not given: 512 (64 ms) so that every one of 80 Slaney Mel filters holds an FFT bin at
    # 8 kHz; with 256 the narrowest low filters fall between bins and stay empty.
    n_fft: int = 512
    n_mels: int = 80
    fmin: float = 0.0
    delta_n: int = 3  # N of Eqs. 1-2
    amin: float = 1e-10  # floor of the power before the log (power_to_db's)
    segment_s: float = 1.0  # one segment = 100 frames (our reading of S; see the model card)
    segments_per_sequence: int = 30  # S = 30
    sequence_hop: int = 10  # a new sequence every 10 segments (overlap 2/3; more sequences per recording)
    # Bad input: below this RMS (dBFS) a recording is "silent"; below this rate it cannot be
    # resampled up to 8 kHz without inventing the band above the original Nyquist.
    silence_dbfs: float = -60.0
    min_sample_rate: int = 8000

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def frames_per_segment(self) -> int:
        return int(round(self.segment_s * 1000 / self.hop_ms))

    @property
    def sequence_seconds(self) -> float:
        return self.segment_s * self.segments_per_sequence

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SpectroConfig":
        return cls(**d)


@lru_cache(maxsize=4)
def _window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hamming (scipy's fftbins=True), centred in n_fft zeros as librosa does."""
    w = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def prepare_audio(y: np.ndarray, sr: int, config: SpectroConfig, what: str = "audio") -> np.ndarray:
    """Checked and resampled to ``config.sample_rate``; one-line errors for bad input."""
    if sr < config.min_sample_rate:
        raise MediaError(f"{what} is sampled at {sr} Hz; the model needs at least {config.min_sample_rate} Hz "
                         "(it resamples down to 8 kHz, never up): record or export at 8 kHz or more")
    y = np.asarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise MediaError(f"{what} holds NaN or infinite samples; re-export the file")
    y = resample(y, int(sr), config.sample_rate)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    if rms <= 10 ** (config.silence_dbfs / 20):
        level = "digital silence" if rms == 0 else f"{20 * np.log10(rms):.0f} dBFS"
        raise MediaError(f"{what} is silent ({level}, threshold {config.silence_dbfs:g} dBFS); "
                         "check the microphone or the file")
    return y


def log_mel(y: np.ndarray, config: SpectroConfig) -> np.ndarray:
    """Static log-Mel (dB) of audio already at ``config.sample_rate`` [shape=(t, n_mels)]."""
    n_fft, hop = config.n_fft, config.hop_length
    padded = np.pad(np.asarray(y, dtype=np.float64), n_fft // 2)
    n_frames = 1 + (padded.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    power = np.abs(np.fft.rfft(padded[idx] * _window(config.win_length, n_fft), axis=1)) ** 2
    fb = mel_filterbank(config.sample_rate, n_fft, config.n_mels, float(config.fmin), config.sample_rate / 2.0)
    return (10.0 * np.log10(np.maximum(config.amin, power @ fb.T))).astype(np.float32)


def delta(x: np.ndarray, n: int = 3) -> np.ndarray:
    """Eq. 1 along time (axis 0), edge frames repeated: sum_n n (x[i+n] - x[i-n]) / (2 sum_n n^2).
    Eq. 1 as printed indexes Mel filters; time is the usual reading of "deltas" (model card)."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.concatenate([np.repeat(x[:1], n, 0), x, np.repeat(x[-1:], n, 0)])
    t = x.shape[0]
    num = sum(k * (padded[n + k : n + k + t] - padded[n - k : n - k + t]) for k in range(1, n + 1))
    return (num / (2 * sum(k * k for k in range(1, n + 1)))).astype(np.float32)


def three_channel(static: np.ndarray, n: int = 3) -> np.ndarray:
    """Static, delta (Eq. 1), delta-delta (Eq. 2) stacked [shape=(t, n_mels, 3)]."""
    d = delta(static, n)
    return np.stack([static, d, delta(d, n)], axis=-1).astype(np.float32)


def recording_features(y: np.ndarray, sr: int, config: SpectroConfig, what: str = "audio",
                       min_segments: int | None = None) -> np.ndarray:
    """A recording -> its segments' 3-channel log-Mel [shape=(n_segments, frames, n_mels, 3)].
    ``min_segments`` (default: one sequence) below which the recording is refused."""
    z = three_channel(log_mel(prepare_audio(y, sr, config, what), config), config.delta_n)
    f = config.frames_per_segment
    n_seg = z.shape[0] // f
    if n_seg < (config.segments_per_sequence if min_segments is None else min_segments):
        have = y.size / max(sr, 1)
        raise MediaError(f"{what} is too short: {have:.1f} s gives {n_seg} segments of {config.segment_s:g} s; "
                         f"one sequence needs {config.segments_per_sequence} ({config.sequence_seconds:g} s)")
    return z[: n_seg * f].reshape(n_seg, f, config.n_mels, 3)


def sequence_starts(n_segments: int, config: SpectroConfig) -> np.ndarray:
    """First segment of every sequence; the last one ends at the last segment (no segment left out)."""
    s = config.segments_per_sequence
    starts = list(range(0, n_segments - s + 1, config.sequence_hop))
    if starts[-1] != n_segments - s:
        starts.append(n_segments - s)
    return np.asarray(starts, np.int64)


def to_pixels(z: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """3-channel log-Mel -> the backbone's image range: per-channel standardised, +-3 std onto
    0..255 (EfficientNet's stem expects pixel values), clipped."""
    return np.clip(127.5 + 42.5 * (z - mean) / std, 0.0, 255.0).astype(np.float32)
