"""What a family owns, asked through the contract: its live demo settings (changed by name,
``--set key=value``), the setting the demo benchmark compares, its paper's figures (one
file per family) and where its make target writes (the report page's defaults)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeaffect.demo.bench import compared_configs
from edgeaffect.demo.live import DemoConfig, with_settings
from edgeaffect.errors import InputError


def _adapter(name):
    from edgeaffect.contract import get_family

    return get_family(name).adapter


def test_settings_change_by_name_and_keep_their_types():
    aver = _adapter("aver")
    c = with_settings(DemoConfig(), aver, ["detect_every=2", "smooth=3", "max-fps=12.5"])
    assert (c.smooth, c.live.detect_every, c.live.max_fps) == (3, 2, 12.5)
    assert isinstance(c.live.detect_every, int) and c.live == aver.live_settings(detect_every=2, max_fps=12.5)
    assert with_settings(DemoConfig(), aver, ()).live == aver.live_settings()  # the family's defaults


@pytest.mark.parametrize("pair, fragment", [("no_such=1", "--set takes key=value"), ("detect_every", "key=value"),
                                            ("detect_every=six", "detect_every must be a whole number"), ("detect_every=0", "out of range")])
def test_bad_settings_are_one_input_error(pair, fragment):
    with pytest.raises(InputError, match=fragment):
        with_settings(DemoConfig(), _adapter("aver"), [pair])


def test_each_family_has_its_own_settings_and_stages():
    speech = _adapter("speechnet")
    assert with_settings(DemoConfig(), speech, ["window_s=2"]).live.window_s == 2.0
    with pytest.raises(InputError, match="detect_every"):  # another family's setting is not this one's
        with_settings(DemoConfig(), speech, ["detect_every=1"])
    assert _adapter("aver").live_stages == ("face", "features") and speech.live_stages == ("features",)


def test_the_benchmark_compares_the_reference_setting_only_when_it_differs():
    aver = _adapter("aver")
    assert list(compared_configs(aver, DemoConfig())) == ["detect every 6", "detect every 1"]
    assert list(compared_configs(aver, with_settings(DemoConfig(), aver, ["detect_every=1"]))) == ["detect every 1"]
    assert list(compared_configs(aver, DemoConfig(), compare=False)) == ["detect every 6"]
    assert list(compared_configs(_adapter("speechnet"), DemoConfig())) == ["default settings"]


def test_paper_figures_come_from_the_family_file():
    import tomllib

    from edgeaffect.contract import get_family, get_model, list_families
    from edgeaffect.roofline.papers import load_figures

    assert get_model("aver-ravdess").paper_figures == {"source": "Table V", "params_m": 0.06, "gflops": 0.014,
                                                       "memory_mb_fp32": 0.93, "accuracy_pct": 95.89, "cpu_ms": 200,
                                                       "cpu": "Intel Core i5-12500H"}
    assert get_model("wav2vec2-tiny").paper_figures == {}
    papers, figures = load_figures()
    kept = [name for name in list_families() if get_family(name).paper_file is not None]
    assert sorted(papers) == sorted(kept) and {"aver", "speechnet", "spectrotemporal", "wav2vec2"} <= set(kept)
    for name in kept:
        rows = tomllib.loads(get_family(name).paper_file.read_text()).get("figures", [])
        assert [f for f in figures if f["paper"] == name] == [{"paper": name, **r} for r in rows]


def test_report_defaults_and_task_kinds_come_from_data(tmp_path, monkeypatch):
    from edgeaffect.report.html import default_folders, gather

    monkeypatch.chdir(tmp_path)
    other = tmp_path / "build" / "mine"
    (other / "runs" / "a").mkdir(parents=True)
    (other / "summary.json").write_text(json.dumps({"verification": []}))
    # A regression run without an "mae" key is still a result; an unknown model's is not.
    (other / "runs" / "a" / "run.json").write_text(json.dumps({"model": "spectrotemporal-tiny",
                                                               "test": {"n": 3, "rmse": 1.5}}))
    (other / "runs" / "b").mkdir()
    (other / "runs" / "b" / "run.json").write_text(json.dumps({"model": "not-registered", "test": {"mae": 1.0}}))
    folders = default_folders()
    assert folders[Path("build/quickstart")] == "make demo"
    assert list(folders)[-1] == Path("build/mine") and folders[Path("build/mine")] is None
    g = gather(None)
    assert [r.path.parent.name for r in g.results] == ["a"]
