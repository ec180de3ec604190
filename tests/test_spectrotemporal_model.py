"""The spectrotemporal model: built flat (no nested model), analytic cost equal to Keras'
parameter count, ImageNet weights from a local file giving Keras' ImageNet graph, and the
paper variants' sizes."""

import numpy as np
import pytest

from edgeaffect.families.spectrotemporal import model as M


@pytest.fixture(scope="module")
def tiny():
    return M.build_spectronet(M.tiny_config())


def test_tiny_model_is_flat_and_its_cost_rows_count_keras_parameters(tiny):
    from edgeaffect.keras_backend import keras

    assert not [layer.name for layer in tiny.layers if isinstance(layer, keras().Model)]
    assert sum(r.params for r in M.spectronet_cost(M.tiny_config())) == tiny.count_params()
    c = M.tiny_config()
    x = {"spectrogram": np.random.default_rng(0).uniform(0, 255, (2, c.segments, 48, 48, 3)).astype("float32"),
         "vlnep": np.random.default_rng(1).standard_normal((2, c.segments, 256)).astype("float32")}
    assert tiny.predict(x, verbose=0).shape == (2, 1)


def test_patches_overlap_and_cover_the_image():
    c = M.SpectroNetConfig()
    assert c.patches() == [(0, 0, 60, 48), (0, 32, 60, 48), (40, 0, 60, 48), (40, 32, 60, 48)]
    with pytest.raises(ValueError, match="at least 32 x 32"):
        M.tiny_config(patch_fraction=0.5)


def test_paper_variant_sizes_beside_the_paper():
    spec = M.spectrotemporal_avec2013()
    c = spec.config
    # B3 without top: 10,783,535 parameters (Keras' count for keras.applications.EfficientNetB3).
    assert M.backbone_params(c) == 10_783_535
    # Trainable = all but BatchNorm moving statistics and the Normalization layer's state.
    bn_stats = sum(r.params // 2 for r in M.efficientnet_cost("", c.image, *c.backbone) if r.kind == "bn")
    trainable = spec.params - bn_stats
    assert 14.5e6 < trainable < 15.5e6  # the paper: about 15.1 M trainable
    assert spec.inputs == {"spectrogram": (30, 100, 80, 3), "vlnep": (30, 256)}


def test_local_imagenet_file_gives_the_imagenet_graph(tmp_path, monkeypatch):
    """Keras' weights="imagenet" adds a multiply after Normalization; our loader folds it. A
    notop file written here (random weights, a non-trivial Normalization) stands in for the
    download; Keras' own ImageNet path reads the same file through a patched get_file."""
    from tf_keras.src.applications import efficientnet as keras_effnet

    c = M.tiny_config()
    source = M.efficientnet_template(c)
    rng = np.random.default_rng(0)
    norm = next(layer for layer in source.layers if type(layer).__name__ == "Normalization")
    norm.set_weights([np.asarray([0.485, 0.456, 0.406], "float32").reshape(norm.get_weights()[0].shape),
                      np.asarray([0.229, 0.224, 0.225], "float32").reshape(norm.get_weights()[1].shape) ** 2,
                      norm.get_weights()[2]])
    for layer in source.layers:
        if layer.weights and type(layer).__name__ == "BatchNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    path = tmp_path / "efficientnetb3_notop.h5"
    source.save_weights(str(path))

    monkeypatch.setattr(keras_effnet.data_utils, "get_file", lambda *a, **k: str(path))
    ref = keras_effnet.EfficientNet(*c.backbone, 300, model_name="efficientnetb3", include_top=False,
                                    weights="imagenet", input_shape=(64, 64, 3), pooling="avg")
    assert any(type(layer).__name__ == "TFOpLambda" for layer in ref.layers)  # Keras' extra multiply
    ours = M.efficientnet_template(c)
    M.load_imagenet_notop(ours, path)
    x = rng.uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    want = ref.predict(x, verbose=0)
    got = ours.predict(x, verbose=0)
    assert np.abs(want).max() > 1e-3
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # float32 rounding only
    # The flat re-application (the stem's Normalization as constants) computes the same.
    from edgeaffect.keras_backend import keras

    inp = keras().layers.Input((64, 64, 3))
    flat = keras().Model(inp, M.reapply(ours, inp))
    np.testing.assert_allclose(flat.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5)
    # Without the fold, the functions differ: the fold is what makes it the ImageNet graph.
    plain = M.efficientnet_template(c)
    plain.load_weights(str(path))
    assert np.abs(plain.predict(x, verbose=0) - want).max() > 1e-3


def test_missing_backbone_file_is_one_line(tmp_path):
    from edgeaffect.errors import InputError

    with pytest.raises(InputError, match="backbone weights not found"):
        M.build_spectronet(M.tiny_config(backbone_weights=str(tmp_path / "nope.h5")))


# the large-backbone rows (ResNet-101, VGG-16) take half a minute each to build: test-slow
@pytest.mark.parametrize("row", [pytest.param(r, marks=pytest.mark.slow) if r.startswith(("resnet", "vgg")) else r
                                 for r in sorted(M.ABLATIONS)])
def test_every_ablation_row_builds_with_the_inputs_it_uses(row):
    """Table 1's rows (streams, spectral views) and Table 2's buildable backbones: each builds,
    takes only the inputs of its streams, and (EfficientNet rows) the analytic count is Keras'."""
    from dataclasses import replace

    c = replace(M.tiny_config(), **M.ABLATIONS[row])
    model = M.build_spectronet(c)
    wanted = {"spectrogram"} if c.streams == "spectral" else {"vlnep"} if c.streams == "temporal" else {
        "spectrogram", "vlnep"}
    assert set(model.input_names) == wanted
    if c.backbone_arch == "efficientnet":
        assert sum(r.params for r in M.spectronet_cost(c)) == model.count_params()
    if c.uses_spectral:
        width = model.get_layer("spectral_embed").input_shape[-1]
        assert width == M.spectral_width(c)


def test_an_unknown_ablation_value_is_refused():
    with pytest.raises(ValueError, match="streams must be one of"):
        M.tiny_config(streams="audio")
