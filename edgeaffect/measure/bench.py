"""``make bench``: latency per runtime and format, of one recording's features, and of
both together, on this machine, for any family's bundle. Batch 1, one thread unless told
otherwise."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgeaffect.measure.timing import measure


def bench_export(export_dir: Path, media: Path | None, keras_model=None, threads: int = 1, budget_s: float = 2.0,
                 log=sys.stderr) -> list[dict]:
    """Inference per format (and Keras called directly), then one recording -> model inputs."""
    from edgeaffect.device.predict import ExportedModel

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
    if media is not None:
        m = ExportedModel(export_dir, threads=threads)
        t = measure(lambda: m.inputs(media), warmup=2, budget_s=budget_s, min_runs=5)
        rows.append({"what": f"recording -> inputs (decode, {m.adapter.describe_inputs()})", "runtime": "numpy+opencv",
                     "bytes": None, **t.to_dict()})
        print(f"  {rows[-1]['what']:28s} p50 {t.p50_ms:7.1f} ms  p90 {t.p90_ms:7.1f} ms  ({t.runs} runs)",
              file=log, flush=True)
    return rows


# --------------------------------------------------------------------------- `edgeaffect bench`

def _metric(runner, data: dict, task) -> float:
    """The task's metric (accuracy, MAE, F1) of a runner on an npz of inputs and 'labels'."""
    from edgeaffect.export.verify import run_batched

    outputs = run_batched(runner, {k: data[k] for k in runner.inputs})
    return task.metric(outputs, data["labels"])


def export_folders(dirs):
    """Each export folder; a staged export's stage folders in its place (one row per stage file)."""
    from edgeaffect.device.bundle import open_bundle

    for d in dirs:
        yield from open_bundle(d).stage_folders() or (d,)


def bench_exports(export_dirs, *, threads: int = 1, budget_s: float = 2.0, data: Path | None = None,
                  log=sys.stderr) -> list[dict]:
    """One row per model x format x runtime of each export folder: status, size, accuracy,
    latency, memory. A format whose runtime is missing is a row with a skipped status."""
    from edgeaffect.errors import EdgeAffectError, InputError, MissingDependencyError
    from edgeaffect.measure.profile import profile

    arrays = None
    if data is not None:
        if not Path(data).is_file():
            raise InputError(f"--data file not found: {data}")
        with np.load(data) as z:
            arrays = {k: z[k] for k in z.files}
        if "labels" not in arrays:
            raise InputError(f"--data {data} has no 'labels' array (and one array per model input)")
    rows = []
    from edgeaffect.device.bundle import open_bundle

    for d in export_folders(map(Path, export_dirs)):
        bundle = open_bundle(d)  # checked once per folder; profile() then opens the files directly
        manifest, model = bundle.manifest, bundle.label
        # The first entry per format: the kernels a device runs by default (XNNPACK on LiteRT).
        verified = {}
        for v in manifest.get("verification", []):
            verified.setdefault(v["format"], v)
        for fmt, entry in manifest["files"].items():
            path = d / entry["file"]
            row = {"model": model, "format": fmt, "runtime": entry["runtime"], "path": str(path),
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

                task = bundle.family.task
                row["metric_name"] = task.metric_name
                row["accuracy"] = _metric(load_runner(path, entry["runtime"]), arrays, task)
                row["accuracy_source"] = f"measured on {Path(data).name} ({len(arrays['labels'])} samples)"
            elif fmt in verified:
                v = verified[fmt]
                row["metric_name"] = v.get("metric_name", "accuracy")
                row["accuracy"] = v.get("metric", v.get("accuracy"))
                row["accuracy_source"] = f"export verification, held-out split ({v['n']} samples)"
            row["float_layers"] = len(entry.get("float_layers", []))
            rows.append(row)
            print(f"  {row['model']} {fmt:12s} p50 {row['p50_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms",
                  file=log, flush=True)
    for row in rows:
        add_vs_float(row, rows, threads=threads, budget_s=budget_s, log=log)
    return rows


def add_vs_float(row: dict, rows: list[dict], *, threads: int = 1, budget_s: float | None = None,
                 log=sys.stderr) -> None:
    """A quantized row against the float32 file of the same model and runtime: latency and
    size ratios, metric difference, layers kept float. With ``budget_s`` the latency ratio is
    timed again, the two files interleaved (``measure.gate.compare_files``, with its interval):
    two p50s taken one after the other on a shared machine differ by more than int8 gains on
    a small model. Without it, the ratio of the rows' own p50s."""
    from edgeaffect.export.formats import get_format, list_formats
    from edgeaffect.measure.gate import compare_files

    if row["format"] not in list_formats() or get_format(row["format"]).precision == "float32":
        return
    base = next((r for r in rows if r["model"] == row["model"] and r["runtime"] == row["runtime"]
                 and r["format"] in list_formats() and get_format(r["format"]).precision == "float32"
                 and r.get("p50_ms")), None)
    if base is None or not row.get("p50_ms"):
        return
    diff = (row["accuracy"] - base["accuracy"]) if row.get("accuracy") is not None and base.get("accuracy") is not None \
        else None
    row["vs_float"] = {"format": base["format"], "latency_ratio": row["p50_ms"] / base["p50_ms"],
                       "size_ratio": row["bytes"] / base["bytes"], "metric_diff": diff,
                       "float_layers": row.get("float_layers", 0), "timing": "p50 of each row"}
    if budget_s:
        c = compare_files(Path(base["path"]), Path(row["path"]), row["runtime"], threads=threads, budget_s=budget_s)
        row["vs_float"].update(latency_ratio=c.ratio, latency_low=c.low, latency_high=c.high,
                               timing=f"interleaved with {base['format']}: {c.line}")
        print(f"  {row['model']} {row['format']:12s} / {base['format']}: {c.ratio:.2f}x "
              f"[{c.low:.2f}-{c.high:.2f}] (interleaved)", file=log, flush=True)


def _vs_float(r: dict) -> str:
    v = r.get("vs_float")
    if not v:
        return "-"
    diff = "" if v["metric_diff"] is None else f", {v['metric_diff']:+.4f}"
    interval = f" [{v['latency_low']:.2f}-{v['latency_high']:.2f}]" if "latency_low" in v else ""
    return f"{v['latency_ratio']:.2f}x{interval} time, {v['size_ratio']:.2f}x size{diff}, {v['float_layers']} float"


def gate_rows(rows: list[dict], baseline_root: Path, *, threads: int = 1, budget_s: float = 2.0,
              tolerance: float | None = None, log=sys.stderr) -> None:
    """Each benchmarked file against the same model and format in ``baseline_root`` (a
    saved export, see ``edgeaffect.measure.gate``), timed interleaved in this run: sets
    ``row["baseline"]`` (the comparison) or ``row["baseline_note"]`` (why none)."""
    from edgeaffect.measure.gate import TOLERANCE, baseline_for, compare_files

    for row in rows:
        if row["status"] != "ok":
            continue
        base = baseline_for(baseline_root, row["model"], row["format"])
        if base is None:
            row["baseline_note"] = f"no baseline of {row['model']} {row['format']} in {baseline_root}"
            continue
        c = compare_files(base, Path(row["path"]), row["runtime"], threads=threads, budget_s=budget_s,
                          tolerance=TOLERANCE if tolerance is None else tolerance)
        row["baseline"] = {"path": str(base), **c.to_dict(), "line": c.line}
        print(f"  {row['model']} {row['format']:12s} vs baseline: {c.line}", file=log, flush=True)


def remeasure(row: dict, threads: int = 1, budget_s: float = 2.0) -> dict:
    from edgeaffect.measure.profile import profile

    p = profile(row["path"], runtime=row["runtime"], threads=threads, budget_s=budget_s, op_profile=False)
    return {"p50_ms": p["p50_ms"], "p99_ms": p["p99_ms"]}


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table_rows(rows: list[dict]) -> list[list[str]]:
    gate = any("baseline" in r for r in rows)
    out = [["model", "format", "runtime", "status", "size KiB", "accuracy", "p50 ms", "p99 ms", "throughput/s",
            "model mem MiB", "vs fp32 (time, size, metric, layers float)"] + (["vs baseline (interleaved)"] if gate else [])]
    for r in rows:
        b = r.get("baseline")
        extra = ([f"{b['ratio']:.3f}x [{b['low']:.3f}-{b['high']:.3f}]" if b else "-"] if gate else [])
        out.append([r["model"], r["format"], r["runtime"], r["status"] if len(r["status"]) < 40 else r["status"][:37] + "...",
                    f"{r['bytes'] / 1024:.1f}", _fmt(r.get("accuracy"), ".4f"), _fmt(r.get("p50_ms"), ".3f"),
                    _fmt(r.get("p99_ms"), ".3f"), _fmt(r.get("throughput_per_s"), ".0f"),
                    _fmt(r.get("model_memory_mib"), ".1f"), _vs_float(r)] + extra)
    return out


VS_FLOAT_NOTE = ("vs fp32 time: the quantized file / the float32 file of the same model and runtime, "
                 "timed interleaved in this run (median ratio, [99 % interval]); below 1.00x the quantized file is faster.")


def to_text(rows: list[dict]) -> str:
    t = table_rows(rows)
    widths = [max(len(r[i]) for r in t) for i in range(len(t[0]))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in t)
    return text + ("\n" + VS_FLOAT_NOTE if any("latency_low" in (r.get("vs_float") or {}) for r in rows) else "")


def to_markdown(rows: list[dict], checks=None, header: str = "") -> str:
    t = table_rows(rows)
    lines = [header, ""] if header else []
    lines += ["| " + " | ".join(t[0]) + " |", "|" + "---|" * len(t[0])]
    lines += ["| " + " | ".join(r) + " |" for r in t[1:]]
    sources = sorted({r["accuracy_source"] for r in rows if r.get("accuracy_source")})
    if sources:
        lines += ["", "Accuracy: " + "; ".join(sources) + "."]
    if any("latency_low" in (r.get("vs_float") or {}) for r in rows):
        lines += ["", VS_FLOAT_NOTE]
    if checks:
        lines += ["", "| budget | metric | value | limit | kind | result |", "|---|---|---|---|---|---|"]
        lines += [f"| {c.budget} | {c.metric} | {_fmt(c.value, '.4g')} | {c.limit:g} | {c.kind} | "
                  f"{c.state if c.passed else '**' + c.state + '**'} |" for c in checks]
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
        if not c.passed:
            body = f"<failure message={quoteattr(c.line)}/>"
        else:  # an optional budget with no measurement is skipped, not passed
            body = "" if c.checked else f"<skipped message={quoteattr(c.line)}/>"
        cases.append(f'  <testcase classname="budgets" name={quoteattr(c.budget + " " + c.metric)}>{body}</testcase>')
    failures = sum("<failure" in c for c in cases)
    skipped = sum("<skipped" in c for c in cases)
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuite name="edgeaffect-bench" tests="{len(cases)}" failures="{failures}" skipped="{skipped}">\n'
            + "\n".join(cases) + "\n</testsuite>\n")


# --------------------------------------------------------------------------- per recording

def bench_recordings(export_dir: Path, files: list[Path], threads: int = 1, budget_s: float = 2.0,
                     log=sys.stderr) -> list[dict]:
    """Per recording, batch as the family makes it: the device-side features (decode
    excluded), inference per format, and the two together, with p50 / p90. Recordings are
    cycled so every row sees the same mix of lengths."""
    from edgeaffect.device.predict import ExportedModel

    any_model = ExportedModel(export_dir, threads=threads)
    adapter = any_model.adapter
    decoded = [adapter.load(f) for f in files]
    inputs = [adapter.inputs(d) for d in decoded]
    seconds = float(np.mean([adapter.duration_s(d) for d in decoded]))

    def cycling(fn, items):
        state = {"i": 0}

        def step():
            fn(items[state["i"] % len(items)])
            state["i"] += 1

        return step

    def row(what, runtime, t, nbytes=None):
        # Real-time factor: processing time per second of audio (below 1 keeps up with live speech).
        rtf = {"real_time_factor_p50": t.p50_ms / 1e3 / seconds} if seconds else {}
        rows.append({"what": what, "runtime": runtime, "bytes": nbytes, **t.to_dict(), **rtf})
        shown = f"  RTF {rtf['real_time_factor_p50']:.4f}" if rtf else ""
        print(f"  {what:40s} p50 {t.p50_ms:7.3f} ms  p90 {t.p90_ms:7.3f} ms{shown}  ({t.runs} runs)", file=log,
              flush=True)

    rows: list[dict] = []
    t = measure(cycling(adapter.inputs, decoded), warmup=3, budget_s=budget_s, min_runs=10)
    length = f"; {seconds:.1f} s recordings" if seconds else ""
    row(f"features ({adapter.describe_inputs()}{length})", "numpy", t)
    for fmt in any_model.formats():
        m = ExportedModel(export_dir, fmt, threads=threads)
        t = measure(cycling(m.outputs, inputs), budget_s=budget_s)
        row(f"inference {fmt}", m.runner.package, t, m.file_bytes())
        t = measure(cycling(lambda d: m.predict_inputs(adapter.inputs(d)), decoded), warmup=3, budget_s=budget_s,
                    min_runs=10)
        row(f"features + inference {fmt}", m.runner.package, t)
    return rows



# --------------------------------------------------------------------------- clip -> label, old vs new

@contextmanager
def held_to_threads(threads: int):
    """Hold OpenCV, the video decoder and NumPy's BLAS (the MFCC's mel product) to
    ``threads`` threads while the block runs, so a one-thread figure is one."""
    import cv2

    from edgeaffect.machine import limit_blas
    from edgeaffect.media.video import set_decode_threads

    before = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    set_decode_threads(threads)
    blas = limit_blas(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
        set_decode_threads(None)
        if blas is not None:
            blas.restore_original_limits()


def bench_clip_to_label(export_dir: Path, files: list[Path], *, threads: int = 1, rounds: int = 30,
                        log=sys.stderr) -> dict | None:
    """One recording -> its label (decode, features, inference, the label), the adapter's
    way against its ``reference()`` way (the paper-literal preprocessing), interleaved in
    one run (A, B, A, B ... over ``files`` in turn) so the machine's noise hits both: p50 of
    each and their ratio, and whether the labels agree. None when the family has one way.
    Decoding and OpenCV are held to ``threads`` threads (one core: the figure's claim)."""
    import time

    from edgeaffect.device.predict import ExportedModel

    m = ExportedModel(export_dir, threads=threads)
    new, ref = m.adapter, m.adapter.reference()
    if ref is None or not files:
        return None
    def label(adapter, f):
        x = adapter.inputs(adapter.load(Path(f)))
        return adapter.prediction(m.outputs(x), x).decision

    times = {"reference": [], "new": []}
    cpu = {"reference": [], "new": []}  # CPU time of this process: what a busy machine inflates least
    agree = []
    with held_to_threads(threads):
        for f in files[:2]:  # warm-up: runtime, cascades, filter banks
            label(ref, f), label(new, f)
        for i in range(rounds):
            f = files[i % len(files)]
            order = (("reference", ref), ("new", new)) if i % 2 == 0 else (("new", new), ("reference", ref))
            got = {}
            for name, adapter in order:
                t, c = time.perf_counter(), time.process_time()
                got[name] = label(adapter, f)
                times[name].append((time.perf_counter() - t) * 1e3)
                cpu[name].append((time.process_time() - c) * 1e3)
            agree.append(got["new"] == got["reference"])
    p50 = {k: float(np.percentile(v, 50)) for k, v in times.items()}
    row = {"what": f"clip -> label ({new.describe_inputs()}, inference, label)", "threads": threads,
           "runs_each": rounds, "p50_ms_reference": p50["reference"], "p50_ms_new": p50["new"],
           "p90_ms_new": float(np.percentile(times["new"], 90)),
           "speedup_p50": p50["reference"] / p50["new"],
           "speedup_pairs_median": float(np.median(np.asarray(times["reference"]) / np.asarray(times["new"]))),
           "cpu_p50_ms_reference": float(np.percentile(cpu["reference"], 50)),
           "cpu_p50_ms_new": float(np.percentile(cpu["new"], 50)),
           "labels_agree": float(np.mean(agree))}
    print(f"  clip -> label, {threads} thread(s), interleaved over {len(files)} clips x {rounds} rounds: "
          f"p50 {row['p50_ms_new']:.1f} ms (reference {row['p50_ms_reference']:.1f} ms, "
          f"{row['speedup_p50']:.2f}x faster; per pair median {row['speedup_pairs_median']:.2f}x; CPU time p50 "
          f"{row['cpu_p50_ms_new']:.1f} vs {row['cpu_p50_ms_reference']:.1f} ms); "
          f"labels agree {row['labels_agree']:.0%}", file=log, flush=True)
    return row
