"""Power readings on a Jetson while a profile runs: ``tegrastats`` in the background, and
the power mode from ``nvpmodel -q``. Elsewhere: None, with the reason."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from contextlib import contextmanager

# e.g. "... VDD_IN 5012mW/4980mW VDD_CPU_GPU_CV 1205mW/1180mW VDD_SOC 1432mW/1430mW"
_RAIL = re.compile(r"\b(VDD_[A-Z0-9_]+|POM_5V_[A-Z]+)\s+(\d+)mW/(\d+)mW")


def parse_tegrastats(line: str) -> dict[str, int]:
    """Instantaneous milliwatts per rail in one tegrastats line."""
    return {name: int(now) for name, now, _avg in _RAIL.findall(line)}


def summarise(samples: list[dict[str, int]]) -> dict:
    rails = sorted({r for s in samples for r in s})
    return {r: {"mean_mw": sum(s[r] for s in samples if r in s) / max(1, sum(r in s for s in samples)),
                "max_mw": max(s[r] for s in samples if r in s)} for r in rails}


def power_mode() -> str | None:
    if not shutil.which("nvpmodel"):
        return None
    r = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10)
    return " ".join(r.stdout.split()) or None


@contextmanager
def tegrastats_power(interval_ms: int = 100):
    """Yields a dict filled in on exit: {"rails": ..., "samples": n, "mode": ...} or a note."""
    result: dict = {}
    exe = shutil.which("tegrastats")
    if exe is None:
        result["note"] = "no tegrastats here (not a Jetson): no power reading"
        yield result
        return
    proc = subprocess.Popen([exe, "--interval", str(interval_ms)], stdout=subprocess.PIPE, text=True)
    samples: list[dict[str, int]] = []
    reader = threading.Thread(target=lambda: [samples.append(parse_tegrastats(line)) for line in proc.stdout],
                              daemon=True)
    reader.start()
    try:
        yield result
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        reader.join(timeout=2)
        result.update({"rails": summarise([s for s in samples if s]), "samples": len(samples),
                       "mode": power_mode(), "source": f"tegrastats every {interval_ms} ms during the timed runs"})
