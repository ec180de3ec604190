"""`edgeaffect reproduce`: every paper's recipe runs end to end on a synthetic corpus in the
real layout (--quick, tiny variants), resumes without retraining, never shows a synthetic
number as a paper result, and refuses bad input in one line."""

from __future__ import annotations

import io
import json
import tomllib
from dataclasses import replace

import numpy as np
import pytest

from edgeaffect.data.synthetic import MARKER, is_synthetic
from edgeaffect.errors import InputError
from edgeaffect.workflows.reproduce import RUN_FILE, get_recipe, recipes, reproduce, table_lines
from edgeaffect.contract.reproduce import check_result, load_result

PAPERS = ("lightweight-aver", "speechnet-ser", "spectrotemporal-depression", "wav2vec2-depression")
TINY_SPEECHNET = "speechnet-emodb-reproduce-test"


def _tiny_speechnet():
    """A narrow SpeechNet on EmoDB's labels, registered for these tests only."""
    from edgeaffect.contract.registry import _MODELS, get_model

    if TINY_SPEECHNET not in _MODELS:
        base = get_model("speechnet-emodb")
        cfg = replace(base.config, max_frames=32, encoding_units=(32, 16), lstm_units=16, pre_attention_units=16,
                      heads=2, conv_filters=8, batch_size=32)
        _MODELS[TINY_SPEECHNET] = replace(base, name=TINY_SPEECHNET, config=cfg,
                                            inputs={"features": (cfg.max_frames, cfg.features.dim)})
    return TINY_SPEECHNET


def _check_doc(doc, paper, synthetic=True):
    check_result(json.loads(json.dumps(doc)))
    assert doc["paper"] == paper and doc["synthetic"] is synthetic and doc["finished"]
    assert doc["rows"], doc
    for row in doc["rows"]:
        assert row["runs"] == 2 and len(row["seeds"]) == 2
        if synthetic:
            assert "synthetic corpus: not a paper result" in row["note"]
        assert row["ours"]["mean"] is not None, row


# ----------------------------------------------------------------- recipes as data


def test_every_paper_has_a_checked_recipe_with_sourced_rows():
    found = recipes()
    assert set(PAPERS) <= set(found)
    for paper in PAPERS:
        r = found[paper]
        assert r.source.name == "reproduce.toml" and r.source.parent.name == r.family.name
        for corpus in r.corpora:
            for proto in corpus["protocol"]:
                assert len(proto["seeds"]) == proto["runs"]
                for m in proto["metrics"]:
                    assert m["table"] and m["paper_row"]
    # a few of the papers' own figures, as printed (fractions of the papers' percent)
    aver = {c["name"]: c for c in found["lightweight-aver"].corpora}
    assert [p["name"] for p in aver["SAVEE"]["protocol"]] == ["paper split", "leave-one-actor-out"]
    assert aver["SAVEE"]["protocol"][1]["metrics"][0]["paper"] == pytest.approx(0.9750)
    assert aver["RAVDESS"]["protocol"][0]["metrics"][0]["paper"] == pytest.approx(0.9589)
    emodb = found["speechnet-ser"].corpora[0]["protocol"][0]
    assert emodb["runs"] == 10 and {m["metric"] for m in emodb["metrics"]} >= {"accuracy", "glr", "plr", "pclr"}
    assert found["wav2vec2-depression"].corpora[0]["protocol"][0]["metrics"][2]["paper"] == pytest.approx(0.79)


def test_recipe_errors_name_the_field(tmp_path):
    from edgeaffect.contract.reproduce import check_recipe

    doc = tomllib.loads((get_recipe("lightweight-aver").source).read_text())["lightweight-aver"]
    doc["corpus"][0]["protocol"][0]["runs"] = 3
    with pytest.raises(InputError, match="runs = 3 but 5 seeds"):
        check_recipe("lightweight-aver", doc, "x.toml")
    doc["corpus"][0]["protocol"][0]["metrics"][0]["papr"] = 1.0
    with pytest.raises(InputError, match="papr"):
        check_recipe("lightweight-aver", doc, "x.toml")


def test_result_loader_refuses_other_files(tmp_path):
    (tmp_path / "reproduce.json").write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(InputError, match="not an `edgeaffect reproduce` result"):
        load_result(tmp_path)
    (tmp_path / "reproduce.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_result(tmp_path)
    with pytest.raises(InputError, match="no reproduce result"):
        load_result(tmp_path / "none")


def test_actor_split_holds_out_one_speaker_per_fold():
    from edgeaffect.data.splits import make_split

    speakers = np.repeat(np.array(["DC", "JE", "JK", "KL"]), 14)
    labels = np.tile(np.arange(7), 8)
    held = []
    for fold in range(4):
        sp = make_split("actor", labels, np.arange(labels.size), speakers, seed=fold)
        assert set(speakers[sp.test]) == {["DC", "JE", "JK", "KL"][fold]}
        assert not set(speakers[sp.test]) & set(speakers[np.concatenate([sp.train, sp.val])])
        assert sorted(np.concatenate([sp.train, sp.val, sp.test]).tolist()) == list(range(labels.size))
        held.append(speakers[sp.test][0])
    assert held == ["DC", "JE", "JK", "KL"]


# ----------------------------------------------------------------- end to end, per recipe


@pytest.fixture(scope="module")
def savee_av(tmp_path_factory):
    from edgeaffect.families.aver.synthetic import SyntheticConfig, generate_savee

    root = tmp_path_factory.mktemp("savee-av")
    generate_savee(root, SyntheticConfig(actors=3, statements=1, repetitions=1, duration_s=1.0))
    return root


def test_aver_recipe_resumes_and_never_retrains(savee_av, tmp_path, monkeypatch):
    import edgeaffect.train.families as fam

    assert (savee_av / MARKER).is_file() and is_synthetic(savee_av / "AudioVisualClip")
    calls = []
    real_train = fam.train

    def interrupted_after_one(*a, **kw):  # the second run is killed before it finishes
        if calls:
            raise KeyboardInterrupt
        calls.append(kw["seed"])
        return real_train(*a, **kw)

    monkeypatch.setattr(fam, "train", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt):
        reproduce("lightweight-aver", savee_av, tmp_path, quick=True, epochs=1, log=io.StringIO())
    partial = load_result(tmp_path)
    assert partial["finished"] is None and partial["rows"][0]["runs"] == 1 and calls == [0]

    monkeypatch.setattr(fam, "train", lambda *a, **kw: calls.append(kw["seed"]) or real_train(*a, **kw))
    doc = reproduce("lightweight-aver", savee_av, tmp_path, quick=True, epochs=1, log=io.StringIO())
    assert calls == [0, 1]  # seed 0 was kept, only seed 1 trained
    _check_doc(doc, "lightweight-aver")
    row = doc["rows"][0]
    assert (row["corpus"], row["protocol"], row["table"], row["paper"]) == ("SAVEE", "paper split", "Table II", 0.9757)
    assert "; n = 28 scored" in row["split"]

    def no_training(*a, **kw):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(fam, "train", no_training)
    again = reproduce("lightweight-aver", savee_av, tmp_path, quick=True, epochs=1, log=io.StringIO())
    assert again["rows"] == doc["rows"] and again["started"] == doc["started"]
    assert len(list(tmp_path.glob(f"runs/savee/paper-split/seed-*/{RUN_FILE}"))) == 2
    # killed between the run's own record and ours: the trained run is read back, not retrained
    (tmp_path / "runs" / "savee" / "paper-split" / "seed-1" / RUN_FILE).unlink()
    read_back = reproduce("lightweight-aver", savee_av, tmp_path, quick=True, epochs=1, log=io.StringIO())
    assert read_back["rows"] == doc["rows"]
    text = "\n".join(table_lines(again))
    assert "SYNTHETIC CORPUS" in text and "97.57 %" in text and "not a paper result" in text


def test_rows_put_rates_over_runs_beside_the_papers_table_4():
    """Fast: GLR ... PCLR rows from the stored decisions of finished runs (by hand: 3 runs,
    4 samples; the end-to-end SpeechNet run is the slow test below)."""
    from edgeaffect.workflows.reproduce import _rows

    entry = get_recipe("speechnet-ser").corpora[0]
    proto = entry["protocol"][0]
    decisions = [[0, 1, 2, 2], [0, 1, 1, 2], [0, 2, 1, 2]]
    done = [{"seed": s, "metrics": {"n": 4, "accuracy": a}, "decisions": d, "targets": [0, 1, 2, 0]}
            for s, (d, a) in enumerate(zip(decisions, (0.75, 0.5, 0.25)))]
    rows = {r["metric"]: r for r in _rows(entry, [proto], {proto["name"]: done}, ["a note"])}
    assert rows["accuracy"]["ours"]["mean"] == pytest.approx(0.5) and rows["accuracy"]["runs"] == 3
    assert rows["accuracy"]["ours"]["std"] == pytest.approx(0.25)
    # C = [3, 2, 2, 3] of R = 3: PLR 2/4; modes [0, 1, 1, 2] vs truth [0, 1, 2, 0]: PCLR 1/4, CLR 2/4
    assert rows["plr"]["ours"]["values"] == [0.5] and rows["pclr"]["ours"]["mean"] == 0.25
    assert rows["glr"]["ours"]["mean"] == 1.0 and rows["clr"]["ours"]["mean"] == 0.5
    assert rows["plr"]["paper"] == pytest.approx(0.9159) and rows["flr"]["paper"] is None
    assert "; n = 4 scored" in rows["plr"]["split"] and "a note" in rows["plr"]["note"]
    single = {r["metric"]: r for r in _rows(entry, [proto], {proto["name"]: done[:1]}, [])}
    assert single["plr"]["ours"]["mean"] is None and single["accuracy"]["ours"]["std"] is None


@pytest.mark.slow
def test_speechnet_recipe_gives_accuracy_and_reproducibility_rows(tmp_path):
    from edgeaffect.families.speechnet.synthetic import SpeechCorpusConfig, generate_emodb

    generate_emodb(tmp_path / "emodb", SpeechCorpusConfig(speakers=3, texts=2, min_seconds=0.8, max_seconds=1.2))
    doc = reproduce("speechnet-ser", tmp_path / "emodb", tmp_path / "out", quick=True, epochs=1,
                    model=_tiny_speechnet(), log=io.StringIO())
    _check_doc(doc, "speechnet-ser")
    rows = {r["metric"]: r for r in doc["rows"]}
    assert rows["accuracy"]["paper"] == pytest.approx(0.8766) and rows["pclr"]["paper"] == pytest.approx(0.8318)
    assert rows["glr"]["paper"] is None and rows["glr"]["ours"]["mean"] == pytest.approx(
        rows["flr"]["ours"]["mean"] + rows["plr"]["ours"]["mean"])
    assert "model speechnet-emodb-reproduce-test, not the recipe's speechnet-emodb" in rows["accuracy"]["note"]


def test_depression_recipes_find_their_corpus_and_protocols(tmp_path):
    """Fast: each depression recipe recognises its synthetic corpus and its protocols are
    splits and models the family has (the training itself: the slow tests below)."""
    from edgeaffect.families.spectrotemporal.synthetic import generate_avec2013
    from edgeaffect.families.wav2vec2.synthetic import generate_daicwoz
    from edgeaffect.workflows.reproduce import pick_corpus
    from edgeaffect.train.families import check_request

    generate_avec2013(tmp_path / "avec", per_partition=1, seconds=1.0, seed=0)
    generate_daicwoz(tmp_path / "daic", scale=1, speech_s=1.0, seed=0)
    for paper, folder, name in (("spectrotemporal-depression", "avec", "AVEC2013"),
                                ("wav2vec2-depression", "daic", "DAIC-WOZ")):
        assert is_synthetic(tmp_path / folder)
        recipe = get_recipe(paper)
        entry = pick_corpus(recipe, tmp_path / folder, None)
        assert entry["name"] == name
        for model in (entry["model"], entry["quick_model"]):
            for proto in entry["protocol"]:
                check_request(model, proto["split"])
    for recipe in recipes().values():
        for entry in recipe.corpora:
            assert entry["layout"] in recipe.family.corpus_layouts, (recipe.paper, entry["layout"])


@pytest.mark.slow
def test_spectrotemporal_recipe_end_to_end(tmp_path):
    from edgeaffect.families.spectrotemporal.synthetic import generate_avec2013

    generate_avec2013(tmp_path / "avec", per_partition=2, seconds=4.0, seed=0)
    doc = reproduce("spectrotemporal-depression", tmp_path / "avec", tmp_path / "out", quick=True, log=io.StringIO())
    _check_doc(doc, "spectrotemporal-depression")
    assert doc["model"] == "spectrotemporal-tiny" and doc["corpus"] == "AVEC2013"
    assert [(r["metric"], r["paper"]) for r in doc["rows"]] == [("mae", 5.860), ("rmse", 7.109)]


@pytest.mark.slow
def test_wav2vec2_recipe_end_to_end(tmp_path):
    from edgeaffect.families.wav2vec2.synthetic import generate_daicwoz

    generate_daicwoz(tmp_path / "daic", scale=1, speech_s=4.0, seed=0)
    doc = reproduce("wav2vec2-depression", tmp_path / "daic", tmp_path / "out", quick=True, log=io.StringIO())
    _check_doc(doc, "wav2vec2-depression")
    assert doc["model"] == "wav2vec2-tiny" and [r["metric"] for r in doc["rows"]] == [
        "macro_precision", "macro_recall", "macro_f1", "precision", "recall", "f1", "auc"]
    # the paper's figures stand beside the macro ones only (its convention)
    assert [r["paper"] for r in doc["rows"]] == [0.8449, 0.7699, 0.7900, None, None, None, None]
    assert all("dev" in r["split"] for r in doc["rows"])


# ----------------------------------------------------------------- bad input


def test_bad_input_is_one_line_and_exit_2(savee_av, tmp_path):
    from tests.test_cli import assert_one_line_error, cli

    assert_one_line_error(cli("reproduce", "lightweight-avr", "--data", savee_av, "--out", tmp_path / "a"),
                          "unknown paper", "Did you mean 'lightweight-aver'")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("reproduce", "lightweight-aver", "--data", tmp_path / "empty", "--out", tmp_path / "b"),
                          "no corpus of lightweight-aver recognised", "AudioVisualClip")
    assert not (tmp_path / "b").exists()
    assert_one_line_error(cli("reproduce", "lightweight-aver", "--data", savee_av, "--out", tmp_path / "c", "--quick",
                              "--set", "bogus=1"), "--bogus is not an option of the aver family")
    assert_one_line_error(cli("reproduce", "lightweight-aver", "--data", savee_av, "--out", tmp_path / "c",
                              "--set", "bogus"), "--set takes KEY=VALUE")
    assert not (tmp_path / "c").exists()


def test_refuses_a_model_of_another_family_and_another_results_folder(savee_av, tmp_path):
    with pytest.raises(InputError, match="is a speechnet model"):
        reproduce("lightweight-aver", savee_av, tmp_path, quick=True, model="speechnet-emodb")
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError, match="is a file"):
        reproduce("lightweight-aver", savee_av, tmp_path / "afile", quick=True)
    with pytest.raises(InputError, match="has no corpus 'iemocap'"):
        reproduce("lightweight-aver", savee_av, tmp_path, quick=True, corpus="iemocap")
    (tmp_path / "reproduce.json").write_text(json.dumps({
        "kind": "edgeaffect-reproduce", "version": 1, "paper": "speechnet-ser", "title": "t", "model": "speechnet-emodb",
        "data": "/elsewhere", "corpus": "EmoDB", "synthetic": False, "quick": False, "machine": "m", "started": "s",
        "finished": None, "rows": []}))
    with pytest.raises(InputError, match="give another --out"):
        reproduce("lightweight-aver", savee_av, tmp_path, quick=True)


# ----------------------------------------------------------------- AVER's other layouts


def test_savee_and_mead_readers_by_layout(tmp_path):
    """The layouts assumed in edgeaffect/families/aver/README.md, on empty fixture files (names only)."""
    from edgeaffect.families.aver.corpora import detect_layout, find_av_clips
    from edgeaffect.contract import get_model

    savee = tmp_path / "savee"
    for spk in ("DC", "KL"):
        for name in ("a01.avi", "sa02.avi", "su15.avi", "notes.txt"):
            (savee / "AudioVisualClip" / spk).mkdir(parents=True, exist_ok=True)
            (savee / "AudioVisualClip" / spk / name).write_bytes(b"")
    (savee / "AudioVisualClip" / "XX").mkdir()
    (savee / "AudioVisualClip" / "XX" / "a01.avi").write_bytes(b"")  # not a SAVEE speaker: ignored
    labels = get_model("aver-savee").labels
    clips = find_av_clips(savee, labels)
    assert detect_layout(savee) == "savee" and len(clips) == 6
    assert {(c.speaker, labels[c.label]) for c in clips} >= {("DC", "angry"), ("KL", "sad"), ("DC", "surprised")}

    mead = tmp_path / "mead"
    for actor, emotion, level in (("M003", "angry", 1), ("W009", "contempt", 3), ("W009", "neutral", 1)):
        folder = mead / actor / "video" / "front" / emotion / f"level_{level}"
        folder.mkdir(parents=True)
        (folder / "001.mp4").write_bytes(b"")
    (mead / "M003" / "video" / "left_30" / "angry" / "level_1").mkdir(parents=True)
    (mead / "M003" / "video" / "left_30" / "angry" / "level_1" / "001.mp4").write_bytes(b"")  # not the front view
    (mead / "W009" / "audio" / "contempt" / "level_3").mkdir(parents=True)
    (mead / "W009" / "audio" / "contempt" / "level_3" / "001.m4a").write_bytes(b"")
    labels = get_model("aver-mead").labels
    clips = find_av_clips(mead, labels)
    assert detect_layout(mead) == "mead" and len(clips) == 3
    by = {(c.speaker, labels[c.label]): c for c in clips}
    assert by[("W009", "contempt")].audio.suffix == ".m4a" and by[("M003", "angry")].audio.suffix == ".mp4"
    with pytest.raises(InputError, match="'contempt' is not one of the model's labels"):
        find_av_clips(mead, get_model("aver-ravdess").labels, "mead")
    with pytest.raises(InputError, match="no savee clips"):
        find_av_clips(mead, labels, "savee")


@pytest.mark.slow
def test_aver_full_recipe_on_savee_runs_every_protocol(savee_av, tmp_path):
    """Not --quick: both SAVEE protocols, 5 paper-split runs and one run per held-out actor."""
    doc = reproduce("lightweight-aver", savee_av, tmp_path, epochs=1, log=io.StringIO())
    check_result(doc)
    rows = {r["protocol"]: r for r in doc["rows"]}
    assert rows["paper split"]["runs"] == 5 and rows["paper split"]["seeds"] == [0, 1, 2, 3, 4]
    loao = rows["leave-one-actor-out"]
    assert loao["runs"] == 4 and len(loao["ours"]["values"]) == 4 and loao["paper"] == pytest.approx(0.975)
    assert "one run per held-out actor" in loao["note"] and "--epochs 1" in loao["note"]


@pytest.mark.slow
def test_aver_quick_recipe_on_mead(tmp_path):
    from edgeaffect.families.aver.synthetic import SyntheticConfig, generate_mead

    generate_mead(tmp_path / "mead", SyntheticConfig(actors=3, statements=1, repetitions=1, duration_s=1.0))
    doc = reproduce("lightweight-aver", tmp_path / "mead", tmp_path / "out", quick=True, log=io.StringIO())
    _check_doc(doc, "lightweight-aver")
    assert doc["corpus"] == "MEAD" and doc["model"] == "aver-mead" and doc["rows"][0]["paper"] == pytest.approx(0.9857)


@pytest.mark.slow
def test_cli_killed_after_one_run_resumes_without_retraining_it(savee_av, tmp_path):
    """A real kill (SIGKILL, as a reboot) once the first run is recorded; the same command
    again keeps that run and trains the second only."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.test_cli import cli

    out = tmp_path / "out"
    args = ["reproduce", "lightweight-aver", "--data", str(savee_av), "--out", str(out), "--quick", "--epochs", "3"]
    proc = subprocess.Popen([sys.executable, "-m", "edgeaffect.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    first = out / "runs" / "savee" / "paper-split" / "seed-0" / RUN_FILE
    try:
        deadline = time.monotonic() + 600
        while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first.is_file(), "the first run never finished"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    stamp = (first.parent / "run.json").stat().st_mtime_ns
    assert not (out / "runs" / "savee" / "paper-split" / "seed-1" / RUN_FILE).exists()
    assert load_result(out)["finished"] is None
    r = cli(*args, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "run 1/2 (seed 0) finished before, kept" in r.stderr and "run 2/2 (seed 1, split seed 0)" in r.stderr
    assert (first.parent / "run.json").stat().st_mtime_ns == stamp
    doc = load_result(out)
    assert doc["finished"] and doc["rows"][0]["runs"] == 2 and "SYNTHETIC CORPUS" in r.stdout
