"""``make demo MODEL=M`` (``edgeaffect pipeline --model M``): a family's synthetic corpus ->
features -> training (the paper's split, then a speaker-independent one where the family
has it) -> QAT -> every export verified -> latency per recording -> one table. What is not
given comes from the family's ``pipeline_preset``.

Everything lands under one folder; steps already done (corpus files, cached features, a
finished training run) are reused, so an interrupted pipeline picks up where it stopped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from dataclasses import replace

from edgeaffect.contract import PipelinePreset, get_model
from edgeaffect.io import atomic_write_text
from edgeaffect.machine import machine

# A keyword left at this takes the family's preset (None is a value: "the recipe's epochs").
PRESET = "preset"


def default_out(model: str) -> Path:
    """Where ``edgeaffect pipeline --model M`` works when not given ``--out``."""
    return Path("build") / model


def preset_for(model: str, **given) -> PipelinePreset:
    """The family's preset for ``model`` with every keyword not left at ``PRESET`` put in."""
    spec = get_model(model)
    preset = spec.family_plugin.pipeline_preset(spec)
    return replace(preset, **{k: v for k, v in given.items() if v != PRESET})


def _train_or_load(model: str, data, folder: Path, split: str, epochs: int | None, seed: int, options: dict, log):
    from edgeaffect.train.families import train
    from edgeaffect.train.runs import load_run

    if (folder / "run.json").exists():
        print(f"reusing the finished run in {folder}", file=log)
        return load_run(folder)
    return train(model, data, folder, split=split, seed=seed, epochs=epochs, options=options or None, log=log)


def _keras_row(run, adapter, x, budget_s: float) -> dict:
    """Keras called directly on one recording's inputs: the reference the exports replace
    (a staged family's stages in turn, as the device runs them)."""
    from edgeaffect.measure.timing import measure

    stages = {s.name: s.model for s in run.family.stages(run)}
    if stages:
        step = lambda: adapter.run_stages(lambda name, xs: stages[name](xs, training=False).numpy(), dict(x))  # noqa: E731
    else:
        step = lambda: run.model(x, training=False)  # noqa: E731
    t = measure(step, budget_s=budget_s)
    return {"what": "inference keras (model(x) direct)", "runtime": "tf_keras", "bytes": None, **t.to_dict()}


def run_pipeline(out: str | Path, *, model: str, scale=PRESET, epochs=PRESET, speaker_epochs=PRESET,
                 qat_epochs=PRESET, seed: int = 0, budget_s: float = 1.0, recordings: int = 20,
                 log=sys.stderr) -> dict:
    from edgeaffect.export.exporter import export_run
    from edgeaffect.measure.bench import bench_recordings
    from edgeaffect.train.families import load_corpus

    out = Path(out)
    t_start = time.monotonic()
    spec = get_model(model)
    family = spec.family_plugin
    p = preset_for(model, scale=scale, epochs=epochs, speaker_epochs=speaker_epochs, qat_epochs=qat_epochs)
    print("1/5 synthetic corpus", file=log, flush=True)
    family.synthesize(out / "corpus", scale=p.scale, seed=seed, log=log)
    print("2/5 features", file=log, flush=True)
    data = load_corpus(model, out / "corpus", out / "cache", log=log)
    splits = [("paper", p.epochs)] + ([("speaker", p.speaker_epochs)] if "speaker" in family.split_kinds else [])
    print(f"3/5 train {model} on: {', '.join(s for s, _ in splits)} split", file=log, flush=True)
    runs = {s: _train_or_load(model, data, out / "runs" / f"{s}-split", s, n, seed, p.options, log)
            for s, n in splits}
    print("4/5 QAT, export, verify against Keras", file=log, flush=True)
    export_dir = out / "export"
    manifest = export_run(runs["paper"], data, export_dir, qat_epochs=p.qat_epochs, log=log)
    print("5/5 latency per recording on this machine (batch 1, 1 thread)", file=log, flush=True)
    found = family.recordings(out / "corpus")
    files = found[:: max(1, len(found) // recordings)][:recordings]
    timings = bench_recordings(export_dir, files, budget_s=budget_s, log=log)
    from edgeaffect.device.predict import ExportedModel

    exported = ExportedModel(export_dir)
    timings.append(_keras_row(runs["paper"], exported.adapter, exported.inputs(files[0]), budget_s))
    summary = {
        "model": model, "family": family.name, "task": family.task.kind, "metric": family.task.metric_name,
        "machine": machine(), "seconds": round(time.monotonic() - t_start, 1),
        "params": spec.params, "flops": spec.flops, "paper": spec.paper_figures,
        "runs": {s: {"test": r.info["test"], "split": r.info["split"], "epochs": r.info.get("epochs")}
                 for s, r in runs.items()},
        "verification": manifest["verification"], "timings": timings,
        "data": "synthetic corpus in the real layout, generated here; its figures are not paper results",
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    table = summary_table(summary)
    atomic_write_text(out / "summary.md", table + "\n")
    print("\n" + table, flush=True)
    return summary


def _ms(row: dict | None) -> str:
    return "-" if not row else f"{row['p50_ms']:.3f} / {row['p90_ms']:.3f}"


def summary_table(s: dict) -> str:
    t = {row["what"]: row for row in s["timings"]}
    metric, p = s["metric"], s["paper"]
    runs = "; ".join(f"{r['test'][metric]:.4f} on the {k} split ({r['split']['test']} test samples)"
                     for k, r in s["runs"].items())
    paper = ", ".join(f"{k} {v}" for k, v in p.items() if k != "source") or "no figures for this variant"
    lines = [
        f"edgeaffect pipeline: {s['model']} ({s['task']}) on a synthetic corpus ({s['seconds']:.0f} s)",
        f"machine: {s['machine']} (all times measured here)",
        f"parameters {s['params']:,} and FLOPs {s['flops'] / 1e6:.2f} M (ours, counted); "
        f"the paper ({p.get('source', 'text')}): {paper}",
        f"test {metric}, float Keras: {runs}. Synthetic data: not comparable to the paper's figures.",
        "",
        f"| format | runtime | kernels | size (KiB) | test {metric} | max abs diff | p95 abs diff | agreement "
        "| inference p50 / p90 ms | features + inference p50 / p90 ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in s["verification"]:
        inf, both = t.get(f"inference {v['format']}"), t.get(f"features + inference {v['format']}")
        size = ((inf or {}).get("bytes") or 0) / 1024
        kernels = v["kernels"] + ("" if v.get("gating", True) else " (recorded, not gating)")
        lines.append(f"| {v['format']} | {v['runtime']} | {kernels} | {size:.1f} | {v['metric']:.4f} | "
                     f"{v['max_abs_diff']:.2e} | {v['p95_abs_diff']:.2e} | {v['agreement']:.4f} | {_ms(inf)} | "
                     f"{_ms(both)} |")
    keras = t.get("inference keras (model(x) direct)")
    if keras:
        # The float model on the verification's samples (what the rows above are compared with;
        # a regressor's runs report per recording, its verification per sequence).
        ref = s["verification"][0]["float_metric"] if s["verification"] else s["runs"]["paper"]["test"][metric]
        lines.append(f"| keras (float, model(x)) | tf_keras | - | - | {ref:.4f} | 0 | 0 | 1 | {_ms(keras)} | - |")
    if s["verification"]:
        lines.append(f"\nVerification: {s['verification'][0]['n']} held-out test samples, each format against the "
                     "Keras model it was written from.")
    feats = next((row for row in s["timings"] if row["what"].startswith("features (")), None)
    if feats:
        lines.append(f"\n{feats['what']}: p50 {feats['p50_ms']:.2f} ms, p90 {feats['p90_ms']:.2f} ms (measured, decode "
                     "excluded).")
    return "\n".join(lines)
