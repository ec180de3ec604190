"""Slow: the paper's full recipe (early stopping only, no epoch cap) and the whole pipeline."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_full_recipe_reaches_the_bar_on_both_splits(dataset, tmp_path):
    from edgeaffect.families.aver.train import train_aver

    run = train_aver("aver-ravdess", dataset, tmp_path / "paper", split="paper")
    assert run.info["test"]["accuracy"] >= 0.90
    assert run.info["epochs"] > run.spec.config.patience  # stopped by validation loss, not a cap


def test_pipeline_writes_summary(tmp_path):
    from edgeaffect.workflows.pipeline import run_pipeline

    s = run_pipeline(tmp_path, model="aver-ravdess", scale=4, epochs=30, speaker_epochs=10, qat_epochs=3)
    assert json.loads((tmp_path / "summary.json").read_text())["params"] == 66_584
    assert all(v["passed"] for v in s["verification"] if v["gating"])
    assert "| tflite-int8 | ai-edge-litert | xnnpack |" in (tmp_path / "summary.md").read_text()
