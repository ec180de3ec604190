"""The theoretical compute peak of this CPU from its instruction set:
cores x clock x operations per cycle per core, read from /proc/cpuinfo (flags or Features)
and the clock from cpufreq (the maximum) or /proc/cpuinfo (the current clock).

Operations per cycle assume two vector FMA / dot-product pipes per core, each issuing one
instruction of the widest vector the ISA has. That is the most any core with that ISA does
(many have fewer or narrower pipes, e.g. 512-bit ops on two 256-bit halves), so the figure
is an upper limit, not what kernels reach: the runtimes' measured roofs are the bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

PIPES = 2  # vector FMA / dot-product pipes per core assumed (an upper limit for the cores we know)


@dataclass(frozen=True)
class IsaPeak:
    isa: str  # e.g. "AVX-512 + VNNI"
    fp32_flop_per_cycle: int  # per core
    int8_op_per_cycle: int  # per core (2 ops per multiply-accumulate)
    ghz: float
    clock_source: str
    cores: int

    def gflops(self, precision: str, threads: int) -> float:
        per = self.int8_op_per_cycle if precision == "int8" else self.fp32_flop_per_cycle
        return min(threads, self.cores) * self.ghz * per

    def source(self, precision: str, threads: int) -> str:
        per = self.int8_op_per_cycle if precision == "int8" else self.fp32_flop_per_cycle
        unit = "int8 op" if precision == "int8" else "FLOP"
        return (f"derived: {min(threads, self.cores)} core(s) x {self.ghz:.3g} GHz ({self.clock_source}) x {per} "
                f"{unit}/cycle ({self.isa}, {PIPES} vector pipes assumed: an upper limit)")


def clock_needed(isa: IsaPeak, measured: list[tuple[str, str, int, float]]) -> tuple[float, str] | None:
    """The clock the measured roofs need at the ISA's operations per cycle, and the roof that
    needs it, when that is above the clock ``isa`` was read with (its source is then below
    what the cores run at: a boost clock, or a VM that shows its base clock and no cpufreq);
    None when every measured roof fits under the ISA peak. ``measured``: (runtime,
    precision, threads, GFLOP/s)."""
    best = None
    for runtime, precision, threads, gflops in measured:
        per = isa.int8_op_per_cycle if precision == "int8" else isa.fp32_flop_per_cycle
        need = gflops / (min(threads, isa.cores) * per) if per else 0.0
        if best is None or need > best[0]:
            best = (need, f"{runtime} {precision} at {threads} thread(s), {gflops:.4g} GFLOP/s")
    return best if best is not None and best[0] > isa.ghz else None


def at_needed_clock(isa: IsaPeak, measured: list[tuple[str, str, int, float]]) -> IsaPeak:
    """``isa`` at the clock the measured roofs show the cores reach, where that is higher:
    one story (every measured roof under the ISA peak), the reason in its clock source."""
    need = clock_needed(isa, measured)
    if need is None:
        return isa
    ghz, which = need
    return replace(isa, ghz=ghz, clock_source=f"at least {ghz:.3g} GHz, what the measured {which} roof needs; "
                                              f"{isa.clock_source} said {isa.ghz:.3g} GHz")


def classify(flags: set[str], arch: str) -> tuple[str, int, int]:
    """(ISA name, fp32 FLOP/cycle, int8 op/cycle) per core from the CPU's feature flags.

    fp32: lanes x 2 (FMA) x pipes. int8: multiply-accumulates per instruction x 2 x pipes
    (VNNI vpdpbusd / Arm SDOT: 4 per 32-bit lane; AVX2 vpmaddubsw: 2 per 16-bit lane;
    Arm NEON without dot product: SMLAL, 8 per instruction)."""
    if arch in ("aarch64", "arm64") or "asimd" in flags or "neon" in flags:
        fp32 = 4 * 2 * PIPES
        if "asimddp" in flags:
            return "NEON + dot product (SDOT)", fp32, 16 * 2 * PIPES
        return "NEON (no int8 dot product)", fp32, 8 * 2 * PIPES
    if "avx512f" in flags:
        fp32 = 16 * 2 * PIPES
        if "avx512_vnni" in flags:
            return "AVX-512 + VNNI", fp32, 64 * 2 * PIPES
        return "AVX-512", fp32, 32 * 2 * PIPES
    if "avx2" in flags and "fma" in flags:
        if "avx_vnni" in flags:
            return "AVX2 + FMA + AVX-VNNI", 8 * 2 * PIPES, 32 * 2 * PIPES
        return "AVX2 + FMA", 8 * 2 * PIPES, 16 * 2 * PIPES
    if "avx" in flags:
        return "AVX (no FMA)", 8 * PIPES, 8 * 2 * PIPES
    return "SSE (128-bit, no FMA)", 4 * PIPES, 8 * PIPES


def _clock(cpuinfo: str) -> tuple[float, str]:
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz / 1e6, "cpufreq maximum"
    except (OSError, ValueError):
        pass
    for line in cpuinfo.splitlines():
        if line.lower().startswith("cpu mhz"):
            return float(line.split(":", 1)[1]) / 1e3, "current clock from /proc/cpuinfo; boost may exceed it"
    return 0.0, "unknown: no cpufreq and no 'cpu MHz' in /proc/cpuinfo"


def isa_peak(cpuinfo: str | None = None, arch: str | None = None, cores: int | None = None) -> IsaPeak:
    import platform

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key = line.split(":", 1)[0].strip().lower()
        if key in ("flags", "features") and ":" in line:
            flags |= set(line.split(":", 1)[1].split())
    isa, fp32, int8 = classify(flags, arch or platform.machine().lower())
    ghz, source = _clock(cpuinfo)
    return IsaPeak(isa, fp32, int8, ghz, source, cores or os.cpu_count() or 1)
