"""Predict a clip's emotion with an exported model (device side: NumPy, OpenCV, one runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect._optional import lookup
from edgeaffect.bundle import open_bundle
from edgeaffect.errors import InputError
from edgeaffect.features.aver import AverFeatureConfig, clip_features, model_inputs
from edgeaffect.features.fusion import FusionConfig, fusion_features, model_input
from edgeaffect.media import read_audio, read_frames_at
from edgeaffect.runtime import load_runner


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]  # SpeechNet: capsule lengths in [0, 1), not summing to 1
    per_segment: np.ndarray  # (n_segments, n_classes)


class ExportedModel:
    """An export folder (``manifest.json`` + model files) ready to predict."""

    def __init__(self, folder: str | Path, fmt: str | None = None, threads: int | None = None):
        self.folder = Path(folder)
        self.manifest = open_bundle(self.folder)  # manifest version and every checksum, before any use
        target = self.manifest.get("target") or {}
        if threads is None:
            threads = target.get("options", {}).get("threads")
        if fmt == "engine":  # a TensorRT engine built on this device by `edgeaffect build-engine`
            engine = self.folder / target.get("engine", {}).get("file", "model.engine")
            if not engine.is_file():
                raise InputError(f"no TensorRT engine in {self.folder}: build it on this device with "
                                 f"`edgeaffect build-engine {self.folder}`")
            self.format = "engine"
            self._load = lambda: load_runner(engine, "tensorrt")
        else:
            self.format = fmt or target.get("default_format") or "tflite-int8"
            entry = lookup("format in this export", self.format, self.manifest["files"])
            self._load = lambda: load_runner(self.folder / entry["file"], entry["runtime"], threads=threads)
        self._runner = None
        pre = self.manifest["preprocessing"]
        self.labels = self.manifest["labels"]
        self.family = self.manifest.get("family", "aver")
        if self.family == "speechnet":
            self.features = FusionConfig.from_dict(pre["features"])
            self.mean, self.std = np.asarray(pre["mean"], np.float32), np.asarray(pre["std"], np.float32)
            self.max_frames = int(pre["max_frames"])
            return
        self.features = AverFeatureConfig.from_dict(pre["features"])
        self.mean = np.asarray(pre["mfcc_mean"], np.float32)
        self.std = np.asarray(pre["mfcc_std"], np.float32)

    @property
    def runner(self):
        """Loaded on first use, so bad input is refused before any runtime starts (and prints)."""
        if self._runner is None:
            self._runner = self._load()
        return self._runner

    @property
    def audio_only(self) -> bool:
        return self.family == "speechnet"

    def speech_features(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Per-frame fusion features in NumPy (the device side of SpeechNet)."""
        return fusion_features(y, sr, self.features)

    def predict_speech(self, y: np.ndarray, sr: int) -> Prediction:
        x = model_input(self.speech_features(y, sr), self.mean, self.std, self.max_frames)
        scores = self.runner.run({"features": x})
        return Prediction(self.labels[int(scores[0].argmax())], dict(zip(self.labels, map(float, scores[0]))), scores)

    def predict_features(self, feats: dict[str, np.ndarray]) -> Prediction:
        x = model_inputs(feats, self.mean, self.std)
        probs = self.runner.run(x)
        mean = probs.mean(axis=0)
        return Prediction(self.labels[int(mean.argmax())], dict(zip(self.labels, map(float, mean))), probs)

    def clip_features(self, video: str | Path, audio: str | Path | None = None) -> dict[str, np.ndarray]:
        y, sr = read_audio(audio or video)
        frames = read_frames_at(video, self.features.n_segments, self.features.frame_position)
        return clip_features(frames, y, sr, self.features)

    def predict_clip(self, video: str | Path, audio: str | Path | None = None) -> Prediction:
        """A clip's label: an audio-visual clip, or (speech models) a wav or a video's audio."""
        if self.audio_only:
            y, sr = read_audio(audio or video)
            return self.predict_speech(y, sr)
        return self.predict_features(self.clip_features(video, audio))
