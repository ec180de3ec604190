"""Predict from a bundle on the device: NumPy, OpenCV and one runtime. The bundle's
manifest names the model family, whose device adapter rebuilds the inputs; the family's
task turns the outputs into what a person reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import lookup
from edgeaffect.device.bundle import open_bundle
from edgeaffect.errors import InputError
from edgeaffect.families import Prediction, get_family
from edgeaffect.runtime import load_runner

__all__ = ["ExportedModel", "Prediction"]


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
        self.labels = list(self.manifest["labels"])
        # Bundles made before families were recorded are all audio-visual.
        self.family = get_family(self.manifest.get("family", "aver"))
        self.task = self.family.task
        self.adapter = self.family.device(self.manifest)

    @property
    def runner(self):
        """Loaded on first use, so bad input is refused before any runtime starts (and prints)."""
        if self._runner is None:
            self._runner = self._load()
        return self._runner

    @property
    def needs_video(self) -> bool:
        return self.adapter.needs_video

    def predict_inputs(self, x: dict[str, np.ndarray]) -> Prediction:
        """Model inputs of one recording (a batch of its segments) -> its prediction."""
        outputs = self.runner.run(x)
        return self.task.prediction(self.adapter.combine(outputs), outputs, self.labels)

    def inputs(self, media: str | Path, audio: str | Path | None = None) -> dict[str, np.ndarray]:
        return self.adapter.inputs(self.adapter.load(Path(media), Path(audio) if audio else None))

    def predict(self, media: str | Path, audio: str | Path | None = None) -> Prediction:
        """A recording's prediction: a clip (with its own or a separate audio file), or a wav."""
        return self.predict_inputs(self.inputs(media, audio))
