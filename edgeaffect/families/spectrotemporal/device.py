"""The spectrotemporal model on the device, in two stages: a recording -> NumPy 3-channel
log-Mel segments and VLNEP histograms -> the spectral extractor once per segment ->
sequences of S segments' features -> the sequence model -> one score per sequence; the
recording's score is their mean (the task's ``combine``). Overlapping sequences share
segments, so each segment's five EfficientNet passes run once, not once per sequence.

Live: one new segment at a time (with its neighbours, which its deltas and VLNEP codes
read); a score once S consecutive segments of speech are in."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from pathlib import Path

import numpy as np

from edgeaffect.errors import MediaError
from edgeaffect.contract.family import DeviceAdapter, LiveInput, check_inputs
from edgeaffect.families.spectrotemporal.features import (SpectroConfig, recording_features, sequence_starts,
                                                          to_pixels)
from edgeaffect.families.spectrotemporal.vlnep import RULES, vlnep_histograms
from edgeaffect.schema import Int, List, Num, Str, Table, field_error, show

# Every SpectroConfig field (``from_dict`` takes exactly these), each in a range the NumPy
# features work in.
_FEATURES = Table({"sample_rate": Int(min=1000, max=384000), "win_ms": Num(above=0, max=1000),
                   "hop_ms": Num(above=0, max=1000), "n_fft": Int(min=16, max=1 << 16), "n_mels": Int(min=3, max=1024),
                   "fmin": Num(min=0), "delta_n": Int(min=1, max=100), "amin": Num(above=0, max=1),
                   "segment_s": Num(above=0, max=600), "segments_per_sequence": Int(min=1, max=10000),
                   "sequence_hop": Int(min=1, max=10000), "silence_dbfs": Num(max=0),
                   "min_sample_rate": Int(min=1000, max=384000)}, closed=True, what="a table (SpectroConfig)")
_CHANNELS, _BINS = 3, 256  # log-Mel, deltas, delta-deltas; VLNEP codes 0..255
_NORMALISATION = Table({"mel_mean": List(Num(), _CHANNELS, _CHANNELS), "mel_std": List(Num(above=0), _CHANNELS, _CHANNELS),
                        "vlnep_mean": List(Num(), _BINS, _BINS), "vlnep_std": List(Num(above=0), _BINS, _BINS)},
                       what="a table (mel_mean, mel_std, vlnep_mean, vlnep_std)")
PREPROCESSING = Table({"features": _FEATURES, "vlnep_rule": Str(choices=RULES), "normalisation": _NORMALISATION})


def segment_features(z: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Segments' 3-channel log-Mel -> (the same, their VLNEP histograms from the static channel)."""
    return z, vlnep_histograms(z[..., 0], rule)


def segment_inputs(z: np.ndarray, hist: np.ndarray, norm: dict) -> dict[str, np.ndarray]:
    """Segments -> the extractor's pixels and the standardised VLNEP histograms, per segment."""
    pixels = to_pixels(z, np.asarray(norm["mel_mean"], np.float32), np.asarray(norm["mel_std"], np.float32))
    h = (hist - np.asarray(norm["vlnep_mean"], np.float32)) / np.asarray(norm["vlnep_std"], np.float32)
    return {"segment": pixels, "vlnep": h.astype(np.float32)}


def sequence_index(n_segments: int, config: SpectroConfig) -> np.ndarray:
    """Segment indices of every sequence [shape=(n_sequences, S)]."""
    starts = sequence_starts(n_segments, config)
    return starts[:, None] + np.arange(config.segments_per_sequence)[None, :]


def model_inputs(z: np.ndarray, hist: np.ndarray, config: SpectroConfig, norm: dict) -> dict[str, np.ndarray]:
    """One recording's segments -> the whole network's inputs, a batch of its sequences
    (the Keras model on the desktop; the device runs the two stages)."""
    per_segment = segment_inputs(z, hist, norm)
    idx = sequence_index(len(z), config)
    return {"spectrogram": per_segment["segment"][idx], "vlnep": per_segment["vlnep"][idx]}


class SpectroAdapter(DeviceAdapter):
    needs_video = False
    stages = ("extractor", "sequence")
    # Extractor outputs kept by segment number (live: each segment's five passes run once).
    memo_segments = 64

    preprocessing_spec = PREPROCESSING

    @classmethod
    def validate(cls, preprocessing: dict, manifest: dict) -> None:
        f = SpectroConfig.from_dict(preprocessing["features"])
        where = "preprocessing.features"
        if not 1 <= f.win_length <= f.n_fft:
            raise field_error(None, f"{where}.win_ms", f"a window of 1 to n_fft ({f.n_fft}) samples at "
                              f"{f.sample_rate} Hz", f"{show(f.win_ms)}, {f.win_length} samples")
        if f.hop_length < 1 or f.frames_per_segment < 3:  # VLNEP reads a pixel's 8 neighbours
            raise field_error(None, f"{where}.segment_s", "at least 3 frames of hop_ms per segment",
                              f"{show(f.segment_s)} ({f.frames_per_segment} frames of {f.hop_ms:g} ms)")
        if f.fmin >= f.sample_rate / 2:
            raise field_error(None, f"{where}.fmin", f"below the Nyquist frequency ({f.sample_rate / 2:g} Hz)",
                              show(f.fmin))
        if manifest.get("stage") == "extractor":  # the one stage whose inputs the preprocessing fixes
            check_inputs(manifest, {"segment": [f.frames_per_segment, f.n_mels, _CHANNELS]})

    def __init__(self, preprocessing: dict, task, labels):
        super().__init__(preprocessing, task, labels)
        self.features = SpectroConfig.from_dict(preprocessing["features"])
        self.rule = preprocessing["vlnep_rule"]
        self.norm = preprocessing["normalisation"]
        self._memo: OrderedDict[int, np.ndarray] = OrderedDict()
        self._live: deque = deque(maxlen=self.features.segments_per_sequence)
        self._live_done = -1

    def load(self, media: Path, audio: Path | None = None):
        from edgeaffect.media import read_audio

        return read_audio(audio or media)

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        """Per segment: ``segment`` (n, frames, n_mels, 3) pixels, ``vlnep`` (n, 256)."""
        y, sr = decoded
        z, hist = segment_features(recording_features(y, sr, self.features), self.rule)
        return segment_inputs(z, hist, self.norm)

    def run_stages(self, run, x: dict[str, np.ndarray]) -> np.ndarray:
        ids = x.pop("segment_id", None)
        feats = self._extract(run, x["segment"], ids)
        idx = sequence_index(len(feats), self.features)
        return run("sequence", {"spectral": feats[idx], "vlnep": x["vlnep"][idx]})

    def _extract(self, run, pixels: np.ndarray, ids) -> np.ndarray:
        if ids is None:
            return run("extractor", {"segment": pixels})
        todo = [i for i, k in enumerate(ids) if int(k) not in self._memo]
        if todo:
            new = run("extractor", {"segment": pixels[todo]})
            for i, f in zip(todo, new):
                self._memo[int(ids[i])] = f
        while len(self._memo) > self.memo_segments:
            self._memo.popitem(last=False)
        return np.stack([self._memo[int(k)] for k in ids])

    def duration_s(self, decoded) -> float:
        y, sr = decoded
        return y.size / sr

    def describe_inputs(self) -> str:
        f = self.features
        return (f"NumPy 3-channel log-Mel ({f.n_mels} bands) + VLNEP per {f.segment_s:g} s segment; "
                f"extractor per segment, sequences of {f.segments_per_sequence}")

    # ----------------------------------------------------------------- live
    def live_rate(self, config) -> float:
        return 2.0 / self.features.segment_s  # twice per segment: a new one is never waited on long

    def live_input(self, frame, audio, config) -> LiveInput:
        """The newest finished segment (its neighbours give its deltas and VLNEP codes) joins
        the last S; a score once S consecutive segments of speech are in."""
        t0 = time.perf_counter()
        ring = audio.ring
        sr, seg = ring.sample_rate, int(round(ring.sample_rate * self.features.segment_s))
        newest = ring.written // seg - 2  # the newest segment whose next one is complete
        s = self.features.segments_per_sequence
        status = f"collecting speech {len(self._live)}/{s} segments"
        recent = ring.latest(seg)
        rms = float(np.sqrt(np.mean(recent ** 2))) if recent.size else 0.0
        if newest > self._live_done and newest >= 1:
            end = ring.written - (newest - 1) * seg  # samples from segment newest - 1 to now
            y = ring.latest(end)[: 3 * seg]
            try:
                z, hist = segment_features(recording_features(y, sr, self.features, "the microphone", 3), self.rule)
                one = segment_inputs(z[1:2], hist[1:2], self.norm)
                if self._live and self._live[-1][0] != newest - 1:
                    self._live.clear()  # a gap: sequences are consecutive segments
                self._live.append((newest, one["segment"][0], one["vlnep"][0]))
                status = f"collecting speech {len(self._live)}/{s} segments"
            except MediaError as exc:  # silence between words: the sequence starts again
                self._live.clear()
                status = str(exc).split(":")[0].split(" (")[0]
            self._live_done = newest
            if len(self._live) == s:
                x = {"segment": np.stack([p for _, p, _ in self._live]),
                     "vlnep": np.stack([v for _, _, v in self._live]),
                     "segment_id": np.asarray([k for k, _, _ in self._live], np.int64)}
                return LiveInput(x, "ok", rms, {"features": (time.perf_counter() - t0) * 1e3})
        return LiveInput(None, status, rms, {"features": (time.perf_counter() - t0) * 1e3})
