"""A family defined only in tests/ (tests/toy_family.py: a regressor on synthetic tones)
goes through the generic code: train -> QAT -> every export format verified -> a device
bundle -> predict (Python and the CLI), with no edit outside tests/."""

import json

import numpy as np
import pytest

from toy_family import SPEC, TASK, register, tone


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from edgeaffect.train.families import load_corpus, train

    register()
    root = tmp_path_factory.mktemp("toy")
    SPEC.family_plugin.synthesize(root / "corpus", scale=120, seed=0)
    data = load_corpus(SPEC.name, root / "corpus", root / "cache")
    run = train(SPEC.name, data, root / "run", seed=0)
    return root, data, run


def test_the_family_learns_its_task(toy):
    _, _, run = toy
    # The bar: test MAE well under predicting the test set's mean (a learned score, not a constant).
    assert run.info["test"]["mae"] < 0.3 * run.info["baseline_mae"]
    assert set(run.info["test"]) == set(TASK.summary_keys())


def test_every_format_exported_and_verified_as_a_regressor(toy):
    from edgeaffect.export.exporter import DEFAULT_FORMATS, export_run
    from edgeaffect.train.runs import load_run, run_dataset

    root, _, _ = toy
    run = load_run(root / "run")  # through run.json -> the family, as the CLI does
    manifest = export_run(run, run_dataset(run), root / "export", qat_epochs=5)
    assert manifest["family"] == "toy" and manifest["task"]["kind"] == "regression"
    assert set(manifest["files"]) == set(DEFAULT_FORMATS)
    for v in manifest["verification"]:
        assert (v["passed"] or not v["gating"]) and v["task"] == "regression" and v["metric_name"] == "mae", v
        b = TASK.bounds({"tflite-int8": "int8", "onnx-qdq": "int8", "tflite-fp16": "float16"}.get(v["format"],
                                                                                              "float32"))
        if v["gating"]:  # MAE: larger is worse, bounded in score points
            assert v["metric"] - v["reference_metric"] <= b.max_metric_drop + 1e-9
            assert b.max_quantization_drop is None or v["metric"] - v["float_metric"] <= b.max_quantization_drop
    assert {v["kernels"] for v in manifest["verification"] if v["format"].startswith("tflite")} == {
        "xnnpack", "builtin", "reference"}


@pytest.fixture(scope="module")
def toy_bundle(toy):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target, resolve_options
    from edgeaffect.train.runs import load_run, run_dataset

    root, _, _ = toy
    run = load_run(root / "run")
    t = get_target("rpi5")
    export_run(run, run_dataset(run), root / "bundle", target=t, options=resolve_options(t, {}), qat_epochs=5)
    return root / "bundle"


def test_the_bundle_predicts_a_score_and_its_band(toy_bundle, tmp_path):
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.media.audio import write_wav

    for score in (1.0, 5.0, 9.0):
        wav = tmp_path / f"t{score}.wav"
        write_wav(wav, tone(score, seed=99), 8000)
        for fmt in ("tflite-int8", "tflite-fp32"):
            p = ExportedModel(toy_bundle, fmt).predict(wav)
            assert p.kind == "regression" and p.per_segment.shape == (2, 1)
            assert abs(p.values["tone score"] - score) < 1.5, (fmt, score, p.values)
            assert p.decision == TASK.band_name(p.values["tone score"])


def test_predict_on_the_command_line_prints_the_score(toy_bundle, tmp_path):
    from typer.testing import CliRunner

    from edgeaffect.cli import app
    from edgeaffect.media.audio import write_wav

    wav = tmp_path / "t.wav"
    write_wav(wav, tone(8.5, seed=7), 8000)
    r = CliRunner().invoke(app, ["predict", str(wav), "--model", str(toy_bundle), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["kind"] == "regression" and out["decision"] == "high" and 7.0 <= out["score"]["tone score"] <= 10
    r = CliRunner().invoke(app, ["predict", str(wav), "--model", str(toy_bundle)])
    assert r.exit_code == 0 and r.output.startswith("tone score ")
    assert np.isfinite(float(r.output.split()[2]))


def test_a_family_without_ablations_or_options_refuses_them(toy):
    from edgeaffect.errors import InputError
    from edgeaffect.train.families import train

    root, data, _ = toy
    with pytest.raises(InputError, match="defines no ablations"):
        train(SPEC.name, data, root / "x", ablation="no-hidden")
    with pytest.raises(InputError, match="--margins is not an option of the toy family"):
        train(SPEC.name, data, root / "x", options={"margins": "paper"})
