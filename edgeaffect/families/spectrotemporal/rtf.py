"""Real-time factor of the paper-size spectrotemporal network's two stages on this machine.

    python -m edgeaffect.families.spectrotemporal.rtf OUT [--model spectrotemporal-avec2013]
        [--formats tflite-fp32,onnx-fp32] [--threads 1] [--rounds 10]

Each stage of the model (``stage_models``: the extractor, one segment's five EfficientNet-B3
passes; the sequence model, S segments' features through the dual-stream transformer and the
head) is built at the model's configured size with seeded random weights (the time does not
depend on them), written in each float format by its registered writer, and timed with batch 1
in interleaved rounds (each round times every file once, in a new random order). Writes
``OUT/rtf.json`` naming the machine, the thread count and the runtimes' versions.

Live speech needs one extractor call per segment of audio and one sequence call per result (a
new sequence every ``sequence_hop`` segments), so
    real-time factor = extractor time / segment_s + sequence time / (sequence_hop x segment_s);
below 1 keeps up. The log-Mel features are not in it (`edgeaffect bench-recordings` times them).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.io import atomic_write_text
from edgeaffect.measure.timing import interleaved

FORMATS = ("tflite-fp32", "onnx-fp32")
FLOAT_FORMATS = ("tflite-fp32", "tflite-fp16", "onnx-fp32")  # written without calibration data
MODULE = "edgeaffect.families.spectrotemporal.rtf"


def _threads(threads: int) -> None:
    from edgeaffect.keras_backend import tf

    tf().config.threading.set_intra_op_parallelism_threads(threads)
    tf().config.threading.set_inter_op_parallelism_threads(1)


def write_stages(out: Path, model: str, formats, log=sys.stderr) -> dict:
    """Every stage in every format (skipped where the file exists); stage -> {format: path}."""
    from edgeaffect.contract.registry import get_model
    from edgeaffect.export.formats import get_format
    from edgeaffect.keras_backend import keras

    spec = get_model(model)
    keras().utils.set_random_seed(0)
    files: dict[str, dict[str, Path]] = {}
    for stage, (m, _) in spec.family_plugin.stage_models(spec).items():
        specs = {i.name.split(":")[0]: tuple(int(d) for d in i.shape[1:]) for i in m.inputs}
        for fmt in formats:
            f = get_format(fmt)
            path = out / f"{stage}-{fmt}{f.suffix}"
            if not path.is_file():
                t0 = time.monotonic()
                f.write(m, specs, [], path)
                print(f"  wrote {path.name} ({path.stat().st_size / 2 ** 20:.1f} MiB, {time.monotonic() - t0:.0f} s)",
                      file=log, flush=True)
            files.setdefault(stage, {})[fmt] = path
    return files


def time_stages(files: dict, *, threads: int, rounds: int, seed: int = 0) -> dict:
    """(stage, format) -> seconds per call, one call each per round, the order shuffled each round."""
    from edgeaffect.export.formats import get_format
    from edgeaffect.measure.profile import random_feeds
    from edgeaffect.runtime import load_runner

    calls = {}
    for stage, by_fmt in files.items():
        for fmt, path in by_fmt.items():
            runner = load_runner(path, get_format(fmt).runtime, threads=threads)
            feeds = random_feeds(runner.inputs)
            calls[(stage, fmt)] = lambda r=runner, x=feeds: r.run(x)
    return interleaved(calls, rounds, seed=seed)


def measure(out: Path, *, model: str = "spectrotemporal-avec2013", formats=FORMATS, threads: int = 1,
            rounds: int = 10, log=sys.stderr) -> dict:
    from edgeaffect.contract.registry import get_model
    from edgeaffect.machine import machine, versions
    from edgeaffect.roofline.readers import analyse

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _threads(threads)
    files = write_stages(out, model, formats, log)
    times = time_stages(files, threads=threads, rounds=rounds)
    feats = get_model(model).config.features
    seg, hop = feats.segment_s, feats.sequence_hop
    report = {"model": model, "machine": machine(), "threads": threads, "rounds": rounds,
              "weights": "random (seeded): the time does not depend on them", "segment_s": seg,
              "sequence_hop": hop, "segments_per_sequence": feats.segments_per_sequence, "versions": versions(),
              "command": f"python -m {MODULE} {out} --model {model} --formats {','.join(formats)} --threads {threads} "
                         f"--rounds {rounds}", "stages": {}, "live": {}}
    for (stage, fmt), t in times.items():
        t = np.asarray(t)
        report["stages"].setdefault(stage, {})[fmt] = {
            "median_ms": round(float(np.median(t)) * 1e3, 2), "min_ms": round(float(t.min()) * 1e3, 2),
            "gflops": round(analyse(files[stage][fmt]).flops / 1e9, 6)}
    for fmt in formats:
        ext = report["stages"]["extractor"][fmt]["median_ms"] / 1e3
        sq = report["stages"]["sequence"][fmt]["median_ms"] / 1e3
        report["live"][fmt] = {"rtf": round(ext / seg + sq / (hop * seg), 4),
                               "rtf_a_result_every_segment": round((ext + sq) / seg, 4)}
    atomic_write_text(out / "rtf.json", json.dumps(report, indent=2))
    print(table(report), file=log, flush=True)
    return report


def table(r: dict) -> str:
    lines = [f"{r['model']} (its configured size, random weights); {r['machine']}; {r['threads']} thread(s), "
             f"{r['rounds']} interleaved rounds, batch 1",
             f"{'stage':10s} {'format':12s} {'GFLOPs':>7s} {'median':>10s} {'fastest':>10s}"]
    for stage, by in r["stages"].items():
        for fmt, s in by.items():
            lines.append(f"{stage:10s} {fmt:12s} {s['gflops']:7.4g} {s['median_ms']:8.1f}ms {s['min_ms']:8.1f}ms")
    for fmt, live in r["live"].items():
        lines.append(f"live speech, {fmt}: real-time factor {live['rtf']:.3f} (a segment every {r['segment_s']:g} s, "
                     f"a result every {r['sequence_hop']} segments; {live['rtf_a_result_every_segment']:.3f} with a "
                     "result every segment)")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    from edgeaffect.errors import EdgeAffectError
    from edgeaffect.logs import quiet_entry_point

    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Real-time factor of a spectrotemporal "
                                "model's two stages at its configured (paper) size, random weights.")
    p.add_argument("out", type=Path)
    p.add_argument("--model", default="spectrotemporal-avec2013")
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=10)
    a = p.parse_args(argv)
    quiet_entry_point()
    formats = [f.strip() for f in a.formats.split(",") if f.strip()]
    try:
        bad = [f for f in formats if f not in FLOAT_FORMATS]
        if bad:
            raise InputError(f"--formats: {', '.join(bad)} cannot be written without calibration data here; "
                             f"choose from {', '.join(FLOAT_FORMATS)}")
        if a.threads < 1 or a.rounds < 1:
            raise InputError("--threads and --rounds must be >= 1")
        from edgeaffect.contract.registry import get_model

        if get_model(a.model).family_plugin.name != "spectrotemporal":
            raise InputError(f"{a.model} is not a spectrotemporal model (see `edgeaffect models`)")
        measure(a.out, model=a.model, formats=formats, threads=a.threads, rounds=a.rounds)
    except EdgeAffectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
