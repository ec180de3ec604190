"""Reproducibility metrics (SpeechNet paper, Eqs. 1-6), checked against counts by hand."""

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.train.reproducibility import most_common, reproducibility


def test_metrics_by_hand():
    # R = 4 runs, N = 5 samples; truth = [0, 1, 2, 0, 1]
    p = np.array([[0, 1, 2, 1, 2],
                  [0, 1, 1, 1, 0],
                  [0, 2, 1, 0, 1],
                  [0, 1, 2, 2, 0]])
    y = np.array([0, 1, 2, 0, 1])
    mode, c = most_common(p)
    # sample 0: 0 x4 -> (0, 4); 1: 1 x3 -> (1, 3); 2: 2 x2 vs 1 x2, tie -> smaller label 1, count 2;
    # 3: 1 x2, 0 x1, 2 x1 -> (1, 2); 4: 0 x2, 1 x1, 2 x1 -> (0, 2)
    assert mode.tolist() == [0, 1, 1, 1, 0] and c.tolist() == [4, 3, 2, 2, 2]
    r = reproducibility(p, y)
    assert r.glr == 1.0  # every C_i >= 2
    assert r.plr == 0.2  # only sample 0 is identical in all runs
    assert r.flr == 0.8  # C_i in [2, 4)
    assert r.glr == pytest.approx(r.flr + r.plr)
    # correct modes: sample 0 (0 == 0), sample 1 (1 == 1); samples 2, 3, 4 wrong
    assert r.clr == 0.4 and r.pclr == 0.2 and r.fclr == 0.2
    assert r.mean_accuracy == pytest.approx((4 + 3 + 2 + 1 + 1) / 20)


def test_identical_runs_are_perfectly_reproducible():
    p = np.tile(np.array([0, 1, 1, 2]), (3, 1))
    r = reproducibility(p, np.array([0, 1, 2, 2]))
    assert (r.glr, r.flr, r.plr) == (1.0, 0.0, 1.0)
    assert r.pclr == r.clr == 0.75


def test_bad_shapes_are_refused():
    with pytest.raises(InputError, match="runs >= 2"):
        reproducibility(np.zeros((1, 3), int), np.zeros(3, int))
    with pytest.raises(InputError):
        reproducibility(np.zeros((3, 4), int), np.zeros(3, int))


@pytest.mark.slow
def test_reproducibility_command_over_three_short_runs(corpus, tmp_path):
    import json

    from tests.test_cli import cli

    r = cli("reproducibility", "aver-ravdess", "--data", corpus, "--out", tmp_path, "--runs", "3", "--epochs", "4",
            timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "reproducibility.json").read_text())
    assert rep["runs"] == 3 and rep["samples"] > 50
    assert rep["glr"] == pytest.approx(rep["flr"] + rep["plr"])
    assert 0 <= rep["pclr"] <= rep["plr"] <= 1 and rep["pclr"] <= rep["clr"] <= rep["glr"]
    assert "GLR" in r.stdout and "PCLR" in r.stdout


@pytest.mark.slow  # 70-80 s: GLR..PCLR also run fast in test_reproduce.py; the AVER command above stays fast
def test_reproducibility_and_ablation_commands_run_speechnet(speech_corpus, tmp_path):
    import json

    from tests.test_cli import cli

    r = cli("reproducibility", "speechnet-emodb", "--data", speech_corpus, "--out", tmp_path / "rep", "--runs", "2",
            "--epochs", "2", timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "rep" / "reproducibility.json").read_text())
    assert rep["runs"] == 2 and rep["samples"] == pytest.approx(25, abs=4)  # the random 10 % test split
    assert rep["glr"] == pytest.approx(rep["flr"] + rep["plr"])
    r = cli("ablation", "speechnet-emodb", "--data", speech_corpus, "--out", tmp_path / "abl", "--rows",
            "full,no-routing,no-modified-routing", "--epochs", "2", timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "abl" / "ablation.json").read_text())["rows"]
    assert [row["row"] for row in rows] == ["full", "no-routing", "no-modified-routing"]
    assert rows[0]["params"] == rows[2]["params"] != rows[1]["params"]
    r = cli("ablation", "speechnet-emodb", "--data", speech_corpus, "--out", tmp_path / "abl2", "--rows", "no-rooting")
    assert r.returncode == 2 and "Did you mean 'no-routing'" in r.stderr
