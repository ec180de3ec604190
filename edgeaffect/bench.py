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
