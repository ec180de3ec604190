"""The Keras wav2vec 2.0: config parsing, shapes, the grouped positional conv as per-group
convs, the hidden-state sum, and the analytic cost (no reference needed here)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.backbone import (SUM_DEFINITIONS, Wav2Vec2Config, build_wav2vec2, cost,
                                                   frame_count, min_samples, normalise_audio, sum_hidden_states)


def test_config_from_dict_reads_hf_fields_and_refuses_others():
    d = {"model_type": "wav2vec2", "architectures": ["Wav2Vec2ForCTC"], "hidden_size": 1024,
         "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096, "feat_extract_norm": "layer",
         "conv_bias": True, "do_stable_layer_norm": True, "conv_dim": [512] * 7, "vocab_size": 32,
         "hidden_dropout": 0.1, "num_feat_extract_layers": 7}
    c = Wav2Vec2Config.from_dict(d)
    assert c == Wav2Vec2Config.large("layer")
    assert Wav2Vec2Config.from_dict(c.to_dict()) == c
    for bad, fragment in [({"model_type": "hubert"}, "unsupported architecture"),
                          ({"architectures": ["Wav2Vec2ConformerForCTC"]}, "Wav2Vec2ConformerForCTC"),
                          ({"feat_extract_norm": "batch"}, "feat_extract_norm"),
                          ({"hidden_act": "tanh"}, "hidden_act"),
                          ({"hidden_size": 30}, "not divisible"),
                          ({"conv_kernel": [10, 3]}, "same non-zero length"),
                          ({"num_feat_extract_layers": 6}, "num_feat_extract_layers")]:
        with pytest.raises(InputError, match=fragment):
            Wav2Vec2Config.from_dict({**d, **bad})


def test_frames_of_a_7_s_segment():
    assert frame_count(112000, Wav2Vec2Config.base()) == 349
    assert frame_count(112000, Wav2Vec2Config.large()) == 349
    c = Wav2Vec2Config.base()
    assert frame_count(min_samples(c), c) == 1 and frame_count(min_samples(c) - 1, c) == 0


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_tiny_model_shapes_and_structure(norm):
    c = Wav2Vec2Config.tiny(norm)
    model = build_wav2vec2(c)
    audio = normalise_audio(np.random.default_rng(0).standard_normal((2, 5000)))
    states = model(audio)
    assert len(states) == c.num_hidden_layers + 1
    for s in states:
        assert tuple(s.shape) == (2, frame_count(5000, c), c.hidden_size)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv1D"]
    pos = [layer for layer in convs if "pos_conv_embed" in layer.name]
    assert len(pos) == c.num_conv_pos_embedding_groups and all(layer.groups == 1 for layer in convs)
    norms = [layer.name for layer in model.layers if "feature_extractor" in layer.name and "layer_norm" in layer.name]
    assert len(norms) == (7 if norm == "layer" else 1)
    # Parameters counted analytically equal the built model's (final LayerNorm included).
    assert build_wav2vec2(c, last_hidden_state=True).count_params() == cost(c)["params"]
    # A batch item does not leak into another (no cross-batch statistics).
    np.testing.assert_allclose(model(audio[:1])[-1].numpy(), states[-1].numpy()[:1], atol=1e-5)


def test_static_shape_build_and_too_short_input():
    c = Wav2Vec2Config.tiny("layer")
    model = build_wav2vec2(c, samples=16000, batch=1)
    assert tuple(model.outputs[0].shape) == (1, frame_count(16000, c), c.hidden_size)
    with pytest.raises(InputError, match="at least 400"):
        build_wav2vec2(c, samples=399)


def test_normalise_audio_per_utterance():
    y = np.stack([np.linspace(-1, 1, 1000), 5 + 3 * np.sin(np.arange(1000))]).astype(np.float32)
    z = normalise_audio(y)
    np.testing.assert_allclose(z.mean(axis=-1), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=-1), 1, atol=1e-4)
    assert z.dtype == np.float32
    assert np.all(np.isfinite(normalise_audio(np.zeros((1, 100)))))


def test_sum_definitions():
    states = [np.full((1, 2, 3), float(10 ** i)) for i in range(4)]  # L = 3
    assert sum_hidden_states(states)[0, 0, 0] == 1110  # states 1..L, the default
    assert sum_hidden_states(states, "all")[0, 0, 0] == 1111
    assert sum_hidden_states(states, "last")[0, 0, 0] == 1000
    assert sum_hidden_states(np.stack(states))[0, 0, 0] == 1110
    assert set(SUM_DEFINITIONS) == {"layers", "all", "last"}
    with pytest.raises(InputError, match="unknown hidden-state sum"):
        sum_hidden_states(states, "mean")


def test_cost_of_base_and_large():
    base, large = cost(Wav2Vec2Config.base()), cost(Wav2Vec2Config.large())
    # The reference's Wav2Vec2Model (masked_spec_embed off) counts 94,370,944 for base and
    # 315,437,696 for large (LV-60 variant); its positional-conv weight norm stores a
    # per-tap g (128 values) that the folded kernel does not have.
    assert base["params"] == 94_370_944 - 128
    assert large["params"] == 315_437_696 - 128
    assert base["frames"] == large["frames"] == 349
    # About 34 GFLOPs of conv feature encoder and 68 of transformer for base.
    assert 95e9 < base["flops"] < 110e9 and 2.4 < large["flops"] / base["flops"] < 2.8


def _export(tmp_path, formats):
    pytest.importorskip("ai_edge_litert")
    from edgeaffect.families.wav2vec2.backbone import build_feature_model
    from edgeaffect.families.wav2vec2.backbone_export import export_backbone

    c = Wav2Vec2Config.tiny("layer")
    model = build_feature_model(c, samples=16000, batch=1)
    return export_backbone(model, c, tmp_path, samples=16000, formats=formats)


def test_float_tflite_export_of_a_segment(tmp_path):
    """Static-shape export (1 s here for speed; the module's command does 7 s), verified
    against Keras; the positional conv exports as per-group convs."""
    r = _export(tmp_path, ("tflite-fp32",))["formats"]["tflite-fp32"]
    assert r["passed"] and r["rel_max_diff"] < 1e-4, r


@pytest.mark.slow
def test_export_in_every_format_verifies_against_keras(tmp_path):
    pytest.importorskip("tf2onnx")
    from edgeaffect.families.wav2vec2.backbone_files import BOUNDS, FORMATS

    report = _export(tmp_path, FORMATS)
    assert set(report["formats"]) == set(FORMATS) == set(BOUNDS)
    assert report["formats"]["onnx-dyn-int8"]["gating"]
    for fmt, r in report["formats"].items():
        assert r["passed"] and r["mean_cosine"] > 0.99, (fmt, r)
    assert report["formats"]["onnx-fp32"]["rel_max_diff"] < 1e-4
    assert report["formats"]["tflite-dynamic-int8"]["bytes"] < report["formats"]["tflite-fp32"]["bytes"]


def test_freeze_by_module_names():
    from edgeaffect.families.wav2vec2.backbone import freeze

    c = Wav2Vec2Config.tiny("layer")
    model = build_wav2vec2(c)
    total = model.count_params()
    freeze(model)
    conv = sum(int(np.prod(w.shape)) for layer in model.layers if layer.name.startswith("feature_extractor")
               for w in layer.weights)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == total - conv
    freeze(model, layers_below=c.num_hidden_layers - 1)
    trainable = {layer.name.split("__")[2] for layer in model.layers if layer.trainable_weights}
    assert trainable == {str(c.num_hidden_layers - 1)}


def test_onnx_dyn_int8_format_quantizes_matmuls_only(tmp_path):
    """The registered ``onnx-dyn-int8`` format (any family's): Dense MatMuls become ONNX
    Runtime's dynamic int8 ops, the Conv stays float, and the file runs close to Keras."""
    pytest.importorskip("tf2onnx")
    import onnx

    from edgeaffect.export.formats import get_format
    from edgeaffect.keras_backend import keras
    from edgeaffect.runtime import load_runner

    k = keras()
    k.utils.set_random_seed(0)
    x_in = k.Input((50, 4), name="x")
    h = k.layers.Conv1D(8, 3, activation="relu")(x_in)
    h = k.layers.Dense(16, activation="relu")(h)
    model = k.Model(x_in, k.layers.Dense(2)(k.layers.GlobalAveragePooling1D()(h)))
    fmt = get_format("onnx-dyn-int8")
    assert (fmt.source, fmt.precision, fmt.runtime) == ("float", "int8", "onnxruntime")
    facts = fmt.write(model, {"x": (50, 4)}, [], tmp_path / "m.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert "Conv" in ops and "ConvInteger" not in ops
    assert facts["quantized_matmuls"] == 2 and facts["float_matmuls"] == 0, (facts, ops)
    x = np.random.default_rng(0).standard_normal((8, 50, 4)).astype(np.float32)
    # 7-bit weights: what CPUs without VNNI (vpmaddubsw) multiply without saturating
    from onnx import numpy_helper
    int8 = [numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "m.onnx")).graph.initializer
            if t.data_type == onnx.TensorProto.INT8 and t.dims]
    assert int8 and max(int(np.abs(w.astype(np.int16)).max()) for w in int8) <= 64
    got = load_runner(tmp_path / "m.onnx", "onnxruntime").run({"x": x})
    want = model.predict(x, verbose=0)
    assert np.max(np.abs(got - want)) < 0.05 * np.max(np.abs(want)), (got, want)


@pytest.mark.slow
def test_rtf_command_writes_json_naming_the_machine(tmp_path):
    """The real-time-factor command at the tiny size (1 s, 2 rounds): each step in its own
    process, resumable; rtf.json names the machine and gives a ratio per format."""
    pytest.importorskip("tf2onnx")
    import json
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "edgeaffect.families.wav2vec2.backbone_export", str(tmp_path), "--rtf", "--size",
           "tiny", "--seconds", "1", "--rounds", "2", "--formats", "keras,onnx-dyn-int8"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((tmp_path / "rtf.json").read_text())
    assert report["machine"] and report["threads"] == 1 and report["segment_s"] == 1.0
    assert set(report["formats"]) == {"keras", "onnx-dyn-int8"}
    for f, e in report["formats"].items():
        assert e["rtf"] > 0 and e["ratio_to_keras"] > 0 and e["export_peak_rss_mb"] > 0, (f, e)
    assert report["formats"]["onnx-dyn-int8"]["passed"] and report["formats"]["onnx-dyn-int8"]["mean_cosine"] > 0.99
    assert "--rtf --size tiny" in report["command"]
    bad = subprocess.run([*cmd[:-1], "keras,tflite-int7"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown tflite-int7" in bad.stderr


def test_device_estimate_from_host_efficiency(tmp_path):
    """--predict: efficiency = (FLOPs / this machine's ISA peak) / measured time; a CPU
    device's estimate = its roofline bound / efficiency; GPUs are left out."""
    import json

    from edgeaffect.families.wav2vec2.rtf import predict_devices

    (tmp_path / "rtf.json").write_text(json.dumps({"threads": 1, "segment_s": 7.0, "machine": "m",
                                                   "formats": {"keras": {}, "tflite-fp32": {}}}))
    (tmp_path / "step-time.json").write_text(json.dumps({"times_s": {"keras": [1.0], "tflite-fp32": [2.0, 4.0, 5.0]}}))
    row = lambda dev, ms, gf: {"model": "m/backbone (per segment) float32", "precision": "float32",  # noqa: E731
                               "device": dev, "latency_ms": ms, "attainable_gflops": gf}
    (tmp_path / "b.json").write_text(json.dumps([row("host", 1000.0, 100.0), row("rpi5", 500.0, 200.0),
                                                 row("jetson-orin-nano", 10.0, 1e4)]))
    (tmp_path / "r.json").write_text(json.dumps({"rows": [{"precision": "float32", "threads": 1,
                                                           "isa_peak_gflops": 200.0}]}))
    rep = predict_devices(tmp_path, tmp_path / "b.json", tmp_path / "r.json")
    assert [r["device"] for r in rep["rows"]] == ["rpi5"]
    r = rep["rows"][0]
    # 100 GFLOP at 200 GFLOP/s = 0.5 s of peak; best 2 s -> 0.25, median 4 s -> 0.125
    assert r["efficiency_best"] == 0.25 and r["efficiency_median"] == 0.125
    assert r["estimate_s"] == [2.0, 4.0] and r["rtf"] == [0.29, 0.57] and r["keeps_up"] == "yes"
