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
from edgeaffect.export.targets import bundle_formats, with_int8_fallbacks
from edgeaffect.export.verify import gates, judge, refuse_failed, run_batched
from edgeaffect.io import atomic_dir
from edgeaffect.runtime import kernel_variants, load_runner
from edgeaffect.train.qat import qat_finetune, representative_samples
from edgeaffect.train.runs import Run

DEFAULT_FORMATS = ("tflite-int8", "tflite-fp16", "tflite-fp32", "onnx-fp32", "onnx-qdq")


def export_run(run: Run, data, out_dir: str | Path, formats=None, *, qat_epochs: int = 20,
               target=None, options: dict | None = None, quantization: dict | None = None, predict=None,
               log=sys.stderr) -> dict:
    """Export ``formats`` (None: ``DEFAULT_FORMATS`` with the family's ``int8_fallbacks``; with
    ``target``, the target's formats plus its bundle files).
    ``quantization``: ``full_int8`` (no op left float) and ``max_float_layers``, for the formats
    that choose their float layers (``ExportFormat.writer``). ``predict``: (precision) -> a
    calibrated latency estimate on the target's device or None, for its default format
    (``bundle.choose_default``; the roofline layer above this one makes it)."""
    if target is not None:  # the family may add formats to a target's list (targets.bundle_formats)
        target = replace(target, formats=bundle_formats(run.family, target))
        formats = target.formats
    elif formats is None:
        formats = with_int8_fallbacks(run.family, DEFAULT_FORMATS)
    fmts = [get_format(f) for f in formats]
    p = plan(run, data)
    qat_models = _qat_models(run, p, fmts, qat_epochs, log)
    # The Keras models a format is written from, per format source, and their outputs on test.
    sources = {"float": p.float_runners,
               "qat": {**p.float_runners, **{n: p.keras_runner(m) for n, m in qat_models.items()}}}
    references = {"float": p.outputs(sources["float"])}
    references["qat"] = p.outputs(sources["qat"]) if qat_models else references["float"]
    twins = _float_twins(p, fmts, qat_models)
    if twins:
        sources["twin"] = {**p.float_runners, **{n: p.keras_runner(m) for n, m in twins.items()}}
        references["twin"] = p.outputs(sources["twin"])
    with atomic_dir(out_dir) as tmp:
        written, stage_entries, lifted = {}, [], set()
        for stage in p.stages:
            written[stage.name], stage_manifest, stage_lifted = _export_stage(
                run, p, stage, fmts, (qat_models, twins), sources, references, tmp, target, options,
                quantization or {}, log, upstream=dict(written), predict=predict)
            stage_entries.append(manifests.stage_entry(stage, stage_manifest))
            lifted |= stage_lifted
        if not p.verifies_chain:  # one model: its stage's manifest is the export's
            return stage_manifest
        results = _verify_chain(run, p, fmts, written, sources, references, log, lifted)
        top = manifests.chain_manifest(run, stage_entries, results, p.preprocessing, fmts, target, options)
        if target is not None:
            from edgeaffect.export.bundle import choose_default

            held = _held(results, {f.name: 1 for f in fmts})
            top["target"]["default_format"], top["target"]["default_reason"] = choose_default(
                target, {f: [written[s.name][f] for s in p.stages] for f in held},
                {f.name: f.runtime for f in fmts}, _by_format(predict))
        manifests.seal(tmp, top, manifests.stage_checksums(tmp, p.stages))
    return top


def _export_stage(run, p, stage, fmts, trained, sources, references, root, target, options, quantization, log,
                  upstream: dict, predict=None):
    """Write, verify and record every format of one stage; ({format: file}, its manifest, the
    formats recorded only for this stage that held here). ``upstream``: the files of the stages
    before it ({stage: {format: file}})."""
    folder = p.folder(root, stage)
    calibration = representative_samples(p.fed("train")[stage.name])
    files, results, written, lifted = {}, [], {}, set()
    for f in fmts:
        model, quantized = _source(stage, f, trained)
        path = folder / p.file_name(stage, f)
        t0 = time.monotonic()
        writer, searches = f.writer(post_training=quantized == "post-training")
        extra = writer_options(f, target)
        if searches:
            extra.update(_search_options(run, p, stage, f, sources, references, path, quantization, log, upstream))
            if "speed_here" in f.options:  # ops are kept float for speed only where this machine's timings hold
                extra["speed_here"] = target is None or target.runs_here
        facts = writer(model, stage.inputs, calibration, path, **extra) or {}
        verdicts = _verify_file(run, p, stage, f, path, sources, references)
        if f.name in stage.recorded_only and _held_by_search(stage, f, verdicts, searches, facts):
            lifted.add(f.name)
        for v in verdicts:
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
                                     {f: files[f]["runtime"] for f in held}, _by_format(predict))
        manifest["target"] = write_target_files(folder, target, options or {}, files, manifest["inputs"], calibration,
                                                default)
    elif p.keeps_qat_weights and stage.name in trained[0]:
        trained[0][stage.name].save_weights(str(folder / "qat-weights.h5"))
    manifests.seal(folder, manifest)
    return written, manifest, lifted


def _held_by_search(stage, f, verdicts, searched: bool, facts: dict) -> bool:
    """Whether a format recorded only for this stage (``Stage.recorded_only``: a scheme that does
    not hold in general) held its bounds here, its float layers chosen for it; then it gates, and
    no longer counts as recorded only. Otherwise its verdicts are recorded, not gating."""
    if searched and all(v.passed for v in verdicts if v.gating):
        facts["recorded_only_lifted"] = (f"{stage.recorded_only[f.name]} -- here it held its bounds on every kernel "
                                         f"set that gates, {facts.get('mixed_precision', 'as written')}, so it gates")
        stage.recorded_only = {k: v for k, v in stage.recorded_only.items() if k != f.name}
        return True
    for v in verdicts:
        v.gating = False
    return False


def _by_format(predict):
    """Format name -> the prediction for its precision (``bundle.choose_default``), or None."""
    if predict is None:
        return None
    return lambda name: predict(get_format(name).precision)


def _held(results, files: dict) -> list[str]:
    """The formats that gate somewhere (not recorded only) and pass wherever they gate; a kernel
    set that only records (LiteRT's reference kernels) does not decide."""
    def held(f):
        gating = [v for v in results if v.format == f and v.gating]
        return bool(gating) and all(v.passed for v in gating)
    return [f for f in files if held(f)]


def _verify_file(run, p, stage, f, path: Path, sources, references, upstream: dict | None = None) -> list:
    """``path`` judged on every kernel set of its runtime, in place of the stage's Keras model
    (and ``upstream``'s files, {stage: file}, in place of theirs). ``gating``: whether the kernel
    set decides (``_held_by_search`` settles the stages that record a format only)."""
    out = []
    for kernels in kernel_variants(f.runtime):
        how = {} if kernels == "default" else {"kernels": kernels}
        runner = load_runner(path, f.runtime, **how)
        files = {name: load_runner(file, f.runtime, **how) for name, file in (upstream or {}).items()}
        replaced = {name: lambda x, r=r: run_batched(r, x) for name, r in {**files, stage.name: runner}.items()}
        key = _source_key(f, sources)
        outputs = p.outputs({**sources[key], **replaced})
        v = judge(run.family.task, f, outputs, references[key], references["float"], p.targets("test"),
                  kernels=kernels, **p.judged_as(f, runner))
        v.gating = gates(f, kernels)
        out.append(v)
    return out


def _search_options(run, p, stage, f, sources, references, path: Path, quantization: dict, log,
                    upstream: dict) -> dict:
    """What a format that chooses its float layers is given: ``accept`` (a candidate file's bytes
    -> the bounds it fails where they gate, alone and after the stages before it in the same
    format, so the chain holds too) and the user's options."""
    # the earlier stages' files that gate (one recorded only would pull this search off course)
    recorded = {s.name for s in p.stages if f.name in s.recorded_only}
    before = {name: files[f.name] for name, files in upstream.items() if f.name in files and name not in recorded}

    def accept(blob: bytes) -> list[str]:
        candidate = path.with_name(f".candidate-{path.name}")
        candidate.write_bytes(blob)
        try:
            verdicts = _verify_file(run, p, stage, f, candidate, sources, references)
            if before:
                verdicts += [replace(v, kernels=f"{v.kernels}, after {', '.join(before)}")
                             for v in _verify_file(run, p, stage, f, candidate, sources, references, before)]
            return [f"{v.kernels}: {', '.join(v.failures)}" for v in verdicts if v.gating and not v.passed]
        finally:
            candidate.unlink(missing_ok=True)

    options = {"accept": accept, "log": log, **{k: v for k, v in quantization.items() if v is not None}}
    if stage is p.stages[-1] and "output_range" in f.options and run.family.task.output_range is not None:
        options["output_range"] = run.family.task.output_range  # the task's output, not a feature
    return options


def _verify_chain(run, p, fmts, written: dict, sources: dict, references: dict, log, lifted: set) -> list:
    """The whole chain of exported stages, per format, against the chain of their Keras models.
    A chain with a stage that held only through its search (``lifted``) and fails as a whole is
    recorded, not gating, as the stage was before."""
    results = []
    for f in fmts:
        t0 = time.monotonic()
        runners = {}
        for name, files in written.items():
            runner = load_runner(files[f.name], f.runtime)
            runners[name] = lambda x, r=runner: run_batched(r, x)
        v = judge(run.family.task, f, p.outputs(runners), references[_source_key(f, sources)], references["float"],
                  p.targets("test"), runtime=f.runtime, kernels="chain")
        v.gating = not any(f.name in s.recorded_only for s in p.stages)
        if v.gating and not v.passed and f.name in lifted:
            v.gating = False
            v.failures.append("its stages held alone, the chain did not: recorded, as without the search")
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


def _float_twins(p, fmts, qat_models: dict) -> dict:
    """Float copies of the QAT stages with QAT's weights, for the formats that choose their float
    layers: the quantizer can leave ops float only in a graph without fake-quant nodes
    (``float_twin``), and such a file is judged against the twin it was written from, not the
    QAT model: the fake-quant noise of the QAT graph is no error of the file (measured on the
    spectrotemporal sequence: with 14 of its ops float the file stayed 3.28 BDI-II points p95
    from the QAT model)."""
    if not any(f.source == "qat" and f.searches for f in fmts):
        return {}
    from edgeaffect.train.qat import float_twin

    models = {s.name: s.model for s in p.stages}
    return {n: float_twin(m, models[n]) for n, m in qat_models.items()}


def _source_key(f, sources: dict) -> str:
    """Which Keras models ``f`` is written from and judged against (``_float_twins``)."""
    return "twin" if f.source == "qat" and f.searches and "twin" in sources else f.source


def _source(stage, fmt, trained: tuple) -> tuple[object, str | None]:
    """(the Keras model a format is written from, how it is quantized: None for float). An
    int8 format of a stage without a QAT model is quantized post-training from the float one.
    ``trained``: (the QAT models, their float twins), per stage."""
    qat_models, twins = trained
    if fmt.source == "qat" and stage.name in qat_models:
        if fmt.searches:  # its float layers are chosen post-training, from QAT's weights
            return twins[stage.name], "qat"
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
