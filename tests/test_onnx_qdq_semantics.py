"""An onnx-qdq file runs as its Q/DQ nodes say on every CPU: ONNX Runtime's runner leaves out
the optimizer that re-quantizes float weights between Q/DQ activations on its own grid
(``edgeaffect.runtime.onnxrt.UNFAITHFUL_OPTIMIZERS``). On an AVX2 CPU without VNNI that grid's
u8 x s8 kernel saturated and moved the spectrotemporal sequence's scores by 1.2 points."""

from __future__ import annotations

import numpy as np


def _qdq_dense(path, seed: int = 0) -> None:
    """x -> Q/DQ (u8) -> MatMul by float weights -> Add bias -> Q/DQ (a fine output grid)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
             numpy_helper.from_array(np.array(128, np.uint8), "xz"),
             numpy_helper.from_array(np.array(0.001, np.float32), "ys"),
             numpy_helper.from_array(np.array(128, np.uint8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("MatMul", ["xd", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["pre"]),
             helper.make_node("QuantizeLinear", ["pre", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    graph = helper.make_graph(nodes, "qdq_dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_the_runner_gives_the_q_dq_reference_result(tmp_path):
    import onnxruntime as ort

    from edgeaffect.runtime.onnxrt import OnnxRuntimeRunner

    path = tmp_path / "qdq.onnx"
    _qdq_dense(path)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # every node as written
    reference = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    runner = OnnxRuntimeRunner(path)  # without the fix: 0.017 off on this AVX2 machine
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = np.clip(rng.standard_normal((1, 64)), -2.5, 2.5).astype(np.float32)
        want = reference.run(None, {"x": x})[0]
        # float sums in another order can cross one output step (0.001); a re-quantized weight grid
        # moves outputs by about 0.01 to 0.05 (measured: ONNX Runtime 1.32, its default optimizers)
        np.testing.assert_allclose(runner.run({"x": x}), want, rtol=0, atol=0.0011)
