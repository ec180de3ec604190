"""tflite-dynamic-int8 with chosen ops given their float weights back
(``edgeaffect.export.dynamic_range``): the rewrite, the ranking, and the search on a small
wav2vec 2.0 feature model whose plain dynamic-range file misses the 0.99 cosine bound."""

from __future__ import annotations

import numpy as np


def _model(seed: int = 0):
    """Two dense layers; the first sees an input whose one feature is 1000x the others (and
    weighs it 1000x less), so run-time 8-bit quantization of that input flattens the features
    the output depends on: the op int8 breaks."""
    from edgeaffect.keras_backend import keras

    k = keras()
    k.utils.set_random_seed(seed)
    x = k.layers.Input((64,), batch_size=1, name="x")
    wide = k.layers.Dense(64, activation="relu", name="wide_range")
    model = k.Model(x, k.layers.Dense(16, name="plain")(wide(x)))
    kernel, bias = wide.get_weights()
    kernel[0] /= 1000.0
    wide.set_weights([kernel, bias])
    return model


def _samples(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((1, 64)).astype(np.float32)
        x[0, 0] *= 1000.0
        out.append({"x": x})
    return out


def _run(blob: bytes, x: np.ndarray) -> np.ndarray:
    from edgeaffect.runtime.litert import interpreter_class

    Interpreter, _ = interpreter_class()
    it = Interpreter(model_content=blob)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def _files(model):
    from edgeaffect.export.formats.tflite import _converted

    dynamic = _converted(model, {"x": (64,)}, lambda t, c: setattr(c, "optimizations", [t.lite.Optimize.DEFAULT]))
    return dynamic, _converted(model, {"x": (64,)}, lambda t, c: None)


def test_every_op_given_float_weights_back_is_the_float_file():
    from edgeaffect.export import dynamic_range as dr
    from edgeaffect.runtime.litert_ops import read_model

    dynamic, fp = _files(_model())
    model = read_model(dynamic)
    hybrid = dr.hybrid_ops(model)
    assert len(hybrid) == 2  # both dense layers carry int8 weights
    names = [model.subgraphs[0].tensors[model.subgraphs[0].operators[i].outputs[0]].name.decode() for i in hybrid]
    restored = dr.with_float_weights(dynamic, fp, names)
    assert dr.hybrid_ops(read_model(restored)) == []
    assert len(restored) > len(dynamic)  # 4-byte weights again, in the same buffers
    x = _samples(1, 5)[0]["x"]
    np.testing.assert_allclose(_run(restored, x), _run(fp, x), rtol=1e-5, atol=1e-5)
    assert np.abs(_run(dynamic, x) - _run(fp, x)).max() > 1e-3  # the int8 file differs (the test can fail)


def test_the_op_that_int8_breaks_is_ranked_first():
    from edgeaffect.export import dynamic_range as dr

    dynamic, fp = _files(_model())
    ranked = dr.added_errors(dynamic, fp, {"x": (64,)}, _samples(3, 1))
    assert [r.op for r in ranked] == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert "wide_range" in ranked[0].node and "wide_range" not in ranked[1].node, ranked
    first, second = (float(r.detail.split(" % ")[0].rsplit(" ", 1)[1]) for r in ranked)
    assert first > 5 * second, ranked


def test_search_keeps_the_fewest_float_until_the_bound_holds():
    from edgeaffect.export import dynamic_range as dr

    dynamic, fp = _files(_model())
    checks = _samples(4, 2)
    want = [_run(fp, s["x"]) for s in checks]

    def error(blob):
        return max(float(np.abs(_run(blob, s["x"]) - w).max() / np.abs(w).max()) for s, w in zip(checks, want))

    wide = dr.added_errors(dynamic, fp, {"x": (64,)}, _samples(3, 1))[0].node
    bound = 1.5 * error(dr.with_float_weights(dynamic, fp, [wide]))  # met with the wide-range layer float
    assert error(dynamic) > bound  # and missed without it
    accept = lambda blob: [] if error(blob) <= bound else [f"error {error(blob):.3f} > {bound:.3f}"]  # noqa: E731
    blob, facts = dr.choose(dynamic, lambda: fp, {"x": (64,)}, _samples(3, 1), accept=accept)
    assert accept(blob) == [] and facts["mixed_precision"] == "1 layer(s) with float weights"
    (layer,) = facts["float_layers"]
    assert "wide_range" in layer["node"] and layer["why"] == "accuracy" and "the file failed" in layer["detail"]
    # asked for every weight int8, or no bound: the plain file
    assert dr.choose(dynamic, lambda: fp, {"x": (64,)}, [], accept=accept, full_int8=True)[0] == dynamic
    assert dr.choose(dynamic, lambda: fp, {"x": (64,)}, [])[0] == dynamic


def test_a_small_wav2vec2_feature_model_holds_its_bound_with_float_conv_weights(tmp_path):
    """A wav2vec 2.0 feature model wider than the tests' tiny one: plain dynamic range gives a
    mean cosine under 0.99 (0.985 measured); the search gives some conv encoder layers their
    float weights back and the file then verifies and gates."""
    from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, build_feature_model
    from edgeaffect.families.wav2vec2.backbone_export import export_backbone
    from edgeaffect.keras_backend import keras

    cfg = Wav2Vec2Config.tiny("group", hidden_size=64, intermediate_size=128, conv_dim=(64,) * 7)
    keras().utils.set_random_seed(0)
    model = build_feature_model(cfg, samples=32000, batch=1)
    report = export_backbone(model, cfg, tmp_path, samples=32000, formats=("tflite-dynamic-int8",))
    r = report["formats"]["tflite-dynamic-int8"]
    assert r["passed"] and r["gating"] and r["mean_cosine"] >= 0.99, r
    assert 1 <= len(r["float_layers"]) <= 8, r
    assert all("feature_extractor" in f["node"] or "conv" in f["node"] for f in r["float_layers"]), r


def test_naming_an_op_that_is_not_there_changes_nothing():
    from edgeaffect.export import dynamic_range as dr
    from edgeaffect.runtime.litert_ops import read_model

    dynamic, fp = _files(_model())
    same = dr.with_float_weights(dynamic, fp, ["no/such/op"])
    assert dr.hybrid_ops(read_model(same)) == dr.hybrid_ops(read_model(dynamic))


def test_a_hybrid_depthwise_conv_xnnpack_does_not_take_gets_its_float_weights_back():
    """The spectrotemporal extractor's hybrid DEPTHWISE_CONV_2D ran on the built-in kernel, each
    one a cut in XNNPACK's graph (5 partitions, 1.15x the fp32 time); with its float weights back
    XNNPACK takes it. A structural choice, so it holds for every target, and the output stays
    what dynamic range gives elsewhere."""
    from edgeaffect.export import dynamic_range as dr
    from edgeaffect.export.formats.tflite import _converted
    from edgeaffect.keras_backend import keras
    from edgeaffect.runtime.litert_ops import op_times

    k = keras()
    k.utils.set_random_seed(0)
    x = k.layers.Input((16, 16, 8), batch_size=1, name="image")
    h = k.layers.Conv2D(64, 1, activation="relu", name="expand")(x)
    # 5x5x64 weights: the converter leaves a weight under 1024 values float in dynamic range
    h = k.layers.DepthwiseConv2D(5, padding="same", activation="relu", name="dw")(h)
    model = k.Model(x, k.layers.Conv2D(8, 1, name="project")(h))
    specs = {"image": (16, 16, 8)}
    dynamic = _converted(model, specs, lambda t, c: setattr(c, "optimizations", [t.lite.Optimize.DEFAULT]))
    outside = dr.outside_the_delegate(dynamic)
    assert sorted(t for _, t in outside.values()) == ["DEPTHWISE_CONV_2D"], outside
    fp = _converted(model, specs, lambda t, c: None)
    blob, facts = dr.choose(dynamic, lambda: fp, specs, [], accept=lambda b: [])
    assert [(f["op"], f["why"]) for f in facts["float_layers"]] == [("DEPTHWISE_CONV_2D", "speed")], facts
    assert dr.outside_the_delegate(blob) == {}
    with __import__("tempfile").TemporaryDirectory() as d:
        before, after = (__import__("pathlib").Path(d) / n for n in ("before.tflite", "after.tflite"))
        before.write_bytes(dynamic)
        after.write_bytes(blob)
        assert op_times(before, budget_s=0.001, ops=False)["partitions"] > 1
        assert op_times(after, budget_s=0.001, ops=False)["partitions"] == 1
    sample = np.random.default_rng(0).standard_normal((1, 16, 16, 8)).astype(np.float32)
    want = _run(fp, sample)
    assert np.abs(_run(blob, sample) - want).max() <= 0.05 * np.abs(want).max()
