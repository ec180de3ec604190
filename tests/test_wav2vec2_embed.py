"""``edgeaffect embed``: the features equal the reference's hidden states (with its feature
extractor's normalisation), folder mode resumes, bad input is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from edgeaffect.errors import InputError, MediaError
from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, frame_count
from edgeaffect.families.wav2vec2.embed import Embedder, embed
from edgeaffect.media.audio import read_audio, write_wav
from wav2vec2_helpers import numpy_checkpoint, reference_checkpoint

TOL = 1e-4


def _tone(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "edgeaffect.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def test_embed_all_and_sum_equal_the_reference(tmp_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import torch

    config = Wav2Vec2Config.tiny("layer")
    folder, ref = reference_checkpoint(tmp_path / "ckpt", config, fmt="safetensors")
    wav = tmp_path / "a.wav"
    write_wav(wav, _tone(0.6), 16000)
    y, _ = read_audio(wav)
    extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(folder)
    x = extractor(y, sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        want = np.stack([h[0].numpy() for h in ref(x, output_hidden_states=True).hidden_states])

    embed(wav, folder, tmp_path / "all.npy", layers="all")
    embed(wav, folder, tmp_path / "sum.npy", layers="sum")
    got_all, got_sum = np.load(tmp_path / "all.npy"), np.load(tmp_path / "sum.npy")
    assert got_all.shape == want.shape == (config.num_hidden_layers + 1, frame_count(y.size, config), 32)
    diff_all = float(np.max(np.abs(got_all - want)))
    diff_sum = float(np.max(np.abs(got_sum - want[1:].sum(axis=0))))
    print(f"embed --layers all max |diff| {diff_all:.2e}; sum {diff_sum:.2e}")
    assert diff_all < TOL and diff_sum < TOL * config.num_hidden_layers
    # Unnormalised input would not match: the comparison can fail.
    unnorm = Embedder.from_folder(folder)
    unnorm.do_normalize = False
    assert np.max(np.abs(unnorm.features(y[None] * 3, "all")[0] - want)) > 1e-2


def test_folder_mode_segments_and_resume(tmp_path):
    config = Wav2Vec2Config.tiny("group")
    ckpt = numpy_checkpoint(tmp_path / "ckpt", config)
    src = tmp_path / "corpus"
    for d in ("300_P", "301_P"):
        (src / d).mkdir(parents=True)
    write_wav(src / "300_P" / "300_AUDIO.wav", _tone(1.0, seed=1), 16000)
    write_wav(src / "301_P" / "301_AUDIO.wav", _tone(2.3, seed=2), 16000)
    (src / "notes.txt").write_text("not audio")
    out = tmp_path / "feats"
    s = embed(src, ckpt, out, segment_s=1.0)
    assert (s["files"], s["written"], s["skipped"]) == (2, 2, 0)
    a, b = np.load(out / "300_P" / "300_AUDIO.npy"), np.load(out / "301_P" / "301_AUDIO.npy")
    frames = frame_count(16000, config)
    assert a.shape == (1, frames, 32) and b.shape == (2, frames, 32)  # the 0.3 s tail is dropped
    # Each segment is embedded on its own: the first equals that second alone.
    one = Embedder.from_folder(ckpt).features(read_audio(src / "301_P" / "301_AUDIO.wav")[0][None, :16000])
    np.testing.assert_allclose(b[0], one[0], atol=1e-5)
    stamp = (out / "300_P" / "300_AUDIO.npy").stat().st_mtime_ns
    (out / "301_P" / "301_AUDIO.npy").unlink()
    s = embed(src, ckpt, out, segment_s=1.0)
    assert (s["written"], s["skipped"]) == (1, 1)
    assert (out / "300_P" / "300_AUDIO.npy").stat().st_mtime_ns == stamp
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_bad_input(tmp_path):
    config = Wav2Vec2Config.tiny("group")
    ckpt = numpy_checkpoint(tmp_path / "ckpt", config)
    short = tmp_path / "short.wav"
    write_wav(short, _tone(0.01), 16000)
    with pytest.raises(MediaError, match="too few"):
        embed(short, ckpt, tmp_path / "s.npy")
    with pytest.raises(InputError, match="--layers"):
        embed(short, ckpt, tmp_path / "s.npy", layers="mean")
    with pytest.raises(InputError, match="no audio files"):
        embed(tmp_path / "ckpt", ckpt, tmp_path / "o")
    assert not (tmp_path / "s.npy").exists()


def test_cli_refuses_another_rate_in_one_line(tmp_path):
    ckpt = numpy_checkpoint(tmp_path / "ckpt", Wav2Vec2Config.tiny("group"))
    wav = tmp_path / "a44.wav"
    write_wav(wav, _tone(0.5, sr=44100), 44100)
    r = cli("embed", wav, "--backbone", ckpt, "--out", tmp_path / "x.npy")
    assert r.returncode == 2, r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "44100 Hz" in err[0] and "16000" in err[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "x.npy").exists()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"\x00" * 4)
    write_wav(wav, _tone(0.5), 16000)
    r = cli("embed", wav, "--backbone", ckpt, "--out", tmp_path / "x.npy")
    assert r.returncode == 2 and "not a valid safetensors" in r.stderr and "Traceback" not in r.stderr
