"""What the export loop (``exporter.export_run``) exports: one model, or a chain of stages.

A model exported whole is a one-stage export (``OneModel``): its single stage is fed the
run's split inputs, its file's output is what the task judges, and its files and manifest
sit in the export folder itself. A staged model (``StageChain``, e.g. a per-segment
extractor, then a per-sequence model) exports each stage into a folder of its own, and
every stage is judged where a person reads the result: by the task's output, with the
other stages run by their Keras models; the loop then judges the chain of exported
stages against the chain of Keras models.

Both answer the same questions: the stages, what each is fed on a split part (calibration,
QAT data), the targets, the judged outputs for a set of stage runners, and where files,
names and manifests go.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgeaffect.contract import Stage
from edgeaffect.export import manifest
from edgeaffect.train.runs import split_inputs

PARTS = ("train", "val", "test")


def keras_runner(model, batch_size: int = 256):
    """A Keras model as a stage runner; the same inputs (by content) are predicted once, since
    every format's verification runs the other stages' Keras models on the same data."""
    memo: dict = {}

    def run(x):
        key = tuple((k, v.shape, hashlib.blake2b(np.ascontiguousarray(v).tobytes(), digest_size=16).digest())
                    for k, v in sorted(x.items()))
        if key not in memo:
            memo[key] = model.predict(x, batch_size=batch_size, verbose=0)
        return memo[key]

    return run


def stacked(batches: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


class OneModel:
    """The run's model as the only stage; its files and manifest go in the export folder."""

    label_width = 12
    keeps_qat_weights = True  # a desktop export keeps the QAT weights; a device bundle stays small
    verifies_chain = False
    records_quantization = False  # its int8 files say where they come from by ``source_model``

    def __init__(self, run, data):
        self.run = run
        self.preprocessing = run.family.preprocessing(run)
        self.stages = [Stage(run.spec.name, run.model, dict(run.spec.inputs), "sample", qat=True)]
        self._parts = {p: split_inputs(run, data, p) for p in PARTS}
        self.float_runners = {run.spec.name: keras_runner(run.model, batch_size=512)}

    def fed(self, part: str) -> dict:
        return {self.run.spec.name: self._parts[part][0]}

    def targets(self, part: str) -> np.ndarray:
        return self._parts[part][1]

    def outputs(self, runners: dict) -> np.ndarray:
        return runners[self.run.spec.name](self._parts["test"][0])

    def keras_runner(self, model):
        return keras_runner(model, batch_size=512)

    def describe(self, stage) -> str:
        return self.run.spec.name

    def label(self, stage, fmt) -> str:
        return fmt.name

    def folder(self, root: Path, stage) -> Path:
        return root

    def file_name(self, stage, fmt) -> str:
        return f"{self.run.spec.name}-{fmt.name}{fmt.suffix}"

    def judged_as(self, fmt, runner) -> dict:
        """The file's own output is what the task judges: record the package that ran it and,
        for an int8 output, how many of its quantization steps the difference is."""
        scale = 0.0
        if fmt.runtime == "litert" and fmt.precision == "int8" and getattr(runner, "path", None) is not None:
            from edgeaffect.runtime.litert_ops import output_step

            scale = output_step(runner.path)  # int8 inside, float out: the step of the int8 output tensor
        return {"runtime": getattr(runner, "package", fmt.runtime), "output_scale": scale}

    def where(self, stage) -> str:
        return ""

    def stage_manifest(self, stage, files: dict, results) -> dict:
        return manifest.model_manifest(self.run, files, results)


class StageChain:
    """The family's stages, run in turn by its device adapter over each recording."""

    label_width = 26
    keeps_qat_weights = False
    verifies_chain = True  # and writes a top manifest naming the stage folders
    records_quantization = True  # "qat" or "post-training": a stage without targets has no QAT

    def __init__(self, run, data, stages: list):
        family = run.family
        self.run, self.stages = run, stages
        self.preprocessing = family.preprocessing(run)
        self.adapter = family.adapter(self.preprocessing, family.task, list(run.spec.labels))
        self._recordings = {p: family.recording_inputs(run, data, p) for p in PARTS}
        self.float_runners = {s.name: keras_runner(s.model) for s in stages}
        # One pass of the float chain per part: what each stage is fed (calibration, QAT
        # data) and the targets per output row.
        self._fed, self._targets = {}, {}
        for p in PARTS:
            record: dict = {}
            _, self._targets[p] = self._run(p, self.float_runners, record)
            self._fed[p] = {s: stacked(b) for s, b in record.items()}

    def _run(self, part: str, runners: dict, record: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(every recording's outputs, concatenated; the recording's target per row)."""
        outs, targets = [], []
        for x, target in self._recordings[part]:
            def run(stage, xs):
                if record is not None:
                    record.setdefault(stage, []).append(xs)
                return runners[stage](xs)

            o = self.adapter.run_stages(run, dict(x))
            outs.append(o)
            targets.append(np.full(len(o), target, np.float32))
        return np.concatenate(outs), np.concatenate(targets)

    def fed(self, part: str) -> dict:
        return self._fed[part]

    def targets(self, part: str) -> np.ndarray:
        return self._targets[part]

    def outputs(self, runners: dict) -> np.ndarray:
        return self._run("test", runners)[0]

    def keras_runner(self, model):
        return keras_runner(model)

    def describe(self, stage) -> str:
        return f"{self.run.spec.name} / {stage.name}"

    def label(self, stage, fmt) -> str:
        return f"{stage.name}/{fmt.name}"

    def folder(self, root: Path, stage) -> Path:
        folder = root / stage.name
        folder.mkdir(exist_ok=True)
        return folder

    def file_name(self, stage, fmt) -> str:
        return f"{self.run.spec.name}-{stage.name}-{fmt.name}{fmt.suffix}"

    def judged_as(self, fmt, runner) -> dict:
        """The chain's output is judged, not the stage file's own: the format's runtime."""
        return {"runtime": fmt.runtime}

    def where(self, stage) -> str:
        return f"stage {stage.name}"

    def stage_manifest(self, stage, files: dict, results) -> dict:
        return manifest.stage_manifest(self.run, stage, files, results, self.preprocessing)


def plan(run, data):
    """The run's export: its family's stages, or the model whole."""
    stages = run.family.stages(run)
    return StageChain(run, data, stages) if stages else OneModel(run, data)
