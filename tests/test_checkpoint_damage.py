"""Issue 30: a damaged wav2vec 2.0 checkpoint folder (config.json with fields of the wrong
kind, out of range, inconsistent or missing; weights that do not match it; a truncated
weight file) is one line naming what is wrong, before any graph is built: every entry
point (embed, train --backbone, export) reads it through ``read_checkpoint``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config
from edgeaffect.families.wav2vec2.checkpoint import read_checkpoint
from tests.test_cli import assert_one_line_error, cli
from tests.wav2vec2_helpers import numpy_checkpoint

TINY = Wav2Vec2Config.tiny()
# (case id, config.json fields changed (None: dropped), a fragment the line must hold)
CONFIG_CASES = [
    ("conv-lengths", {"conv_kernel": [10, 3, 3, 3, 3, 2]}, "conv_dim, conv_stride and conv_kernel must have the same"),
    ("conv_dim-negative", {"conv_dim": [16, 16, 16, 16, 16, -16, 24]}, "'conv_dim[5]' must be an integer >= 1"),
    ("conv_dim-float", {"conv_dim": [16, 16, 16, 16, 16, 16.5, 24]}, "'conv_dim[5]'"),
    ("conv_dim-string", {"conv_dim": "16"}, "'conv_dim' must be a list"),
    ("conv_stride-zero", {"conv_stride": [5, 2, 2, 2, 2, 0, 2]}, "'conv_stride[5]'"),
    ("conv_kernel-empty", {"conv_kernel": []}, "'conv_kernel'"),
    ("heads-not-dividing", {"num_attention_heads": 3}, "not divisible by num_attention_heads"),
    ("hidden-string", {"hidden_size": "32"}, "'hidden_size' must be an integer"),
    ("hidden-negative", {"hidden_size": -32}, "'hidden_size'"),
    ("layers-huge", {"num_hidden_layers": 10**9}, "'num_hidden_layers'"),
    ("eps-string", {"layer_norm_eps": "x"}, "'layer_norm_eps'"),
    ("bias-string", {"conv_bias": "no"}, "'conv_bias' must be true or false"),
    ("n-layers-string", {"num_feat_extract_layers": "x"}, "'num_feat_extract_layers'"),
    ("norm-unknown", {"feat_extract_norm": "batch"}, "'feat_extract_norm'"),
    ("missing-hidden", {"hidden_size": None}, "missing 'hidden_size'"),
    ("missing-conv_dim", {"conv_dim": None}, "missing 'conv_dim'"),
]


def _checkpoint(tmp_path, changes: dict):
    d = {**TINY.to_dict(), **changes}
    return numpy_checkpoint(tmp_path / "ckpt", TINY, config_dict={k: v for k, v in d.items() if v is not None})


@pytest.mark.parametrize("changes,fragment", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_a_damaged_config_is_one_line_naming_the_field(tmp_path, changes, fragment):
    with pytest.raises(InputError) as exc:
        read_checkpoint(_checkpoint(tmp_path, changes))
    assert fragment in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_weights_that_do_not_match_the_config_are_one_line(tmp_path):
    folder = _checkpoint(tmp_path, {})
    (folder / "config.json").write_text(json.dumps({**TINY.to_dict(), "intermediate_size": 40}))
    with pytest.raises(InputError, match="has shape .* config.json implies"):
        read_checkpoint(folder)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_a_truncated_weight_file_is_one_line(tmp_path, name):
    folder = _checkpoint(tmp_path, {})
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").unlink()
    (folder / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as exc:
        read_checkpoint(folder)
    assert name in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_segments_too_short_for_the_convs_are_one_line():
    from edgeaffect.families.wav2vec2.backbone import build_wav2vec2, min_samples

    pytest.importorskip("tensorflow")
    with pytest.raises(InputError, match=f"needs at least {min_samples(TINY)}"):
        build_wav2vec2(TINY, samples=min_samples(TINY) - 1)


def test_embed_with_a_damaged_config_prints_no_traceback(tmp_path):
    """Was a Keras shape error from feature_extractor__conv_layers__5__conv."""
    folder = _checkpoint(tmp_path, {"conv_dim": [16, 16, 16, 16, 16, -16, 24]})
    import wave

    wav = tmp_path / "a.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16).tobytes())
    r = cli("embed", wav, "--backbone", folder, "--out", tmp_path / "f.npy")
    assert_one_line_error(r, "config.json: 'conv_dim[5]'")
    assert not (tmp_path / "f.npy").exists()
