"""``make bench``: latency of one AVER inference per runtime and format, and of one clip's
features, on this machine. Batch 1, one thread unless told otherwise."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np

from edgeaffect.timing import measure


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}"


def bench_export(export_dir: Path, clip: Path | None, keras_model=None, threads: int = 1, budget_s: float = 2.0,
                 log=sys.stderr) -> list[dict]:
    from edgeaffect.predict import ExportedModel

    rows = []
    manifest = json.loads((export_dir / "manifest.json").read_text())
    # One random batch-1 input for every row, so all rows time the same work.
    x = {k: np.random.default_rng(0).random((1, *v["shape"][1:]), dtype=np.float32)
         for k, v in manifest["inputs"].items()}
    for fmt, entry in manifest["files"].items():
        m = ExportedModel(export_dir, fmt, threads=threads)
        t = measure(lambda: m.runner.run(x), budget_s=budget_s)
        rows.append({"what": f"inference {fmt}", "runtime": m.runner.package, "bytes": entry["bytes"], **t.to_dict()})
        print(f"  {rows[-1]['what']:28s} p50 {t.p50_ms:7.3f} ms  p90 {t.p90_ms:7.3f} ms  ({t.runs} runs)",
              file=log, flush=True)
    if keras_model is not None:
        t = measure(lambda: keras_model(x, training=False), budget_s=budget_s)
        rows.append({"what": "inference keras (model(x) direct)", "runtime": "tf_keras", "bytes": None, **t.to_dict()})
        print(f"  {rows[-1]['what']:28s} p50 {t.p50_ms:7.3f} ms  p90 {t.p90_ms:7.3f} ms  ({t.runs} runs)",
              file=log, flush=True)
    if clip is not None:
        m = ExportedModel(export_dir, "tflite-int8", threads=threads)
        t = measure(lambda: m.clip_features(clip), warmup=2, budget_s=budget_s, min_runs=5)
        rows.append({"what": "clip -> features (decode, 6 faces, 6 MFCC)", "runtime": "numpy+opencv", "bytes": None,
                     **t.to_dict()})
        print(f"  {rows[-1]['what']:28s} p50 {t.p50_ms:7.1f} ms  p90 {t.p90_ms:7.1f} ms  ({t.runs} runs)",
              file=log, flush=True)
    return rows


# --------------------------------------------------------------------------- `edgeaffect bench`

def _accuracy(runner, data: dict, labels) -> float:
    n = len(data["labels"])
    correct = 0
    for i in range(0, n, 256):
        probs = runner.run({k: data[k][i:i + 256] for k in runner.inputs})
        correct += int((probs.argmax(axis=1) == data["labels"][i:i + 256]).sum())
    return correct / n


def bench_exports(export_dirs, *, threads: int = 1, budget_s: float = 2.0, data: Path | None = None,
                  log=sys.stderr) -> list[dict]:
    """One row per model x format x runtime of each export folder: status, size, accuracy,
    latency, memory. A format whose runtime is missing is a row with a skipped status."""
    from edgeaffect.errors import EdgeAffectError, InputError, MissingDependencyError
    from edgeaffect.profile import profile

    arrays = None
    if data is not None:
        if not Path(data).is_file():
            raise InputError(f"--data file not found: {data}")
        with np.load(data) as z:
            arrays = {k: z[k] for k in z.files}
        if "labels" not in arrays:
            raise InputError(f"--data {data} has no 'labels' array (and one array per model input)")
    rows = []
    from edgeaffect.bundle import open_bundle

    for d in map(Path, export_dirs):
        manifest = open_bundle(d)  # checked once per folder; profile() then opens the files directly
        verified = {v["format"]: v for v in manifest.get("verification", [])}
        for fmt, entry in manifest["files"].items():
            path = d / entry["file"]
            row = {"model": manifest["model"], "format": fmt, "runtime": entry["runtime"], "path": str(path),
                   "bytes": entry["bytes"], "status": "ok"}
            try:
                p = profile(path, runtime=entry["runtime"], threads=threads, budget_s=budget_s, op_profile=False)
            except MissingDependencyError as exc:
                row["status"] = f"skipped: {exc}"
                rows.append(row)
                continue
            except EdgeAffectError as exc:
                row["status"] = f"failed: {exc}"
                rows.append(row)
                continue
            row.update({k: p[k] for k in ("package", "p50_ms", "p90_ms", "p99_ms", "runs", "throughput_per_s",
                                          "init_ms", "model_memory_mib", "peak_rss_mib")})
            if arrays is not None:
                from edgeaffect.runtime import load_runner

                row["accuracy"] = _accuracy(load_runner(path, entry["runtime"]), arrays, manifest["labels"])
                row["accuracy_source"] = f"measured on {Path(data).name} ({len(arrays['labels'])} samples)"
            elif fmt in verified:
                row["accuracy"] = verified[fmt]["accuracy"]
                row["accuracy_source"] = f"export verification, held-out split ({verified[fmt]['n']} samples)"
            rows.append(row)
            print(f"  {row['model']} {fmt:12s} p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms",
                  file=log, flush=True)
    return rows


def remeasure(row: dict, threads: int = 1, budget_s: float = 2.0) -> dict:
    from edgeaffect.profile import profile

    p = profile(row["path"], runtime=row["runtime"], threads=threads, budget_s=budget_s, op_profile=False)
    return {"p50_ms": p["p50_ms"], "p99_ms": p["p99_ms"]}


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = [["model", "format", "runtime", "status", "size KiB", "accuracy", "p50 ms", "p99 ms", "throughput/s",
            "model mem MiB"]]
    for r in rows:
        out.append([r["model"], r["format"], r["runtime"], r["status"] if len(r["status"]) < 40 else r["status"][:37] + "...",
                    f"{r['bytes'] / 1024:.1f}", _fmt(r.get("accuracy"), ".4f"), _fmt(r.get("p50_ms"), ".3f"),
                    _fmt(r.get("p99_ms"), ".3f"), _fmt(r.get("throughput_per_s"), ".0f"),
                    _fmt(r.get("model_memory_mib"), ".1f")])
    return out


def to_text(rows: list[dict]) -> str:
    t = table_rows(rows)
    widths = [max(len(r[i]) for r in t) for i in range(len(t[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in t)


def to_markdown(rows: list[dict], checks=None, header: str = "") -> str:
    t = table_rows(rows)
    lines = [header, ""] if header else []
    lines += ["| " + " | ".join(t[0]) + " |", "|" + "---|" * len(t[0])]
    lines += ["| " + " | ".join(r) + " |" for r in t[1:]]
    sources = sorted({r["accuracy_source"] for r in rows if r.get("accuracy_source")})
    if sources:
        lines += ["", "Accuracy: " + "; ".join(sources) + "."]
    if checks:
        lines += ["", "| budget | metric | value | limit | kind | result |", "|---|---|---|---|---|---|"]
        lines += [f"| {c.budget} | {c.metric} | {_fmt(c.value, '.4g')} | {c.limit:g} | {c.kind} | "
                  f"{'ok' if c.passed else '**EXCEEDED**'} |" for c in checks]
    return "\n".join(lines) + "\n"


def to_junit(rows: list[dict], checks=None) -> str:
    from xml.sax.saxutils import quoteattr

    cases = []
    for r in rows:
        name = quoteattr(f"{r['model']}/{r['format']}/{r['runtime']}")
        t = (r.get("p50_ms") or 0) / 1e3
        if r["status"].startswith("failed"):
            body = f"<failure message={quoteattr(r['status'])}/>"
        elif r["status"].startswith("skipped"):
            body = f"<skipped message={quoteattr(r['status'])}/>"
        else:
            body = ""
        cases.append(f'  <testcase classname="bench" name={name} time="{t:.6f}">{body}</testcase>')
    for c in checks or []:
        body = "" if c.passed else f"<failure message={quoteattr(c.line)}/>"
        cases.append(f'  <testcase classname="budgets" name={quoteattr(c.budget + " " + c.metric)}>{body}</testcase>')
    failures = sum("<failure" in c for c in cases)
    skipped = sum("<skipped" in c for c in cases)
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuite name="edgeaffect-bench" tests="{len(cases)}" failures="{failures}" skipped="{skipped}">\n'
            + "\n".join(cases) + "\n</testsuite>\n")


# --------------------------------------------------------------------------- speech models

def bench_speech(export_dir: Path, wavs: list[Path], threads: int = 1, budget_s: float = 2.0,
                 log=sys.stderr) -> list[dict]:
    """Per utterance, batch 1: NumPy feature extraction (decode excluded), inference per
    format, and the two together, with p50 / p90. Utterances are cycled so every row sees
    the same mix of lengths."""
    from edgeaffect.features.fusion import model_input
    from edgeaffect.media import read_audio
    from edgeaffect.predict import ExportedModel

    audio = [read_audio(w) for w in wavs]
    any_model = ExportedModel(export_dir, threads=threads)
    feats = [any_model.speech_features(y, sr) for y, sr in audio]
    inputs = [model_input(f, any_model.mean, any_model.std, any_model.max_frames) for f in feats]
    seconds = float(np.mean([y.size / sr for y, sr in audio]))

    def cycling(fn, items):
        state = {"i": 0}

        def step():
            fn(items[state["i"] % len(items)])
            state["i"] += 1

        return step

    def row(what, runtime, t, nbytes=None):
        rows.append({"what": what, "runtime": runtime, "bytes": nbytes, **t.to_dict()})
        print(f"  {what:40s} p50 {t.p50_ms:7.3f} ms  p90 {t.p90_ms:7.3f} ms  ({t.runs} runs)", file=log, flush=True)

    rows: list[dict] = []
    t = measure(cycling(lambda a: any_model.speech_features(*a), audio), warmup=3, budget_s=budget_s, min_runs=10)
    row(f"features (NumPy fusion, {any_model.features.dim} per frame; {seconds:.1f} s utterances)", "numpy", t)
    for fmt, entry in any_model.manifest["files"].items():
        m = ExportedModel(export_dir, fmt, threads=threads)
        t = measure(cycling(lambda x: m.runner.run({"features": x}), inputs), budget_s=budget_s)
        row(f"inference {fmt}", m.runner.package, t, entry["bytes"])
        t = measure(cycling(lambda a: m.predict_speech(*a), audio), warmup=3, budget_s=budget_s, min_runs=10)
        row(f"features + inference {fmt}", m.runner.package, t)
    return rows
