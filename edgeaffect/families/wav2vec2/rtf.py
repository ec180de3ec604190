"""Real-time factor of the wav2vec 2.0 backbone per 7 s segment on this machine, per format.

    python -m edgeaffect.families.wav2vec2.backbone_export OUT --rtf --size base [--threads 1] [--rounds 8]
    python -m edgeaffect.families.wav2vec2.backbone_export OUT --rtf --backbone HF_DIR

Each format is exported (by its registered export format) and verified against Keras (run by
its runtime; ``backbone_files``) in its own process (a process's memory
goes back to the system when it ends, so the peak is one converter's, not the sum; each
step's peak RSS is recorded), resuming: a format whose record exists in OUT is not redone.
Then one process loads Keras and every file and times one segment per format per round, in
a new random order each round, so the ratios between formats hold on a busy machine
(absolute times do not: re-measure on a quiet one). Writes ``OUT/rtf.json`` naming the
machine, the runtimes' versions and the thread count.

Real-time factor = processing time of one segment / its duration: below 1 keeps up with
live speech. Weights: random (Keras initialisation, seeded) for ``--size``; the time does
not depend on them, the int8 verification figures do (a real checkpoint: ``--backbone``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, VerificationError
from edgeaffect.export.formats import get_format
from edgeaffect.families.wav2vec2.backbone_files import (INPUT, backbone_file, checked, gelu_for, run_file,
                                                         verify_inputs, write_file)
from edgeaffect.io import atomic_path, atomic_write_text
from edgeaffect.machine import versions
from edgeaffect.measure.timing import interleaved
from edgeaffect.runtime import load_runner

RTF_FORMATS = ("keras", "tflite-fp32", "tflite-fp16", "onnx-fp32", "onnx-dyn-int8")
SIZES = ("tiny", "mid", "base", "large")
MODULE = "edgeaffect.families.wav2vec2.backbone_export"


def size_config(size: str):
    """``mid``: base with 4 of its 12 transformer layers (the conv encoder and width of base),
    for a quick run where base's export does not fit the time or memory at hand."""
    from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config

    if size == "tiny":
        return Wav2Vec2Config.tiny("layer")
    if size == "mid":
        return Wav2Vec2Config.base(num_hidden_layers=4)
    if size == "base":
        return Wav2Vec2Config.base()
    if size == "large":
        return Wav2Vec2Config.large("layer")
    raise InputError(f"--size must be one of {', '.join(SIZES)}, given '{size}'")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _model(out: Path, samples: int, *, gelu: str, size: str | None, backbone: Path | None):
    """The feature model for batch 1 and ``samples`` with the run's weights: a checkpoint's, or
    (``size``) seeded random ones written to ``OUT/weights.npz`` by the first step."""
    from edgeaffect.families.wav2vec2.backbone import DEFAULT_SUM, build_feature_model
    from edgeaffect.families.wav2vec2.checkpoint import assign, read_checkpoint

    if backbone is not None:
        config, weights = read_checkpoint(backbone)
    else:
        config, weights = size_config(size), None
        if (out / "weights.npz").is_file():
            with np.load(out / "weights.npz") as z:
                weights = {}
                for key in sorted(z.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
                    weights.setdefault(key.rsplit("/", 1)[0], []).append(z[key])
    from edgeaffect.keras_backend import keras

    keras().utils.set_random_seed(0)
    model = build_feature_model(config, samples=samples, batch=1, definition=DEFAULT_SUM, gelu=gelu)
    if weights is not None:
        assign(model, weights)
    elif backbone is None:
        arrays = {f"{layer.name}/{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
        with atomic_path(out / "weights.npz") as tmp:
            np.savez(tmp, **arrays)
    return model, config


def _threads(threads: int) -> None:
    from edgeaffect.keras_backend import tf

    t = tf()
    t.config.threading.set_intra_op_parallelism_threads(threads)
    t.config.threading.set_inter_op_parallelism_threads(1)


def write_step(out: Path, fmt: str, samples: int, size: str | None, backbone: Path | None) -> dict:
    """One process's step: ``keras`` (weights and the reference features) or one format's file
    and its verification against them. Writes ``OUT/step-FMT.json``."""
    t0 = time.monotonic()
    xs = verify_inputs(samples)
    record: dict = {"format": fmt}
    if fmt == "keras":
        model, config = _model(out, samples, gelu="tf", size=size, backbone=backbone)
        want = np.stack([model(x[None], training=False).numpy()[0] for x in xs])
        np.save(out / "keras-features.npy", want)
        record.update({"config": config.to_dict(), "params": int(model.count_params())})
    else:
        want = np.load(out / "keras-features.npy")
        path = out / backbone_file(fmt)
        model, _ = _model(out, samples, gelu=gelu_for(fmt), size=size, backbone=backbone)
        facts = write_file(model, fmt, samples, path, want, log=sys.stderr)  # the search says how it goes
        del model  # the runtime's copy of the weights is the only one left while it runs
        record.update(checked(fmt, path, run_file(path, fmt, xs), want))
        record.update({k: facts[k] for k in ("float_layers", "mixed_precision") if k in facts})
    record.update({"seconds": round(time.monotonic() - t0, 1), "peak_rss_mb": round(_peak_rss_mb(), 1)})
    atomic_write_text(out / f"step-{fmt}.json", json.dumps(record, indent=2))
    return record


def time_step(out: Path, formats, samples: int, size: str | None, backbone: Path | None, *, threads: int,
              rounds: int, seed: int = 0) -> dict:
    """Load Keras and every file, then time one segment per format per round, interleaved."""
    from edgeaffect.keras_backend import tf

    _threads(threads)
    x = verify_inputs(samples, 1)[0][None].astype(np.float32)
    runs = {}
    for fmt in formats:
        if fmt == "keras":
            model, _ = _model(out, samples, gelu="tf", size=size, backbone=backbone)
            fn = tf().function(lambda a, m=model: m(a, training=False))
            xt = tf().constant(x)
            runs[fmt] = lambda fn=fn, xt=xt: fn(xt).numpy()
        else:
            runner = load_runner(out / backbone_file(fmt), get_format(fmt).runtime, threads=threads)
            runs[fmt] = lambda r=runner: r.run({INPUT: x})
    times = interleaved(runs, rounds, seed=seed)
    result = {"times_s": times, "peak_rss_mb": round(_peak_rss_mb(), 1)}
    atomic_write_text(out / "step-time.json", json.dumps(result, indent=2))
    return result


def run_step(out: Path, args: list[str], log, module: str = MODULE) -> None:
    """``python -m MODULE OUT ARGS`` in its own process (its peak memory its own); a failure
    names the step (the value after the ``--...-step`` flag) and how to resume."""
    cmd = [sys.executable, "-m", module, str(out), *args]
    print("  $ " + " ".join(cmd[1:]), file=log, flush=True)
    r = subprocess.run(cmd)
    if r.returncode != 0:  # the step printed its own line; a kill (memory) prints nothing
        why = "killed (out of memory? check `free -g`, or try --size mid)" if r.returncode < 0 else \
            f"exit {r.returncode}"
        step = next(args[i + 1] for i, a in enumerate(args[:-1]) if a.endswith("-step"))
        raise VerificationError(f"step '{step}' failed ({why}); the steps done are kept in {out}: run the same "
                                "command again to resume")


def measure_rtf(out: Path, *, seconds: float = 7.0, size: str | None = "base", backbone: Path | None = None,
                formats=RTF_FORMATS, threads: int = 1, rounds: int = 8, log=sys.stderr) -> dict:
    """Every step in its own process (resumable), then the interleaved timing; ``OUT/rtf.json``."""
    from edgeaffect.machine import machine

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = int(round(seconds * 16000))
    src = ["--backbone", str(backbone)] if backbone is not None else ["--size", size]
    common = [*src, "--seconds", f"{seconds:g}"]
    steps = ["keras", *[f for f in formats if f != "keras"]]
    done = {}
    for f in steps:
        record = out / f"step-{f}.json"
        if not record.is_file():
            run_step(out, [*common, "--rtf-step", f], log)
        done[f] = json.loads(record.read_text())
    (out / "step-time.json").unlink(missing_ok=True)
    run_step(out, [*common, "--rtf-step", "time", "--threads", str(threads), "--rounds", str(rounds),
                 "--formats", ",".join(formats)], log)
    timing = json.loads((out / "step-time.json").read_text())
    t = {f: np.asarray(v) for f, v in timing["times_s"].items()}
    ref = "keras" if "keras" in t else next(iter(t))
    report = {
        "what": "wav2vec 2.0 feature model (audio -> sum of the transformer layers' outputs), one segment, batch 1",
        "machine": machine(), "threads": threads, "rounds": rounds, "segment_s": seconds, "samples": samples,
        "model": backbone.name if backbone is not None else f"{size} (random weights, seeded)",
        "config": done["keras"]["config"], "params": done["keras"]["params"], "versions": versions(),
        "command": f"python -m {MODULE} {out} --rtf {' '.join(src)} --seconds {seconds:g} --threads {threads} "
                   f"--rounds {rounds} --formats {','.join(formats)}",
        "timing_process_peak_rss_mb": timing["peak_rss_mb"],
        "formats": {},
    }
    for f in formats:
        med = float(np.median(t[f]))
        entry = {"median_s": round(med, 4), "min_s": round(float(t[f].min()), 4),
                 "p90_s": round(float(np.percentile(t[f], 90)), 4), "rtf": round(med / seconds, 4),
                 # paired per round: the same moment's load on both sides
                 f"ratio_to_{ref}": round(float(np.median(t[f] / t[ref])), 3)}
        step = done[f]
        entry["export_peak_rss_mb"] = step["peak_rss_mb"]
        if f != "keras":
            entry.update({k: step[k] for k in ("file", "bytes", "mean_cosine", "rel_max_diff", "passed")})
        report["formats"][f] = entry
        print(f"  {f:14s} median {med * 1e3:9.1f} ms  RTF {med / seconds:.3f}  x{entry[f'ratio_to_{ref}']:.2f} "
              f"{ref}  (export step peak {step['peak_rss_mb'] / 1024:.1f} GB)", file=log, flush=True)
    atomic_write_text(out / "rtf.json", json.dumps(report, indent=2))
    return report


def predict_devices(out: Path, bounds_json: Path, roofs_json: Path, log=sys.stderr) -> dict:
    """Device estimates from this machine's measured efficiency: a prediction, not a measurement.

    efficiency = (the backbone's FLOPs / this machine's ISA float32 peak at the measured thread
    count) / the measured time, per format (an int8 format's figure carries its speed-up over
    float32); a device's estimate = its roofline float32 bound (its catalog peak, also an ISA
    peak) / that efficiency. Assumes the device's kernels reach the same fraction of its peak
    as they do here, and that its bound's thread count scales as the catalog peak says (CPU
    devices only: a GPU's efficiency is not a CPU's). From
    the fastest timed run (as ``host-roofs`` takes its roofs) and from the median (this
    machine's load included): a range.
        edgeaffect host-roofs --threads 1 --json ROOFS.json
        edgeaffect roofline --model wav2vec2-daicwoz --device rpi5 ... --out DIR   # DIR/bounds.json
    """
    out = Path(out)
    rtf = json.loads((out / "rtf.json").read_text())
    rows = json.loads(Path(bounds_json).read_text())
    roofs = json.loads(Path(roofs_json).read_text())
    threads = rtf["threads"]
    peak = next((r["isa_peak_gflops"] for r in roofs["rows"] if r["precision"] == "float32"
                 and r["threads"] == threads), None)
    backbone = [r for r in rows if "/backbone" in r["model"] and r["precision"] == "float32"]
    host = next((r for r in backbone if r["device"] == "host"), None)
    if peak is None or host is None:
        raise InputError(f"{roofs_json} has no float32 row for {threads} thread(s), or {bounds_json} no host "
                         "backbone row: run host-roofs with --threads and roofline with --device host")
    gflop = host["latency_ms"] / 1e3 * host["attainable_gflops"]
    from edgeaffect.roofline.devices import load_catalog

    catalog = load_catalog()
    times = json.loads((out / "step-time.json").read_text())["times_s"]
    seg = rtf["segment_s"]
    report = {"note": "prediction from roofline bounds and this machine's measured efficiency, not a measurement",
              "machine": rtf["machine"], "threads_measured": threads, "gflop_per_segment": round(gflop, 2),
              "isa_peak_gflops": round(peak, 1), "segment_s": seg, "rows": []}
    print(f"  estimates per {seg:g} s segment (prediction; efficiency measured here, {threads} thread(s)):", file=log)
    for f in (f for f in rtf["formats"] if f != "keras"):
        t = np.asarray(times[f])
        eff = {k: gflop / peak / v for k, v in (("best", float(t.min())), ("median", float(np.median(t))))}
        for r in backbone:
            if r["device"] == "host" or catalog[r["device"]].kind != "cpu":  # a GPU's efficiency is not a CPU's
                continue
            est = {k: r["latency_ms"] / 1e3 / e for k, e in eff.items()}
            row = {"device": r["device"], "format": f, "bound_ms": round(r["latency_ms"], 1),
                   "efficiency_best": round(eff["best"], 3), "efficiency_median": round(eff["median"], 3),
                   "estimate_s": [round(est["best"], 2), round(est["median"], 2)],
                   "rtf": [round(est["best"] / seg, 2), round(est["median"] / seg, 2)]}
            row["keeps_up"] = ("yes" if row["rtf"][1] < 1 else "borderline" if row["rtf"][0] < 1 else "no")
            report["rows"].append(row)
            print(f"  {r['device']:18s} {f:14s} bound {row['bound_ms']:8.1f} ms  estimate {row['estimate_s'][0]:.2f}-"
                  f"{row['estimate_s'][1]:.2f} s  RTF {row['rtf'][0]:.2f}-{row['rtf'][1]:.2f}  {row['keeps_up']}",
                  file=log)
    atomic_write_text(out / "predict.json", json.dumps(report, indent=2))
    return report
