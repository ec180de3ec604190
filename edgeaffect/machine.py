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


# The int8 dot-product instructions XNNPACK's int8 kernels need to beat float: /proc/cpuinfo flag
# (x86 "flags", arm64 "Features") -> its name.
DOT_PRODUCT_FLAGS = {"avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "asimddp": "Arm SDOT/UDOT",
                     "i8mm": "Arm I8MM"}


def int8_dot_product(cpuinfo: str | None = None) -> list[str] | None:
    """The CPU's int8 dot-product instructions (empty: none), from ``cpuinfo`` (the text of
    /proc/cpuinfo, read when not given), or None where it cannot be read (not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags |= set(value.split())
    return [name for flag, name in DOT_PRODUCT_FLAGS.items() if flag in flags]


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
