"""TensorRT engines on a Jetson (or any NVIDIA GPU with TensorRT 10).

TensorRT comes with JetPack (never ``pip install tensorrt`` on a Jetson) and cannot be
installed on the machines this project is developed on, so everything here imports it
lazily and nothing in the test suite claims an engine was built or run: those tests skip,
saying why. Device buffers use cuda-python's runtime API (``pip install cuda-python``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, MissingDependencyError
from edgeaffect.runtime.base import TensorInfo, match_inputs

TRT_HINT = ("TensorRT is not importable here: on a Jetson it comes with JetPack (apt package python3-libnvinfer; "
            "never pip install tensorrt there); elsewhere install NVIDIA's TensorRT wheel for your CUDA")


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingDependencyError(TRT_HINT) from None
    return trt


def import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise MissingDependencyError("cuda-python is not installed: pip install 'edgeaffect[jetson]' "
                                         "(or pip install cuda-python)") from None
    return cudart


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRTRunner:
    name = "tensorrt"

    def __init__(self, path: str | Path, threads: int | None = None):  # threads: unused on a GPU
        self.path = Path(path)
        trt = import_tensorrt()
        self.cudart = import_cudart()
        self.package = f"tensorrt {trt.__version__}"
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise InputError(f"not a TensorRT engine for this GPU / TensorRT version: {self.path} "
                             "(engines are not portable: rebuild it on this device with deploy/jetson/build_engine.sh)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = lambda n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT  # noqa: E731
        self.inputs = {n: TensorInfo(n, tuple(self.engine.get_tensor_shape(n)), "float32") for n in names if is_input(n)}
        self._outputs = [n for n in names if not is_input(n)]
        self.stream = _check(self.cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}

    def _device(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(nbytes))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        cr = self.cudart
        match_inputs(feeds, self.inputs)
        for name in self.inputs:
            x = np.ascontiguousarray(feeds[name], np.float32)
            self.context.set_input_shape(name, x.shape)
            ptr = self._device(name, x.nbytes)
            _check(cr.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, cr.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))
            self.context.set_tensor_address(name, ptr)
        outs = {}
        for name in self._outputs:
            out = np.empty(tuple(self.context.get_tensor_shape(name)), np.float32)
            self.context.set_tensor_address(name, self._device(name, out.nbytes))
            outs[name] = out
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        for name, out in outs.items():
            _check(cr.cudaMemcpyAsync(out.ctypes.data, self._buffers[name][0], out.nbytes,
                                      cr.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        _check(cr.cudaStreamSynchronize(self.stream))
        return outs[self._outputs[0]]
