"""int8 against float32 on LiteRT at any model size, weights untrained: how fast each TFLite
file of a model (or of each stage) runs here, float32, every op int8, and int8 as the export
writes it (the ops int8 makes slower left float; ``edgeaffect.export.mixed_precision``).

Speed does not depend on the weights' values, so fresh weights and random calibration inputs
stand in for a trained model: this measures the paper-size models no test can train here.
Accuracy is not measured (the export's verification is).
"""

from __future__ import annotations

import functools
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


# The CPU's own int8 speed, for reading the rows above: a plain conv net (64x64x1 input, four
# 3x3 convs of 32-128 channels with max-pools, a dense head), every op int8 as TFLiteConverter
# writes it. Where even this runs slower in int8 than in float (x86 without VNNI: XNNPACK's
# int8 convs widen to 16 bits and lose to float FMA), no model's int8 convs can be faster here.
REFERENCE = "plain conv net (this CPU's int8 reference)"
REFERENCE_CHANNELS = (32, 64, 128, 128)


def _plain_conv_net():
    from edgeaffect.keras_backend import keras as _keras

    keras = _keras()
    inp = keras.Input((64, 64, 1), batch_size=1, name="image")
    x = inp
    for c in REFERENCE_CHANNELS:
        x = keras.layers.Conv2D(c, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPool2D()(x)
    out = keras.layers.Dense(8)(keras.layers.Flatten()(x))
    return keras.Model(inp, out, name="plain_conv_net")


@functools.lru_cache(maxsize=2)
def _reference_files(samples: int) -> tuple[bytes, bytes]:
    """The plain conv net's float32 and full-int8 TFLite files (converted once per process)."""
    from edgeaffect.export import mixed_precision as mp
    from edgeaffect.export.formats.tflite import calibrated_float, write_fp32

    model = _plain_conv_net()
    specs = _inputs(model)
    calibration = _random_calibration(specs, samples)
    with tempfile.TemporaryDirectory(prefix="edgeaffect-int8-reference-") as d:
        fp32 = Path(d) / "fp32.tflite"
        write_fp32(model, specs, calibration, fp32)
        return fp32.read_bytes(), mp.quantize_keeping(calibrated_float(model, specs, calibration), [])


def cpu_reference(*, samples: int = 16, budget_s: float = 0.5, threads: int = 1) -> dict:
    """The plain conv net's float32 and full-int8 whole-model times here (LiteRT XNNPACK,
    batch 1): how much int8 gains on this CPU when nothing in the graph is in its way."""
    from edgeaffect.runtime.litert_ops import op_times

    with tempfile.TemporaryDirectory(prefix="edgeaffect-int8-reference-") as d:
        fp32, int8 = Path(d) / "fp32.tflite", Path(d) / "int8.tflite"
        fp32_blob, int8_blob = _reference_files(samples)
        fp32.write_bytes(fp32_blob)
        int8.write_bytes(int8_blob)
        # interleaved rounds, median of each: the ratio is what counts, and load hits both alike
        times = {"float32": [], "int8": []}
        for _ in range(3):
            for k, p in (("float32", fp32), ("int8", int8)):
                times[k].append(op_times(p, budget_s=budget_s, threads=threads, ops=False)["whole_us"])
    us = {k: float(np.median(v)) for k, v in times.items()}
    return {"model": REFERENCE, "stage": "-", "float32 us": us["float32"], "int8, every op us": us["int8"],
            "int8 as exported us": us["int8"], "exported / float32": us["int8"] / us["float32"],
            "float_layers": [], "mixed_precision": "every op int8 (TFLiteConverter)", "threads": threads}


def reference_line(ref: dict, machine: str) -> str:
    """One sentence on what int8 gains on this CPU, from ``cpu_reference``."""
    from edgeaffect.machine import int8_dot_product

    ratio = ref["exported / float32"]
    dot = int8_dot_product()
    has = ("int8 dot product: unknown" if dot is None else
           f"int8 dot product: {', '.join(dot)}" if dot else
           "no int8 dot-product instruction (AVX-512 VNNI, AVX-VNNI or Arm SDOT)")
    verdict = (f"int8 is {1 / ratio:.2f}x faster than float here" if ratio < 1 else
               f"int8 is {ratio:.2f}x SLOWER than float here even for a plain conv net, so a model's int8 convs "
               f"cannot beat float on this CPU")
    return (f"this CPU's int8 reference ({REFERENCE.split(' (')[0]}, 64x64x1, 4 convs, LiteRT XNNPACK, "
            f"{ref.get('threads', 1)} thread, median of 3 interleaved rounds): float32 {ref['float32 us']:.1f} us, "
            f"int8 {ref['int8, every op us']:.1f} us -- {verdict} ({has}); measured on {machine}")


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
