"""The host's compute roofs, measured through each runtime's own kernels, are a bound:
no model measured here runs faster than its roofline bound. The ISA's theoretical peak
from the CPU's flags."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgeaffect.roofline.isa import classify, isa_peak


@pytest.fixture(scope="session")
def host_cache(tmp_path_factory):
    """The roofs measured once per test run (fresh: never a cache from another day)."""
    from edgeaffect.roofline.devices import runtime_roofs

    path = tmp_path_factory.mktemp("host-roofs") / "host-ceilings.json"
    r = runtime_roofs(1, refresh=True, cache=path)
    assert r["cached"] is False
    return path


def _best_ms(runner, feeds, runs: int = 300) -> float:
    for _ in range(20):
        runner.run(feeds)
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        runner.run(feeds)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def test_no_model_beats_its_host_bound(export_dir, host_cache):
    """Every format of the exported AVER model, on its runtime, at 1 thread: its fastest run
    (not the median: the invariant must hold for every run) is no faster than its bound."""
    import json

    from edgeaffect.measure.profile import random_feeds
    from edgeaffect.roofline.devices import get_device, precision_of_format, roofline_bound, runtime_of_artifact
    from edgeaffect.roofline.readers import analyse
    from edgeaffect.runtime import load_runner

    host = get_device("host", threads=1, cache=host_cache)
    assert set(host.runtime_peaks) >= {"litert", "onnxruntime"}
    for rt in host.runtime_peaks.values():
        # int8 has its own roof, measured: higher with VNNI / SDOT, about level with float32 on
        # AVX2 alone (97 vs 100 GFLOP/s through LiteRT on a 2-core AVX2 EPYC): no order assumed
        assert rt["int8"].value > 0.5 and rt["float32"].value > 0.5
    assert "ISA peak float32" in host.references and "NumPy GEMM float32" in host.references
    manifest = json.loads((export_dir / "manifest.json").read_text())
    checked = []
    for fmt, entry in manifest["files"].items():
        path = export_dir / entry["file"]
        runtime = runtime_of_artifact(path.name)
        if runtime not in host.runtime_peaks:
            continue
        runner = load_runner(path, runtime, threads=1)
        best = _best_ms(runner, random_feeds(runner.inputs))
        bound = roofline_bound(analyse(path), host, precision_of_format(fmt), runtime)
        checked.append(fmt)
        assert best >= bound.latency_ms, f"{fmt} ran in {best:.4f} ms, under its bound {bound.latency_ms:.4f} ms"
    assert {"tflite-int8", "tflite-fp32", "onnx-fp32"} <= set(checked)


def test_roofs_are_cached_per_machine_and_runtime_versions(host_cache):
    from edgeaffect.roofline.devices import runtime_roofs

    again = runtime_roofs(1, cache=host_cache)
    assert again["cached"] is True and again["runtimes"]["litert"]["float32"]["gflops"] > 0
    assert "FullyConnected" in again["runtimes"]["litert"]["float32"]["probe"] \
        or "Conv2D" in again["runtimes"]["litert"]["float32"]["probe"]


@pytest.mark.parametrize("flags,arch,isa,fp32,int8", [
    ("fpu sse2 avx avx2 fma", "x86_64", "AVX2 + FMA", 32, 64),
    ("avx2 fma avx512f avx512bw", "x86_64", "AVX-512", 64, 128),
    ("avx2 fma avx512f avx512bw avx512_vnni", "x86_64", "AVX-512 + VNNI", 64, 256),
    ("fp asimd evtstrm crc32", "aarch64", "NEON (no int8 dot product)", 16, 32),
    ("fp asimd asimddp", "aarch64", "NEON + dot product (SDOT)", 16, 64),
])
def test_isa_classification(flags, arch, isa, fp32, int8):
    assert classify(set(flags.split()), arch) == (isa, fp32, int8)


def test_isa_peak_from_cpuinfo_text():
    text = "processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2000.0\nflags\t\t: avx2 fma\n"
    p = isa_peak(text, "x86_64", cores=4)
    # 4 cores x clock x 32 FLOP/cycle; the clock comes from cpufreq where the machine has it
    assert p.gflops("float32", 4) == pytest.approx(4 * p.ghz * 32)
    assert p.gflops("float32", 1) == pytest.approx(p.ghz * 32) and p.gflops("int8", 9) == pytest.approx(4 * p.ghz * 64)
    assert "GHz" in p.source("float32", 1) and p.clock_source
    assert np.isfinite(p.ghz)


def test_a_roof_above_the_isa_peak_raises_the_clock_and_says_why():
    """Issue 27: the plot showed an ISA int8 peak under the measured int8 roof. The clock read
    from /proc/cpuinfo (a VM's base clock) was below what the cores run at; the ISA peak is
    drawn at the clock the measured roofs need, and the reason is in its source."""
    from edgeaffect.roofline.isa import at_needed_clock, clock_needed

    isa = isa_peak("processor\t: 0\ncpu MHz\t\t: 2450.0\nflags\t\t: avx2 fma\n", "x86_64", cores=2)
    isa = type(isa)(isa.isa, isa.fp32_flop_per_cycle, isa.int8_op_per_cycle, 2.45, "current clock", 2)
    measured = [("litert", "float32", 1, 100.5), ("litert", "int8", 1, 97.8), ("onnxruntime", "int8", 2, 251.7)]
    ghz, which = clock_needed(isa, measured)
    assert ghz == pytest.approx(100.5 / 32) and which.startswith("litert float32 at 1 thread")
    fixed = at_needed_clock(isa, measured)
    assert all(g <= fixed.gflops(p, t) * (1 + 1e-12) for _, p, t, g in measured)
    assert "at least 3.14 GHz" in fixed.clock_source and "said 2.45 GHz" in fixed.clock_source
    assert clock_needed(isa, [("litert", "float32", 1, 50.0)]) is None and at_needed_clock(isa, []) is isa
