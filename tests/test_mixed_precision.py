"""Mixed precision: the TFLite and ONNX int8 exports find the layers that break int8 or that int8
makes slower, keeps them float by itself, and says so in the manifest."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toy_family import BREAKER_SPEC, register

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def breaker(tmp_path_factory):
    from edgeaffect.train.families import load_corpus, train

    register()
    root = tmp_path_factory.mktemp("breaker")
    BREAKER_SPEC.family_plugin.synthesize(root / "corpus", scale=120, seed=0)
    data = load_corpus(BREAKER_SPEC.name, root / "corpus", root / "cache")
    train(BREAKER_SPEC.name, data, root / "run", seed=0)
    return root


def _cli(*args):
    """The command line, the test-only family registered as a plugin."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "EDGEAFFECT_PLUGINS": "tests.toy_family",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "edgeaffect.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def _export(root, out, formats=("tflite-fp32", "tflite-int8"), **quantization):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.train.runs import load_run, run_dataset

    run = load_run(root / "run")
    return export_run(run, run_dataset(run), root / out, list(formats), qat_epochs=3, quantization=quantization)


def test_the_breaker_layer_is_found_and_kept_float(breaker):
    manifest = _export(breaker, "mixed")
    entry = manifest["files"]["tflite-int8"]
    accuracy = [f for f in entry["float_layers"] if f["why"] == "accuracy"]
    assert accuracy and "outlier" in accuracy[0]["node"], entry["float_layers"]
    assert len(accuracy) <= 2  # the fewest: the broken layer, not the whole model
    for v in manifest["verification"]:
        assert v["passed"], v
    on_disk = json.loads((breaker / "mixed" / "manifest.json").read_text())
    assert on_disk["files"]["tflite-int8"]["float_layers"] == entry["float_layers"]


def test_the_onnx_int8_export_for_tensorrt_keeps_the_breaker_float(breaker):
    """ONNX Runtime's quantizer with the node in ``nodes_to_exclude``, ranked by the noise
    ``qdq_loss_debug`` measures there."""
    import onnx

    manifest = _export(breaker, "mixed-onnx", ("onnx-fp32", "onnx-int8-trt"))
    entry = manifest["files"]["onnx-int8-trt"]
    assert [f["why"] for f in entry["float_layers"]] == ["accuracy"], entry["float_layers"]
    node = entry["float_layers"][0]["node"]
    assert "outlier" in node and "noise power" in entry["float_layers"][0]["detail"]
    assert all(v["passed"] for v in manifest["verification"])
    graph = onnx.load(str(breaker / "mixed-onnx" / entry["file"])).graph
    fed_by = {o: n for n in graph.node for o in n.output}
    kept = next(n for n in graph.node if n.name == node)
    assert all(fed_by.get(i) is None or fed_by[i].op_type != "DequantizeLinear" for i in kept.input)  # float
    assert any(n.op_type == "DequantizeLinear" for n in graph.node)  # and the rest int8
    with pytest.raises(Exception, match="onnx-int8-trt"):
        _export(breaker, "full-onnx", ("onnx-fp32", "onnx-int8-trt"), full_int8=True)


@pytest.mark.parametrize("fmt", ["tflite-int8", "onnx-int8-trt"])
def test_sensitivity_ranks_the_breaker_first_and_float_restores_the_metric(breaker, fmt, tmp_path):
    out = tmp_path / "s.json"
    r = _cli("sensitivity", breaker / "run", "--format", fmt, "--top", "2", "--json", out)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    (stage,) = result["stages"]
    first = stage["layers"][0]
    assert "outlier" in first["node"], stage["layers"][:3]
    # mae: every layer int8 is far off the float model; the breaker alone float brings it back
    assert stage["int8_metric"] > result["float_metric"] + 1.0
    assert abs(first["metric_alone_float"] - result["float_metric"]) < 0.3
    # ranked by what each moves the output alone in int8 (TFLite: the export's search order),
    # else by the error at the layer
    key = "output_error" if fmt == "tflite-int8" else "error"
    assert first[key] > stage["layers"][1][key] and stage["layers"][2]["metric_alone_float"] is None
    assert "rank" in r.stdout and first["node"] in r.stdout and "Traceback" not in r.stderr


def test_sensitivity_refuses_a_format_without_one(breaker):
    r = _cli("sensitivity", breaker / "run", "--format", "tflite-fp32")
    assert r.returncode == 2 and "no per-layer sensitivity" in r.stderr and "tflite-int8" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_full_int8_refuses_the_broken_file_and_writes_nothing(breaker):
    from edgeaffect.errors import VerificationError

    with pytest.raises(VerificationError, match="tflite-int8"):
        _export(breaker, "full", full_int8=True)
    assert not (breaker / "full").exists()


def test_no_float_layer_allowed_for_accuracy_refuses_the_broken_file(breaker):
    from edgeaffect.errors import VerificationError

    with pytest.raises(VerificationError, match="tflite-int8"):
        _export(breaker, "capped", max_float_layers=0)


def test_one_op_models_run_like_the_whole(breaker, tmp_path):
    """Each op cut out of a file is a valid model; the times add up to about the whole."""
    from edgeaffect.runtime.litert_ops import one_op_model, op_times, read_model, write_model
    from ai_edge_litert.interpreter import Interpreter

    _export(breaker, "ops", full_int8=False)
    path = next((breaker / "ops").glob("*-tflite-int8.tflite"))
    model = read_model(path.read_bytes())
    for i in range(len(model.subgraphs[0].operators)):
        it = Interpreter(model_content=write_model(one_op_model(model, i)))
        it.allocate_tensors()
        it.invoke()
    r = op_times(path, budget_s=0.01)
    assert len(r["ops"]) == len(model.subgraphs[0].operators)
    assert all(o.us is not None and o.us > 0 for o in r["ops"])
    assert {o.dtype.split("->")[0] for o in r["ops"]} >= {"int8", "float32"}  # mixed: both kinds of op
    assert np.isfinite(r["whole_us"]) and r["whole_us"] > 0


def test_an_op_that_cannot_be_timed_alone_is_judged_by_the_whole_file():
    """A fused LSTM keeps state: it cannot be cut out and timed alone, so the speed choice
    lists it for a whole-file comparison instead of skipping it (SpeechNet's int8 LSTM)."""
    from edgeaffect.export import mixed_precision as mp
    from edgeaffect.export.formats.tflite import calibrated_float
    from edgeaffect.keras_backend import keras

    k = keras()
    x = k.layers.Input((12, 8), batch_size=1, name="seq")
    model = k.Model(x, k.layers.Dense(3)(k.layers.LSTM(16)(x)))
    rng = np.random.default_rng(0)
    calibration = [{"seq": rng.standard_normal((1, 12, 8)).astype(np.float32)} for _ in range(8)]
    calibrated = calibrated_float(model, {"seq": (12, 8)}, calibration)
    slow, outside, untimed, float_us, int8_us = mp.slower_in_int8(calibrated, mp.quantize_keeping(calibrated, []))
    assert [u.op for u in untimed] == ["UNIDIRECTIONAL_SEQUENCE_LSTM"], untimed
    assert "not cut out" in untimed[0].detail and float_us > 0 and int8_us > 0
    blob, facts = mp.choose(calibrated, {"seq": (12, 8)}, calibration)
    for layer in facts["float_layers"]:  # whatever this machine measured, each choice says what
        assert layer["why"] == "speed" and " us" in layer["detail"], layer
    assert facts["full_int8_us_here"] > 0 and facts["mixed_us_here"] > 0
    # for another device: nothing timed here decides, so the fused LSTM stays int8
    blob, facts = mp.choose(calibrated, {"seq": (12, 8)}, calibration, speed=False)
    assert facts["float_layers"] == [] and "another device" in facts["speed_choices"]
    assert "full_int8_us_here" not in facts and blob == mp.quantize_keeping(calibrated, [])


def test_speed_choices_stay_within_the_size_cap():
    """Float weights cost size: the speed candidates, in the order tried, are kept while their
    float weights add at most SPEED_SIZE_GROWTH of the full int8 file; the rest stay int8 and
    the manifest facts name them."""
    from edgeaffect.export import mixed_precision as mp
    from edgeaffect.export.formats.tflite import calibrated_float
    from edgeaffect.keras_backend import keras

    k = keras()
    x = k.layers.Input((64,), name="v")
    h = x
    for i in range(4):
        h = k.layers.Dense(64, activation="relu", name=f"small{i}")(h)
    model = k.Model(x, k.layers.Dense(256, name="big")(h))
    rng = np.random.default_rng(0)
    calibration = [{"v": rng.standard_normal((1, 64)).astype(np.float32)} for _ in range(8)]
    calibrated = calibrated_float(model, {"v": (64,)}, calibration)
    full = mp.quantize_keeping(calibrated, [])
    cost = mp.added_bytes(calibrated)
    node = {name: next(n for n in cost if f"{name}/" in n) for name in ("small0", "small1")}
    node["big"] = next(n for n in cost if "small" not in n)  # the output op, named by the signature
    assert cost[node["big"]] == pytest.approx(64 * 256 * 3, rel=0.02)  # 3 of every 4 float bytes
    room = mp.SPEED_SIZE_GROWTH * len(full)
    assert cost[node["small0"]] <= room < cost[node["small0"]] + cost[node["small1"]] and cost[node["big"]] > room
    layers = {n: mp.FloatLayer(node[n], "FULLY_CONNECTED", "speed", n) for n in node}
    facts = {}
    first, second = mp._within_size(calibrated, len(full), [layers["big"], layers["small0"]], [layers["small1"]],
                                    facts=facts)
    assert first == [layers["small0"]] and second == []
    assert facts["left_int8_for_size"].count("FULLY_CONNECTED") == 2 and "+50%" in facts["left_int8_for_size"]
    kept = mp.quantize_keeping(calibrated, [layers["small0"].node])
    assert len(kept) <= len(full) + room


def test_bench_int8_times_each_file_at_any_size(tmp_path):
    from edgeaffect.measure.int8_speed import format_rows, int8_speed

    register()
    (row,) = int8_speed(BREAKER_SPEC, samples=4, budget_s=0.01)
    assert row["stage"] == BREAKER_SPEC.name
    for key in ("float32 us", "int8, every op us", "int8 as exported us"):
        assert row[key] > 0, row
    assert row["exported / float32"] == pytest.approx(row["int8 as exported us"] / row["float32 us"])
    text = format_rows([row], "this machine")
    assert "fresh weights and random calibration: speed only" in text and BREAKER_SPEC.name in text
    r = _cli("bench-int8", "no-such-model")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
