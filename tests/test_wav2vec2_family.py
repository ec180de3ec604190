"""The wav2vec2 detector family: the DAIC-WOZ reader on fixture trees (participant turns only,
7 s segments, official splits) and its one-line errors, the synthetic corpus, the head
(padding, segment weights, ablations, parameter counts), the device adapter against the
training side, training plumbing, and (slow) learning on the synthetic corpus with a tiny
random frozen backbone."""

import json
from dataclasses import replace

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.daicwoz import (SPLIT_FILES, cut_segments, find_participants, participant_segments,
                                                  read_transcript, speech_only)
from edgeaffect.families.wav2vec2.model import ABLATIONS, DetectorConfig, ablate, head_cost, tiny_config
from edgeaffect.families.wav2vec2.synthetic import answer, generate_daicwoz

SR = 16000


def _tree(root, ids=(300, 301, 302), parts=("train", "train", "dev"), seconds=20.0, turns=None):
    """Split files and XXX_P folders; each participant speaks from 2 to 12 s."""
    from edgeaffect.media.audio import write_wav

    root.mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "dev": [], "test": []}
    for i, (pid, part) in enumerate(zip(ids, parts)):
        rows[part].append(f"{pid},{i % 2},{5 + 10 * (i % 2)},0")
        sub = root / f"{pid}_P"
        sub.mkdir(exist_ok=True)
        write_wav(sub / f"{pid}_AUDIO.wav", 0.1 * np.sin(np.arange(int(seconds * SR)) / 7.0), SR)
        lines = turns or [(0.5, 1.9, "Ellie"), (2.0, 12.0, "Participant")]
        (sub / f"{pid}_TRANSCRIPT.csv").write_text("start_time\tstop_time\tspeaker\tvalue\n" + "".join(
            f"{a}\t{b}\t{w}\twords\n" for a, b, w in lines))
    files = {"train": SPLIT_FILES["daicwoz"]["train"], "dev": SPLIT_FILES["daicwoz"]["val"],
             "test": SPLIT_FILES["daicwoz"]["test"]}
    for part, name in files.items():
        header = "participant_ID,Gender" if part == "test" else "Participant_ID,PHQ8_Binary,PHQ8_Score,Gender"
        body = [r.split(",")[0] + ",0" for r in rows[part]] if part == "test" else rows[part]
        (root / name).write_text("\n".join([header, *body]) + "\n")
    return root


def test_reader_splits_labels_and_unlabelled_test(tmp_path):
    root = _tree(tmp_path / "d", ids=(300, 301, 302, 303), parts=("train", "train", "dev", "test"))
    layout, ps = find_participants(root)
    assert layout == "daicwoz" and [p.pid for p in ps] == ["300", "301", "302", "303"]
    assert [p.part for p in ps] == ["train", "train", "val", "test"]
    assert [p.label for p in ps] == [0, 1, 0, -1] and ps[1].score == 15.0 and np.isnan(ps[3].score)
    (root / "full_test_split.csv").write_text("Participant_ID,PHQ_Binary,PHQ_Score,Gender\n303,1,17,1\n")
    _, ps = find_participants(root)
    assert (ps[3].label, ps[3].score) == (1, 17.0)


def test_participant_speech_only_in_order_and_7_s_segments():
    y = np.arange(10 * SR, dtype=np.float32)  # each sample names its own index
    turns = np.asarray([[1.0, 2.0], [4.0, 4.5], [1.5, 2.5]])  # overlapping turns count once
    kept = speech_only(y, SR, np.sort(turns, axis=0), "x")
    expected = np.concatenate([np.arange(1 * SR, int(2.5 * SR)), np.arange(4 * SR, int(4.5 * SR))])
    assert np.array_equal(kept, expected)
    segs = cut_segments(np.arange(int(15.5 * SR), dtype=np.float32), 7 * SR)
    assert segs.shape == (2, 112000) and segs[1, 0] == 112000  # in order, the 1.5 s tail dropped
    assert cut_segments(np.arange(int(10.5 * SR), dtype=np.float32), 7 * SR, tail="pad").shape == (2, 112000)
    assert DetectorConfig().frames == 349 and DetectorConfig().hidden == 768  # the paper's 349 frames per 7 s
    assert tiny_config().frames == 99


def test_reader_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a DAIC-WOZ tree"):
        find_participants(tmp_path / "empty")
    root = _tree(tmp_path / "a")
    with pytest.raises(InputError, match="unknown depression corpus layout 'daic'"):
        find_participants(root, "daic")
    (root / SPLIT_FILES["daicwoz"]["val"]).write_text("Participant_ID,PHQ8_Binary,PHQ8_Score\n302,0,3\n999,1,20\n")
    with pytest.raises(InputError, match="names participant 999, but .*999_AUDIO.wav is missing"):
        find_participants(root)
    # a transcript that runs past the recording
    turns = read_transcript(_tree(tmp_path / "b", turns=[(0.0, 30.0, "Participant")]) / "300_P" / "300_TRANSCRIPT.csv")
    with pytest.raises(InputError, match="speech up to 30.0 s but the audio lasts 20.0 s"):
        participant_segments(np.zeros(20 * SR, np.float32), SR, turns, sample_rate=SR, segment_s=7.0, tail="drop",
                             what="participant 300")
    # a participant who never speaks
    with pytest.raises(InputError, match="no participant turns, less than one 7 s segment"):
        participant_segments(np.zeros(20 * SR, np.float32), SR, np.zeros((0, 2)), sample_rate=SR, segment_s=7.0,
                             tail="drop", what="participant 300")


def test_bad_corpus_through_the_command_line_is_one_line_exit_2(tmp_path):
    from tests.test_cli import assert_one_line_error, cli

    _tree(tmp_path / "c", turns=[(0.0, 25.0, "Participant")])
    r = cli("train", "wav2vec2-tiny", "--data", tmp_path / "c", "--out", tmp_path / "run")
    assert_one_line_error(r, "the transcript does not match the recording")
    r = cli("train", "wav2vec2-daicwoz", "--data", tmp_path / "c", "--out", tmp_path / "run", "--ablation", "no-lstm")
    assert_one_line_error(r, "no-lstm")


def test_synthetic_corpus_is_deterministic_and_carries_the_label(tmp_path):
    a = generate_daicwoz(tmp_path / "a", scale=1, speech_s=6.0, seed=3)
    b = generate_daicwoz(tmp_path / "b", scale=1, speech_s=6.0, seed=3)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b] and len(a) == 8
    layout, ps = find_participants(tmp_path / "a")
    assert layout == "daicwoz" and sorted(p.label for p in ps) == [0] * 4 + [1] * 4
    text = ps[0].transcript.read_text()
    assert "Ellie" in text and "Participant" in text  # interviewer turns are in the audio and the transcript
    rng = np.random.default_rng
    well, low = answer(False, 10.0, rng(1), 150.0), answer(True, 10.0, rng(1), 150.0)
    assert np.sqrt(np.mean(low ** 2)) < 0.7 * np.sqrt(np.mean(well ** 2))  # quieter
    pause = [np.mean(np.abs(y.reshape(-1, 160)).max(axis=1) == 0) for y in (well, low)]  # silent 10 ms frames
    assert pause[1] > pause[0] + 0.05  # more pause (about 0.40 against 0.52)


def test_head_masks_padding_and_weights_segments():
    from edgeaffect.families.wav2vec2.model import build_head

    c = tiny_config()
    model = build_head(c, with_weights=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, c.frames, c.hidden)).astype(np.float32)
    m = np.asarray([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    p, w = model.predict([x, m], verbose=0)
    assert p.shape == (2, 1) and np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(w[0, 3:] < 1e-9)  # a padded key is MASK_PENALTY (30) off: e^-30 of a real one
    garbage = x.copy()
    garbage[0, 3:] = 100.0  # padded segments must not matter
    p2, w2 = model.predict([garbage, m], verbose=0)
    np.testing.assert_allclose(p2, p, atol=1e-6)
    np.testing.assert_allclose(w2, w, atol=1e-6)
    # Without self-attention: the LSTM's last real step, whatever follows it.
    plain = build_head(ablate(c, "no-self-attention"))
    short = plain.predict([x[:1, :3], m[:1, :3]], verbose=0)
    np.testing.assert_allclose(plain.predict([garbage[:1], m[:1]], verbose=0), short, atol=1e-6)


@pytest.mark.parametrize("row", [r for r in ABLATIONS if r != "last-layer"])
def test_every_ablation_builds_and_counts_its_parameters(row):
    from edgeaffect.families.wav2vec2.model import build_head

    c = ablate(tiny_config(), row)
    assert build_head(c).count_params() == sum(r.params for r in head_cost(c))


def test_last_layer_ablation_changes_the_feature_only():
    c = ablate(tiny_config(), "last-layer")
    assert c.layers == "last" and replace(c, layers="sum") == tiny_config()


def test_the_papers_settings_by_name():
    from edgeaffect.families.wav2vec2.model import SETTINGS, apply_setting, setting_of

    # the default trains the head on frozen features, all layers summed: no row of Table 3
    assert setting_of(tiny_config()) == setting_of(DetectorConfig()) == "frozen-all-layers"
    for name in SETTINGS:
        assert setting_of(apply_setting(tiny_config(), name)) == name
    a = apply_setting(DetectorConfig(), "frozen-last-layer")  # Table 3 A
    assert (a.fine_tune, a.layers) == (False, "last")
    b = apply_setting(DetectorConfig(), "fine-tune-all-layers")  # Tables 1, 3 B
    assert (b.fine_tune, b.fine_tune_layers, b.layers) == (True, "all", "sum")
    assert setting_of(replace(DetectorConfig(), layers="all")) is None  # the encoder input added: no setting
    with pytest.raises(InputError, match="Did you mean 'frozen-last-layer'"):
        apply_setting(DetectorConfig(), "frozen-last-layers")


def test_fine_tuning_the_last_layer_trains_that_layer_only():
    from edgeaffect.families.wav2vec2.dataset import backbone_for
    from edgeaffect.families.wav2vec2.model import apply_setting, build_finetune

    c = apply_setting(tiny_config(), "fine-tune-last-layer")
    backbone, _, _ = backbone_for(c, None, seed=0)
    build_finetune(c, backbone)
    last = f"encoder__layers__{c.backbone['num_hidden_layers'] - 1}__"
    names = [w.name for w in backbone.trainable_weights]
    assert names and all(n.startswith(last) for n in names)


def test_paper_size_head_parameters():
    c = DetectorConfig()
    # 3 convs (768->80->80->80, kernel 3), attention vector, LSTM 80, Q/K/V 80x80, Dense 1
    expected = (768 * 80 * 3 + 80) + 2 * (80 * 80 * 3 + 80) + 80 + 4 * (80 * 80 + 80 * 80 + 80) + 3 * (80 * 80 + 80) + 81
    assert sum(r.params for r in head_cost(c)) == expected


# --- training plumbing and the device adapter (a shared small corpus) ---

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from edgeaffect.train.families import load_corpus

    from edgeaffect.families.wav2vec2.dataset import embed_corpus

    root = tmp_path_factory.mktemp("daic")
    generate_daicwoz(root, scale=1, speech_s=6.0, seed=0)
    return root, embed_corpus(load_corpus("wav2vec2-tiny", root, root / "cache"), None)  # the random tiny backbone


def test_training_plumbing_and_reloaded_run(small, tmp_path):
    from edgeaffect.train.families import train
    from edgeaffect.train.runs import load_run, split_inputs, test_outputs

    root, data = small
    # 6-8 s of answers, 2 s segments; the voice-activity step (on by default) takes the long
    # pauses out of the depressed participants' answers (about a fifth), so 2-4 segments
    assert len(data.counts) == 8 and all(n in (2, 3, 4) for n in data.counts)
    run = train("wav2vec2-tiny", data, tmp_path / "run", epochs=2, seed=1)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["split"] == {"kind": "paper", "train": 4, "early_stop": 2, "val": 2, "test": 2}
    assert set(info["test"]) >= {"precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1", "auc",
                                 "accuracy", "majority_accuracy"}
    assert info["setting"] == "frozen-all-layers" and info["paper_row"].startswith("no row of the paper")
    assert info["epochs"] == 2 and "dev" in info["test_split"]
    first = data.features(0)
    assert first.shape == (3, 99, 32) and np.isfinite(first).all()
    again = load_run(tmp_path / "run")
    x, y = split_inputs(again, again.data, "val")
    assert x["features"].shape == (2, 16, 99, 32) and list(y) == list(data.labels[info["parts"]["val"]])
    out, _ = test_outputs(again, again.data)
    np.testing.assert_allclose(out, run.model.predict(split_inputs(run, data, "test")[0], verbose=0), atol=1e-6)


def test_a_setting_trains_by_name_and_a_contradiction_is_one_line(small, tmp_path):
    from edgeaffect.train.families import train

    root, data = small
    run = train("wav2vec2-tiny", data, tmp_path / "a", epochs=1, seed=0, options={"setting": "frozen-last-layer"})
    assert run.info["model_config"]["layers"] == "last" and not run.info["model_config"]["fine_tune"]
    assert (run.info["setting"], run.info["paper_row"]) == ("frozen-last-layer", "Table 3, A. frozen, the last layer")
    with pytest.raises(InputError, match="contradicts --setting frozen-last-layer"):
        train("wav2vec2-tiny", data, tmp_path / "b", epochs=1, options={"setting": "frozen-last-layer",
                                                                         "fine_tune": True})
    with pytest.raises(InputError, match="Did you mean 'fine-tune-all-layers'"):
        train("wav2vec2-tiny", data, tmp_path / "c", epochs=1, options={"setting": "fine-tune-all-layer"})
    assert not (tmp_path / "c").exists()


def test_device_adapter_rebuilds_the_training_inputs(small, tmp_path):
    from edgeaffect.contract import get_family
    from edgeaffect.families.wav2vec2.daicwoz import normalise
    from edgeaffect.families.wav2vec2.train import DetectorRun
    from edgeaffect.contract import get_model
    from edgeaffect.schema import check

    root, data = small
    spec = get_model("wav2vec2-tiny")
    fam = get_family("wav2vec2")
    run = DetectorRun(tmp_path, spec, None, {}, {}, data)
    adapter = fam.device({"preprocessing": run.preprocessing(), "labels": list(spec.labels)})
    wav = fam.recordings(root)[0]
    x = adapter.backbone_inputs(adapter.load(wav))
    np.testing.assert_allclose(x["audio"], normalise(data.audio(0)), atol=1e-6)  # the transcript beside it is used
    head = adapter.head_inputs(data.features(0))
    ref = data.batch([0], spec.config.max_segments)
    np.testing.assert_array_equal(head["features"], ref["features"])
    np.testing.assert_array_equal(head["segment_mask"], ref["segment_mask"])
    p = adapter.result(np.asarray([[0.8]]), np.asarray([[0.5, 0.3, 0.2] + [0.0] * 13]), 3)
    assert p.decision == "depressed" and p.extra["segment_weights"] == [0.5, 0.3, 0.2]
    assert "p(depressed) = 0.800" in fam.task.describe(p)[0]
    bad = {**run.preprocessing(), "segment_s": 0}
    with pytest.raises(InputError, match="'preprocessing.segment_s' must be a finite number > 0"):
        check(type(adapter).preprocessing_spec, bad, None, "preprocessing")  # as a bundle is opened


@pytest.mark.slow
def test_detector_learns_the_synthetic_corpus(tmp_path):
    """The bar: with a tiny random frozen backbone, dev and test accuracy per participant at
    least 0.8 and F1 of the depressed class at least 0.8, where always answering the
    majority class scores 0.5 accuracy and F1 0 (6 + 6 participants, half depressed)."""
    from edgeaffect.train.families import load_corpus, train

    generate_daicwoz(tmp_path / "c", scale=3, speech_s=16.0, seed=0)
    data = load_corpus("wav2vec2-tiny", tmp_path / "c", tmp_path / "cache")
    run = train("wav2vec2-tiny", data, tmp_path / "run", seed=0)
    for part in ("val", "test"):
        r = run.info["reports"][part]
        assert r["n"] == 6 and r["majority_accuracy"] == 0.5
        assert r["accuracy"] >= 0.8 and r["f1"] >= 0.8, (part, r)


@pytest.mark.slow
def test_fine_tuning_trains_the_transformer_and_keeps_the_conv_encoder(small, tmp_path):
    """--fine-tune: the backbone is in the model; after one epoch its transformer has moved
    (at lr 1e-5) and its conv feature encoder has not; the run reloads to the same outputs."""
    from edgeaffect.families.wav2vec2.dataset import backbone_for
    from edgeaffect.train.families import train
    from edgeaffect.train.runs import load_run, split_inputs

    root, data = small
    run = train("wav2vec2-tiny", data, tmp_path / "ft", epochs=1, seed=0, options={"fine_tune": True})
    assert run.info["model_config"]["fine_tune"] and run.info["features"] is None
    tuned = {w.name: w.numpy() for w in next(la for la in run.model.layers if la.name.startswith("wav2vec2")).weights}
    fresh, _, _ = backbone_for(run.config, None, seed=0)
    start = {w.name: w.numpy() for w in fresh.weights}
    conv = [n for n in start if n.startswith("feature_extractor")]
    moved = [n for n in start if n.startswith("encoder") and not np.array_equal(start[n], tuned[n])]
    assert conv and all(np.array_equal(start[n], tuned[n]) for n in conv)
    assert moved and max(np.abs(start[n] - tuned[n]).max() for n in moved) < 1e-3  # small steps: lr 1e-5
    x, _ = split_inputs(run, data, "val")
    assert x["audio"].shape == (2, 16, 32000)
    again = load_run(tmp_path / "ft")
    np.testing.assert_allclose(again.model.predict(x, verbose=0), run.model.predict(x, verbose=0), atol=1e-6)


def test_cmdc_assumption_reads_the_whole_recording(tmp_path):
    """CMDC (layout assumed): the same tree and split columns under {train,dev,test}_split.csv,
    no transcript: every second of the audio is the participant's."""
    from edgeaffect.media.audio import write_wav

    root = tmp_path / "cmdc"
    for pid, part in ((1, "train"), (2, "dev")):
        (root / f"{pid}_P").mkdir(parents=True)
        write_wav(root / f"{pid}_P" / f"{pid}_AUDIO.wav", 0.1 * np.ones(15 * SR, np.float32), SR)
        (root / f"{part}_split.csv").write_text(f"Participant_ID,PHQ8_Binary,PHQ8_Score\n{pid},{pid - 1},9\n")
    layout, ps = find_participants(root)
    assert layout == "cmdc" and [p.transcript for p in ps] == [None, None] and [p.label for p in ps] == [0, 1]
    segs = participant_segments(np.ones(15 * SR, np.float32), SR, None, sample_rate=SR, segment_s=7.0, tail="drop",
                                what="1")
    assert segs.shape == (2, 112000)


def test_heldout_split_keeps_dev_out_of_early_stopping():
    from edgeaffect.families.wav2vec2.dataset import DepressionCorpus
    from edgeaffect.families.wav2vec2.train import split_parts

    parts = np.asarray(["train"] * 20 + ["val"] * 6 + ["test"] * 4)
    labels = np.asarray([0, 1] * 10 + [0, 1] * 3 + [-1] * 4)
    data = DepressionCorpus(None, [str(i) for i in range(30)], labels, np.zeros(30), parts, np.ones(30, np.int64),
                            "daicwoz", tiny_config())
    paper = split_parts(data, "paper", None)
    assert paper["stop"] == paper["val"] == list(range(20, 26)) and paper["test"] == []  # unlabelled test: unscored
    held = split_parts(data, "heldout", 3)
    assert held["val"] == list(range(20, 26)) and set(held["stop"]) < set(range(20))
    assert sorted(held["train"] + held["stop"]) == list(range(20)) and len(held["stop"]) == 4
    assert sorted(labels[held["stop"]]) == [0, 0, 1, 1]  # stratified


@pytest.mark.parametrize("row", ["inf,1,12", "300,inf,12", "1e400,0,3"])
def test_a_split_file_with_an_infinite_number_is_one_line(tmp_path, row):
    """Found by fuzzing the corpus layouts (issue 30): int(float('inf')) raises OverflowError."""
    from edgeaffect.families.wav2vec2.daicwoz import read_split

    f = tmp_path / "dev_split_Depression_AVEC2017.csv"
    f.write_text("Participant_ID,PHQ8_Binary,PHQ8_Score\n" + row + "\n")
    with pytest.raises(InputError, match="line 2: expected a participant id"):
        read_split(f)
