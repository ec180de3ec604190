"""The TensorRT path (Jetson): the parser check (runs here, ``trt_check``), the trtexec command and
the calibration batches (pure Python, tested here), and the engine build with the
TensorRT Python API (runs on the device only; TensorRT is imported lazily).

Precisions:
- ``fp16``: from the float ONNX model.
- ``int8``: explicit quantization from the ``onnx-int8-trt`` model (symmetric int8 Q/DQ on
  the inputs of Conv / Gemm / MatMul, the form TensorRT takes; tfmot's QAT QDQ model has
  uint8-style zero points that it refuses). The path TensorRT 11 keeps; no calibrator needed.
- ``int8-calibrated``: implicit quantization with an entropy calibrator fed by the
  bundle's ``calibration.npz`` and a calibration cache. What JetPack 6's TensorRT 10.3
  still runs; deprecated since TensorRT 10.1 and removed in 11.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, VerificationError
from edgeaffect.io import atomic_path, atomic_write_bytes

ONNX_FOR_PRECISION = {"fp16": "onnx-fp32", "int8": "onnx-int8-trt", "int8-calibrated": "onnx-fp32"}


def check_onnx_for_tensorrt(onnx_path: str | Path, trt_version: str, target: str) -> None:
    """Fail the export when TensorRT ``trt_version``'s ONNX parser would refuse the model
    (``edgeaffect trt-check``'s rules); the error lists every violation."""
    from edgeaffect.export.trt_check import check_file

    bad = check_file(onnx_path, trt_version)
    if bad:
        raise VerificationError(f"{Path(onnx_path).name} breaks TensorRT {trt_version}'s ONNX parser rules (target "
                                f"{target}), {len(bad)} violation(s): " + "; ".join(str(v) for v in bad))


def _per_sample(spec) -> list:
    """A manifest input ({"shape": [None, ...]}) or a bare shape -> the shape after the batch."""
    shape = spec["shape"] if isinstance(spec, dict) else spec
    return [int(d) for d in shape[1:]]


def shape_spec(inputs: dict, batch: int) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in [batch, *_per_sample(s)])}" for name, s in inputs.items())


def workspace_flag(workspace_mib: int, tensorrt: str | None) -> str:
    """trtexec's --memPoolSize came with TensorRT's memory-pool API (8.4); 8.2 (JetPack 4.6)
    only knows --workspace (MiB) and refuses the newer flag."""
    if tensorrt is not None and tuple(int(x) for x in tensorrt.split(".")[:2]) < (8, 4):
        return f"--workspace={workspace_mib}"
    return f"--memPoolSize=workspace:{workspace_mib}M"


def trtexec_command(onnx_file: str, engine_file: str, precision: str, inputs: dict, *,
                    workspace_mib: int = 256, max_batch: int = 8, calibration_cache: str | None = None,
                    tensorrt: str | None = None) -> str:
    """The trtexec line equivalent to ``build_engine`` (for users who prefer NVIDIA's tool), for
    TensorRT ``tensorrt`` (None: the current flags)."""
    args = ["/usr/src/tensorrt/bin/trtexec", f"--onnx={onnx_file}", f"--saveEngine={engine_file}",
            workspace_flag(workspace_mib, tensorrt),
            f"--minShapes={shape_spec(inputs, 1)}", f"--optShapes={shape_spec(inputs, 1)}",
            f"--maxShapes={shape_spec(inputs, max_batch)}"]
    if precision == "fp16":
        args.append("--fp16")
    elif precision == "int8":
        args += ["--int8", "--fp16"]  # explicit Q/DQ: int8 where the graph says, fp16 elsewhere
    elif precision == "int8-calibrated":
        args += ["--int8", "--fp16", f"--calib={calibration_cache or 'calibration.cache'}"]
    return " ".join(shlex.quote(a) for a in args)


def calibration_batches(npz_path: str | Path, batch: int):
    """Yield dicts of float32 arrays, ``batch`` samples each (the last partial batch dropped,
    as TensorRT's calibrator expects full batches)."""
    with np.load(npz_path) as z:
        arrays = {k: np.ascontiguousarray(z[k], np.float32) for k in z.files}
    n = min(len(a) for a in arrays.values())
    for i in range(0, n - batch + 1, batch):
        yield {k: a[i:i + batch] for k, a in arrays.items()}


def make_calibrator(trt, npz_path: Path, cache_path: Path, batch: int):
    """An IInt8EntropyCalibrator2 over ``calibration.npz`` with a read / write cache."""
    from edgeaffect.runtime.tensorrt import _check, import_cudart

    cudart = import_cudart()

    class NpzCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.batches = calibration_batches(npz_path, batch)
            self.pointers: dict[str, int] = {}

        def get_batch_size(self):
            return batch

        def get_batch(self, names):
            b = next(self.batches, None)
            if b is None:
                return None
            for name in names:
                x = b[name]
                if name not in self.pointers:
                    self.pointers[name] = _check(cudart.cudaMalloc(x.nbytes))
                _check(cudart.cudaMemcpy(self.pointers[name], x.ctypes.data, x.nbytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            return [self.pointers[n] for n in names]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            atomic_write_bytes(cache_path, bytes(cache))

    return NpzCalibrator()


def build_engine(onnx_path: str | Path, engine_path: str | Path, precision: str, inputs: dict, *,
                 workspace_mib: int = 256, max_batch: int = 8, calibration: Path | None = None,
                 calibration_cache: Path | None = None) -> Path:
    """Build a serialized engine on this device (TensorRT 10 API); written atomically."""
    from edgeaffect.runtime.tensorrt import import_tensorrt

    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise VerificationError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    profile = builder.create_optimization_profile()
    for name, spec in inputs.items():
        per = _per_sample(spec)
        profile.set_shape(name, (1, *per), (1, *per), (max_batch, *per))
    config.add_optimization_profile(profile)
    if precision in ("fp16", "int8", "int8-calibrated"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision in ("int8", "int8-calibrated"):
        config.set_flag(trt.BuilderFlag.INT8)
    if precision == "int8-calibrated":
        if calibration is None:
            raise InputError("int8-calibrated needs the bundle's calibration.npz")
        config.set_calibration_profile(profile)
        config.int8_calibrator = make_calibrator(trt, calibration, calibration_cache or
                                                 Path(engine_path).with_suffix(".cache"), batch=1)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise VerificationError(f"TensorRT failed to build an engine from {onnx_path} ({precision})")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    return Path(engine_path)
