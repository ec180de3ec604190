"""`edgeaffect trt-check`: onnx-tensorrt's operator tables as data, their restrictions as
rules, every subgraph walked. One small hand-built ONNX per rule, each refused with the node
named; a clean model accepted per version; the Jetson bundles of both models pass for 10.3."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tests.test_cli import assert_one_line_error, cli  # noqa: E402

F = TensorProto.FLOAT


def model(nodes, inits=(), opset=17, inputs=None, outputs=None, functions=()):
    inputs = inputs or [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", F, None)]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=[numpy_helper.from_array(v, k)
                                                                     for k, v in dict(inits).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], functions=list(functions))
    m.ir_version = 8
    return m


def check(m, version="10.3"):
    from edgeaffect.export.trt_check import check_model

    return check_model(m, version)


def node(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or f"{op.lower()}_node", **attrs)


I64 = lambda *v: np.array(v, np.int64)  # noqa: E731


def qdq(dtype, zp):
    x = helper.make_tensor_value_info("x", F, [4])
    inits = {"s": np.array(0.1, np.float32), "zp": np.array(zp, dtype)}
    return model([node("QuantizeLinear", ["x", "s", "zp"], ["q"], "quant"),
                  node("DequantizeLinear", ["q", "s", "zp"], ["y"], "dequant")], inits, inputs=[x])


def if_model(branch_op):
    """An If whose then-branch holds ``branch_op`` (the op check must look inside)."""
    t_out = [helper.make_tensor_value_info("t", F, None)]
    e_out = [helper.make_tensor_value_info("e", F, None)]
    then = helper.make_graph([node(branch_op, ["x"], ["t"], "inner_op")], "then", [], t_out)
    other = helper.make_graph([node("Identity", ["x"], ["e"], "inner_id")], "else", [], e_out)
    c = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    return model([node("If", ["c"], ["y"], "branch", then_branch=then, else_branch=other)],
                 inputs=[helper.make_tensor_value_info("x", F, [3, 3]), c])


def lstm(**attrs):
    x = helper.make_tensor_value_info("x", F, [5, 1, 4])
    inits = {"W": np.zeros((1, 16, 4), np.float32), "R": np.zeros((1, 16, 4), np.float32)}
    return model([node("LSTM", ["x", "W", "R"], ["y"], "rnn", hidden_size=4, **attrs)], inits, inputs=[x])


def axes_from_shape(op):
    """``axes`` computed at run time (Shape -> Gather), as TensorRT's table forbids."""
    nodes = [node("Shape", ["x"], ["s"], "shape"), node("Gather", ["s", "i"], ["axes"], "gather", axis=0)]
    return model(nodes + [node(op, ["x", "axes"], ["y"], "dyn_axes")], {"i": I64(0)})


# rule name -> (a model that breaks it, the node that must be named)
BROKEN = {
    "qdq_int8_zero_point (uint8, zero point 147)": (lambda: qdq(np.uint8, 147), "quant"),
    "qdq_int8_zero_point (int8, zero point 98)": (lambda: qdq(np.int8, 98), "dequant"),
    "operator (Det inside If)": (lambda: if_model("Det"), "branch/then_branch/inner_op"),
    "operator (Unique)": (lambda: model([node("Unique", ["x"], ["y"], "uniq")]), "uniq"),
    "operator (custom domain)": (lambda: model([helper.make_node("Foo", ["x"], ["y"], "custom", domain="com.x")]),
                                 "custom"),
    "input_forget_zero": (lambda: lstm(input_forget=1), "rnn"),
    "layout_zero": (lambda: lstm(layout=1), "rnn"),
    "same_activations_both_directions": (lambda: lstm(direction="bidirectional", activations=[
        "Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Tanh"]), "rnn"),
    "pool_2d_3d": (lambda: model([node("MaxPool", ["x"], ["y"], "pool1d", kernel_shape=[2])],
                                 inputs=[helper.make_tensor_value_info("x", F, [1, 3, 8])]), "pool1d"),
    "no_dilations": (lambda: model([node("MaxPool", ["x"], ["y"], "dilated", kernel_shape=[2, 2],
                                         dilations=[2, 2])]), "dilated"),
    "no_indices_output": (lambda: model([node("MaxPool", ["x"], ["y", "idx"], "argmax_pool", kernel_shape=[2, 2])],
                                        outputs=[helper.make_tensor_value_info("y", F, None),
                                                 helper.make_tensor_value_info("idx", TensorProto.INT64, None)]),
                          "argmax_pool"),
    "resize_modes (cubic)": (lambda: model([node("Resize", ["x", "", "sc"], ["y"], "up", mode="cubic")],
                                           {"sc": np.array([1, 1, 2, 2], np.float32)}), "up"),
    "resize_modes (tf_crop_and_resize)": (lambda: model([node(
        "Resize", ["x", "", "sc"], ["y"], "crop", coordinate_transformation_mode="tf_crop_and_resize")],
        {"sc": np.array([1, 1, 2, 2], np.float32)}), "crop"),
    "resize_no_antialias": (lambda: model([node("Resize", ["x", "", "sc"], ["y"], "aa", mode="linear", antialias=1)],
                                          {"sc": np.array([1, 1, 0.5, 0.5], np.float32)}, opset=18), "aa"),
    "first_output_only": (lambda: model([node("LayerNormalization", ["x", "g"], ["y", "mean"], "ln")],
                                        {"g": np.ones(8, np.float32)},
                                        outputs=[helper.make_tensor_value_info("y", F, None),
                                                 helper.make_tensor_value_info("mean", F, None)]), "ln"),
    "axes_initializer (Squeeze)": (lambda: axes_from_shape("Squeeze"), "dyn_axes"),
    "axes_initializer (Unsqueeze)": (lambda: axes_from_shape("Unsqueeze"), "dyn_axes"),
    "axes_initializer (ReduceSum)": (lambda: axes_from_shape("ReduceSum"), "dyn_axes"),
    "axes_initializer (Pad)": (lambda: model([
        node("Shape", ["x"], ["s"], "shape"), node("Gather", ["s", "i"], ["axes"], "gather", axis=0),
        node("Pad", ["x", "p", "", "axes"], ["y"], "dyn_pad")], {"i": I64(0), "p": I64(1, 1)}, opset=18),
        "dyn_pad"),
    "opset_range": (lambda: model([node("Relu", ["x"], ["y"])], opset=21), "model"),
    "inference_dropout": (lambda: model([node("Dropout", ["x", "", "train"], ["y"], "drop")],
                                        {"train": np.array(True)}), "drop"),
    "branch_outputs_distinct_names": (lambda: _same_name_branches(), "branch"),
    "topk_sorted": (lambda: model([node("TopK", ["x", "k"], ["y", "i"], "topk", sorted=0)], {"k": I64(2)}), "topk"),
    "k_below_3840": (lambda: model([node("TopK", ["x", "k"], ["y", "i"], "bigk")], {"k": I64(4000)}), "bigk"),
    "no_reduction": (lambda: model([node("ScatterND", ["x", "i", "u"], ["y"], "scat", reduction="add")],
                                   {"i": I64(0).reshape(1, 1), "u": np.zeros((1, 3, 8, 8), np.float32)}), "scat"),
    "dense_constant_only": (lambda: model([helper.make_node("Constant", [], ["s"], "strconst",
                                                            value_strings=["a"]), node("Relu", ["x"], ["y"])]),
                            "strconst"),
    "uint8_io_only": (lambda: model([node("Cast", ["x"], ["c"], "to_u8", to=TensorProto.UINT8),
                                     node("Cast", ["c"], ["y"], "back", to=F)]), "to_u8"),
    "operator in a local function": (lambda: _function_with("Det"), "call/inner_det"),
    "axis_initializer": (lambda: axes_from_shape("CumSum"), "dyn_axes"),
    "depth_initializer": (lambda: model([node("Shape", ["x"], ["d"], "shape"),
                                         node("OneHot", ["i", "d", "v"], ["y"], "onehot")],
                                        {"i": I64(1), "v": np.array([0, 1], np.float32)}), "onehot"),
    "symmetric_pads": (lambda: model([node("DeformConv", ["x", "w", "off"], ["y"], "deform", pads=[1, 1, 0, 0])],
                                     {"w": np.zeros((2, 3, 3, 3), np.float32),
                                      "off": np.zeros((1, 18, 8, 8), np.float32)}, opset=19), "deform"),
}

# TensorRT 8.x restrictions the 10.x table dropped
BROKEN_8X = {
    "conv_2d_3d": (lambda: model([node("Conv", ["x", "w"], ["y"], "conv1d", kernel_shape=[3])],
                                 {"w": np.zeros((2, 3, 3), np.float32)}, opset=13,
                                 inputs=[helper.make_tensor_value_info("x", F, [1, 3, 8])]), "conv1d"),
    "weights_initializer": (lambda: model([node("Conv", ["x", "w"], ["y"], "dyn_w")], opset=13, inputs=[
        helper.make_tensor_value_info("x", F, [1, 3, 8, 8]), helper.make_tensor_value_info("w", F, [2, 3, 3, 3])]),
        "dyn_w"),
    "einsum_no_ellipsis_or_diagonal": (lambda: model([node("Einsum", ["x"], ["y"], "diag", equation="ii->i")],
                                                     opset=13), "diag"),
    "k_initializer": (lambda: model([node("Shape", ["x"], ["s"], "shape"), node("Gather", ["s", "i"], ["k"], "g"),
                                     node("TopK", ["x", "k"], ["y", "j"], "dyn_k")], {"i": I64(0)}, opset=13),
                      "dyn_k"),
    "scale_bias_initializers": (lambda: model([node("InstanceNormalization", ["x", "sc", "b"], ["y"], "inorm")],
                                              opset=13, inputs=[helper.make_tensor_value_info(n, F, s) for n, s in (
                                                  ("x", [1, 3, 8, 8]), ("sc", [3]), ("b", [3]))]), "inorm"),
    "nms_thresholds_initializers": (lambda: model([node("NonMaxSuppression", ["x", "sc", "m", "iou", "st"], ["y"],
                                                        "nms")], {"m": I64(5), "st": np.array([0.5], np.float32)},
                                                  opset=13, inputs=[helper.make_tensor_value_info(n, F, s) for n, s in (
                                                      ("x", [1, 4, 4]), ("sc", [1, 1, 4]), ("iou", [1]))]), "nms"),
}


def _same_name_branches():
    out = [helper.make_tensor_value_info("z", F, None)]
    a = helper.make_graph([node("Identity", ["x"], ["z"], "a")], "a", [], out)
    b = helper.make_graph([node("Neg", ["x"], ["z"], "b")], "b", [], out)
    c = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    return model([node("If", ["c"], ["y"], "branch", then_branch=a, else_branch=b)],
                 inputs=[helper.make_tensor_value_info("x", F, [3]), c])


def _function_with(op):
    f = helper.make_function("local", "Inner", ["a"], ["b"], [node(op, ["a"], ["b"], "inner_det")],
                             [helper.make_opsetid("", 17)])
    m = model([helper.make_node("Inner", ["x"], ["y"], "call", domain="local")], functions=[f])
    m.opset_import.append(helper.make_opsetid("local", 1))
    return m


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_rule_refuses_its_model_naming_the_node(case):
    build, where = BROKEN[case]
    rule = case.split(" ")[0]
    found = check(build())
    assert any(v.node == where and v.rule == rule for v in found), [str(v) for v in found]
    assert all(str(v).startswith(v.node) for v in found)


@pytest.mark.parametrize("case", list(BROKEN_8X))
def test_each_tensorrt_8_rule_refuses_its_model(case):
    build, where = BROKEN_8X[case]
    found = check(build(), "8.2")
    assert any(v.node == where and v.rule == case for v in found), [str(v) for v in found]


def test_version_tables_differ_where_the_parser_did():
    xor = model([node("Xor", ["a", "b"], ["y"], "xor")],
                inputs=[helper.make_tensor_value_info(n, TensorProto.BOOL, [2]) for n in "ab"], opset=13)
    assert [v.rule for v in check(xor, "8.2")] == ["operator"]  # Xor came in 8.4
    assert check(xor, "8.5") == [] and check(xor, "10.3") == []
    for op in ("HardSwish", "Mish", "Shrink", "MeanVarianceNormalization"):
        assert check(model([node(op, ["x"], ["y"])]), "10.3") == [], op
    assert [v.rule for v in check(model([node("Relu", ["x"], ["y"])], opset=8), "10.3")] == ["opset_range"]
    assert [v.rule for v in check(model([node("Relu", ["x"], ["y"])], opset=17), "8.2")] == ["opset_range"]
    slice_dyn = axes_from_shape("Slice")
    slice_dyn.graph.node[-1].input[:] = ["x", "st", "en", "axes"]
    slice_dyn.graph.initializer.extend([numpy_helper.from_array(I64(0), "st"), numpy_helper.from_array(I64(1), "en")])
    assert [v.rule for v in check(slice_dyn, "8.5")] == ["axes_initializer"]
    assert check(slice_dyn, "10.3") == []  # 10.3 takes tensor axes for Slice (onnx-tensorrt changelog)


@pytest.mark.parametrize("version,opset", [("8.2", 13), ("8.5", 17), ("10.3", 17)])
def test_a_clean_int8_model_passes_each_version(version, opset):
    """Symmetric int8 Q/DQ on a Conv's input and per-channel weights, then pool, reshape, matmul."""
    w = np.random.default_rng(0).integers(-127, 127, (4, 3, 3, 3)).astype(np.int8)
    inits = {"s": np.array(0.02, np.float32), "z": np.array(0, np.int8), "w": w,
             "ws": np.full(4, 0.01, np.float32), "wz": np.zeros(4, np.int8), "shape": I64(1, -1),
             "m": np.ones((36, 2), np.float32)}
    nodes = [node("QuantizeLinear", ["x", "s", "z"], ["xq"], "q"), node("DequantizeLinear", ["xq", "s", "z"], ["xd"], "dq"),
             node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], "wdq", axis=0),
             node("Conv", ["xd", "wd"], ["c"], "conv", kernel_shape=[3, 3]), node("Relu", ["c"], ["r"], "relu"),
             node("MaxPool", ["r"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
             node("Reshape", ["p", "shape"], ["f"], "flat"), node("MatMul", ["f", "m"], ["y"], "dense")]
    assert check(model(nodes, inits, opset=opset), version) == []


def test_cli_exit_codes_and_one_line_errors(tmp_path):
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    onnx.save(model([node("Relu", ["x"], ["y"], "relu")]), str(good))
    onnx.save(qdq(np.uint8, 98), str(bad))
    r = cli("trt-check", good, "--tensorrt", "10.3")
    assert r.returncode == 0 and "10.3" in r.stdout
    r = cli("trt-check", bad)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 1 and len(lines) >= 2, r.stdout + r.stderr
    assert any(line.startswith("quant (QuantizeLinear): qdq_int8_zero_point:") for line in lines)
    assert_one_line_error(cli("trt-check", tmp_path / "missing.onnx"), "not found")
    (tmp_path / "text.onnx").write_text("not a model\n")
    assert_one_line_error(cli("trt-check", tmp_path / "text.onnx"), "not an ONNX model")
    assert_one_line_error(cli("trt-check", good, "--tensorrt", "10.4"), "unknown TensorRT version")


def test_trt_check_does_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "m.onnx"
    onnx.save(model([node("Relu", ["x"], ["y"])]), str(path))
    code = ("import sys; from edgeaffect.cli import app; from typer.testing import CliRunner; "
            f"r = CliRunner().invoke(app, ['trt-check', {str(path)!r}]); "
            "assert r.exit_code == 0, r.output; sys.exit(1 if 'tensorflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- the Jetson bundles of both models (trained once per session by the shared fixtures) ---

@pytest.fixture(scope="session")
def speech_jetson_bundle(speech_run, speech_dataset, tmp_path_factory):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target

    out = tmp_path_factory.mktemp("bundles") / "speech-orin"
    export_run(speech_run, speech_dataset, out, target=get_target("jetson-orin-nano"), options={"precision": "int8"})
    return out


@pytest.fixture(scope="session")
def aver_jetson_bundle(trained_run, dataset, tmp_path_factory):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target

    out = tmp_path_factory.mktemp("bundles") / "aver-orin"
    export_run(trained_run, dataset, out, target=get_target("jetson-orin-nano"), options={"precision": "int8"})
    return out


def _int8_structure(path):
    """Per DequantizeLinear, the op types reading it; and every Q/DQ zero point."""
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    readers = {n.output[0]: {c.op_type for c in m.graph.node if n.output[0] in c.input}
               for n in m.graph.node if n.op_type == "DequantizeLinear"}
    zps = [inits[n.input[2]] for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    return readers, zps


@pytest.mark.parametrize("which", ["aver_jetson_bundle", "speech_jetson_bundle"])
def test_jetson_bundles_of_both_models_pass_for_10_3(which, request):
    bundle = request.getfixturevalue(which)
    m = json.loads((bundle / "manifest.json").read_text())
    assert list(m["files"]) == ["onnx-fp32", "onnx-int8-trt"] and m["target"]["tensorrt"] == "10.3"
    for e in m["files"].values():
        r = cli("trt-check", bundle / e["file"], "--tensorrt", "10.3")
        assert r.returncode == 0, r.stdout + r.stderr
    readers, zps = _int8_structure(bundle / m["files"]["onnx-int8-trt"]["file"])
    # each Q/DQ pair sits on an input of a Conv / Gemm / MatMul (where TensorRT fuses it; other
    # readers of the same tensor share it); none feeds an LSTM, which stays float
    assert readers and all(r & {"Conv", "Gemm", "MatMul"} for r in readers.values()), readers
    assert not any("LSTM" in r for r in readers.values())
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)
    assert m["target"]["engine"]["onnx"] == m["files"]["onnx-int8-trt"]["file"]
    v = {x["format"]: x for x in m["verification"]}["onnx-int8-trt"]
    assert v["passed"] and v["top1_agreement"] >= 0.95


# --- the Jetson Nano (TensorRT 8.2: opset 13, no Reciprocal in its parser table) -----------

def _nano_bundle(run, data, out):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target, resolve_options

    nano = get_target("jetson-nano")
    export_run(run, data, out, target=nano, options=resolve_options(nano, {}))  # the defaults, as the CLI does
    return out


@pytest.fixture(scope="session")
def speech_nano_bundle(speech_run, speech_dataset, tmp_path_factory):
    return _nano_bundle(speech_run, speech_dataset, tmp_path_factory.mktemp("bundles") / "speech-nano")


def test_speechnet_nano_bundle_is_opset_13_without_reciprocal_and_passes_8_2(speech_nano_bundle):
    """SpeechNet (LSTM, multi-head attention, capsule routing with Rsqrt) at opset 13: tf2onnx's
    Reciprocal (N in 8.2's table) is written as Div(1, x); both files pass TensorRT 8.2's rules."""
    m = json.loads((speech_nano_bundle / "manifest.json").read_text())
    assert m["target"]["tensorrt"] == "8.2"
    for e in m["files"].values():
        model = onnx.load(str(speech_nano_bundle / e["file"]))
        ops = {n.op_type for n in model.graph.node}
        assert e["onnx_opset"] == 13 and "LSTM" in ops and "Reciprocal" not in ops, e["file"]
        assert e["replaced_ops"]["Reciprocal"] > 0
        r = cli("trt-check", speech_nano_bundle / e["file"], "--tensorrt", "8.2")
        assert r.returncode == 0, r.stdout + r.stderr
    assert all(v["passed"] for v in m["verification"])


def test_an_op_the_nano_cannot_parse_fails_the_export_in_one_line(speech_run, speech_dataset, tmp_path):
    """Without the rewrite, SpeechNet's Reciprocal reaches the 8.2 check: the export fails naming
    it, and nothing is written."""
    from dataclasses import replace

    from edgeaffect.errors import VerificationError
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target

    nano = get_target("jetson-nano")
    bare = replace(nano, writer_options={"onnx_opset": 13})
    with pytest.raises(VerificationError, match=r"TensorRT 8\.2.*\(Reciprocal\): operator: marked unsupported") as e:
        export_run(speech_run, speech_dataset, tmp_path / "b", target=bare)
    assert "\n" not in str(e.value) and not (tmp_path / "b").exists()
