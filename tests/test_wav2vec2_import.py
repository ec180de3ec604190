"""wav2vec 2.0 checkpoint import: parity with the reference (transformers on torch CPU,
eval mode, eager attention) on tiny random configs of every structural variant, and one
clear error for each kind of bad checkpoint."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, normalise_audio
from edgeaffect.families.wav2vec2.checkpoint import (POS, WEIGHT_NORM_NAMES, load_pretrained, read_safetensors,
                                                     read_torch_bin)
from wav2vec2_helpers import (numpy_checkpoint, random_state_dict, reference_checkpoint, reference_states,
                                    write_safetensors)

TOL = 1e-4
# (id, config, file format, weight-norm naming, saved from Wav2Vec2ForPreTraining)
VARIANTS = [
    ("group-postln", Wav2Vec2Config.tiny("group"), "safetensors", "new", False),
    ("layer-preln-bias", Wav2Vec2Config.tiny("layer"), "bin", "new", False),
    ("group-postln-bias-oldnorm", Wav2Vec2Config.tiny("group", conv_bias=True), "bin", "old", False),
    ("layer-postln-nobias-oldnorm", Wav2Vec2Config.tiny("layer", conv_bias=False, do_stable_layer_norm=False),
     "safetensors", "old", False),
    ("group-preln-pretraining", Wav2Vec2Config.tiny("group", do_stable_layer_norm=True, num_conv_pos_embeddings=15),
     "safetensors", "new", True),
]


@pytest.mark.parametrize("config,fmt,naming,pretraining", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_every_hidden_state_matches_the_reference(tmp_path, config, fmt, naming, pretraining):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    folder, ref = reference_checkpoint(tmp_path / "ckpt", config, fmt=fmt, naming=naming, pretraining=pretraining)
    model, loaded = load_pretrained(folder, last_hidden_state=True)
    assert loaded == config
    rng = np.random.default_rng(1)
    audio = normalise_audio(rng.standard_normal((2, 6000)).astype(np.float32) * np.array([[0.1], [2.0]], np.float32))
    want, want_last = reference_states(ref, audio)
    got = [s.numpy() for s in model(audio)]
    assert len(want) == config.num_hidden_layers + 1 and len(got) == len(want) + 1
    diffs = [float(np.max(np.abs(w - g))) for w, g in zip(want, got)]
    last = float(np.max(np.abs(want_last - got[-1])))
    print(f"max |diff| per hidden state {['%.2e' % d for d in diffs]}, last_hidden_state {last:.2e}")
    for w, g in zip(want, got):
        assert w.shape == g.shape
    assert max(diffs) < TOL and last < TOL
    # The comparison can fail: the pre-LN last state is not the normed output.
    if config.do_stable_layer_norm:
        assert np.max(np.abs(want[-1] - want_last)) > 1e-2


def test_bin_reader_matches_safetensors_and_refuses_code(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"a": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(2, dtype=torch.float16)}
    sd["t"] = sd["a"].t()  # a strided view shares the storage
    torch.save(sd, tmp_path / "x.bin")
    got = read_torch_bin(tmp_path / "x.bin")
    for k, v in sd.items():
        np.testing.assert_array_equal(got[k], v.numpy())
        assert got[k].dtype == v.numpy().dtype
    # A pickle naming anything but a state dict's pieces is refused, not executed.
    buf = io.BytesIO()
    pickle.dump({"x": eval}, buf)  # a global a state dict never holds
    with zipfile.ZipFile(tmp_path / "evil.bin", "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
    with pytest.raises(InputError, match="refusing to load builtins.eval"):
        read_torch_bin(tmp_path / "evil.bin")
    (tmp_path / "legacy.bin").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match="not a zip-format"):
        read_torch_bin(tmp_path / "legacy.bin")


def test_safetensors_reader_bfloat16_and_truncation(tmp_path):
    x = np.array([1.0, -2.5, 3.140625], np.float32)
    write_safetensors(tmp_path / "m.safetensors", {"x": (x.view(np.uint32) >> 16).astype(np.uint16),
                                                   "y": x.astype(np.float16)})
    got = read_safetensors(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(got["x"], x)  # exactly representable in bfloat16
    np.testing.assert_array_equal(got["y"], x.astype(np.float16))
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-2])
    with pytest.raises(InputError, match="does not fit"):
        read_safetensors(tmp_path / "cut.safetensors")


def test_weight_norm_namings_and_plain_weight_give_the_same_model(tmp_path):
    config = Wav2Vec2Config.tiny("group")
    audio = normalise_audio(np.random.default_rng(0).standard_normal((1, 4000)).astype(np.float32))
    outs = []
    for naming in ("new", "old", "plain"):
        sd = random_state_dict(config, naming=naming, prefix="wav2vec2.")
        sd["wav2vec2.masked_spec_embed"] = np.zeros(config.hidden_size, np.float32)
        sd["quantizer.codevectors"] = np.zeros((1, 4, 8), np.float32)
        sd["project_q.weight"] = np.zeros((8, 8), np.float32)
        model, _ = load_pretrained(numpy_checkpoint(tmp_path / naming, config, sd))
        outs.append(model(audio)[-1].numpy())
    np.testing.assert_allclose(outs[1], outs[0], atol=1e-6)
    np.testing.assert_allclose(outs[2], outs[0], atol=1e-6)


def _bad(tmp_path, edit=None, config=None, config_dict=None):
    config = config or Wav2Vec2Config.tiny("group")
    sd = random_state_dict(config)
    if edit:
        edit(sd)
    folder = numpy_checkpoint(tmp_path / "bad", config, sd, config_dict=config_dict)
    with pytest.raises(InputError) as info:
        load_pretrained(folder)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_bad_checkpoints_are_one_clear_error(tmp_path):
    key = "encoder.layers.1.feed_forward.output_dense.bias"
    assert f"missing key '{key}'" in _bad(tmp_path, lambda sd: sd.pop(key))
    assert "unexpected key 'encoder.layers.2.layer_norm.weight'" in _bad(
        tmp_path, lambda sd: sd.__setitem__("encoder.layers.2.layer_norm.weight", np.ones(32, np.float32)))
    assert "'encoder.layers.0.attention.q_proj.weight' has shape (32, 31)" in _bad(
        tmp_path, lambda sd: sd.__setitem__("encoder.layers.0.attention.q_proj.weight", np.ones((32, 31), np.float32)))
    g, v = WEIGHT_NORM_NAMES["new"]
    assert f"missing key '{v}'" in _bad(tmp_path, lambda sd: sd.pop(v))
    assert "more than once" in _bad(tmp_path, lambda sd: sd.__setitem__(f"{POS}.weight", sd[v]))
    assert "NaN" in _bad(tmp_path, lambda sd: sd["feature_projection.projection.bias"].__setitem__(0, np.nan))
    hubert = {**Wav2Vec2Config.tiny().to_dict(), "model_type": "hubert", "architectures": ["HubertModel"]}
    assert "unsupported architecture HubertModel" in _bad(tmp_path, config_dict=hubert)
    adapter = {**Wav2Vec2Config.tiny().to_dict(), "add_adapter": True}
    assert "add_adapter" in _bad(tmp_path, config_dict=adapter)
    # A layer-norm config given a group-norm state dict: the first missing key is named.
    msg = _bad(tmp_path, config_dict=Wav2Vec2Config.tiny("layer").to_dict())
    assert "missing key 'feature_extractor.conv_layers.0.conv.bias'" in msg


def test_missing_files_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_pretrained(tmp_path / "nowhere")
    (tmp_path / "c").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_pretrained(tmp_path / "c")
    (tmp_path / "c" / "config.json").write_text(json.dumps(Wav2Vec2Config.tiny().to_dict()))
    with pytest.raises(InputError, match="no model.safetensors or pytorch_model.bin"):
        load_pretrained(tmp_path / "c")
    (tmp_path / "c" / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        load_pretrained(tmp_path / "c")


@pytest.mark.slow
@pytest.mark.parametrize("config", [Wav2Vec2Config.base(), Wav2Vec2Config.large("layer")], ids=["base", "large-preln"])
def test_real_size_parity_on_a_7_s_segment(tmp_path, config):
    """Full-size configs with the reference's own random initialisation, one 7 s segment."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch
    import transformers

    torch.manual_seed(0)
    ref = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**config.to_dict(), attn_implementation="eager")).eval()
    ref.save_pretrained(tmp_path)
    t = np.arange(112000) / 16000
    audio = normalise_audio((np.sin(2 * np.pi * 180 * t) + 0.1 * np.random.default_rng(0).standard_normal(t.size))[None])
    want, want_last = reference_states(ref, audio)
    del ref
    model, _ = load_pretrained(tmp_path, last_hidden_state=True)
    got = [s.numpy() for s in model(audio)]
    diffs = [float(np.max(np.abs(w - g))) for w, g in zip(want, got)]
    print(f"max |diff| over {len(want)} states {max(diffs):.2e}; last_hidden_state "
          f"{float(np.max(np.abs(want_last - got[-1]))):.2e}")
    assert got[0].shape == (1, 349, config.hidden_size)
    assert max(diffs) < TOL and float(np.max(np.abs(want_last - got[-1]))) < TOL
