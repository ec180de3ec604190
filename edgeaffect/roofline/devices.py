"""The device catalog (``roofline/devices.toml``), the host's measured ceilings, and the
roofline: attainable performance and a lower bound on latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from edgeaffect._optional import lookup
from edgeaffect.errors import InputError

PRECISION_FALLBACK = {"int8": ("int8", "float16", "float32"), "float16": ("float16", "float32"),
                      "float32": ("float32",)}


@dataclass(frozen=True)
class Figure:
    value: float
    basis: str  # datasheet | measured | derived | recalled
    source: str


@dataclass
class Device:
    key: str
    name: str
    kind: str
    compute: str
    runtimes: list[str]
    peaks: dict[str, Figure] = field(default_factory=dict)  # precision -> GFLOP/s (GOP/s)
    bandwidths: dict[str, Figure] = field(default_factory=dict)  # "theoretical" / "measured" -> GB/s
    # Measured per runtime (the host): runtime -> precision -> roof; used for that runtime's models.
    runtime_peaks: dict[str, dict[str, Figure]] = field(default_factory=dict)
    # Labelled figures drawn for reference, never used as a roof (ISA peak, NumPy GEMM).
    references: dict[str, Figure] = field(default_factory=dict)
    cores: int | None = None  # CPUs: the core count and clock the peak figures are for
    clock_ghz: float | None = None

    @property
    def bandwidth(self) -> Figure:
        """The roof: the measured ceiling when there is one, else the theoretical one."""
        return self.bandwidths.get("measured") or self.bandwidths["theoretical"]

    def peak(self, precision: str, runtime: str | None = None) -> tuple[Figure, str]:
        """The compute roof for a precision (measured for ``runtime`` where the device has
        that runtime's roofs), and which precision's figure it is."""
        peaks = self.runtime_peaks.get(runtime) or self.peaks
        for p in PRECISION_FALLBACK.get(precision, ("float32",)):
            if p in peaks:
                return peaks[p], p
        raise InputError(f"device '{self.key}' has no peak figure in the catalog")


def catalog_text(name: str) -> str:
    return resources.files("edgeaffect.roofline").joinpath("data", name).read_text()


def _figure(d: dict, where: str) -> Figure:
    try:
        return Figure(float(d["value"]), str(d["basis"]), str(d["source"]))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"device catalog: {where} needs value, basis and source") from None


def load_catalog(text: str | None = None) -> dict[str, Device]:
    data = tomllib.loads(text if text is not None else catalog_text("devices.toml"))
    devices = {}
    for key, d in data.items():
        dev = Device(key, d.get("name", key), d.get("kind", "cpu"), d.get("compute", ""), list(d.get("runtimes", [])),
                     cores=d.get("cores"), clock_ghz=d.get("clock_ghz"))
        dev.peaks = {p: _figure(f, f"{key}.peak_gflops.{p}") for p, f in d.get("peak_gflops", {}).items()}
        dev.bandwidths = {b: _figure(f, f"{key}.bandwidth_gbs.{b}") for b, f in d.get("bandwidth_gbs", {}).items()}
        if d.get("measure"):
            dev.peaks, dev.bandwidths = {}, {}
        devices[key] = dev
    return devices


HOST_RUNTIME = "litert"  # whose roofs the host's plot draws as solid lines (the runtime a device runs)


def get_device(key: str, *, measure_host: bool = True, threads: int = 1, refresh: bool = False,
               cache: Path | None = None) -> Device:
    """A catalog device; for ``host`` (unless ``measure_host`` is false) its roofs measured
    here: per runtime and precision, the fastest a large FullyConnected / Conv2D runs through
    that runtime's own kernels (``runtime_roofs``), with the ISA's theoretical peak and the
    NumPy GEMM beside them as labelled references."""
    from edgeaffect.roofline.isa import at_needed_clock, isa_peak

    dev = lookup("device", key, load_catalog())
    if key == "host" and measure_host:
        c = host_ceilings(threads, refresh=refresh, cache=cache)
        src = f"measured here ({c['machine']}, {threads} thread(s), numpy {c['numpy']})"
        dev.bandwidths = {"measured": Figure(c["copy_gbs"], "measured",
                                             f"copy of {c['copy_mib']} MiB (read + write counted): " + src)}
        roofs = runtime_roofs(threads, refresh=refresh, cache=cache)
        dev.runtime_peaks = {
            rt: {p: Figure(r["gflops"], "measured",
                           f"{r['probe']} through {r['package']} ({threads} thread(s)), fastest of "
                           f"{r['runs']} invokes, measured here ({roofs['machine']})") for p, r in per.items()}
            for rt, per in roofs["runtimes"].items()}
        dev.peaks = dict(dev.runtime_peaks.get(HOST_RUNTIME) or next(iter(dev.runtime_peaks.values()), {}))
        measured = [(rt, p, threads, f.value) for rt, per in dev.runtime_peaks.items() for p, f in per.items()]
        isa = at_needed_clock(isa_peak(), measured)  # a roof above the ISA peak means the clock was read low
        dev.references = {f"ISA peak {p}": Figure(isa.gflops(p, threads), "derived", isa.source(p, threads))
                          for p in ("float32", "int8")}
        dev.references["NumPy GEMM float32"] = Figure(
            c["gemm_gflops"], "measured", f"NumPy float32 GEMM n={c['gemm_n']} (its BLAS, not a runtime's "
                                          f"kernels: a reference, not a roof): " + src)
        dev.compute = c["machine"]
    return dev


# --------------------------------------------------------------------------- host ceilings

_MEASURE = r"""
import json, sys, time
import numpy as np
n, mib = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).random((n, n), dtype=np.float32); b = a.copy()
a @ b
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(7))
src = np.ones(mib * 2**20 // 4, np.float32); dst = np.empty_like(src)
np.copyto(dst, src)
copy = min((lambda t: (np.copyto(dst, src), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(7))
print(json.dumps({"gemm_gflops": 2 * n**3 / best / 1e9, "copy_gbs": 2 * src.nbytes / copy / 1e9,
                  "numpy": np.__version__}))
"""


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeaffect" / "host-ceilings.json"


def _read_cache(path: Path) -> dict:
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return {}  # a damaged cache is remeasured, not trusted
    return {}


def _write_cache(path: Path, key: str, value: dict) -> None:
    from edgeaffect.io import atomic_write_text

    cache = _read_cache(path)
    cache[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cache, indent=2))


def host_ceilings(threads: int = 1, *, gemm_n: int = 1024, copy_mib: int = 256, refresh: bool = False,
                  cache: Path | None = None) -> dict:
    """Peak float32 NumPy GEMM GFLOP/s (a labelled reference) and copy bandwidth of this
    machine with ``threads`` BLAS threads, measured once in a fresh process (thread count is
    fixed at BLAS load) and cached."""
    from edgeaffect.machine import machine

    key = f"{machine()}|threads={threads}|n={gemm_n}|mib={copy_mib}"
    path = cache or cache_path()
    cached = _read_cache(path)
    if key in cached and not refresh:
        return {**cached[key], "cached": True}
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    r = subprocess.run([sys.executable, "-c", _MEASURE, str(gemm_n), str(copy_mib)], capture_output=True, text=True,
                       env=env, timeout=300)
    if r.returncode != 0:
        raise InputError(f"measuring the host failed: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
    result = {**json.loads(r.stdout), "machine": machine(), "threads": threads, "gemm_n": gemm_n, "copy_mib": copy_mib}
    _write_cache(path, key, result)
    return {**result, "cached": False}


def _runtime_packages() -> dict[str, str]:
    """The runtimes installed here, with their versions (part of the roofs' cache key)."""
    out = {}
    try:
        from edgeaffect.runtime.litert import interpreter_class

        _, name = interpreter_class()
        from importlib.metadata import version

        out["litert"] = f"{name} {version(name)}"
    except Exception:  # noqa: BLE001 - missing or unreadable: that runtime is not measured
        pass
    try:
        import onnxruntime

        out["onnxruntime"] = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        pass
    return out


def runtime_roofs(threads: int = 1, *, refresh: bool = False, cache: Path | None = None, runs: int = 30,
                  rounds: int = 3) -> dict:
    """Per installed runtime and precision (float32, int8), the host's compute roof with
    ``threads`` threads: the best GFLOP/s (GOP/s) of a large FullyConnected and a large
    Conv2D probe (``edgeaffect.roofline.probes``) through that runtime's own kernels.
    Cached by machine, thread count and runtime versions; ``refresh`` measures again."""
    from edgeaffect.machine import machine
    from edgeaffect.roofline.probes import build_probes, time_probe

    packages = _runtime_packages()
    if not packages:
        raise InputError("no inference runtime installed to measure the host's roofs: pip install 'edgeaffect[rpi]'")
    key = f"roofs|{machine()}|threads={threads}|" + "|".join(packages.values())
    path = cache or cache_path()
    cached = _read_cache(path)
    if key in cached and not refresh:
        return {**cached[key], "cached": True}
    runtimes = list(packages)
    if "litert" in runtimes:
        try:
            from edgeaffect.keras_backend import tf

            tf()  # the TFLite probes are built by its converter
        except Exception:  # noqa: BLE001 - MissingDependencyError: measure the other runtime only
            runtimes.remove("litert")
    if not runtimes:
        raise InputError("building the LiteRT probes needs TensorFlow: pip install 'edgeaffect[train]'")
    probes = build_probes(path.parent / "probes", runtimes)
    result = {"machine": machine(), "threads": threads, "runtimes": {}}
    for p in probes:
        g = time_probe(p, threads, runs=runs, rounds=rounds)
        per = result["runtimes"].setdefault(p.runtime, {})
        all_probes = {**per.get(p.precision, {}).get("all", {}), p.kind: g}
        best = max(all_probes, key=all_probes.get)
        per[p.precision] = {"gflops": all_probes[best], "all": all_probes, "package": packages[p.runtime],
                            "runs": runs * rounds, "probe": _probe_label(best, p.precision)}
    _write_cache(path, key, result)
    return {**result, "cached": False}


def _probe_label(kind: str, precision: str) -> str:
    from edgeaffect.roofline import probes as pr

    if kind == "fc":
        return f"{precision} FullyConnected {pr.FC_M}x{pr.FC_K} by {pr.FC_K}x{pr.FC_N}"
    return f"{precision} Conv2D 3x3 {pr.CONV_HW}x{pr.CONV_HW}x{pr.CONV_C} -> {pr.CONV_C}"


# --------------------------------------------------------------------------- roofline

@dataclass
class Bound:
    device: str
    precision: str  # the artifact's
    roof_precision: str  # whose peak was used (a fallback when the device has no figure for it)
    intensity: float  # FLOPs / byte
    attainable_gflops: float
    latency_ms: float  # lower bound: max(compute time at peak, memory time at bandwidth)
    limited_by: str  # "compute" or "memory"
    note: str = "roofline lower bound (a prediction, not a measurement)"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def roofline_bound(cost, device: Device, precision: str = "float32", runtime: str | None = None) -> Bound:
    """``runtime``: whose measured roof applies where the device has per-runtime roofs (the host)."""
    peak, used = device.peak(precision, runtime)
    bw = device.bandwidth.value
    flops, nbytes = cost.flops, cost.bytes[precision]
    intensity = flops / nbytes if nbytes else 0.0
    attainable = min(peak.value, intensity * bw)
    t_compute = flops / (peak.value * 1e9)
    t_memory = nbytes / (bw * 1e9)
    note = "roofline lower bound (a prediction, not a measurement)"
    if used != precision:
        note += f"; no {precision} peak in the catalog for {device.key}, its {used} peak was used"
        if PRECISION_FALLBACK.get(precision, ("",))[0] != used:
            note += " (the real kernels may beat it: not a strict bound)"
    if runtime and runtime in device.runtime_peaks:
        note += f"; {runtime}'s measured {used} roof"
    return Bound(device.key, precision, used, intensity, attainable, max(t_compute, t_memory) * 1e3,
                 "compute" if t_compute >= t_memory else "memory", note)


def runtime_of_artifact(name: str) -> str | None:
    """The runtime a file runs on by its suffix (.tflite -> litert, .onnx -> onnxruntime)."""
    suffix = Path(str(name)).suffix
    return {".tflite": "litert", ".onnx": "onnxruntime", ".engine": "tensorrt"}.get(suffix)


def precision_of_format(fmt: str) -> str:
    if "int8" in fmt or "qdq" in fmt:
        return "int8"
    if "fp16" in fmt or "float16" in fmt:
        return "float16"
    return "float32"
