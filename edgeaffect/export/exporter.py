"""Trained run -> QAT -> export files -> verification -> ``manifest.json``, all or nothing.

One loop for every model: a model exported whole is a one-stage export, a staged model
(``Family.stages``) one folder per stage plus the chain's verification (``stages``). The
output folder is built in a temp folder and renamed into place only when every export
passed its verification; otherwise nothing is written and the error names the failing bound.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from edgeaffect.export import manifest as manifests
from edgeaffect.export.formats import get_format, writer_options
from edgeaffect.export.stages import plan
from edgeaffect.export.verify import gates, judge, refuse_failed, run_batched
from edgeaffect.io import atomic_dir
from edgeaffect.runtime import kernel_variants, load_runner
from edgeaffect.train.qat import qat_finetune, representative_samples
from edgeaffect.train.runs import Run

DEFAULT_FORMATS = ("tflite-int8", "tflite-fp16", "tflite-fp32", "onnx-fp32", "onnx-qdq")


def export_run(run: Run, data, out_dir: str | Path, formats=DEFAULT_FORMATS, *, qat_epochs: int = 20,
               target=None, options: dict | None = None, quantization: dict | None = None, log=sys.stderr) -> dict:
    """Export ``formats`` (or, with ``target``, the target's formats plus its bundle files).
    ``quantization``: ``full_int8`` (no op left float) and ``max_float_layers``, for the formats
    that choose their float layers (``ExportFormat.writer``)."""
    if target is not None:  # the family may add formats to a target's list (Family.target_formats)
        target = replace(target, formats=run.family.target_formats(target))
        formats = target.formats
    fmts = [get_format(f) for f in formats]
    p = plan(run, data)
    qat_models = _qat_models(run, p, fmts, qat_epochs, log)
    # The Keras models a format is written from, per format source, and their outputs on test.
    sources = {"float": p.float_runners,
               "qat": {**p.float_runners, **{n: p.keras_runner(m) for n, m in qat_models.items()}}}
    references = {"float": p.outputs(sources["float"])}
    references["qat"] = p.outputs(sources["qat"]) if qat_models else references["float"]
    with atomic_dir(out_dir) as tmp:
        written, stage_entries = {}, []
        for stage in p.stages:
            written[stage.name], stage_manifest = _export_stage(
                run, p, stage, fmts, qat_models, sources, references, tmp, target, options, quantization or {}, log)
            stage_entries.append(manifests.stage_entry(stage, stage_manifest))
        if not p.verifies_chain:  # one model: its stage's manifest is the export's
            return stage_manifest
        results = _verify_chain(run, p, fmts, written, references, log)
        top = manifests.chain_manifest(run, stage_entries, results, p.preprocessing, fmts, target, options)
        if target is not None:
            from edgeaffect.export.bundle import choose_default

            held = _held(results, {f.name: 1 for f in fmts})
            top["target"]["default_format"], top["target"]["default_reason"] = choose_default(
                target, {f: [written[s.name][f] for s in p.stages] for f in held},
                {f.name: f.runtime for f in fmts})
        manifests.seal(tmp, top, manifests.stage_checksums(tmp, p.stages))
    return top


def _export_stage(run, p, stage, fmts, qat_models, sources, references, root, target, options, quantization, log):
    """Write, verify and record every format of one stage; ({format: file}, its manifest)."""
    folder = p.folder(root, stage)
    calibration = representative_samples(p.fed("train")[stage.name])
    files, results, written = {}, [], {}
    for f in fmts:
        model, quantized = _source(stage, f, qat_models)
        path = folder / p.file_name(stage, f)
        t0 = time.monotonic()
        writer, searches = f.writer(post_training=quantized == "post-training")
        extra = writer_options(f, target)
        if searches:
            extra.update(_search_options(run, p, stage, f, sources, references, path, quantization, log))
        facts = writer(model, stage.inputs, calibration, path, **extra) or {}
        for v in _verify_file(run, p, stage, f, path, sources, references):
            _print(log, p.label(stage, f), p.label_width, path, v, t0)
            results.append(v)
        files[f.name] = manifests.file_entry(f, path, "qat" if quantized == "qat" else "float", facts,
                                             quantized if p.records_quantization else None)
        written[f.name] = path
    refuse_failed(results, p.where(stage))
    manifest = p.stage_manifest(stage, files, results)
    if target is not None:
        from edgeaffect.export.bundle import write_target_files

        held = _held(results, files)
        default = None
        if not p.verifies_chain:  # a staged export chooses over its whole chain (``_chain_default``)
            from edgeaffect.export.bundle import choose_default

            default = choose_default(target, {f: [folder / files[f]["file"]] for f in held},
                                     {f: files[f]["runtime"] for f in held})
        manifest["target"] = write_target_files(folder, target, options or {}, files, manifest["inputs"], calibration,
                                                default)
    elif p.keeps_qat_weights and stage.name in qat_models:
        qat_models[stage.name].save_weights(str(folder / "qat-weights.h5"))
    manifests.seal(folder, manifest)
    return written, manifest


def _held(results, files: dict) -> list[str]:
    """The formats that gate somewhere (not recorded only) and pass wherever they gate; a kernel
    set that only records (LiteRT's reference kernels) does not decide."""
    def held(f):
        gating = [v for v in results if v.format == f and v.gating]
        return bool(gating) and all(v.passed for v in gating)
    return [f for f in files if held(f)]


def _verify_file(run, p, stage, f, path: Path, sources, references) -> list:
    """``path`` judged on every kernel set of its runtime, in place of the stage's Keras model."""
    out = []
    for kernels in kernel_variants(f.runtime):
        runner = load_runner(path, f.runtime, **({} if kernels == "default" else {"kernels": kernels}))
        outputs = p.outputs({**sources[f.source], stage.name: lambda x, r=runner: run_batched(r, x)})
        v = judge(run.family.task, f, outputs, references[f.source], references["float"], p.targets("test"),
                  kernels=kernels, **p.judged_as(f, runner))
        v.gating = gates(f, kernels) and f.name not in stage.recorded_only
        out.append(v)
    return out


def _search_options(run, p, stage, f, sources, references, path: Path, quantization: dict, log) -> dict:
    """What a format that chooses its float layers is given: ``accept`` (a candidate file's bytes
    -> the bounds it fails where they gate) and the user's options."""
    def accept(blob: bytes) -> list[str]:
        candidate = path.with_name(f".candidate-{path.name}")
        candidate.write_bytes(blob)
        try:
            return [f"{v.kernels}: {', '.join(v.failures)}" for v in _verify_file(run, p, stage, f, candidate, sources,
                                                                                   references)
                    if v.gating and not v.passed]
        finally:
            candidate.unlink(missing_ok=True)

    return {"accept": accept, "log": log, **{k: v for k, v in quantization.items() if v is not None}}


def _verify_chain(run, p, fmts, written: dict, references: dict, log) -> list:
    """The whole chain of exported stages, per format, against the chain of their Keras models."""
    results = []
    for f in fmts:
        t0 = time.monotonic()
        runners = {}
        for name, files in written.items():
            runner = load_runner(files[f.name], f.runtime)
            runners[name] = lambda x, r=runner: run_batched(r, x)
        v = judge(run.family.task, f, p.outputs(runners), references[f.source], references["float"],
                  p.targets("test"), runtime=f.runtime, kernels="chain")
        v.gating = not any(f.name in s.recorded_only for s in p.stages)
        _print(log, f"chain/{f.name}", p.label_width, None, v, t0)
        results.append(v)
    refuse_failed(results, "the chain of stages")
    return results


def _qat_models(run, p, fmts, qat_epochs: int, log) -> dict:
    """QAT copies of the stages that take it (fed what their float predecessors give)."""
    if not any(f.source == "qat" for f in fmts):
        return {}
    task, out = run.family.task, {}
    for s in (s for s in p.stages if s.qat):
        if s is not p.stages[-1]:
            raise ValueError(f"stage {s.name}: only the last stage has targets to fine-tune with")
        n_outputs = int(s.model.outputs[0].shape[-1])
        print(f"QAT fine-tune of {p.describe(s)}", file=log, flush=True)
        # not the export ``options``: those are the target's and go into its manifest section
        out[s.name] = qat_finetune(s.model, p.fed("train")[s.name], task.training_targets(p.targets("train"), n_outputs),
                                   p.fed("val")[s.name], task.training_targets(p.targets("val"), n_outputs),
                                   epochs=qat_epochs, learning_rate=run.spec.config.learning_rate / 10,
                                   seed=int(run.info.get("seed", 0)), log=log,
                                   **{"loss": task.loss, **run.family.qat_options(run)})
    return out


def _source(stage, fmt, qat_models: dict) -> tuple[object, str | None]:
    """(the Keras model a format is written from, how it is quantized: None for float). An
    int8 format of a stage without a QAT model is quantized post-training from the float one."""
    if fmt.source == "qat" and stage.name in qat_models:
        if fmt.searches:  # its float layers are chosen post-training, from QAT's weights
            from edgeaffect.train.qat import float_twin

            return float_twin(qat_models[stage.name], stage.model), "qat"
        return qat_models[stage.name], "qat"
    if fmt.precision == "int8":
        return stage.model, "post-training"
    return stage.model, None


def _print(log, what: str, width: int, path: Path | None, v, t0: float) -> None:
    size = f"{path.stat().st_size / 1024:8.1f} KiB" if path is not None else " " * 12
    verdict = "ok" if v.passed else ("FAILED: " if v.gating else "recorded, not gating: ") + "; ".join(v.failures)
    print(f"  {what:{width}s} {v.kernels:9s} {size}  max|diff| {v.max_abs_diff:.2e}  p95 {v.p95_abs_diff:.2e}  "
          f"agreement {v.agreement:.4f}  {v.metric_name} {v.metric:.4f}  {verdict}  ({time.monotonic() - t0:.1f} s)",
          file=log, flush=True)
