"""Predict a clip's emotion with an exported model (device side: NumPy, OpenCV, one runtime)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect._optional import lookup
from edgeaffect.bundle import open_bundle
from edgeaffect.errors import InputError
from edgeaffect.features.aver import AverFeatureConfig, clip_features, model_inputs
from edgeaffect.media import read_audio, read_frames_at
from edgeaffect.runtime import load_runner


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
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
            self.runner = load_runner(engine, "tensorrt")
        else:
            self.format = fmt or target.get("default_format") or "tflite-int8"
            entry = lookup("format in this export", self.format, self.manifest["files"])
            self.runner = load_runner(self.folder / entry["file"], entry["runtime"], threads=threads)
        pre = self.manifest["preprocessing"]
        self.features = AverFeatureConfig.from_dict(pre["features"])
        self.mean = np.asarray(pre["mfcc_mean"], np.float32)
        self.std = np.asarray(pre["mfcc_std"], np.float32)
        self.labels = self.manifest["labels"]

    def predict_features(self, feats: dict[str, np.ndarray]) -> Prediction:
        probs = self.runner.run(model_inputs(feats, self.mean, self.std))
        mean = probs.mean(axis=0)
        return Prediction(self.labels[int(mean.argmax())], dict(zip(self.labels, map(float, mean))), probs)

    def clip_features(self, video: str | Path, audio: str | Path | None = None) -> dict[str, np.ndarray]:
        y, sr = read_audio(audio or video)
        frames = read_frames_at(video, self.features.n_segments, self.features.frame_position)
        return clip_features(frames, y, sr, self.features)

    def predict_clip(self, video: str | Path, audio: str | Path | None = None) -> Prediction:
        return self.predict_features(self.clip_features(video, audio))
