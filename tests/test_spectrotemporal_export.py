"""The spectrotemporal family through the generic code (slow: several minutes on 2 cores):
the tiny variant trained on a synthetic corpus -> two stages (per-segment extractor,
per-sequence transformer; QAT on the second) -> every default export format per stage,
verified as a regressor, and the chain of stages -> rpi5 and Jetson bundles -> predict
(score, band, per-sequence scores) and one-line errors for bad recordings."""

import json

import numpy as np
import pytest

from edgeaffect.families.spectrotemporal.synthetic import speech

# tflite-int8 on LiteRT's reference kernels is far off (p95 |diff| 24.7 BDI-II points against
# the QAT model, measured) while XNNPACK and the built-in kernels pass: recorded, not gating,
# as for SpeechNet (edgeaffect/export/verify.py, gates).
pytestmark = pytest.mark.slow
MODEL = "spectrotemporal-tiny"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from edgeaffect.families.spectrotemporal.synthetic import generate_avec2013
    from edgeaffect.train.families import load_corpus, train

    root = tmp_path_factory.mktemp("st")
    generate_avec2013(root / "corpus", per_partition=8, seconds=6.0, seed=0)
    data = load_corpus(MODEL, root / "corpus", root / "cache")
    train(MODEL, data, root / "run", seed=0, epochs=15)
    return root


@pytest.fixture(scope="module")
def exported(trained):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.train.runs import load_run, run_dataset

    run = load_run(trained / "run")
    return export_run(run, run_dataset(run), trained / "export", qat_epochs=2)


def test_every_default_format_is_verified_as_a_regressor(trained, exported):
    from edgeaffect.export.exporter import DEFAULT_FORMATS

    manifest = exported
    assert manifest["family"] == "spectrotemporal" and manifest["task"]["kind"] == "regression"
    assert [s["name"] for s in manifest["stages"]] == ["extractor", "sequence"]
    # the defaults with the family's int8 fallback before the first float format
    expected = ["tflite-int8", "tflite-dynamic-int8", *DEFAULT_FORMATS[1:]]
    assert DEFAULT_FORMATS[0] == "tflite-int8" and manifest["formats"] == expected
    results = list(manifest["verification"])
    for s in manifest["stages"]:
        stage = json.loads((trained / "export" / s["folder"] / "manifest.json").read_text())
        assert set(stage["files"]) == set(expected)
        results += stage["verification"]
    assert {v["kernels"] for v in manifest["verification"]} == {"chain"}
    for v in results:
        assert (v["passed"] or not v["gating"]) and v["task"] == "regression" and v["metric_name"] == "mae", v


def test_the_tflite_int8_chain_gates(exported):
    """Issue 26: with the ops that break int8 found at the output and kept float, the TFLite
    full-int8 chain holds and gates (measured on this fixture's run with seeds 0 and 1: p95 1.09
    and 0.18 BDI-II points against 3.15)."""
    chain = {v["format"]: v for v in exported["verification"]}["tflite-int8"]
    assert chain["gating"] and chain["passed"], chain


def test_each_stage_keras_and_exported_costs_agree(trained, exported):
    """The extractor (EfficientNet, VLNEP) and the sequence stage (dual-stream transformer),
    each read from Keras and from its exported files (issue 27)."""
    from edgeaffect.train.runs import load_run
    from tests.cost_agreement import assert_costs_agree

    run = load_run(trained / "run")
    for stage in run.family.stages(run):
        # trained BatchNorms fold into non-zero conv biases; Keras counts them as those biases
        # (measured here: TFLite exact, ONNX +1.7 % for tf2onnx's element-wise rescaling)
        assert_costs_agree(stage.model, trained / "export" / stage.name)


def test_the_staged_device_path_matches_the_whole_keras_model(trained, exported):
    """The two exported float32 stages give the one-piece Keras network's scores (the
    sequences share segments: each segment's features are computed once)."""
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.families.spectrotemporal.device import model_inputs, segment_features
    from edgeaffect.families.spectrotemporal.features import recording_features
    from edgeaffect.media import read_audio
    from edgeaffect.train.runs import load_run

    run = load_run(trained / "run")
    m = ExportedModel(trained / "export", "tflite-fp32")
    wav = sorted((trained / "corpus").rglob("*_audio.wav"))[0]
    y, sr = read_audio(wav)
    z, hist = segment_features(recording_features(y, sr, m.adapter.features), m.adapter.rule)
    whole = run.model.predict(model_inputs(z, hist, m.adapter.features, m.adapter.norm), verbose=0)
    np.testing.assert_allclose(np.asarray(m.predict(wav).per_segment).reshape(-1), whole.reshape(-1), atol=1e-3)


@pytest.fixture(scope="module")
def bundle(trained):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target, resolve_options
    from edgeaffect.train.runs import load_run, run_dataset

    run = load_run(trained / "run")
    t = get_target("rpi5")
    export_run(run, run_dataset(run), trained / "bundle", target=t, options=resolve_options(t, {}), qat_epochs=2)
    return trained / "bundle"


def test_the_bundle_predicts_a_score_its_band_and_per_sequence_scores(bundle, tmp_path):
    from typer.testing import CliRunner

    from edgeaffect.cli import app
    from edgeaffect.media.audio import write_wav

    wav = tmp_path / "r.wav"
    write_wav(wav, speech(30.0, 6.0, seed=3), 8000)
    r = CliRunner().invoke(app, ["predict", str(wav), "--model", str(bundle), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["kind"] == "regression" and 0 <= out["score"]["BDI-II"] <= 63
    assert out["decision"] in {"minimal", "mild", "moderate", "severe"} and len(out["per_segment"]) >= 2
    r = CliRunner().invoke(app, ["predict", str(wav), "--model", str(bundle)])
    assert r.exit_code == 0 and r.output.startswith("BDI-II ") and "per sequence:" in r.output


def test_the_pi_bundle_has_a_quantized_litert_chain_that_gates(bundle):
    """LiteRT dynamic range (``int8_fallbacks``) holds on every kernel set of both stages (the
    reference kernels, which record int8 without gating, included) and as a chain, where the
    sequence's full int8 is recorded only."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert "tflite-dynamic-int8" in manifest["formats"]
    chain = {v["format"]: v for v in manifest["verification"]}["tflite-dynamic-int8"]
    assert chain["gating"] and chain["passed"], chain
    for s in manifest["stages"]:
        stage = json.loads((bundle / s["folder"] / "manifest.json").read_text())
        verdicts = [v for v in stage["verification"] if v["format"] == "tflite-dynamic-int8"]
        assert {v["kernels"] for v in verdicts} == {"xnnpack", "builtin", "reference"}
        # passed everywhere; LiteRT's reference kernels record int8 without deciding (verify.gates)
        assert all(v["passed"] and (v["gating"] or v["kernels"] == "reference") for v in verdicts), verdicts


@pytest.mark.parametrize("what, y, sr, message", [
    ("short", speech(10.0, 2.0, 1), 8000, "too short"),
    ("silent", np.zeros(48000, np.float32), 8000, "silent"),
    ("low rate", speech(10.0, 6.0, 1)[::2], 4000, "sampled at 4000 Hz"),
])
def test_bad_recordings_are_one_line_and_exit_2(bundle, tmp_path, what, y, sr, message):
    import subprocess
    import sys

    from edgeaffect.media.audio import write_wav

    wav = tmp_path / "bad.wav"
    write_wav(wav, y, sr)
    r = subprocess.run([sys.executable, "-m", "edgeaffect.cli", "predict", wav, "--model", bundle],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, (what, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (what, r.stderr)


def test_a_jetson_bundle_has_engine_commands_per_stage(trained):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target, resolve_options
    from edgeaffect.train.runs import load_run, run_dataset

    run = load_run(trained / "run")
    t = get_target("jetson-orin-nano")
    manifest = export_run(run, run_dataset(run), trained / "jetson", target=t, options=resolve_options(t, {}),
                          qat_epochs=1)
    assert manifest["target"]["key"] == "jetson-orin-nano"
    for s in manifest["stages"]:
        folder = trained / "jetson" / s["folder"]
        stage = json.loads((folder / "manifest.json").read_text())
        assert stage["target"]["engine"]["onnx"] in {e["file"] for e in stage["files"].values()}
        assert (folder / "trtexec.sh").is_file() and (folder / "calibration.npz").is_file()


def test_the_live_demo_gives_a_score_once_a_sequence_of_speech_is_in(bundle, tmp_path):
    """From a recording played as the microphone: no score before S segments (plus the one
    after the newest, which its deltas read); then scores, each running one new extractor pass."""
    from edgeaffect.demo.live import Demo
    from edgeaffect.media.audio import write_wav

    wav = tmp_path / "r.wav"
    write_wav(wav, speech(30.0, 8.0, seed=5), 8000)
    events = tmp_path / "ev.jsonl"
    summary = Demo(bundle, camera=None, mic=str(wav), events=events, duration=7.0).run()
    ev = [json.loads(line) for line in events.read_text().splitlines()]
    scored = [e for e in ev if e["status"] == "ok"]
    assert summary["labels"] == len(scored) >= 3
    first = scored[0]["time"]
    seg = 0.48  # the tiny variant's segment
    assert first >= (6 + 1) * seg * 0.9  # S = 6 segments and the next one
    assert all(e["status"].startswith("collecting speech") for e in ev if e["time"] < first)
    assert all(e["label"] in {"minimal", "mild", "moderate", "severe"} for e in scored)
