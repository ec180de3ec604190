"""SpeechNet on the device: an utterance (or the newest seconds of microphone audio) ->
107 fusion features per frame in NumPy -> the network's input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgeaffect.errors import MediaError
from edgeaffect.families.base import DeviceAdapter, LiveInput
from edgeaffect.families.speechnet.features import FusionConfig, fusion_features, model_input


class SpeechAdapter(DeviceAdapter):
    needs_video = False

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

    def describe_inputs(self) -> str:
        return f"NumPy fusion features, {self.features.dim} per frame"

    def live_rate(self, config) -> float:
        return config.speech_rate_hz

    def live_input(self, frame, audio, config) -> LiveInput:
        """The newest ``config.speech_window_s`` of audio, as one utterance."""
        t0 = time.perf_counter()
        sr = audio.ring.sample_rate
        y = audio.ring.latest(int(sr * config.speech_window_s))
        rms = float(np.sqrt(np.mean(y ** 2))) if y.size else 0.0
        try:
            x, status = self.inputs((y, sr)), "ok"
        except MediaError as exc:  # silent, clipped or too little audio yet: an event, not a crash
            x, status = None, str(exc).split(":")[0].split(" (")[0]
        return LiveInput(x, status, rms, {"face": 0.0, "features": (time.perf_counter() - t0) * 1e3})
