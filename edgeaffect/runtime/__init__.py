"""Device side: run an exported model with NumPy and one inference runtime.

Never imports TensorFlow, tf2onnx or librosa (``tests/test_device_imports.py`` checks).
A runtime is one module registered in ``RUNTIMES`` by name and by file suffix.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from edgeaffect._optional import lookup
from edgeaffect.errors import InputError

# name -> (module, class); suffix -> default runtime name
RUNTIMES = {
    "litert": ("edgeaffect.runtime.litert", "LiteRTRunner"),
    "onnxruntime": ("edgeaffect.runtime.onnxrt", "OnnxRuntimeRunner"),
    "tensorrt": ("edgeaffect.runtime.tensorrt", "TensorRTRunner"),
}
BY_SUFFIX = {".tflite": "litert", ".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt"}


def runtime_for(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in BY_SUFFIX:
        raise InputError(f"no runtime for '{Path(path).name}': expected one of {', '.join(BY_SUFFIX)}")
    return BY_SUFFIX[suffix]


def load_runner(path: str | Path, runtime: str | None = None, threads: int | None = None, **options):
    """A runner for the model file at ``path``: ``runner.run({name: float32 array}) -> float32 array``.
    ``options`` go to the runtime (LiteRT: ``kernels="reference"``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    module, cls = lookup("runtime", runtime or runtime_for(path), RUNTIMES)
    return getattr(importlib.import_module(module), cls)(path, threads=threads, **options)


def kernel_variants(runtime: str) -> tuple[str, ...]:
    """The kernel sets an export is verified with on this runtime: a runner class that has
    several (LiteRT: XNNPACK, built-in, reference) names them in ``KERNEL_SETS``, so a bound
    that holds does not depend on which kernels a CPU gets."""
    module, cls = lookup("runtime", runtime, RUNTIMES)
    return getattr(getattr(importlib.import_module(module), cls), "KERNEL_SETS", ("default",))
