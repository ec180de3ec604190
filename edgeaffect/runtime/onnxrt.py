"""ONNX Runtime on the CPU (the Jetson install uses its CUDA / TensorRT providers when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import InputError
from edgeaffect.runtime.base import TensorInfo, fixed_to_one, match_inputs, one_at_a_time


class OnnxRuntimeRunner:
    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None, providers: list[str] | None = None):
        self.path = Path(path)
        ort = require("onnxruntime", "jetson")
        self.package = f"onnxruntime {ort.__version__}"
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
            raise InputError(f"not a valid ONNX model: {path} ({str(exc).splitlines()[0][:200]})") from None
        self.inputs = {i.name: TensorInfo(i.name, tuple(d if isinstance(d, int) else -1 for d in i.shape), "float32")
                       for i in self.session.get_inputs()}
        self._output = self.session.get_outputs()[0].name
        self.fixed_batch = fixed_to_one(self.inputs)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        match_inputs(feeds, self.inputs)
        if self.fixed_batch and len(next(iter(feeds.values()))) != 1:
            return one_at_a_time(self.run, feeds)
        return self.session.run([self._output], {k: np.asarray(feeds[k], np.float32) for k in self.inputs})[0]
