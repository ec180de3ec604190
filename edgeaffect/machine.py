"""The machine a figure was measured on, named in every table that prints one."""

from __future__ import annotations

import platform
from pathlib import Path


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}"


RUNTIMES = ("tensorflow", "tf_keras", "ai-edge-litert", "onnxruntime", "tf2onnx")


def versions(packages=RUNTIMES) -> dict[str, str]:
    """Installed versions of ``packages`` (the ones not installed left out), for a table's header."""
    from importlib import metadata

    found = {}
    for pkg in packages:
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return found


def limit_blas(threads: int | None):
    """Hold NumPy's BLAS (the MFCC's mel product) to ``threads``, where threadpoolctl is
    installed (it comes with scikit-learn; nothing needs it): its idle threads otherwise spin
    on the cores the measured work needs. Returns the limiter (``restore_original_limits()``
    lets go), or None when not limited."""
    if threads is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(int(threads))
