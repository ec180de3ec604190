"""LiteRT (ai-edge-litert), falling back to the older tflite-runtime.

Not TensorFlow's own ``tf.lite.Interpreter``: its default XNNPACK delegate in TF 2.21
gives wrong int8 BATCH_MATMUL results (attention models).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, MissingDependencyError
from edgeaffect.runtime.base import TensorInfo, dequantize, fixed_to_one, match_inputs, one_at_a_time, quantize


def interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise MissingDependencyError(
            "no TFLite runtime: install it with: pip install 'edgeaffect[rpi]' (ai-edge-litert)"
        ) from None


def _clean_name(raw: str) -> str:
    """'serving_default_face:0' -> 'face'."""
    return re.sub(r":\d+$", "", re.sub(r"^serving_default_", "", raw))


def _info(d: dict) -> TensorInfo:
    scale, zp = d.get("quantization", (0.0, 0))
    return TensorInfo(_clean_name(d["name"]), tuple(int(s) for s in d.get("shape_signature", d["shape"])),
                      np.dtype(d["dtype"]).name, float(scale), int(zp))


# Which kernels run the model: "xnnpack" (the default delegate: what a device runs),
# "builtin" (LiteRT's optimised kernels without the delegate: what runs an op XNNPACK does not
# take) or "reference" (the portable reference kernels: plain C++ on every CPU).
KERNELS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF"}


def _resolver_options(kernels: str) -> dict:
    if kernels not in KERNELS:
        raise InputError(f"unknown LiteRT kernels '{kernels}': choose one of {', '.join(KERNELS)}")
    if kernels == "xnnpack":
        return {}
    try:
        from ai_edge_litert.interpreter import OpResolverType
    except ImportError:
        from tflite_runtime.interpreter import OpResolverType
    return {"experimental_op_resolver_type": getattr(OpResolverType, KERNELS[kernels])}


class LiteRTRunner:
    name = "litert"
    KERNEL_SETS = tuple(KERNELS)  # each verified: edgeaffect.runtime.kernel_variants

    def __init__(self, path: str | Path, threads: int | None = None, kernels: str = "xnnpack"):
        self.path = Path(path)
        self.kernels = kernels
        Interpreter, self.package = interpreter_class()
        try:
            self.interp = Interpreter(model_path=str(path), num_threads=threads, **_resolver_options(kernels))
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"not a valid TFLite model: {path} ({str(exc).splitlines()[0]})") from None
        self._in = {_info(d).name: (d["index"], _info(d)) for d in self.interp.get_input_details()}
        out = self.interp.get_output_details()[0]
        self._out_index, self.output = out["index"], _info(out)
        self.inputs = {name: info for name, (_, info) in self._in.items()}
        self._batch = 1
        self.fixed_batch = fixed_to_one(self.inputs)

    def _resize(self, batch: int) -> None:
        if batch == self._batch:
            return
        for index, info in self._in.values():
            self.interp.resize_tensor_input(index, [batch, *info.shape[1:]])
        self.interp.allocate_tensors()
        self._batch = batch

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        match_inputs(feeds, self.inputs)
        n = len(next(iter(feeds.values())))
        if self.fixed_batch and n != 1:
            return one_at_a_time(self.run, feeds)
        self._resize(n)
        for name, (index, info) in self._in.items():
            self.interp.set_tensor(index, quantize(np.asarray(feeds[name], np.float32), info))
        if self.fixed_batch:
            # A fused LSTM keeps its state in variable tensors that survive invoke(): without
            # a reset, each utterance would start from the last one's final state.
            self.interp.reset_all_variables()
        self.interp.invoke()
        return dequantize(self.interp.get_tensor(self._out_index), self.output)
