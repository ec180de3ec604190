"""The detector on the device (NumPy only): a recording -> the participant's speech (the
transcript beside it when there is one, ``XXX_TRANSCRIPT.csv`` next to ``XXX_AUDIO.wav``,
else all of it; silences and noise removed when the manifest's ``vad`` says training
removed them) -> non-overlapping segments, normalised as wav2vec 2.0's feature extractor
does (the backbone's input) -> the backbone's per-segment features padded into the head's
input -> the head's p(depressed) and each segment's weight -> the decision.

Two exported stages run in turn (``run_stages``): the backbone once per segment (``audio``
(n, samples) -> the feature (n, frames, hidden)) and the head once per participant
(``features`` + ``segment_mask``, padded to ``max_segments`` -> one row: p(depressed), then
each segment's weight). ``inputs`` gives the backbone's inputs (a participant's first
``max_segments`` segments); ``prediction`` attaches the real segments' weights.

Live: the microphone's audio (silences and noise removed block by block when ``vad`` is
on) is cut into segments; each finished segment joins the participant's list; a decision
once ``live_segments`` segments are in (then after every new one, over the last
``max_segments``). The backbone runs once per segment: its features are kept by segment
number.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.contract.family import DeviceAdapter, LiveInput, check_inputs
from edgeaffect.families.wav2vec2.daicwoz import normalise, participant_segments, read_transcript, resample
from edgeaffect.families.wav2vec2.vad import StreamingVad, VadSettings
from edgeaffect.schema import Int, Nullable, Num, Str, Table, field_error, show

# What the adapter reads of the manifest's preprocessing (the rest, e.g. the backbone's
# config, is there for people and the desktop side).
# ``vad``: the voice-activity settings training cut its segments with (vad.py), null or
# absent (bundles made before it) when it kept whole turns.
VAD = Table({"frame_ms": Num(above=0, max=1000), "hop_ms": Num(above=0, max=1000),
             "floor_percentile": Num(min=0, max=100), "peak_percentile": Num(min=0, max=100),
             "margin_db": Num(min=0, max=120), "absolute_floor_dbfs": Num(min=-200, max=0),
             "max_flatness": Num(above=0, max=1), "min_speech_ms": Num(min=0, max=10000),
             "onset_ms": Num(min=0, max=10000), "hangover_ms": Num(min=0, max=10000)}, closed=True,
            what="a table of voice activity settings")
PREPROCESSING = Table({"sample_rate": Int(min=1000, max=384000), "segment_s": Num(above=0, max=600),
                       "tail": Str(choices=("drop", "pad")), "max_segments": Int(min=1, max=100000),
                       "frames": Int(min=1, max=1 << 20), "hidden": Int(min=1, max=1 << 16),
                       "live_segments": Int(min=1, max=100000), "vad": Nullable(VAD)},
                      optional={"live_segments", "vad"})


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
    stages = ("backbone", "head")
    # below this RMS (of full scale) a live segment is silence and is not added
    silence_rms = 1e-3

    def __init__(self, preprocessing: dict, task, labels):
        super().__init__(preprocessing, task, labels)
        p = preprocessing
        self.sample_rate, self.segment_s, self.tail = int(p["sample_rate"]), float(p["segment_s"]), p["tail"]
        self.max_segments, self.frames, self.hidden = int(p["max_segments"]), int(p["frames"]), int(p["hidden"])
        self.live_segments = int(p.get("live_segments", 4))
        self.vad = VadSettings.from_dict(p["vad"]) if p.get("vad") else None  # absent: an older bundle, off
        self._live_vad: StreamingVad | None = None
        self._memo: OrderedDict[int, np.ndarray] = OrderedDict()
        self._live: list[tuple[int, np.ndarray]] = []
        self._pending, self._read, self._count = np.zeros(0, np.float32), 0, 0

    preprocessing_spec = PREPROCESSING

    @classmethod
    def validate(cls, preprocessing: dict, manifest: dict) -> None:
        p = preprocessing
        samples = int(round(p["segment_s"] * p["sample_rate"]))
        if samples < 1:
            raise field_error(None, "preprocessing.segment_s", f"at least one sample at {p['sample_rate']} Hz",
                              show(p["segment_s"]))
        if p.get("vad"):  # relations between the settings (hop within the frame, percentiles in order)
            try:
                VadSettings.from_dict(p["vad"])
            except InputError as exc:
                raise InputError(f"'preprocessing.vad': {exc}") from None
        # The inputs of each stage are fixed by these fields; the adapter makes exactly them.
        expected = {"backbone": {"audio": [samples]},
                    "head": {"features": [p["max_segments"], p["frames"], p["hidden"]],
                             "segment_mask": [p["max_segments"]]}}.get(manifest.get("stage"))
        if expected:
            check_inputs(manifest, expected)

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
                                    tail=self.tail, what=what, vad=self.vad)

    def backbone_inputs(self, decoded) -> dict[str, np.ndarray]:
        """The backbone's input: each segment normalised (zero mean, unit variance)."""
        return {"audio": normalise(self.segments(decoded))}

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        """The participant's segments, normalised (the backbone's input); a participant with
        more than ``max_segments`` keeps the first ones, in order."""
        return {"audio": normalise(self.segments(decoded)[: self.max_segments])}

    def run_stages(self, run, x: dict[str, np.ndarray]) -> np.ndarray:
        """The backbone on the segments (a batch), the head on their features padded to
        ``max_segments``: one row, [p(depressed), weight of segment 1, ...]."""
        audio = np.asarray(x["audio"], np.float32)[: self.max_segments]
        feats = self._backbone(run, audio, x.get("segment_id"))
        return run("head", self.head_inputs(feats))

    def _backbone(self, run, audio: np.ndarray, ids) -> np.ndarray:
        if ids is None:
            return run("backbone", {"audio": audio})
        ids = [int(k) for k in np.asarray(ids)[: len(audio)]]
        todo = [i for i, k in enumerate(ids) if k not in self._memo]
        if todo:
            for i, f in zip(todo, run("backbone", {"audio": audio[todo]})):
                self._memo[ids[i]] = f
        while len(self._memo) > self.max_segments:
            self._memo.popitem(last=False)
        return np.stack([self._memo[k] for k in ids])

    def prediction(self, outputs: np.ndarray, x: dict[str, np.ndarray]):
        out = np.asarray(outputs, np.float32).reshape(-1)
        return self.result(out[:1], out[1:], len(x["audio"]))

    def describe(self, prediction) -> list[str]:
        lines = list(self.task.describe(prediction))
        if "segment_weights" in prediction.extra:
            lines += self.describe_weights(prediction.extra["segment_weights"])
        return lines

    def duration_s(self, decoded) -> float:
        y, sr = decoded[:2]
        return y.size / sr

    def describe_inputs(self) -> str:
        vad = ", silences and noise removed" if self.vad else ""
        return (f"participant speech{vad} in {self.segment_s:g} s segments at {self.sample_rate} Hz -> wav2vec 2.0 "
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

    # ------------------------------------------------------------------ live
    def _voiced(self, block: np.ndarray, sr: int) -> np.ndarray:
        """The microphone's new audio with silences and noise removed as training removed them
        (when the manifest says so), block by block; unchanged otherwise."""
        if self.vad is None:
            return block
        if self._live_vad is None or self._live_vad.sr != sr:
            self._live_vad = StreamingVad(self.vad, sr)
        return self._live_vad.push(block)

    def smooth(self, recent: list[np.ndarray]) -> np.ndarray:
        """The newest decision: each already covers every segment so far."""
        return recent[-1]

    def live_rate(self, config) -> float:
        return 4.0 / self.segment_s  # reads the ring well before it wraps (it holds a few seconds)

    def live_input(self, frame, audio, config) -> LiveInput:
        """The audio written since the last call (its silences and noise removed when ``vad``
        is on) joins a buffer; each finished segment of it joins the participant's list (a
        silent one is skipped); a decision once
        ``live_segments`` are in, over the last ``max_segments``. A gap (the ring wrapped
        before it was read) restarts the current segment."""
        t0 = time.perf_counter()
        ring = audio.ring
        sr = ring.sample_rate
        seg = int(round(sr * self.segment_s))
        written = ring.written
        new = written - self._read
        if new > ring.capacity:  # fell behind: what was lost would splice two moments together
            self._pending, new = np.zeros(0, np.float32), ring.capacity
            if self._live_vad is not None:
                self._live_vad.reset()
        if new > 0:
            self._pending = np.concatenate([self._pending, self._voiced(ring.latest(new), sr)])
        self._read = written
        added = False
        while self._pending.size >= seg:
            y, self._pending = self._pending[:seg], self._pending[seg:]
            self._count += 1
            if float(np.sqrt(np.mean(y ** 2))) < self.silence_rms:
                continue
            if sr != self.sample_rate:
                y = resample(y, sr, self.sample_rate)
            self._live = (self._live + [(self._count, normalise(y[None])[0])])[-self.max_segments:]
            added = True
        recent = ring.latest(min(seg, ring.capacity))
        rms = float(np.sqrt(np.mean(recent ** 2))) if recent.size else 0.0
        ms = {"features": (time.perf_counter() - t0) * 1e3}
        if added and len(self._live) >= self.live_segments:
            x = {"audio": np.stack([a for _, a in self._live]),
                 "segment_id": np.asarray([k for k, _ in self._live], np.int64)}
            return LiveInput(x, "ok", rms, ms)
        status = f"collecting speech {min(len(self._live), self.live_segments)}/{self.live_segments} segments " \
                 f"of {self.segment_s:g} s"
        return LiveInput(None, status, rms, ms)
