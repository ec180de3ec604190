"""Trained run -> QAT -> export files -> verification -> ``manifest.json``, all or nothing.

The output folder is built in a temp folder and renamed into place only when every
export passed its verification; otherwise nothing is written and the error names the
failing bound.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgeaffect import __version__
from edgeaffect.device.bundle import MANIFEST_VERSION, sha256
from edgeaffect.errors import VerificationError
from edgeaffect.export.formats import get_format
from edgeaffect.export.verify import verify
from edgeaffect.io import atomic_dir, atomic_write_text
from edgeaffect.train.qat import qat_finetune, representative_samples
from edgeaffect.train.runs import Run, split_inputs

DEFAULT_FORMATS = ("tflite-int8", "tflite-fp16", "tflite-fp32", "onnx-fp32", "onnx-qdq")


def export_run(run: Run, data, out_dir: str | Path, formats=DEFAULT_FORMATS, *, qat_epochs: int = 20,
               target=None, options: dict | None = None, log=sys.stderr) -> dict:
    """Export ``formats`` (or, with ``target``, the target's formats plus its bundle files)."""
    if target is not None:  # the family may add formats to a target's list (Family.target_formats)
        from dataclasses import replace

        target = replace(target, formats=run.family.target_formats(target))
    stages = run.family.stages(run)
    if stages:
        from edgeaffect.export.staged import export_staged

        return export_staged(run, data, stages, out_dir, formats, qat_epochs=qat_epochs, target=target,
                             options=options, log=log)
    if target is not None:
        formats = target.formats
    fmts = [get_format(f) for f in formats]
    x_test, y_test = split_inputs(run, data, "test")
    x_train, y_train = split_inputs(run, data, "train")
    x_val, y_val = split_inputs(run, data, "val")
    family = run.family
    task = family.task
    n_outputs = int(run.model.outputs[0].shape[-1])
    calibration = representative_samples(x_train)
    models = {"float": run.model}
    if any(f.source == "qat" for f in fmts):
        print(f"QAT fine-tune of {run.spec.name}", file=log, flush=True)
        # not ``options``: those are the target's and go into its manifest section
        qat_options = {"loss": task.loss, **family.qat_options(run)}
        models["qat"] = qat_finetune(run.model, x_train, task.training_targets(y_train, n_outputs), x_val,
                                     task.training_targets(y_val, n_outputs), epochs=qat_epochs,
                                     learning_rate=run.spec.config.learning_rate / 10, seed=int(run.info.get("seed", 0)),
                                     log=log, **qat_options)
    ref = {k: m.predict(x_test, batch_size=512, verbose=0) for k, m in models.items()}
    results, files = [], {}
    with atomic_dir(out_dir) as tmp:
        for f in fmts:
            name = f"{run.spec.name}-{f.name}{f.suffix}"
            t0 = time.monotonic()
            facts = f.write(models[f.source], run.spec.inputs, calibration, tmp / name,
                            **writer_options(f, target)) or {}
            for v in verify(task, f, tmp / name, ref[f.source], ref["float"], x_test, y_test):
                print(f"  {f.name:12s} {v.kernels:9s} {(tmp / name).stat().st_size / 1024:8.1f} KiB  "
                      f"max|diff| {v.max_abs_diff:.2e}  p95 {v.p95_abs_diff:.2e}  agreement {v.agreement:.4f}  "
                      f"{v.metric_name} {v.metric:.4f}  "
                      f"{'ok' if v.passed else ('FAILED: ' if v.gating else 'recorded, not gating: ') + '; '.join(v.failures)}"
                      f"  ({time.monotonic() - t0:.1f} s)",
                      file=log, flush=True)
                results.append(v)
            files[f.name] = {"file": name, "format": f.name, "source_model": f.source, "runtime": f.runtime,
                             "bytes": (tmp / name).stat().st_size, "sha256": sha256(tmp / name),
                             "description": f.description, **facts}
        refuse_failed(results)
        manifest = build_manifest(run, files, results)
        if target is not None:
            from edgeaffect.export.bundle import write_target_files

            manifest["target"] = write_target_files(tmp, target, options or {}, files, manifest["inputs"],
                                                    calibration)
        elif "qat" in models:  # desktop exports keep the QAT weights; device bundles stay small
            models["qat"].save_weights(str(tmp / "qat-weights.h5"))
        manifest["checksums"] = {p.name: sha256(p) for p in sorted(tmp.iterdir()) if p.name != "manifest.json"}
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=2))
    return manifest


def writer_options(fmt, target) -> dict:
    """The target's writer options that ``fmt`` accepts (a format without an opset gets none)."""
    given = target.writer_options if target is not None else {}
    return {k: v for k, v in given.items() if k in fmt.options}


def refuse_failed(results, what: str = "") -> None:
    """Nothing is written when a gating verification failed: the error names each bound."""
    failed = [v for v in results if v.gating and not v.passed]
    if failed:
        where = f" ({what})" if what else ""
        raise VerificationError(f"export verification failed{where}, nothing written: " + "; ".join(
            f"{v.format} ({v.kernels} kernels): {', '.join(v.failures)}" for v in failed))


def manifest_header(run: Run, description: str | None = None) -> dict:
    """The fields every manifest starts with (a whole export, a staged bundle, a stage)."""
    from edgeaffect.machine import machine
    return {
        "manifest_version": MANIFEST_VERSION,
        "toolkit_version": __version__,
        "model": run.spec.name,
        "family": run.family.name,
        "task": {"kind": run.family.task.kind, "description": description or run.spec.task},
        "labels": list(run.spec.labels),
        "verified_on": machine(),
    }


def input_specs(inputs: dict) -> dict:
    return {name: {"shape": [None, *shape], "dtype": "float32"} for name, shape in inputs.items()}


def trained_record(run: Run) -> dict:
    return {k: run.info[k] for k in ("split", "seed", "epochs", "test") if k in run.info}


def build_manifest(run: Run, files: dict, results) -> dict:
    """Everything the device needs to rebuild the inputs exactly and to trust the files."""
    return {
        **manifest_header(run),
        "inputs": input_specs(run.spec.inputs),
        "output": {"name": run.family.task.output_name, "shape": [None, int(run.model.outputs[0].shape[-1])]},
        "preprocessing": run.family.preprocessing(run),
        "files": files,
        "verification": [v.to_dict() for v in results],
        "trained": trained_record(run),
    }
