"""The detector on the device (NumPy only): a recording -> the participant's speech (the
transcript beside it when there is one, ``XXX_TRANSCRIPT.csv`` next to ``XXX_AUDIO.wav``,
else all of it) -> non-overlapping segments, normalised as wav2vec 2.0's feature extractor
does (the backbone's input) -> the backbone's per-segment features padded into the head's
input -> the head's p(depressed) and each segment's weight -> the decision.

Two exported models run in turn: the backbone (``audio`` (n, samples) -> the feature
(n, frames, hidden)) and the head (``features`` + ``segment_mask`` -> p and the weights).
``backbone_inputs`` gives the backbone's inputs; ``head_inputs`` the head's from the
features; ``result`` turns the head's outputs into the prediction with the weights
attached. Bundles hold the head only so far, so ``inputs`` (what ``predict`` calls) refuses
a recording in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.families.base import DeviceAdapter
from edgeaffect.families.wav2vec2.daicwoz import normalise, participant_segments, read_transcript


def transcript_for(audio: Path) -> Path | None:
    """``XXX_TRANSCRIPT.csv`` beside ``XXX_AUDIO.wav`` (DAIC-WOZ's names), if present."""
    name = audio.name
    if name.upper().endswith("_AUDIO.WAV"):
        t = audio.with_name(name[: -len("_AUDIO.wav")] + "_TRANSCRIPT.csv")
        return t if t.is_file() else None
    return None


class DetectorAdapter(DeviceAdapter):
    needs_video = False
    live_rate_hz = 1.0 / 7.0

    def __init__(self, preprocessing: dict, task, labels):
        super().__init__(preprocessing, task, labels)
        p = preprocessing
        self.sample_rate, self.segment_s, self.tail = int(p["sample_rate"]), float(p["segment_s"]), p["tail"]
        self.max_segments, self.frames, self.hidden = int(p["max_segments"]), int(p["frames"]), int(p["hidden"])

    @classmethod
    def validate(cls, preprocessing: dict, manifest: dict) -> None:
        for name in ("sample_rate", "segment_s", "max_segments", "frames", "hidden"):
            v = preprocessing.get(name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v) or v <= 0:
                raise InputError(f"'preprocessing.{name}' must be a positive number, got {v!r}")
        if preprocessing.get("tail") not in ("drop", "pad"):
            raise InputError(f"'preprocessing.tail' must be 'drop' or 'pad', got {preprocessing.get('tail')!r}")

    # ------------------------------------------------------------------ a recording
    def load(self, media: Path, audio: Path | None = None):
        from edgeaffect.media import read_audio

        path = Path(audio or media)
        y, sr = read_audio(path)
        t = transcript_for(path)
        return y, sr, (read_transcript(t) if t is not None else None), str(path)

    def segments(self, decoded) -> np.ndarray:
        """The participant's raw segments [shape=(n, samples)]."""
        y, sr, turns, what = decoded
        return participant_segments(y, sr, turns, sample_rate=self.sample_rate, segment_s=self.segment_s,
                                    tail=self.tail, what=what)

    def backbone_inputs(self, decoded) -> dict[str, np.ndarray]:
        """The backbone's input: each segment normalised (zero mean, unit variance)."""
        return {"audio": normalise(self.segments(decoded))}

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        """A bundle holds the head only so far: its input is the backbone's features, which
        a recording alone does not give on the device."""
        self.segments(decoded)  # a recording with no usable speech is refused first
        raise InputError("this wav2vec2 bundle holds the detector's head only (its input: per-segment wav2vec 2.0 "
                         "features); predicting from a recording needs the backbone in the bundle, which is not "
                         "built yet")

    def duration_s(self, decoded) -> float:
        y, sr = decoded[:2]
        return y.size / sr

    def describe_inputs(self) -> str:
        return (f"participant speech in {self.segment_s:g} s segments at {self.sample_rate} Hz -> wav2vec 2.0 "
                f"features ({self.frames} x {self.hidden}) -> head over up to {self.max_segments} segments")

    # ------------------------------------------------------------------ the head
    def head_inputs(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Per-segment features (n, frames, hidden) -> the head's batch of one participant. A
        participant with more than ``max_segments`` segments keeps the first ones (in order)."""
        f = np.asarray(features, np.float32)
        if f.ndim != 3 or f.shape[1:] != (self.frames, self.hidden):
            raise InputError(f"segment features must be (n, {self.frames}, {self.hidden}), got {f.shape}")
        n = min(len(f), self.max_segments)
        x = np.zeros((1, self.max_segments, self.frames, self.hidden), np.float32)
        m = np.zeros((1, self.max_segments), np.float32)
        x[0, :n], m[0, :n] = f[:n], 1.0
        return {"features": x, "segment_mask": m}

    def combine(self, outputs: np.ndarray) -> np.ndarray:
        """The head already combines a participant's segments: its output is p(depressed)."""
        return np.asarray(outputs, np.float32).reshape(-1)[:1]

    def result(self, probability: np.ndarray, weights: np.ndarray, segments: int):
        """The prediction, with each real segment's weight (they sum to 1) in ``extra``."""
        w = np.asarray(weights, np.float64).reshape(-1)[: min(segments, self.max_segments)]
        p = self.task.prediction(self.combine(probability), w, self.labels)
        p.extra["segment_weights"] = [round(float(v), 6) for v in w]
        p.extra["segments"] = int(segments)
        return p

    @staticmethod
    def describe_weights(weights) -> list[str]:
        w = np.asarray(weights, np.float64).reshape(-1)
        top = np.argsort(-w)[:5]
        return [f"  segment weights ({w.size} segments): " + " ".join(f"{v:.3f}" for v in w[:24])
                + (" ..." if w.size > 24 else ""),
                "  most weighted: " + ", ".join(f"#{i + 1} ({w[i]:.3f})" for i in top)]
