"""Predict from a bundle on the device: NumPy, OpenCV and one runtime. The bundle's
manifest names the model family, whose device adapter rebuilds the inputs; the family's
task turns the outputs into what a person reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import lookup
from edgeaffect.device.bundle import open_bundle, verify_checksums
from edgeaffect.errors import InputError
from edgeaffect.contract import Prediction
from edgeaffect.runtime import load_runner

__all__ = ["ExportedModel", "Prediction"]


def default_format(manifest: dict) -> str:
    """The bundle's default, else int8 where it was exported, else the first format exported:
    an export of other formats only (``export_run(..., ["tflite-fp32"])``) still runs as it is
    in commands that take no --format, such as the demo."""
    formats = manifest.get("formats") or []
    default = (manifest.get("target") or {}).get("default_format")
    return default or ("tflite-int8" if "tflite-int8" in formats or not formats else formats[0])


class ExportedModel:
    """An export folder (``manifest.json`` + model files) ready to predict. A staged export
    (``stages`` in the manifest) holds one export folder per stage; the family's adapter
    runs them in turn; one stage's folder alone is refused (it cannot predict)."""

    def __init__(self, folder: str | Path, fmt: str | None = None, threads: int | None = None):
        self.folder = Path(folder)
        bundle = open_bundle(self.folder)  # manifest version and every checksum, before any use
        bundle.require_whole()
        self.manifest = bundle.manifest
        self.family = bundle.family
        target = self.manifest.get("target") or {}
        if threads is None:
            threads = target.get("options", {}).get("threads")
        stages = bundle.stage_bundles()
        for stage in stages.values():
            verify_checksums(stage.folder, stage.manifest)
        self.stage_manifests = {name: stage.manifest for name, stage in stages.items()}
        if fmt == "engine":  # a TensorRT engine built on this device by `edgeaffect build-engine`
            self.format = "engine"
            self._loaders = {name: self._engine_loader(self.folder / (s or {}).get("folder", ""), m)
                             for name, s, m in self._parts()}
        else:
            self.format = fmt or default_format(self.manifest)
            self._loaders = {name: self._file_loader(self.folder / (s or {}).get("folder", ""), m, threads)
                             for name, s, m in self._parts()}
        self._runners: dict = {}
        self.labels = list(self.manifest["labels"])
        self.task = self.family.task
        self.adapter = self.family.device(self.manifest)

    def _parts(self):
        """(stage name or None, its manifest entry, its manifest) of every model to load."""
        if not self.stage_manifests:
            return [(None, None, self.manifest)]
        return [(s["name"], s, self.stage_manifests[s["name"]]) for s in self.manifest["stages"]]

    def _file_loader(self, folder: Path, manifest: dict, threads):
        entry = lookup("format in this export", self.format, manifest["files"])
        return lambda: load_runner(folder / entry["file"], entry["runtime"], threads=threads)

    def _engine_loader(self, folder: Path, manifest: dict):
        engine = folder / ((manifest.get("target") or {}).get("engine") or {}).get("file", "model.engine")
        if not engine.is_file():
            raise InputError(f"no TensorRT engine in {folder}: build it on this device with "
                             f"`edgeaffect build-engine {folder}`")
        return lambda: load_runner(engine, "tensorrt")

    def stage_runner(self, stage: str | None):
        """A stage's runner (None: the one model), loaded on first use, so bad input is
        refused before any runtime starts (and prints)."""
        if stage not in self._runners:
            self._runners[stage] = self._loaders[stage]()
        return self._runners[stage]

    @property
    def runner(self):
        """The model's runner (a one-model export), or its last stage's."""
        return self.stage_runner(next(reversed(self._loaders)))

    @property
    def needs_video(self) -> bool:
        return self.adapter.needs_video

    def file_bytes(self) -> int:
        """Bytes of this format's model files (every stage's)."""
        return sum(lookup("format in this export", self.format, m["files"])["bytes"] for _, _, m in self._parts())

    def formats(self) -> list[str]:
        return list(self.manifest.get("files") or self.manifest["formats"])

    def outputs(self, x: dict[str, np.ndarray]) -> np.ndarray:
        """The model's outputs for the adapter's inputs (every stage run in turn)."""
        return self.adapter.run_stages(lambda stage, xs: self.stage_runner(stage).run(xs), dict(x))

    def predict_inputs(self, x: dict[str, np.ndarray]) -> Prediction:
        """Model inputs of one recording (a batch of its segments) -> its prediction."""
        outputs = self.outputs(x)
        return self.adapter.prediction(outputs, x)

    def inputs(self, media: str | Path, audio: str | Path | None = None) -> dict[str, np.ndarray]:
        return self.adapter.inputs(self.adapter.load(Path(media), Path(audio) if audio else None))

    def predict(self, media: str | Path, audio: str | Path | None = None) -> Prediction:
        """A recording's prediction: a clip (with its own or a separate audio file), or a wav."""
        return self.predict_inputs(self.inputs(media, audio))
