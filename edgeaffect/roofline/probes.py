"""Probe models: one large FullyConnected and one large Conv2D, in float32 and int8, as
TFLite (LiteRT / XNNPACK) and ONNX (ONNX Runtime) files. Timed through the runtimes' own
kernels they give the host's compute roof per runtime, precision and thread count: the
fastest arithmetic those kernels reach here, which a model's latency is then bounded by.

The TFLite probes are built with the TensorFlow converter (the ``train`` extra); the ONNX
probes with the ``onnx`` helpers. Weights are random: the arithmetic does not depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# FullyConnected: [FC_M, FC_K] x [FC_K, FC_N]; Conv2D: CONV_HW x CONV_HW x CONV_C -> CONV_C, 3x3, same.
# Both large enough to keep the vector units busy (hundreds of MFLOPs, weights in cache),
# small enough to build and time in seconds.
FC_M, FC_K, FC_N = 64, 1024, 1024
CONV_HW, CONV_C, CONV_K = 56, 64, 3


@dataclass(frozen=True)
class Probe:
    kind: str  # "fc" | "conv"
    precision: str  # "float32" | "int8"
    runtime: str  # "litert" | "onnxruntime"
    path: Path

    @property
    def flops(self) -> int:
        """2 x MACs + bias adds: the convention of edgeaffect.roofline.graph."""
        if self.kind == "fc":
            return 2 * FC_M * FC_K * FC_N + FC_M * FC_N
        out = CONV_HW * CONV_HW * CONV_C
        return 2 * out * CONV_K * CONV_K * CONV_C + out


def _keras_probe(kind: str):
    from edgeaffect.keras_backend import keras as _keras

    keras = _keras()
    if kind == "fc":
        inp = keras.Input((FC_K,), batch_size=FC_M)
        out = keras.layers.Dense(FC_N)(inp)
    else:
        inp = keras.Input((CONV_HW, CONV_HW, CONV_C), batch_size=1)
        out = keras.layers.Conv2D(CONV_C, CONV_K, padding="same")(inp)
    return keras.Model(inp, out)


def _tflite(kind: str, precision: str) -> bytes:
    from edgeaffect.keras_backend import tf

    model = _keras_probe(kind)
    conv = tf().lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        shape = [int(d) for d in model.inputs[0].shape]
        rng = np.random.default_rng(0)
        conv.optimizations = [tf().lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.standard_normal(shape).astype(np.float32)] for _ in range(4))
        conv.target_spec.supported_ops = [tf().lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf().int8
        conv.inference_output_type = tf().int8
    return conv.convert()


def _onnx(kind: str, precision: str) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if kind == "fc":
        x_shape, w_shape, y_shape = [FC_M, FC_K], [FC_K, FC_N], [FC_M, FC_N]
        b_shape = [FC_N]
    else:
        x_shape, w_shape = [1, CONV_C, CONV_HW, CONV_HW], [CONV_C, CONV_C, CONV_K, CONV_K]
        y_shape, b_shape = [1, CONV_C, CONV_HW, CONV_HW], [CONV_C]
    conv_attrs = {"kernel_shape": [CONV_K, CONV_K], "pads": [1, 1, 1, 1]} if kind == "conv" else {}
    if precision == "float32":
        inits = [numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32) * 0.05, "w"),
                 numpy_helper.from_array(np.zeros(b_shape, np.float32), "b")]
        if kind == "fc":
            nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"])]
        else:
            nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], **conv_attrs)]
        elem = TensorProto.FLOAT
    else:
        # The integer operators ONNX Runtime runs on its int8 kernels (u8 activations, s8 weights).
        q = {"xs": np.float32(0.02), "xz": np.uint8(128), "ws": np.float32(0.01), "wz": np.int8(0),
             "ys": np.float32(0.05), "yz": np.uint8(128)}
        inits = [numpy_helper.from_array(np.array(v), k) for k, v in q.items()]
        w = rng.integers(-127, 128, w_shape, dtype=np.int8)
        inits.append(numpy_helper.from_array(w, "w"))
        if kind == "fc":
            nodes = [helper.make_node("QLinearMatMul", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])]
        else:
            inits.append(numpy_helper.from_array(np.zeros(b_shape, np.int32), "b"))
            nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                                      **conv_attrs)]
        elem = TensorProto.UINT8
    graph = helper.make_graph(nodes, f"probe-{kind}-{precision}", [helper.make_tensor_value_info("x", elem, x_shape)],
                              [helper.make_tensor_value_info("y", elem, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def build_probes(out_dir: str | Path, runtimes=("litert", "onnxruntime")) -> list[Probe]:
    """Writes the probe files (once; an existing file is reused) and returns them."""
    from edgeaffect.io import atomic_write_bytes

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    probes = []
    for runtime in runtimes:
        for kind in ("fc", "conv"):
            for precision in ("float32", "int8"):
                ext = "tflite" if runtime == "litert" else "onnx"
                path = out_dir / f"probe-{kind}-{precision}-{FC_M}x{FC_K}x{FC_N}-{CONV_HW}x{CONV_C}.{ext}"
                if not path.is_file():
                    atomic_write_bytes(path, (_tflite if runtime == "litert" else _onnx)(kind, precision))
                probes.append(Probe(kind, precision, runtime, path))
    return probes


def _runner(probe: Probe, threads: int):
    """(run, ()) with a fixed random input fed once: the timed call is invoke() alone."""
    rng = np.random.default_rng(1)
    if probe.runtime == "litert":
        from edgeaffect.runtime.litert import interpreter_class

        Interpreter, _ = interpreter_class()
        it = Interpreter(model_path=str(probe.path), num_threads=threads)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        x = (rng.integers(-128, 128, d["shape"], dtype=np.int8) if d["dtype"] == np.int8
             else rng.standard_normal(d["shape"]).astype(np.float32))
        it.set_tensor(d["index"], x)
        return it.invoke
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(probe.path), opts, providers=["CPUExecutionProvider"])
    i = sess.get_inputs()[0]
    x = (rng.integers(0, 256, i.shape, dtype=np.uint8) if "uint8" in i.type
         else rng.standard_normal(i.shape).astype(np.float32))
    out = [sess.get_outputs()[0].name]
    return lambda: sess.run(out, {i.name: x})


def time_probe(probe: Probe, threads: int, *, runs: int = 30, rounds: int = 3) -> float:
    """Best GFLOP/s (GOP/s) over ``rounds`` x ``runs`` invokes after a warm-up: the ceiling,
    so the fastest run counts (noise only ever slows a run down)."""
    import time

    run = _runner(probe, threads)
    for _ in range(3):
        run()
    best = float("inf")
    for _ in range(rounds):
        for _ in range(runs):
            t = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t)
    return probe.flops / best / 1e9
