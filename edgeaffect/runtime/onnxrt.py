"""ONNX Runtime on the CPU (the Jetson install uses its CUDA / TensorRT providers when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import InputError
from edgeaffect.runtime.base import TensorInfo, match_inputs


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
        # Written with batch 1 fixed (a static graph: no shape ops between the delegate's
        # partitions): larger batches run one sample at a time.
        self.fixed_batch = any(info.shape[0] == 1 for info in self.inputs.values())

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        match_inputs(feeds, self.inputs)
        n = len(next(iter(feeds.values())))
        if self.fixed_batch and n != 1:
            return np.concatenate([self.run({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)])
        return self.session.run([self._output], {k: np.asarray(feeds[k], np.float32) for k in self.inputs})[0]
