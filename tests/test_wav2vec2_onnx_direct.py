"""The wav2vec 2.0 feature model written to ONNX without tf2onnx (issue 29: base and large
within the machine's memory). Tiny random models: every structural variant against Keras."""

from __future__ import annotations

import numpy as np
import pytest

from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, build_feature_model

SAMPLES = 16000


def _model(config, definition="layers", seed=0):
    from edgeaffect.keras_backend import keras

    keras().utils.set_random_seed(seed)
    m = build_feature_model(config, samples=SAMPLES, batch=1, definition=definition, gelu="erf")
    rng = np.random.default_rng(seed)  # norms and biases away from 1 and 0, so each one matters
    for layer in m.layers:
        if layer.weights:
            layer.set_weights([w + 0.1 * rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()])
    return m


def _run(proto, x):
    import onnxruntime as ort

    s = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"audio": x})[0]


@pytest.mark.parametrize("config, definition", [
    (Wav2Vec2Config.tiny("group"), "layers"),  # base's shape: GroupNorm first conv, post-LN
    (Wav2Vec2Config.tiny("layer"), "layers"),  # large LV-60's: conv LayerNorms and bias, pre-LN
    (Wav2Vec2Config.tiny("group", num_conv_pos_embeddings=15), "all"),  # odd kernel: nothing dropped
    (Wav2Vec2Config.tiny("layer", do_stable_layer_norm=False, num_conv_pos_embedding_groups=1), "last"),
])
def test_the_direct_graph_computes_the_keras_model(config, definition):
    """Within 1e-5 of the largest feature (float32 rounding of a different op order)."""
    from edgeaffect.families.wav2vec2.onnx_direct import feature_model_proto

    m = _model(config, definition)
    x = np.random.default_rng(1).standard_normal((1, SAMPLES)).astype(np.float32)
    want = m(x, training=False).numpy()
    got = _run(feature_model_proto(m, config, definition), x)
    assert got.shape == want.shape
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-5


def test_the_onnx_formats_use_it_and_fall_back_below_opset_17(tmp_path):
    """onnx-fp32 and onnx-dyn-int8 of a static feature model are written directly (one
    LayerNormalization op per norm, one grouped Conv for the positional convolution); a
    target that asks for opset 13 (TensorRT 8.2's parser) gets tf2onnx's graph."""
    import onnx

    from edgeaffect.export.onnx_graph import write_onnx
    from edgeaffect.roofline.readers import analyse

    config = Wav2Vec2Config.tiny("group")
    m = _model(config)
    write_onnx(m, {"audio": (SAMPLES,)}, [], tmp_path / "direct.onnx")
    proto = onnx.load(tmp_path / "direct.onnx")
    ops = [n.op_type for n in proto.graph.node]
    assert proto.producer_name.startswith("edgeaffect")
    assert ops.count("LayerNormalization") == 2 + 2 * config.num_hidden_layers  # projection, encoder, 2 per layer
    grouped = [n for n in proto.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1
                                                                          for a in n.attribute)]
    assert len(grouped) == 1
    keras, direct = analyse(m), analyse(tmp_path / "direct.onnx")
    assert direct.uncounted == [] and direct.macs == keras.macs
    # the erf GELU is an activation (zero in the convention), not four element-wise ops
    assert abs(direct.flops / keras.flops - 1) < 0.01, (direct.flops, keras.flops)
    write_onnx(m, {"audio": (SAMPLES,)}, [], tmp_path / "old.onnx", onnx_opset=13)
    assert onnx.load(tmp_path / "old.onnx").producer_name == "tf2onnx"
