"""Export a model in stages (e.g. a per-segment extractor, then a per-sequence model): each
stage is its own export folder (files, verification, checksums, target files), so every
tool that takes an export takes a stage; the bundle's top manifest names the stages and
holds the verification of the whole chain.

Every stage is judged where a person reads the result: by the task's output (a score, a
decision), with the other stages run by their Keras models; then the chain of exported
stages is judged against the chain of Keras models. A stage without targets of its own
(an extractor) is quantized post-training from its float model; the last stage can take
QAT like a one-model export.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgeaffect.device.bundle import sha256
from edgeaffect.export.exporter import input_specs, manifest_header, refuse_failed, trained_record, writer_options
from edgeaffect.export.formats import get_format
from edgeaffect.export.verify import gates, judge, run_batched
from edgeaffect.io import atomic_dir, atomic_write_text
from edgeaffect.runtime import kernel_variants, load_runner
from edgeaffect.train.qat import qat_finetune, representative_samples


class Chain:
    """Runs the family adapter's stage chain over many recordings, with any mix of Keras
    models and exported files per stage, and records what each stage was fed."""

    def __init__(self, adapter, recordings: list[tuple[dict, float]]):
        self.adapter, self.recordings = adapter, recordings

    def outputs(self, runners: dict, record: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(every recording's model outputs, concatenated; the recording's target per row)."""
        outs, targets = [], []
        for x, target in self.recordings:
            def run(stage, xs):
                if record is not None:
                    record.setdefault(stage, []).append(xs)
                return runners[stage](xs)

            o = self.adapter.run_stages(run, dict(x))
            outs.append(o)
            targets.append(np.full(len(o), target, np.float32))
        return np.concatenate(outs), np.concatenate(targets)


def keras_runner(model):
    """A Keras model as a stage runner; the same inputs (by content) are predicted once, since
    every format's verification runs the other stages' Keras models on the same data."""
    memo: dict = {}

    def run(x):
        key = tuple((k, v.shape, hashlib.blake2b(np.ascontiguousarray(v).tobytes(), digest_size=16).digest())
                    for k, v in sorted(x.items()))
        if key not in memo:
            memo[key] = model.predict(x, batch_size=256, verbose=0)
        return memo[key]

    return run


def file_runner(path: Path, runtime: str, **options):
    runner = load_runner(path, runtime, **options)
    return lambda x: run_batched(runner, x)


def stacked(batches: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def export_staged(run, data, stages, out_dir, formats, *, qat_epochs: int, target, options: dict | None,
                  log=sys.stderr) -> dict:
    family, task = run.family, run.family.task
    fmts = [get_format(f) for f in (target.formats if target is not None else formats)]
    preprocessing = family.preprocessing(run)
    adapter = family.adapter(preprocessing, task, list(run.spec.labels))
    chains = {p: Chain(adapter, family.recording_inputs(run, data, p)) for p in ("train", "val", "test")}
    floats = {s.name: keras_runner(s.model) for s in stages}
    # One pass of the float chain per part: what each stage is fed (calibration, QAT data),
    # the float outputs and the targets per output row.
    fed, float_out, targets = {p: {} for p in chains}, {}, {}
    for p, chain in chains.items():
        float_out[p], targets[p] = chain.outputs(floats, fed[p])
    fed = {p: {s: stacked(b) for s, b in r.items()} for p, r in fed.items()}
    qat_models = _qat_stages(run, stages, fmts, targets, fed, qat_epochs, log)
    # The Keras models a format is written from, per format source, and their outputs on test.
    sources = {"float": floats, "qat": {**floats, **{n: keras_runner(m) for n, m in qat_models.items()}}}
    float_ref, y_test = float_out["test"], targets["test"]
    references = {"float": float_ref, "qat": chains["test"].outputs(sources["qat"])[0] if qat_models else float_ref}
    manifest_stages, checksums, chain_results = [], {}, []
    with atomic_dir(out_dir) as tmp:
        written = {s.name: {} for s in stages}
        for s in stages:
            folder = tmp / s.name
            folder.mkdir()
            calibration = representative_samples(fed["train"][s.name])
            files, results = {}, []
            for f in fmts:
                source, quantized = _source(s, f, qat_models)
                keras_stages, reference = sources[f.source], references[f.source]
                name = f"{run.spec.name}-{s.name}-{f.name}{f.suffix}"
                t0 = time.monotonic()
                writer = f.write if quantized != "post-training" else (f.post_training_write or f.write)
                facts = writer(source, s.inputs, calibration, folder / name, **writer_options(f, target)) or {}
                for kernels in kernel_variants(f.runtime):
                    kw = {} if kernels == "default" else {"kernels": kernels}
                    runners = {**keras_stages, s.name: file_runner(folder / name, f.runtime, **kw)}
                    outputs, _ = chains["test"].outputs(runners)
                    v = judge(task, f, outputs, reference, float_ref, y_test, runtime=f.runtime, kernels=kernels)
                    v.gating = gates(f, kernels) and f.name not in s.recorded_only
                    _print(log, f"{s.name}/{f.name}", folder / name, v, t0)
                    results.append(v)
                files[f.name] = {"file": name, "format": f.name, "source_model": "qat" if quantized == "qat" else "float",
                                 "runtime": f.runtime, "bytes": (folder / name).stat().st_size,
                                 "sha256": sha256(folder / name), "description": f.description,
                                 **({"quantization": quantized} if quantized else {}), **facts}
                written[s.name][f.name] = (folder / name, reference)
            refuse_failed(results, f"stage {s.name}")
            stage_manifest = _stage_manifest(run, s, files, results, preprocessing)
            if target is not None:
                from edgeaffect.export.bundle import write_target_files

                stage_manifest["target"] = write_target_files(folder, target, options or {}, files,
                                                              stage_manifest["inputs"], calibration)
            stage_manifest["checksums"] = {p.name: sha256(p) for p in sorted(folder.iterdir())
                                           if p.name != "manifest.json"}
            atomic_write_text(folder / "manifest.json", json.dumps(stage_manifest, indent=2))
            manifest_stages.append({"name": s.name, "folder": s.name, "per": s.per,
                                    "inputs": stage_manifest["inputs"], "output": stage_manifest["output"]})
        for f in fmts:  # the whole chain of exported stages against the chain of their Keras models
            t0 = time.monotonic()
            runners = {n: file_runner(written[n][f.name][0], f.runtime) for n in written}
            outputs, _ = chains["test"].outputs(runners)
            v = judge(task, f, outputs, written[stages[-1].name][f.name][1], float_ref, y_test, runtime=f.runtime,
                      kernels="chain")
            v.gating = not any(f.name in s.recorded_only for s in stages)
            _print(log, f"chain/{f.name}", None, v, t0)
            chain_results.append(v)
        refuse_failed(chain_results, "the chain of stages")
        manifest = _top_manifest(run, manifest_stages, chain_results, preprocessing, fmts, target, options)
        for s in stages:
            checksums[f"{s.name}/manifest.json"] = sha256(tmp / s.name / "manifest.json")
        manifest["checksums"] = checksums
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=2))
    return manifest


def _qat_stages(run, stages, fmts, targets, fed, qat_epochs, log) -> dict:
    """QAT copies of the stages that take it (fed what their float predecessors give)."""
    if not any(f.source == "qat" for f in fmts):
        return {}
    task, out = run.family.task, {}
    for s in (s for s in stages if s.qat):
        if s is not stages[-1]:
            raise ValueError(f"stage {s.name}: only the last stage has targets to fine-tune with")
        n_outputs = int(s.model.outputs[0].shape[-1])
        print(f"QAT fine-tune of {run.spec.name} / {s.name}", file=log, flush=True)
        out[s.name] = qat_finetune(s.model, fed["train"][s.name], task.training_targets(targets["train"], n_outputs),
                                   fed["val"][s.name], task.training_targets(targets["val"], n_outputs),
                                   epochs=qat_epochs, learning_rate=run.spec.config.learning_rate / 10,
                                   seed=int(run.info.get("seed", 0)), log=log,
                                   **{"loss": task.loss, **run.family.qat_options(run)})
    return out


def _source(stage, fmt, qat_models) -> tuple[object, str | None]:
    """(the Keras model a format is written from, how it is quantized: None for float)."""
    if fmt.precision != "int8":
        return stage.model, None
    if fmt.source == "qat" and stage.name in qat_models:
        return qat_models[stage.name], "qat"
    return stage.model, "post-training"


def _print(log, what: str, path: Path | None, v, t0: float) -> None:
    size = f"{path.stat().st_size / 1024:8.1f} KiB" if path is not None else " " * 12
    verdict = "ok" if v.passed else ("FAILED: " if v.gating else "recorded, not gating: ") + "; ".join(v.failures)
    print(f"  {what:26s} {v.kernels:9s} {size}  max|diff| {v.max_abs_diff:.2e}  p95 {v.p95_abs_diff:.2e}  "
          f"{v.metric_name} {v.metric:.4f}  {verdict}  ({time.monotonic() - t0:.1f} s)", file=log, flush=True)


def _stage_manifest(run, stage, files: dict, results, preprocessing: dict) -> dict:
    return {
        **manifest_header(run, f"{run.spec.task}; stage '{stage.name}' (one {stage.per})"),
        "stage": stage.name,
        "inputs": input_specs(stage.inputs),
        "output": {"name": stage.name, "shape": [None, *[int(d) for d in stage.model.outputs[0].shape[1:]]]},
        "preprocessing": preprocessing,
        "files": files,
        "verification": [v.to_dict() for v in results],
        **({"recorded_only": dict(stage.recorded_only)} if stage.recorded_only else {}),
    }


def _top_manifest(run, stages: list[dict], results, preprocessing: dict, fmts, target, options) -> dict:
    manifest = {
        **manifest_header(run),
        "stages": stages,
        "formats": [f.name for f in fmts],
        "preprocessing": preprocessing,
        "verification": [v.to_dict() for v in results],
        "trained": trained_record(run),
    }
    if target is not None:
        # The first of the target's formats whose whole chain gates: a format recorded for a
        # stage but not held to its bounds (``Stage.recorded_only``) is never the default.
        held = [f for f in target.formats if all(v.gating for v in results if v.format == f)]
        manifest["target"] = {"key": target.key, "default_format": (held or list(target.formats))[0],
                              "options": options or {}}
    return manifest
