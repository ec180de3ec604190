"""Side by side: the wav2vec 2.0 feature model through this toolkit's files and through the
path a user would otherwise take, on one checkpoint, one machine, one run.

    python -m edgeaffect.families.wav2vec2.peers OUT --size base [--threads 1] [--rounds 8]
    python -m edgeaffect.families.wav2vec2.peers OUT --backbone HF_DIR
    make bench-peers                      # base, random weights, OUT = build/peers-base

The peers (transformers' PyTorch model, as a user without this toolkit would run it):
``torch-fp32`` (eager), ``torch-dyn-int8`` (``torch.ao.quantization.quantize_dynamic`` on the
Linear layers), ``ort-torch-fp32`` (ONNX Runtime on the legacy ``torch.onnx.export`` of it;
the dynamo exporter needs onnxscript, which no extra carries) and ``ort-torch-dyn-int8``
(``onnxruntime.quantization.quantize_dynamic`` of that file, its defaults). Every path computes
the same thing: one segment of normalised audio -> the sum of the transformer layers' outputs
(``sum_hidden_states``), batch 1.

``--size`` writes a transformers checkpoint with seeded random weights to ``OUT/checkpoint``
first, so ours and the peers start from the same weights (the import path a user with a real
checkpoint takes: ``read_checkpoint``). Each export runs in its own process (its peak RSS is
its own; resumable: a step whose record exists is not redone). One process then loads every
path and times one segment per path per round, in a new random order each round; ratios are
paired per round (the same moment's load on both sides) and every path's output is compared
with PyTorch fp32's on the timed segment (mean per-frame cosine). Writes ``OUT/peers.json``
and prints one table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.backbone_files import FORMATS, INPUT, backbone_file, compare, verify_inputs
from edgeaffect.families.wav2vec2.rtf import _peak_rss_mb
from edgeaffect.io import atomic_path, atomic_write_text
from edgeaffect.measure.timing import interleaved

OURS = ("keras", *FORMATS)
PEERS = ("torch-fp32", "torch-dyn-int8", "ort-torch-fp32", "ort-torch-dyn-int8")
PEER_FILES = {"ort-torch-fp32": "peer_torch_fp32.onnx", "ort-torch-dyn-int8": "peer_torch_dyn_int8.onnx"}
REFERENCE = "torch-fp32"  # what every output is compared with
RATIO_TO = "ort-torch-fp32"  # what every time is divided by: the fastest float peer measured so far
MODULE = "edgeaffect.families.wav2vec2.peers"
DESCRIBE = {
    "keras": "ours: Keras model(x) (tf.function)",
    "tflite-fp32": "ours: LiteRT fp32 (what the Pis run)",
    "tflite-fp16": "ours: LiteRT fp16 weights",
    "tflite-dynamic-int8": "ours: LiteRT dynamic-range int8 weights",
    "onnx-fp32": "ours: ONNX Runtime fp32",
    "onnx-dyn-int8": "ours: ONNX Runtime dynamic int8 (MatMuls)",
    "torch-fp32": "peer: transformers PyTorch, eager fp32",
    "torch-dyn-int8": "peer: PyTorch dynamic int8 (Linear)",
    "ort-torch-fp32": "peer: ONNX Runtime on torch.onnx.export, fp32",
    "ort-torch-dyn-int8": "peer: ONNX Runtime dynamic int8 of that export",
}


def _torch():
    torch = require("torch", "dev")
    transformers = require("transformers", "dev")
    from edgeaffect.logs import verbose

    if not verbose():  # its "Loading weights" bar and notices are for its own developers
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    return torch


def _summed(model):
    """transformers' model -> a module returning the summed feature our feature model outputs."""
    torch = _torch()
    from edgeaffect.families.wav2vec2.backbone import DEFAULT_SUM, sum_hidden_states

    class Summed(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, audio):
            return sum_hidden_states(self.inner(audio, output_hidden_states=True).hidden_states, DEFAULT_SUM)

    return Summed(model).eval()


def write_checkpoint(out: Path, size: str, seed: int = 0) -> Path:
    """A transformers checkpoint of ``size`` with seeded random weights, in ``OUT/checkpoint``."""
    torch = _torch()
    import transformers

    from edgeaffect.families.wav2vec2.rtf import size_config

    torch.manual_seed(seed)
    hf = transformers.Wav2Vec2Config(**size_config(size).to_dict(), attn_implementation="eager")
    model = transformers.Wav2Vec2Model(hf).eval()
    import shutil

    folder = out / "checkpoint"
    tmp = out / "checkpoint.partial"
    shutil.rmtree(tmp, ignore_errors=True)  # a run killed half way
    model.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def _torch_model(checkpoint: Path, int8: bool):
    torch = _torch()
    import transformers

    model = transformers.Wav2Vec2Model.from_pretrained(checkpoint, attn_implementation="eager").eval()
    if int8:
        import warnings

        with warnings.catch_warnings():  # torch.ao's deprecation notice: the API still works, and is what users run
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return _summed(model)


def peer_step(out: Path, peer: str, checkpoint: Path, samples: int) -> dict:
    """One peer's export in its own process: ``ort-torch-fp32`` (torch.onnx.export) or
    ``ort-torch-dyn-int8`` (ONNX Runtime's dynamic quantization of that file)."""
    t0 = time.monotonic()
    path = out / PEER_FILES[peer]
    if peer == "ort-torch-fp32":
        torch = _torch()
        import warnings

        model = _torch_model(checkpoint, int8=False)
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(model, (torch.zeros(1, samples),), str(tmp), dynamo=False, input_names=[INPUT],
                              output_names=["feature"], opset_version=17)
    else:
        import logging

        from onnxruntime.quantization import quantize_dynamic

        from edgeaffect.logs import verbose

        if not verbose():  # its advice to pre-process first goes to the root logger
            logging.getLogger().setLevel(logging.ERROR)
        with atomic_path(path) as tmp:
            quantize_dynamic(str(out / PEER_FILES["ort-torch-fp32"]), str(tmp))
    record = {"format": peer, "file": path.name, "bytes": path.stat().st_size,
              "seconds": round(time.monotonic() - t0, 1), "peak_rss_mb": round(_peak_rss_mb(), 1)}
    atomic_write_text(out / f"step-{peer}.json", json.dumps(record, indent=2))
    return record


def _runners(out: Path, paths, checkpoint: Path, samples: int, threads: int) -> dict:
    """name -> a callable running one segment and returning its (frames, hidden) feature."""
    from edgeaffect.export.formats import get_format
    from edgeaffect.families.wav2vec2.rtf import _model, _threads
    from edgeaffect.runtime import load_runner

    x = verify_inputs(samples, 1)[0][None].astype(np.float32)
    runs = {}
    for name in paths:
        if name == "keras":
            from edgeaffect.keras_backend import tf

            _threads(threads)
            model, _ = _model(out, samples, gelu="tf", size=None, backbone=checkpoint)
            fn, xt = tf().function(lambda a, m=model: m(a, training=False)), tf().constant(x)
            runs[name] = lambda fn=fn, xt=xt: fn(xt).numpy()[0]
        elif name in ("torch-fp32", "torch-dyn-int8"):
            torch = _torch()
            torch.set_num_threads(threads)
            model, xt = _torch_model(checkpoint, int8=name.endswith("int8")), torch.from_numpy(x)

            def run(m=model, xt=xt):
                with torch.inference_mode():
                    return m(xt).numpy()[0]
            runs[name] = run
        else:
            file = out / (PEER_FILES[name] if name in PEER_FILES else backbone_file(name))
            runtime = "onnxruntime" if name in PEER_FILES else get_format(name).runtime
            runner = load_runner(file, runtime, threads=threads)
            runs[name] = lambda r=runner: r.run({INPUT: x})[0]  # the single output, batch 1
    return runs


def time_step(out: Path, paths, checkpoint: Path, samples: int, *, threads: int, rounds: int, seed: int = 0) -> dict:
    """Every path loaded in one process, one segment each per round, in a new order each round."""
    if "torch-fp32" in paths or "torch-dyn-int8" in paths:
        _torch().set_num_interop_threads(1)  # before any torch work, or torch refuses
    runs = _runners(out, paths, checkpoint, samples, threads)
    # the first call of each is both warm-up and the output compared with PyTorch's
    outputs = {name: np.asarray(fn(), dtype=np.float32) for name, fn in runs.items()}
    times = interleaved(runs, rounds, warmup=1, seed=seed)
    ref = outputs.get(REFERENCE)
    agreement = {name: compare(o[None], ref[None]) for name, o in outputs.items()} if ref is not None else {}
    result = {"times_s": times, "agreement": agreement, "peak_rss_mb": round(_peak_rss_mb(), 1)}
    atomic_write_text(out / "step-peers-time.json", json.dumps(result, indent=2))
    return result


def measure_side_by_side(out: Path, *, size: str | None = "base", backbone: Path | None = None,
                         ours=OURS, peers=PEERS, seconds: float = 7.0, threads: int = 1, rounds: int = 8,
                         log=sys.stderr) -> dict:
    """Checkpoint, every export in its own process (resumable), then the interleaved timing."""
    from edgeaffect.families.wav2vec2.rtf import MODULE as RTF_MODULE
    from edgeaffect.families.wav2vec2.rtf import run_step
    from edgeaffect.machine import RUNTIMES, machine, versions

    _torch()  # the peers need the dev extra: say so before any export starts
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = int(round(seconds * 16000))
    generated = backbone is None
    if generated:
        backbone = out / "checkpoint"
        if not (backbone / "config.json").is_file():
            run_step(out, ["--size", size, "--step", "checkpoint"], log, MODULE)
    common = ["--backbone", str(backbone), "--seconds", f"{seconds:g}"]
    ours = ["keras", *[f for f in ours if f != "keras"]]  # keras writes the weights every format starts from
    peers = [p for p in PEERS if p in peers or p == REFERENCE  # every output is compared with it
             or (p == "ort-torch-fp32" and "ort-torch-dyn-int8" in peers)]  # the int8 file is made from it
    steps = {}
    for name in ours:
        if not (out / f"step-{name}.json").is_file():
            run_step(out, [*common, "--rtf-step", name], log, RTF_MODULE)
        steps[name] = json.loads((out / f"step-{name}.json").read_text())
    for name in (p for p in peers if p in PEER_FILES):
        if not (out / f"step-{name}.json").is_file():
            run_step(out, [*common, "--step", name], log, MODULE)
        steps[name] = json.loads((out / f"step-{name}.json").read_text())
    paths = [*ours, *peers]
    (out / "step-peers-time.json").unlink(missing_ok=True)
    run_step(out, [*common, "--threads", str(threads), "--rounds", str(rounds), "--paths", ",".join(paths),
                         "--step", "time"], log, MODULE)
    timing = json.loads((out / "step-peers-time.json").read_text())
    report = _report(timing, steps, paths, seconds=seconds, threads=threads, rounds=rounds)
    report.update({"machine": machine(), "versions": versions((*RUNTIMES, "torch", "transformers")),
                   "model": f"{size} (random weights, seeded)" if generated else backbone.name,
                   "command": f"python -m {MODULE} {out} " + (f"--size {size}" if generated else f"--backbone {backbone}")
                   + f" --seconds {seconds:g} --threads {threads} --rounds {rounds}"})
    atomic_write_text(out / "peers.json", json.dumps(report, indent=2))
    print(table(report), file=log, flush=True)
    return report


def _report(timing: dict, steps: dict, paths, *, seconds: float, threads: int, rounds: int) -> dict:
    t = {name: np.asarray(v) for name, v in timing["times_s"].items()}
    base = RATIO_TO if RATIO_TO in t else REFERENCE
    rows = []
    for name in paths:
        med = float(np.median(t[name]))
        step = steps.get(name, {})
        agree = timing["agreement"].get(name, {})
        rows.append({
            "path": name, "what": DESCRIBE[name], "ours": name in OURS,
            "median_s": round(med, 4), "min_s": round(float(t[name].min()), 4), "rtf": round(med / seconds, 4),
            # paired per round: the same moment's load on both sides
            "ratio": round(float(np.median(t[name] / t[base])), 3),
            "cosine_to_torch_fp32": None if not agree else round(agree["mean_cosine"], 5),
            "verified": step.get("passed"),  # ours: against Keras at the format's bound; peers: not ours to verify
            "bytes": step.get("bytes"), "export_peak_rss_mb": step.get("peak_rss_mb"),
        })
    return {"what": "wav2vec 2.0 feature model (audio -> sum of the transformer layers' outputs), one segment, "
                    "batch 1, ours and the PyTorch / ONNX Runtime path on the same checkpoint",
            "segment_s": seconds, "threads": threads, "rounds": rounds, "ratio_to": base,
            "timing_process_peak_rss_mb": timing["peak_rss_mb"], "rows": rows, "goals": goals(rows, t)}


def goals(rows: list[dict], times: dict) -> list[dict]:
    """The issue's bars, as measured: our best LiteRT fp32 <= ONNX Runtime on PyTorch's export
    (fp32); our best verified quantized LiteRT <= PyTorch dynamic int8, and our ONNX int8 ahead
    of it. Each ratio is paired per round (median of ours / peer over the rounds: the same
    moment's load on both); the best of ours is the one with the lowest median. A bar whose
    paths were not timed is left out."""
    by = {r["path"]: r for r in rows}

    def best(names, verified=False):
        got = [by[n] for n in names if n in by and (not verified or by[n]["verified"])]
        return min(got, key=lambda r: r["median_s"]) if got else None

    out = []
    for label, ours, peer in (("LiteRT fp32 vs ONNX Runtime fp32 on the PyTorch export",
                               best(["tflite-fp32", "tflite-fp16"]), by.get("ort-torch-fp32")),
                              ("quantized LiteRT that verifies vs PyTorch dynamic int8",
                               best(["tflite-dynamic-int8"], verified=True), by.get("torch-dyn-int8")),
                              ("ONNX dynamic int8 vs PyTorch dynamic int8", best(["onnx-dyn-int8"]),
                               by.get("torch-dyn-int8"))):
        if peer is None:
            continue
        if ours is None:
            out.append({"goal": label, "met": False, "why": "no such path of ours verified"})
            continue
        ratio = float(np.median(np.asarray(times[ours["path"]]) / np.asarray(times[peer["path"]])))
        out.append({"goal": label, "ours": ours["path"], "peer": peer["path"], "ratio": round(ratio, 3),
                    "met": ratio <= 1.0})
    return out


def table(report: dict) -> str:
    lines = [f"wav2vec 2.0 side by side: {report.get('model', '')}; {report.get('machine', '')}; "
             f"{report['threads']} thread(s), {report['rounds']} interleaved rounds, {report['segment_s']:g} s segment",
             f"{'path':20s} {'median':>9s} {'RTF':>6s} {'x ' + report['ratio_to']:>17s} {'cos to torch':>12s}  "
             f"{'verified':8s} what"]
    for r in report["rows"]:
        cos = "-" if r["cosine_to_torch_fp32"] is None else f"{r['cosine_to_torch_fp32']:.5f}"
        ver = {True: "yes", False: "NO", None: "-"}[r["verified"]]
        lines.append(f"{r['path']:20s} {r['median_s'] * 1e3:7.1f}ms {r['rtf']:6.3f} {r['ratio']:17.2f} {cos:>12s}  "
                     f"{ver:8s} {r['what']}")
    for g in report["goals"]:
        if "ratio" in g:
            lines.append(f"goal: {g['goal']}: {g['ours']} / {g['peer']} = {g['ratio']:.2f} "
                         f"({'met' if g['met'] else 'NOT met'})")
        else:
            lines.append(f"goal: {g['goal']}: NOT met ({g['why']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    from edgeaffect.errors import EdgeAffectError
    from edgeaffect.families.wav2vec2.rtf import SIZES

    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description="Ours against the PyTorch / ONNX Runtime "
                                "path on one wav2vec 2.0 checkpoint: one table of medians, ratios and cosines.")
    p.add_argument("out", type=Path)
    p.add_argument("--size", choices=SIZES, help="a random-weight checkpoint of this size (written to OUT/checkpoint)")
    p.add_argument("--backbone", type=Path, help="a local Hugging Face checkpoint folder instead")
    p.add_argument("--seconds", type=float, default=7.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--ours", default=",".join(OURS), help=f"comma-separated, of {', '.join(OURS)}")
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    p.add_argument("--verbose", "-v", action="store_true", help="show what the libraries log")
    p.add_argument("--step", help=argparse.SUPPRESS)
    p.add_argument("--paths", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    from edgeaffect.logs import quiet_entry_point

    quiet_entry_point(a.verbose)
    samples = int(round(a.seconds * 16000))
    try:
        if a.step == "checkpoint":
            write_checkpoint(a.out, a.size)
            return 0
        if (a.backbone is None) == (a.size is None):
            p.error("give one of --size / --backbone")
        if a.threads < 1 or a.rounds < 1:
            p.error("--threads and --rounds must be >= 1")
        if a.step == "time":
            time_step(a.out, a.paths.split(","), a.backbone, samples, threads=a.threads, rounds=a.rounds)
            return 0
        if a.step:
            peer_step(a.out, a.step, a.backbone, samples)
            return 0
        ours = [f.strip() for f in a.ours.split(",") if f.strip()]
        peers = [f.strip() for f in a.peers.split(",") if f.strip()]
        unknown = [f for f in ours if f not in OURS] + [f for f in peers if f not in PEERS]
        if unknown:
            p.error(f"unknown path(s) {', '.join(unknown)} (ours: {', '.join(OURS)}; peers: {', '.join(PEERS)})")
        measure_side_by_side(a.out, size=a.size, backbone=a.backbone, ours=ours, peers=peers, seconds=a.seconds,
                             threads=a.threads, rounds=a.rounds)
    except EdgeAffectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
