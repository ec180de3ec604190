"""Silence and noise removal inside the participant's turns (the paper's preprocessing:
"the exclusion of all non-subject segments, including the interviewer's voice, silent
intervals, and background noise"). The transcript removes the interviewer; this removes the
rest with an energy + spectral-flatness voice-activity step. NumPy only: the device runs it
on a recording (and, block by block, on the microphone) exactly as training did.

A 25 ms frame every 10 ms is speech when
  * its level (RMS, dBFS) is above a threshold set from the recording: the noise floor (a
    low percentile of the levels of the frames that carry any signal) plus a margin, never
    above the loud frames' level minus that margin (a recording without quiet stretches
    leaves the decision to the flatness) and never below an absolute floor, and
  * its spectrum is not flat (spectral flatness below a bound: voiced speech is harmonic,
    hiss, hum-free fan noise and breath are flat).
Runs of speech frames shorter than ``min_speech_ms`` are clicks and go; the kept runs are
extended by ``onset_ms`` before and ``hangover_ms`` after, so weak onsets, word-final
consonants and stop closures stay, and a pause shorter than onset + hangover is kept whole.
The rest of each turn is dropped and the kept runs are joined in order.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from edgeaffect.errors import InputError

# Below this, a power is numerical zero (-120 dB): digital silence has a level, not -inf.
POWER_EPS = 1e-12
# Frames per block when framing a long recording (bounds the memory: ~26 MB at 25 ms, 16 kHz).
BLOCK_FRAMES = 8192


@dataclass(frozen=True)
class VadSettings:
    """The voice-activity step's thresholds (why each value: the model card, "Silence and
    noise removal")."""

    frame_ms: float = 25.0  # analysis frame
    hop_ms: float = 10.0  # one decision per hop
    floor_percentile: float = 10.0  # the noise floor: this percentile of the audible frames' levels
    peak_percentile: float = 95.0  # the loud level: this percentile (caps the threshold)
    margin_db: float = 12.0  # speech is this far above the noise floor (and at most this far below the peak)
    absolute_floor_dbfs: float = -55.0  # never speech below this level; frames below do not set the floor
    max_flatness: float = 0.4  # speech frames are less flat than this (white noise: ~0.56, voiced speech: < 0.1)
    min_speech_ms: float = 60.0  # shorter runs of speech frames are clicks
    onset_ms: float = 50.0  # kept before each run
    hangover_ms: float = 150.0  # kept after each run

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"voice activity setting {f.name} must be a finite number, got {value!r}")
        if self.frame_ms <= 0 or self.hop_ms <= 0 or self.hop_ms > self.frame_ms:
            raise InputError(f"voice activity frames need 0 < hop_ms <= frame_ms, got hop {self.hop_ms:g} ms and "
                             f"frame {self.frame_ms:g} ms")
        if not 0 <= self.floor_percentile < self.peak_percentile <= 100:
            raise InputError(f"voice activity percentiles need 0 <= floor_percentile < peak_percentile <= 100, got "
                             f"{self.floor_percentile:g} and {self.peak_percentile:g}")
        if not 0 < self.max_flatness <= 1:
            raise InputError(f"voice activity max_flatness must be in (0, 1], got {self.max_flatness:g}")
        if min(self.margin_db, self.min_speech_ms, self.onset_ms, self.hangover_ms) < 0:
            raise InputError("voice activity margin_db, min_speech_ms, onset_ms and hangover_ms must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VadSettings":
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"unknown voice activity setting '{unknown[0]}' (known: "
                             f"{', '.join(f.name for f in fields(cls))})")
        return cls(**d)


# --------------------------------------------------------------------------- frames

def frame_geometry(sr: int, settings: VadSettings) -> tuple[int, int]:
    """(frame, hop) in samples at ``sr``."""
    frame = max(1, int(round(settings.frame_ms * sr / 1000)))
    return frame, max(1, min(frame, int(round(settings.hop_ms * sr / 1000))))


def frame_count(n: int, frame: int, hop: int) -> int:
    """Frames covering ``n`` samples (the last one zero-padded); one for a shorter signal."""
    return 1 if n <= frame else 1 + -(-(n - frame) // hop)


def frames_of(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """A read-only view [shape=(frames, frame)] of ``y``, zero-padded at the end."""
    n = frame_count(y.size, frame, hop)
    padded = np.zeros((n - 1) * hop + frame, np.float32)
    padded[: y.size] = y
    return np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]


def frame_levels_db(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Each frame's RMS level in dBFS (full scale 1.0)."""
    view = frames_of(y, frame, hop)
    power = np.concatenate([np.mean(np.square(view[a:a + BLOCK_FRAMES], dtype=np.float64), axis=1)
                            for a in range(0, len(view), BLOCK_FRAMES)])
    return 10.0 * np.log10(power + POWER_EPS)


def frame_flatness(y: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Each frame's spectral flatness: the geometric over the arithmetic mean of its power
    spectrum (Hann window, DC left out); 1 for a silent frame."""
    view, window = frames_of(y, frame, hop), np.hanning(frame)
    out = []
    for a in range(0, len(view), BLOCK_FRAMES):
        power = np.abs(np.fft.rfft(view[a:a + BLOCK_FRAMES] * window, axis=1)[:, 1:]) ** 2 + POWER_EPS
        out.append(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1))
    return np.concatenate(out)


# --------------------------------------------------------------------------- the decision

def speech_threshold_db(levels_db: np.ndarray, settings: VadSettings) -> float:
    """The level a speech frame must exceed, from a recording's frame levels: noise floor +
    margin, at most the loud level - margin, at least the absolute floor. +inf when no frame
    is above the absolute floor (nothing there is speech)."""
    audible = levels_db[levels_db > settings.absolute_floor_dbfs]
    if not audible.size:
        return math.inf
    floor = float(np.percentile(audible, settings.floor_percentile))
    loud = float(np.percentile(audible, settings.peak_percentile))
    return max(settings.absolute_floor_dbfs, min(floor + settings.margin_db, loud - settings.margin_db))


def recording_threshold_db(y: np.ndarray, sr: int, settings: VadSettings) -> float:
    """``speech_threshold_db`` over every frame of the recording (turns, gaps and all)."""
    return speech_threshold_db(frame_levels_db(np.asarray(y, np.float32), *frame_geometry(sr, settings)), settings)


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, stops) of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def drop_short_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """``mask`` without its runs shorter than ``min_len``."""
    out = mask.copy()
    for a, b in zip(*runs(mask)):
        if b - a < min_len:
            out[a:b] = False
    return out


def extend_runs(mask: np.ndarray, before: int, after: int) -> np.ndarray:
    """``mask`` with each True also marking ``before`` places before it and ``after`` after."""
    if not mask.any() or before == after == 0:
        return mask.copy()
    # j is kept when any of mask[j - after .. j + before] is: a window sum over a cumulative sum.
    total = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    j = np.arange(mask.size)
    hi, lo = np.minimum(j + before + 1, mask.size), np.maximum(j - after, 0)
    return total[hi] - total[lo] > 0


def speech_frames(levels_db: np.ndarray, flatness: np.ndarray, threshold_db: float,
                  settings: VadSettings) -> np.ndarray:
    """Frames judged speech, smoothed (short runs dropped, onset and hangover added)."""
    hop = settings.hop_ms
    raw = (levels_db > threshold_db) & (flatness < settings.max_flatness)
    kept = drop_short_runs(raw, int(math.ceil(settings.min_speech_ms / hop - 1e-9)))
    return extend_runs(kept, int(round(settings.onset_ms / hop)), int(round(settings.hangover_ms / hop)))


def samples_of_frames(frame_mask: np.ndarray, n: int, frame: int, hop: int) -> np.ndarray:
    """A per-sample mask: each sample takes the decision of the frame whose centre is nearest."""
    nearest = np.clip(np.rint((np.arange(n) - (frame - 1) / 2) / hop).astype(np.int64), 0, frame_mask.size - 1)
    return frame_mask[nearest]


def voiced_mask(y: np.ndarray, sr: int, settings: VadSettings, threshold_db: float) -> np.ndarray:
    """Which samples of one stretch of audio (a turn) the VAD keeps, given the recording's
    threshold [shape=(len(y),), bool]."""
    y = np.asarray(y, np.float32)
    if not y.size or not math.isfinite(threshold_db):
        return np.zeros(y.size, bool)
    frame, hop = frame_geometry(sr, settings)
    keep = speech_frames(frame_levels_db(y, frame, hop), frame_flatness(y, frame, hop), threshold_db, settings)
    return samples_of_frames(keep, y.size, frame, hop)


def speech_mask(y: np.ndarray, sr: int, settings: VadSettings, spans=None) -> np.ndarray:
    """The samples of a recording that are speech, inside ``spans`` [(start, stop) sample
    pairs, e.g. the participant's turns; None: the whole recording]. Each span is framed on
    its own; the threshold comes from the whole recording."""
    y = np.asarray(y, np.float32)
    threshold = recording_threshold_db(y, sr, settings)
    out = np.zeros(y.size, bool)
    for a, b in ([(0, y.size)] if spans is None else spans):
        out[a:b] = voiced_mask(y[a:b], sr, settings, threshold)
    return out


# --------------------------------------------------------------------------- live

class StreamingVad:
    """The same step on audio arriving in blocks (the microphone): the threshold from the
    frame levels of the last ``history_s`` seconds, each block judged with the audio around
    it. The last ``onset + min_speech + frame`` of what has arrived is held back until the
    next block, so a run starting at a block's end is judged with what follows."""

    def __init__(self, settings: VadSettings, sr: int, history_s: float = 60.0):
        self.settings, self.sr = settings, int(sr)
        self.frame, self.hop = frame_geometry(self.sr, settings)
        ms = settings.onset_ms + settings.min_speech_ms
        self.lookahead = int(round(ms * self.sr / 1000)) + self.frame
        self.context = int(round((settings.hangover_ms + settings.min_speech_ms) * self.sr / 1000)) + self.frame
        self.history = max(1, int(history_s * 1000 / settings.hop_ms))
        self._levels = np.zeros(0, np.float64)
        self._buf = np.zeros(0, np.float32)  # context already decided, then samples not yet decided
        self._decided = 0  # how many samples at the start of _buf are context

    def push(self, block: np.ndarray) -> np.ndarray:
        """The speech among the samples decided by this block (in order; may be empty)."""
        block = np.asarray(block, np.float32).reshape(-1)
        if block.size >= self.frame:
            self._levels = np.concatenate([self._levels, frame_levels_db(block, self.frame, self.hop)])
            self._levels = self._levels[-self.history:]
        self._buf = np.concatenate([self._buf, block])
        ready = self._buf.size - self.lookahead
        if ready <= self._decided:
            return np.zeros(0, np.float32)
        keep = voiced_mask(self._buf, self.sr, self.settings, speech_threshold_db(self._levels, self.settings))
        out = self._buf[self._decided:ready][keep[self._decided:ready]]
        start = max(0, ready - self.context)
        self._buf, self._decided = self._buf[start:], ready - start
        return out

    def reset(self) -> None:
        """Forget the held-back audio (a gap in the input), keep the level history."""
        self._buf, self._decided = np.zeros(0, np.float32), 0
