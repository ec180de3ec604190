"""The command line: help, version, models, predict, and one clear line + exit 2 on bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest

from edgeaffect import __version__


def cli(*args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "edgeaffect.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def assert_one_line_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1, r.stderr
    for f in fragments:
        assert f in err[0], err[0]


def test_version_and_help():
    assert cli("--version").stdout.strip() == f"edgeaffect {__version__}"
    out = cli("--help").stdout
    for cmd in ("models", "train", "export", "predict", "pipeline"):
        assert cmd in out


def test_models_lists_params_beside_the_paper():
    r = cli("models")
    assert r.returncode == 0
    assert "aver-ravdess" in r.stdout and "66,584" in r.stdout and "14.42 M" in r.stdout and "0.06 M" in r.stdout


def test_predict_prints_label_and_probabilities(export_dir, corpus):
    clip = sorted(corpus.rglob("01-01-03-02-*.mp4"))[0]  # a strong "happy"
    r = cli("predict", clip, "--model", export_dir, "--json")
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout)
    assert out["label"] == "happy"
    assert abs(sum(out["probabilities"].values()) - 1) < 0.05  # int8 output: 1/256 steps


def test_predict_with_separate_wav(export_dir, corpus, tmp_path):
    from edgeaffect.media import read_audio, write_wav

    clip = sorted(corpus.rglob("01-01-05-02-*.mp4"))[0]  # a strong "angry"
    y, sr = read_audio(clip)
    write_wav(tmp_path / "a.wav", y, sr)
    r = cli("predict", clip, "--audio", tmp_path / "a.wav", "--model", export_dir, "--format", "onnx-fp32")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "angry"


def test_bad_inputs_exit_2_with_one_line(export_dir, tmp_path):
    assert_one_line_error(cli("predict", tmp_path / "none.mp4", "--model", export_dir), "file not found")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    assert_one_line_error(cli("predict", corrupt, "--model", export_dir), "corrupt.mp4")
    assert_one_line_error(cli("predict", corrupt, "--model", tmp_path), "no manifest.json")
    assert_one_line_error(cli("predict", corrupt, "--model", export_dir, "--format", "tflite-int9"),
                          "Did you mean 'tflite-int8'")
    assert_one_line_error(cli("train", "aver-ravdes", "--data", tmp_path, "--out", tmp_path / "r"),
                          "unknown model 'aver-ravdes'", "Did you mean 'aver-ravdess'")
    assert_one_line_error(cli("train", "aver-ravdess", "--data", tmp_path / "nowhere", "--out", tmp_path / "r"),
                          "dataset folder not found")
    assert_one_line_error(cli("export", tmp_path, "--out", tmp_path / "e"), "no run.json")
    assert_one_line_error(cli("export", tmp_path, "--out", tmp_path / "e", "--formats", "onnx-fp64"),
                          "unknown export format")


def _write_video(path, frames, audio=None, sr=16000):
    import av

    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        ast = out.add_stream("aac", rate=sr, layout="mono") if audio is not None else None
        for f in frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        out.mux(vs.encode(None))
        if ast is not None:
            fr = av.AudioFrame.from_ndarray((audio * 32767).astype(np.int16)[None], format="s16", layout="mono")
            fr.sample_rate = sr
            out.mux(ast.encode(fr))
            out.mux(ast.encode(None))


def test_no_face_and_short_audio_exit_2(export_dir, tmp_path):
    from tests.conftest import speech_like

    blank = [np.full((240, 320, 3), 120, np.uint8)] * 30
    _write_video(tmp_path / "noface.mp4", blank, speech_like(16000, 1.0))
    assert_one_line_error(cli("predict", tmp_path / "noface.mp4", "--model", export_dir), "no face")
    skimage_data = pytest.importorskip("skimage.data")
    face = skimage_data.astronaut()[:, :, ::-1].copy()
    _write_video(tmp_path / "short.mp4", [face] * 12, speech_like(16000, 0.3))
    assert_one_line_error(cli("predict", tmp_path / "short.mp4", "--model", export_dir), "audio too short")
    _write_video(tmp_path / "mute.mp4", [face] * 12)
    assert_one_line_error(cli("predict", tmp_path / "mute.mp4", "--model", export_dir), "no audio track")


def test_quiet_by_default_and_verbose_on_request():
    """A command that builds a Keras model prints no TensorFlow start-up lines (absl's
    I/W lines, the missing-CUDA error on a CPU machine); --verbose lets them through."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "EDGEAFFECT_VERBOSE")}
    run = [sys.executable, "-m", "edgeaffect.cli"]
    quiet = subprocess.run([*run, "cost", "aver-ravdess"], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and "66,584" in quiet.stdout
    assert quiet.stderr == "", quiet.stderr
    loud = subprocess.run([*run, "--verbose", "cost", "aver-ravdess"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert loud.returncode == 0 and loud.stdout == quiet.stdout


def test_the_stderr_filter_drops_library_noise_and_keeps_everything_else():
    from edgeaffect.logs import NOISE

    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1795344431.586981   25418 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1795344431.588460   25418 cudart_stub.cc:31] Could not find cuda drivers",
        "E0000 00:00:1795344434.693040   25418 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8",
    ]
    kept = [
        "error: model file not found: m.tflite",
        "E0000 00:00:1795344434.693040   25418 kernel.cc:52] a real kernel error",
        "  epoch 10: loss 0.1",
        "Traceback (most recent call last):",
    ]
    assert all(NOISE.match(line) for line in noise)
    assert not any(NOISE.match(line) for line in kept)
