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

    @property
    def bandwidth(self) -> Figure:
        """The roof: the measured ceiling when there is one, else the theoretical one."""
        return self.bandwidths.get("measured") or self.bandwidths["theoretical"]

    def peak(self, precision: str) -> tuple[Figure, str]:
        """The compute roof for a precision, and which precision's figure it is."""
        for p in PRECISION_FALLBACK.get(precision, ("float32",)):
            if p in self.peaks:
                return self.peaks[p], p
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
        dev = Device(key, d.get("name", key), d.get("kind", "cpu"), d.get("compute", ""), list(d.get("runtimes", [])))
        dev.peaks = {p: _figure(f, f"{key}.peak_gflops.{p}") for p, f in d.get("peak_gflops", {}).items()}
        dev.bandwidths = {b: _figure(f, f"{key}.bandwidth_gbs.{b}") for b, f in d.get("bandwidth_gbs", {}).items()}
        if d.get("measure"):
            dev.peaks, dev.bandwidths = {}, {}
        devices[key] = dev
    return devices


def get_device(key: str, *, measure_host: bool = True, threads: int = 1) -> Device:
    dev = lookup("device", key, load_catalog())
    if key == "host" and measure_host:
        c = host_ceilings(threads)
        src = f"measured here ({c['machine']}, {threads} thread(s), numpy {c['numpy']})"
        dev.peaks = {"float32": Figure(c["gemm_gflops"], "measured", f"float32 GEMM n={c['gemm_n']}: " + src)}
        dev.bandwidths = {"measured": Figure(c["copy_gbs"], "measured",
                                             f"copy of {c['copy_mib']} MiB (read + write counted): " + src)}
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


def host_ceilings(threads: int = 1, *, gemm_n: int = 1024, copy_mib: int = 256, refresh: bool = False) -> dict:
    """Peak float32 GEMM GFLOP/s and copy bandwidth of this machine with ``threads`` BLAS
    threads, measured once in a fresh process (thread count is fixed at BLAS load) and cached."""
    from edgeaffect.measure.machine import machine
    from edgeaffect.io import atomic_write_text

    key = f"{machine()}|threads={threads}|n={gemm_n}|mib={copy_mib}"
    path = cache_path()
    cache = {}
    if path.is_file():
        try:
            cache = json.loads(path.read_text())
        except json.JSONDecodeError:
            cache = {}  # a damaged cache is remeasured, not trusted
    if key in cache and not refresh:
        return {**cache[key], "cached": True}
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    r = subprocess.run([sys.executable, "-c", _MEASURE, str(gemm_n), str(copy_mib)], capture_output=True, text=True,
                       env=env, timeout=300)
    if r.returncode != 0:
        raise InputError(f"measuring the host failed: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
    result = {**json.loads(r.stdout), "machine": machine(), "threads": threads, "gemm_n": gemm_n, "copy_mib": copy_mib}
    cache[key] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(cache, indent=2))
    return {**result, "cached": False}


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


def roofline_bound(cost, device: Device, precision: str = "float32") -> Bound:
    peak, used = device.peak(precision)
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
    return Bound(device.key, precision, used, intensity, attainable, max(t_compute, t_memory) * 1e3,
                 "compute" if t_compute >= t_memory else "memory", note)


def precision_of_format(fmt: str) -> str:
    if "int8" in fmt or "qdq" in fmt:
        return "int8"
    if "fp16" in fmt or "float16" in fmt:
        return "float16"
    return "float32"
