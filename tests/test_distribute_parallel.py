"""`edgeaffect reproducibility --parallel N`: the R seeds trained as N processes give the
table of the sequential runs (deterministic ops: identical figures, no tolerance)."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import cli


@pytest.mark.slow
def test_parallel_seeds_give_the_sequential_table(corpus, dataset, tmp_path):
    from edgeaffect.contract import get_model
    from edgeaffect.families.aver.corpora import find_av_clips
    from edgeaffect.families.aver.dataset import _cache_key, save_dataset
    from edgeaffect.families.aver.features import AverFeatureConfig
    from edgeaffect.families.aver.ravdess import EMOTIONS

    key = _cache_key(find_av_clips(corpus, EMOTIONS), AverFeatureConfig(), get_model("aver-ravdess").config.time_stretch_rate)
    tables = {}
    for mode, extra in (("sequential", []), ("parallel", ["--parallel", "2"])):
        out = tmp_path / mode
        save_dataset(out / "cache" / f"aver-features-{key}.npz", dataset)  # features once, as a user's cache
        r = cli("reproducibility", "aver-ravdess", "--data", corpus, "--out", out, "--runs", "2", "--epochs", "3",
                "--deterministic", *extra, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        tables[mode] = (json.loads((out / "reproducibility.json").read_text()), r.stdout)
        assert sorted(p.name for p in out.iterdir()) == ["cache", "reproducibility.json", "run-0", "run-1"]
    (seq, seq_out), (par, par_out) = tables["sequential"], tables["parallel"]
    assert seq == par
    assert seq_out == par_out
    assert 0 < seq["plr"] < 1 or seq["glr"] > 0  # a real table, not an empty one
