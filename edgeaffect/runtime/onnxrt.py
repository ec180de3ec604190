"""ONNX Runtime on the CPU (the Jetson install uses its CUDA / TensorRT providers when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import InputError
from edgeaffect.runtime.base import TensorInfo, fixed_to_one, match_inputs, one_at_a_time


# ONNX Runtime 1.20+ quantizes the float weights of a Gemm / MatMul between Q/DQ activations
# itself (8-bit, per tensor, asymmetric), a grid the QAT model never trained on; on x86 without
# VNNI its u8 x s8 kernel then saturates 16-bit pair sums. The spectrotemporal sequence's
# onnx-qdq moved every score by 1.2 BDI-II points there (decisions agree 0.42). Without it the
# file runs as its Q/DQ nodes say: Q/DQ reference semantics, the same on every CPU.
UNFAITHFUL_OPTIMIZERS = ["WeightBiasQuantization"]


def inference_session(ort, model, opts, providers: list[str]):
    """``ort.InferenceSession`` without ``UNFAITHFUL_OPTIMIZERS`` (an older ONNX Runtime that
    does not know one, or takes no such option, runs with its own set)."""
    try:
        return ort.InferenceSession(model, opts, providers=providers, disabled_optimizers=UNFAITHFUL_OPTIMIZERS)
    except Exception:  # noqa: BLE001 - unknown name or keyword: retried as it was; a bad model fails there too
        return ort.InferenceSession(model, opts, providers=providers)


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
            self.session = inference_session(ort, str(path), opts, providers or ["CPUExecutionProvider"])
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
