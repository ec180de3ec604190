"""SpeechNet on the device: an utterance (or the newest seconds of microphone audio) ->
107 fusion features per frame in NumPy -> the network's input."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, MediaError
from edgeaffect.contract.family import DeviceAdapter, LiveInput, LiveSettings, check_inputs
from edgeaffect.families.speechnet.features import FusionConfig, fusion_features, model_input
from edgeaffect.schema import Int, List, Num, Str, Table, Tuple, field_error, show

_FEATURES = Table({"sample_rate": Int(min=1000, max=384000), "n_fft": Int(min=16, max=1 << 16),
                   "hop_length": Int(min=1), "n_mels": Int(min=1, max=1024),
                   "composition": List(Tuple(Str(), Int(min=1, max=512)), min_len=1),
                   "rolloff_percent": Num(above=0, max=1), "contrast_fmin": Num(above=0),
                   "pitch_fmin": Num(above=0), "pitch_fmax": Num(above=0), "yin_threshold": Num(above=0, max=1),
                   "silence_dbfs": Num(max=0), "max_clipped_fraction": Num(min=0, max=1),
                   "expected_dim": Int(min=1)},
                  optional={"sample_rate", "n_fft", "hop_length", "n_mels", "composition", "rolloff_percent",
                            "contrast_fmin", "pitch_fmin", "pitch_fmax", "yin_threshold", "silence_dbfs",
                            "max_clipped_fraction", "expected_dim"}, closed=True)
# std may hold a 0 (a constant feature); standardise() refuses the non-finite result.
PREPROCESSING = Table({"features": _FEATURES, "mean": List(Num(), min_len=1), "std": List(Num(min=0), min_len=1),
                       "max_frames": Int(min=1, max=100000)})


@dataclass(frozen=True)
class SpeechLive(LiveSettings):
    """The live demo's settings for SpeechNet: the last few seconds of audio per result, a
    few results per second (the window moves by 1 / rate_hz)."""

    window_s: float = 3.0
    rate_hz: float = 4.0

    def __post_init__(self):
        if self.window_s <= 0 or self.rate_hz <= 0:
            raise InputError(f"live settings out of range: {self} (window_s and rate_hz above 0)")


class SpeechAdapter(DeviceAdapter):
    needs_video = False
    live_settings = SpeechLive

    preprocessing_spec = PREPROCESSING

    @classmethod
    def validate(cls, preprocessing: dict, manifest: dict) -> None:
        try:
            features = FusionConfig.from_dict(preprocessing["features"])
        except ValueError as exc:
            raise InputError(f"'preprocessing.features.composition' is not a fusion composition ({exc})") from None
        if features.pitch_fmin >= features.pitch_fmax:
            raise field_error(None, "preprocessing.features.pitch_fmax",
                              f"above pitch_fmin ({features.pitch_fmin:g})", show(features.pitch_fmax))
        for key in ("mean", "std"):
            if len(preprocessing[key]) != features.dim:
                raise field_error(None, f"preprocessing.{key}", f"{features.dim} numbers (one per fusion feature)",
                                  f"{len(preprocessing[key])} numbers")
        check_inputs(manifest, {"features": [preprocessing["max_frames"], features.dim]})

    def __init__(self, preprocessing: dict, task, labels):
        super().__init__(preprocessing, task, labels)
        self.features = FusionConfig.from_dict(preprocessing["features"])
        self.mean = np.asarray(preprocessing["mean"], np.float32)
        self.std = np.asarray(preprocessing["std"], np.float32)
        self.max_frames = int(preprocessing["max_frames"])

    def load(self, media: Path, audio: Path | None = None):
        from edgeaffect.media import read_audio

        return read_audio(audio or media)

    def speech_features(self, y: np.ndarray, sr: int) -> np.ndarray:
        return fusion_features(y, sr, self.features)

    def inputs(self, decoded) -> dict[str, np.ndarray]:
        y, sr = decoded
        return {"features": model_input(self.speech_features(y, sr), self.mean, self.std, self.max_frames)}

    def duration_s(self, decoded) -> float:
        y, sr = decoded
        return y.size / sr

    def describe_inputs(self) -> str:
        return f"NumPy fusion features, {self.features.dim} per frame"

    def live_rate(self, settings: SpeechLive) -> float:
        return settings.rate_hz

    def live_input(self, frame, audio, settings: SpeechLive) -> LiveInput:
        """The newest ``settings.window_s`` of audio, as one utterance."""
        t0 = time.perf_counter()
        sr = audio.ring.sample_rate
        y = audio.ring.latest(int(sr * settings.window_s))
        rms = float(np.sqrt(np.mean(y ** 2))) if y.size else 0.0
        try:
            x, status = self.inputs((y, sr)), "ok"
        except MediaError as exc:  # silent, clipped or too little audio yet: an event, not a crash
            x, status = None, str(exc).split(":")[0].split(" (")[0]
        return LiveInput(x, status, rms, {"features": (time.perf_counter() - t0) * 1e3})
