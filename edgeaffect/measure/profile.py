"""``edgeaffect profile``: how fast one artifact runs here, and what it holds in memory.

Device side: needs NumPy and the artifact's runtime only (LiteRT, ONNX Runtime or
TensorRT); Keras run folders are profiled for reference on the desktop.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.measure.timing import measure


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, so each profile sees its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def random_feeds(inputs: dict, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.random(tuple(d if isinstance(d, int) and d > 0 else 1 for d in info.shape), dtype=np.float32)
            for name, info in inputs.items()}


class KerasRunner:
    """A training run's Keras model, called directly (``model(x)``): the reference."""

    name = "keras"

    def __init__(self, run_dir: Path, threads: int | None = None):
        from edgeaffect.keras_backend import tf
        from edgeaffect.runtime.base import TensorInfo
        from edgeaffect.train.runs import load_run

        if threads:
            tf().config.threading.set_intra_op_parallelism_threads(threads)
            tf().config.threading.set_inter_op_parallelism_threads(1)
        self.model = load_run(run_dir).model
        self.package = f"tf_keras {tf().__version__}"
        self.inputs = {t.name.split(":")[0]: TensorInfo(t.name.split(":")[0], tuple(t.shape), "float32")
                       for t in self.model.inputs}

    def run(self, feeds):
        return np.asarray(self.model(feeds, training=False))


def open_artifact(path: Path, runtime: str | None, threads: int | None, fmt: str | None = None):
    """(runner, description) for a model file, an export folder (with ``fmt``) or a run folder."""
    from edgeaffect.runtime import load_runner

    if path.is_dir():
        if (path / "run.json").is_file():
            if runtime not in (None, "keras"):
                raise InputError(f"{path} is a training run: only --runtime keras applies")
            return KerasRunner(path, threads), "keras"
        if (path / "manifest.json").is_file():
            from edgeaffect._optional import lookup
            from edgeaffect.device.bundle import open_bundle

            bundle = open_bundle(path)  # version and checksums, as every other reader of a bundle
            if bundle.stage_folders():  # one file per stage: which one is for the caller to say
                raise InputError(f"{path} is a staged bundle: profile one stage's folder "
                                 f"({', '.join(str(f) for f in bundle.stage_folders())})")
            files = bundle.manifest["files"]
            entry = lookup("format in this export", fmt or next(iter(files)), files)
            path = path / entry["file"]
        else:
            raise InputError(f"{path} is a folder but neither a run (run.json) nor an export (manifest.json)")
    if not path.exists():
        raise InputError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty: not a model")
    return load_runner(path, runtime, threads=threads), path.suffix.lstrip(".")


def onnx_op_profile(path: Path, feeds, threads: int | None, runs: int = 50) -> list[dict]:
    """Per-operator mean time from ONNX Runtime's own profiler (a separate session)."""
    import onnxruntime as ort

    from edgeaffect.runtime.onnxrt import inference_session

    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ea-ortprof-")) / "ort")
    if threads:
        opts.intra_op_num_threads = threads
    sess = inference_session(ort, str(path), opts, ["CPUExecutionProvider"])  # what the runner runs
    names = [i.name for i in sess.get_inputs()]
    for _ in range(runs):
        sess.run(None, {k: feeds[k] for k in names})
    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink(missing_ok=True)
    totals: dict[str, dict] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            node = e["name"][: -len("_kernel_time")]
            t = totals.setdefault(node, {"op": node, "type": e.get("args", {}).get("op_name", ""), "us": 0.0})
            t["us"] += e["dur"]
    rows = [{"op": t["op"], "type": t["type"], "mean_us": t["us"] / runs} for t in totals.values()]
    return sorted(rows, key=lambda r: -r["mean_us"])


def profile(artifact: str | Path, *, runtime: str | None = None, threads: int | None = 1, budget_s: float = 2.0,
            warmup: int = 10, fmt: str | None = None, op_profile: bool = True) -> dict:
    """Init time, first inference, latency percentiles, runs, memory, and per-op times."""
    from edgeaffect.machine import machine

    path = Path(artifact)
    _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    t0 = time.perf_counter()
    runner, kind = open_artifact(path, runtime, threads, fmt)
    init_ms = (time.perf_counter() - t0) * 1e3
    feeds = random_feeds(runner.inputs)
    from edgeaffect.measure.power import tegrastats_power

    with tegrastats_power() as power:
        t = measure(lambda: runner.run(feeds), warmup=warmup, budget_s=budget_s)
    peak = _status_kib("VmHWM")
    result = {
        "artifact": str(path), "runtime": runner.name, "package": runner.package, "threads": threads,
        "machine": machine(), "batch": 1, "inputs": {k: list(v.shape) for k, v in feeds.items()},
        "init_ms": init_ms, **t.to_dict(), "first_inference_ms": t.first_ms,
        "throughput_per_s": 1e3 / t.p50_ms if t.p50_ms else None,
        "peak_rss_mib": peak / 1024 if peak else None,
        "model_memory_mib": (peak - rss_before) / 1024 if peak and rss_before else None,
        "memory_note": "peak_rss_mib: the whole process; model_memory_mib: peak resident memory added by "
                       "loading and running this model (Linux VmHWM reset before loading)",
        "op_profile": None, "op_profile_note": "", "power": power,
    }
    model_file = getattr(runner, "path", None) or (path if path.is_file() else None)
    if op_profile and runner.name == "onnxruntime" and model_file:
        result["op_profile"] = onnx_op_profile(Path(model_file), feeds, threads)
        result["op_profile_note"] = "ONNX Runtime profiler, mean over 50 runs"
    elif op_profile and runner.name == "litert" and model_file:
        from dataclasses import asdict

        from edgeaffect.runtime.litert_ops import op_times

        timed = op_times(Path(model_file), kernels=getattr(runner, "kernels", "xnnpack"), threads=threads)
        result["op_profile"] = sorted(({**asdict(o), "op": f"#{o.index} {o.shape}", "mean_us": o.us}
                                       for o in timed["ops"]), key=lambda r: -(r["mean_us"] or 0.0))
        result["op_profile_note"] = (
            f"LiteRT, {timed['kernels']} kernels: each op cut out into a model of its own and timed alone (median, "
            f"one interpreter call included); whole model {timed['whole_us']:.1f} us, sum of ops "
            f"{timed['sum_us']:.1f} us, {timed['partitions']} delegate partition(s)")
        if any("int8" in (o.dtype or "") for o in timed["ops"]):
            result["op_profile_note"] += "; " + _int8_here()
    return result


def _int8_here() -> str:
    """Why an int8 op may be slower than float on this CPU: whether it has the int8
    dot-product instructions XNNPACK's int8 kernels gain from."""
    from edgeaffect.machine import int8_dot_product

    dot = int8_dot_product()
    if dot is None:
        return "this CPU's int8 dot-product instructions: unknown (`edgeaffect bench-int8` measures int8 here)"
    if dot:
        return f"this CPU has int8 dot-product instructions ({', '.join(dot)})"
    return ("this CPU has no int8 dot-product instruction (AVX-512 VNNI, AVX-VNNI or Arm SDOT), so int8 convs and "
            "matmuls can be slower than float here (`edgeaffect bench-int8` measures a plain conv net both ways)")


def _us(us) -> str:
    return f"{us:9.1f} us" if us is not None else "        - us"


def _where(o: dict) -> str:
    """LiteRT rows: dtype, whether XNNPACK takes the op, and why an op could not be timed."""
    parts = [o[k] for k in ("dtype",) if o.get(k)]
    if o.get("delegated") is not None:
        parts.append("xnnpack" if o["delegated"] else "NOT delegated")
    if o.get("note"):
        parts.append(o["note"])
    return ("  " + "  ".join(parts)) if parts else ""


def format_profile(r: dict) -> str:
    lines = [f"{r['artifact']}  [{r['runtime']}: {r['package']}, {r['threads']} thread(s), batch 1]",
             f"machine: {r['machine']}",
             f"init {r['init_ms']:.1f} ms   first inference {r['first_inference_ms']:.3f} ms   runs {r['runs']}",
             f"p50 {r['p50_ms']:.3f}  p90 {r['p90_ms']:.3f}  p99 {r['p99_ms']:.3f}  mean {r['mean_ms']:.3f}  "
             f"std {r['std_ms']:.3f} ms   throughput {r['throughput_per_s']:.0f}/s",
             f"memory: peak RSS {r['peak_rss_mib']:.1f} MiB (process), added by the model {r['model_memory_mib']:.1f} MiB"
             if r["peak_rss_mib"] else "memory: not available on this OS"]
    if r["op_profile"]:
        lines.append(f"per operator ({r['op_profile_note']}):")
        lines += [f"  {_us(o['mean_us'])}  {o['type']:22s} {o['op']}{_where(o)}" for o in r["op_profile"][:15]]
        if len(r["op_profile"]) > 15:
            lines.append(f"  ... {len(r['op_profile']) - 15} more (--json for all)")
    elif r["op_profile_note"]:
        lines.append(f"per operator: {r['op_profile_note']}")
    return "\n".join(lines)

