"""int8 against float32 on LiteRT at any model size, weights untrained: how fast each TFLite
file of a model (or of each stage) runs here, float32, every op int8, and int8 as the export
writes it (the ops int8 makes slower left float; ``edgeaffect.export.mixed_precision``).

Speed does not depend on the weights' values, so fresh weights and random calibration inputs
stand in for a trained model: this measures the paper-size models no test can train here.
Accuracy is not measured (the export's verification is).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def _inputs(model) -> dict[str, tuple]:
    return {i.name.split(":")[0]: tuple(int(d) for d in i.shape[1:]) for i in model.inputs}


def _random_calibration(specs: dict[str, tuple], n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal((1, *s)).astype(np.float32) for k, s in specs.items()} for _ in range(n)]


def _models(spec) -> dict[str, object]:
    """Stage name (or the model's own) -> a Keras model with fresh weights."""
    stages = spec.family_plugin.stage_models(spec)
    return {name: model for name, (model, _) in stages.items()} if stages else {spec.name: spec.build_model()}


def int8_speed(spec, *, samples: int = 16, budget_s: float = 0.5, log=None) -> list[dict]:
    """One row per model or stage: float32, full int8 and exported int8 whole-model times
    (batch 1, one thread, XNNPACK, median) and the ops the export leaves float for speed."""
    from edgeaffect.export import mixed_precision as mp
    from edgeaffect.export.formats.tflite import calibrated_float, write_fp32
    from edgeaffect.runtime.litert_ops import op_times

    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeaffect-int8-speed-") as d:
        for name, model in _models(spec).items():
            if log is not None:
                print(f"  {spec.name} / {name}: converting and timing", file=log, flush=True)
            specs = _inputs(model)
            calibration = _random_calibration(specs, samples)
            fp32 = Path(d) / f"{name}-fp32.tflite"
            write_fp32(model, specs, calibration, fp32)
            calibrated = calibrated_float(model, specs, calibration)
            blob, facts = mp.choose(calibrated, specs, calibration)
            files = {"float32": fp32, "int8, every op": Path(d) / f"{name}-full.tflite",
                     "int8 as exported": Path(d) / f"{name}-int8.tflite"}
            files["int8, every op"].write_bytes(mp.quantize_keeping(calibrated, []))
            files["int8 as exported"].write_bytes(blob)
            us = {k: op_times(p, budget_s=budget_s, ops=False)["whole_us"] for k, p in files.items()}
            rows.append({"model": spec.name, "stage": name, **{f"{k} us": v for k, v in us.items()},
                         "exported / float32": us["int8 as exported"] / us["float32"],
                         "float_layers": [f"{f['op']} ({f['detail']})" for f in facts["float_layers"]],
                         "mixed_precision": facts["mixed_precision"]})
    return rows


def format_rows(rows: list[dict], machine: str) -> str:
    head = ("model / stage", "float32 us", "int8 all ops us", "int8 as exported us", "exported / float32",
            "ops float for speed")
    table = [head] + [(f"{r['model']} / {r['stage']}", f"{r['float32 us']:.1f}", f"{r['int8, every op us']:.1f}",
                       f"{r['int8 as exported us']:.1f}", f"{r['exported / float32']:.2f}x",
                       str(len(r["float_layers"]))) for r in rows]
    widths = [max(len(t[c]) for t in table) for c in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip() for t in table]
    return "\n".join(lines + [f"(LiteRT XNNPACK, batch 1, one thread, median whole-model time; fresh weights and "
                              f"random calibration: speed only; measured on {machine})"])
