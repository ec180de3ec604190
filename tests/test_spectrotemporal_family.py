"""The spectrotemporal family: AVEC readers on fixture trees (and their one-line errors),
the synthetic corpus, device inputs against the training side's, and (slow) training on
the synthetic corpus with the tiny variant: the score is learned."""

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.families.spectrotemporal.avec import find_recordings
from edgeaffect.families.spectrotemporal.synthetic import generate_avec2013, speech


def _tree(root, layout="avec2013", n=2):
    from edgeaffect.media.audio import write_wav

    for part in ("Training", "Development", "Testing"):
        for i in range(n):
            sid = f"{300 + i}_1"
            (root / part / "DepressionLabels").mkdir(parents=True, exist_ok=True)
            (root / part / "DepressionLabels" / f"{sid}_Depression.csv").write_text(f"{10 + i}\n")
            tasks = ["Audio"] if layout == "avec2013" else ["Freeform", "Northwind"]
            for t in tasks:
                (root / part / t).mkdir(parents=True, exist_ok=True)
                name = f"{sid}_audio.wav" if t == "Audio" else f"{sid}_{t}_audio.wav"
                write_wav(root / part / t / name, np.zeros(800, np.float32), 8000)


def test_avec_layouts_and_partitions(tmp_path):
    _tree(tmp_path / "a13")
    layout, rows = find_recordings(tmp_path / "a13")
    assert layout == "avec2013" and len(rows) == 6
    assert {r.part for r in rows} == {"train", "val", "test"} and rows[0].score == 10.0
    _tree(tmp_path / "a14", "avec2014")
    layout, rows = find_recordings(tmp_path / "a14")
    assert layout == "avec2014" and len(rows) == 12  # two tasks per label
    assert {r.path.parent.name for r in rows} == {"Freeform", "Northwind"}


def test_avec_errors_are_one_line(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="not an AVEC2013 / AVEC2014 tree"):
        find_recordings(tmp_path / "x")
    _tree(tmp_path / "a13")
    with pytest.raises(InputError, match="unknown AVEC layout 'avec2015'"):
        find_recordings(tmp_path / "a13", "avec2015")
    (tmp_path / "a13" / "Testing" / "DepressionLabels" / "999_2_Depression.csv").write_text("3\n")
    with pytest.raises(InputError, match="names recording 999_2, but .*999_2_audio.wav is missing"):
        find_recordings(tmp_path / "a13")


def test_synthetic_corpus_is_deterministic_and_carries_the_score(tmp_path):
    a = generate_avec2013(tmp_path / "a", per_partition=2, seconds=3.0, seed=5)
    b = generate_avec2013(tmp_path / "b", per_partition=2, seconds=3.0, seed=5)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    low, high = speech(0, 10.0, 1), speech(60, 10.0, 1)
    # Lower energy and more pause (frames near silence) as the score rises.
    assert np.sqrt(np.mean(high ** 2)) < 0.6 * np.sqrt(np.mean(low ** 2))
    quiet = [np.mean(np.abs(y.reshape(-1, 80)).max(axis=1) < 0.01) for y in (low, high)]
    assert quiet[1] > quiet[0] + 0.1


def test_device_inputs_match_the_training_side(tmp_path):
    """The device's NumPy features give the same model inputs as the training side's
    librosa features, within the features' tolerance carried through the normalisation."""
    from edgeaffect.families.spectrotemporal.dataset import build_dataset
    from edgeaffect.families.spectrotemporal.device import SpectroAdapter, segment_inputs
    from edgeaffect.families.spectrotemporal.model import tiny_config
    from edgeaffect.families.spectrotemporal.train import normalisation
    from edgeaffect.media import read_audio

    cfg = tiny_config()
    generate_avec2013(tmp_path / "c", per_partition=1, seconds=4.0, seed=1)
    data = build_dataset(tmp_path / "c", cfg.features, cfg.vlnep_rule)
    norm = normalisation(data)
    a, b = data.offsets[0], data.offsets[1]
    x_train = segment_inputs(data.mel[a:b], data.vlnep[a:b], norm)  # librosa log-Mel, per segment
    adapter = SpectroAdapter({"features": cfg.features.to_dict(), "vlnep_rule": "match", "normalisation": norm},
                             None, ["BDI-II"])
    x_dev = adapter.inputs(read_audio(tmp_path / "c" / "Training" / "Audio" / "200_1_audio.wav"))
    assert x_dev["segment"].shape == x_train["segment"].shape
    # Pixels: 1e-3 dB / std * 42.5 is far below 0.05 of a pixel level.
    np.testing.assert_allclose(x_dev["segment"], x_train["segment"], atol=0.05)
    # VLNEP compares intensities: a 1e-3 dB change can flip a near-tie, so a few codes move.
    assert np.abs(x_dev["vlnep"] - x_train["vlnep"]).mean() < 0.05


@pytest.mark.slow
def test_the_tiny_variant_learns_the_synthetic_score(tmp_path):
    """About 3 minutes on 2 cores. Bar: test MAE per recording below half of what predicting
    the training partition's mean scores (measured: 4.1 against 12.3, 40 epochs)."""
    from edgeaffect.train.families import load_corpus, train

    generate_avec2013(tmp_path / "corpus", per_partition=16, seconds=8.0, seed=0)
    data = load_corpus("spectrotemporal-tiny", tmp_path / "corpus", tmp_path / "cache")
    run = train("spectrotemporal-tiny", data, tmp_path / "run", seed=0, epochs=40)
    assert run.info["test"]["mae"] < 0.5 * run.info["baseline_mae_predicting_the_training_mean"]


class _Mic:
    """The demo's audio source as the adapter sees it: a ring buffer the test writes."""

    def __init__(self, sr):
        from edgeaffect.demo.sources import AudioRing

        self.ring = AudioRing(sr, seconds=4.0)


def test_the_live_demo_scores_once_a_sequence_of_segments_is_in():
    """Live: a segment joins when the next one is complete (its deltas and VLNEP codes read
    both neighbours); no score until S consecutive segments; then every new segment gives one,
    with only the new segment's extractor pass run (the others' features are kept); and the
    live segments match the same audio's offline segments."""
    from edgeaffect.families.spectrotemporal.device import SpectroAdapter, segment_inputs
    from edgeaffect.families.spectrotemporal.features import recording_features
    from edgeaffect.families.spectrotemporal.model import tiny_config
    from edgeaffect.families.spectrotemporal.vlnep import vlnep_histograms

    cfg = tiny_config().features
    norm = {"mel_mean": [0.0, 0.0, 0.0], "mel_std": [20.0, 2.0, 1.0], "vlnep_mean": [0.0] * 256,
            "vlnep_std": [1.0] * 256}
    adapter = SpectroAdapter({"features": cfg.to_dict(), "vlnep_rule": "match", "normalisation": norm}, None, ["BDI-II"])
    sr, s = 8000, cfg.segments_per_sequence
    seg = int(sr * cfg.segment_s)
    y = speech(20.0, (s + 6) * cfg.segment_s, seed=4)
    mic = _Mic(sr)
    calls, results = [], []

    def run(stage, x):
        calls.append((stage, len(next(iter(x.values())))))
        return np.zeros((len(x["segment"]), 8), np.float32) if stage == "extractor" else np.zeros((1, 1), np.float32)

    for i in range(0, y.size, seg // 4):
        mic.ring.write(y[i : i + seg // 4])
        step = adapter.live_input(None, mic, None)
        if step.x is None:
            assert step.status.startswith("collecting speech") or step.status == "ok", step.status
            continue
        results.append(step.x)
        adapter.run_stages(run, dict(step.x))
    assert len(results) >= 3  # one per new segment once S are in
    ids = [x["segment_id"] for x in results]
    assert all(len(i) == s and np.all(np.diff(i) == 1) for i in ids)
    extractor_calls = [n for stage, n in calls if stage == "extractor"]
    assert extractor_calls[0] == s and all(n == 1 for n in extractor_calls[1:])
    # The live segment k equals the offline segment k of the same audio (interior segments).
    z = recording_features(y, sr, cfg)
    offline = segment_inputs(z, vlnep_histograms(z[..., 0], "match"), norm)
    last = results[-1]
    k = last["segment_id"]
    # Same samples, same frame grid: equal to rounding (measured 0.0 pixel levels, VLNEP 1e-3).
    np.testing.assert_allclose(last["segment"][1:-1], offline["segment"][k[1:-1]], atol=1e-3)
    np.testing.assert_allclose(last["vlnep"][1:-1], offline["vlnep"][k[1:-1]], atol=0.05)


@pytest.mark.slow
def test_frozen_backbone_training_uses_cached_features_and_keeps_the_file_weights(tmp_path):
    """--backbone-weights FILE --freeze-backbone: the extractor's features are computed once
    per segment and cached in the run folder; only the transformer learns; the saved whole
    network (the two parts joined by layer name) carries the file's backbone weights unchanged."""
    from edgeaffect.families.spectrotemporal import model as M
    from edgeaffect.train.families import load_corpus, train

    weights = tmp_path / "efficientnetb3_notop.h5"
    template = M.efficientnet_template(M.tiny_config())
    template.save_weights(str(weights))
    generate_avec2013(tmp_path / "corpus", per_partition=2, seconds=4.0, seed=2)
    data = load_corpus("spectrotemporal-tiny", tmp_path / "corpus", tmp_path / "cache")
    run = train("spectrotemporal-tiny", data, tmp_path / "run", seed=0, epochs=2,
                options={"backbone_weights": weights, "freeze_backbone": True})
    assert run.info["training"].startswith("sequence model on cached frozen-backbone features")
    cache = tmp_path / "run" / "segment-features.npz"
    with np.load(cache) as z:
        assert z["features"].shape == (len(data.mel), M.spectral_width(run.config))
    for layer in template.layers:
        if layer.weights and layer.name in {x.name for x in run.model.layers}:
            for a, b in zip(layer.get_weights(), run.model.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="--freeze-backbone is not an option"):
        train("speechnet-emodb", data, tmp_path / "x", options={"freeze_backbone": True})


@pytest.mark.parametrize("change, field", [
    (lambda i: i.pop("norm"), "norm"),
    (lambda i: i["norm"].update(mel_std=[1.0, 0.0, 1.0]), "norm.mel_std"),
    (lambda i: i["norm"].update(vlnep_mean=[0.0] * 10), "norm.vlnep_mean"),
    (lambda i: i.update(model_config={"d_model": 32}), "model_config.features"),
])
def test_a_broken_run_record_is_one_line_naming_the_field(tmp_path, change, field):
    import json

    from edgeaffect.train.runs import load_run

    info = {"model": "spectrotemporal-tiny", "family": "spectrotemporal", "seed": 0,
            "model_config": {"features": {}}, "norm": {"mel_mean": [0.0] * 3, "mel_std": [1.0] * 3,
                                                       "vlnep_mean": [0.0] * 256, "vlnep_std": [1.0] * 256}}
    change(info)
    (tmp_path / "run.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match=field.replace(".", r"\.")) as e:
        load_run(tmp_path)
    assert "\n" not in str(e.value) and "retrain" in str(e.value)


def _short_recording(root, part, subject, seconds, score=20):
    """One more labelled recording in ``root``'s AVEC2013 layout, ``seconds`` long."""
    from edgeaffect.media.audio import write_wav

    (root / part / "DepressionLabels" / f"{subject}_Depression.csv").write_text(f"{score}\n")
    write_wav(root / part / "Audio" / f"{subject}_audio.wav", speech(score, seconds, 7), 8000)


def test_a_recording_shorter_than_one_sequence_is_skipped_with_one_line(tmp_path, capsys):
    """Tiny sequences are 6 x 0.48 s = 2.88 s: a 1 s recording is left out and said so; the
    others are built; the cache keeps the list (and says it again)."""
    from edgeaffect.families.spectrotemporal.dataset import build_dataset
    from edgeaffect.families.spectrotemporal.model import tiny_config

    cfg = tiny_config().features
    generate_avec2013(tmp_path / "c", per_partition=1, seconds=4.0, seed=1)
    _short_recording(tmp_path / "c", "Training", "299_1", 1.0)
    data = build_dataset(tmp_path / "c", cfg, "match", cache_dir=tmp_path / "cache")
    assert list(data.skipped) == ["299_1_audio.wav"] and "299_1_audio.wav" not in data.names
    assert len(data.names) == 3 and len(data.offsets) == 4
    err = capsys.readouterr().err
    assert "skipped 1 of 4 recordings" in err
    line, = [x for x in err.splitlines() if "299_1_audio.wav" in x]
    assert "too short" in line and "one sequence needs 6" in line
    again = build_dataset(tmp_path / "c", cfg, "match", cache_dir=tmp_path / "cache")
    assert again.skipped == data.skipped and "skipped 1 of 4" in capsys.readouterr().err


def test_nothing_usable_left_is_one_line_and_exit_2(tmp_path):
    """Every recording shorter than one sequence: one error line, exit code 2, no traceback."""
    import subprocess
    import sys

    from edgeaffect.families.spectrotemporal.dataset import build_dataset
    from edgeaffect.families.spectrotemporal.model import tiny_config

    root = tmp_path / "c"
    generate_avec2013(root, per_partition=1, seconds=1.0, seed=1)
    with pytest.raises(InputError, match="no usable recordings under .*: all 3 were skipped"):
        build_dataset(root, tiny_config().features, "match")
    generate_avec2013(tmp_path / "d", per_partition=1, seconds=4.0, seed=1)
    (tmp_path / "d" / "Testing" / "Audio" / "400_1_audio.wav").unlink()
    (tmp_path / "d" / "Testing" / "DepressionLabels" / "400_1_Depression.csv").unlink()
    _short_recording(tmp_path / "d", "Testing", "401_1", 1.0)
    with pytest.raises(InputError, match="no usable recordings left in .*Testing"):
        build_dataset(tmp_path / "d", tiny_config().features, "match")
    done = subprocess.run([sys.executable, "-m", "edgeaffect.cli", "train", "spectrotemporal-tiny", "--data", root,
                           "--out", tmp_path / "run"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "no usable recordings" in errors[0] and "Traceback" not in done.stderr


@pytest.mark.slow  # trains four epochs: about 100 s
def test_training_keeps_the_model_after_the_last_epoch(tmp_path):
    """The paper gives no stopping rule: the saved model is the last epoch's, not the best on
    Development. A large learning rate makes the Development loss move, so the last epoch is
    not its best; the saved weights reproduce the last epoch's Development loss."""
    from dataclasses import replace

    from edgeaffect.contract import get_model
    from edgeaffect.families.spectrotemporal import FAMILY
    from edgeaffect.families.spectrotemporal.train import KEPT, sequence_inputs, train_spectronet
    from edgeaffect.train.families import load_corpus
    from edgeaffect.train.runs import load_run

    generate_avec2013(tmp_path / "corpus", per_partition=2, seconds=4.0, seed=2)
    data = load_corpus("spectrotemporal-tiny", tmp_path / "corpus", tmp_path / "cache")
    spec = get_model("spectrotemporal-tiny")
    spec = replace(spec, config=replace(spec.config, learning_rate=0.05))
    run = train_spectronet(spec, data, tmp_path / "run", seed=0, epochs=4, task=FAMILY.task, deterministic=True)
    val = run.info["curves"]["val_loss"]
    assert run.info["kept"] == KEPT and run.info["epochs"] == len(val) == 4
    assert val[-1] > min(val), val  # the test tells the last epoch from the best one
    saved = load_run(tmp_path / "run")
    x, y, _ = sequence_inputs(data, data.recordings("val"), saved.info["norm"])
    assert len(y) <= spec.config.batch_size  # one batch: Keras' val_loss is the RMSE over all of them
    pred = saved.model.predict(x, verbose=0).reshape(-1)
    assert np.sqrt(np.mean((pred - y) ** 2)) == pytest.approx(val[-1], rel=1e-4)
    assert set(run.info["development"]) >= {"mae", "rmse"}


def test_the_ablation_table_shows_development_figures(tmp_path):
    """The paper compares its modules on Development (Sec. "Datasets"): the family says so,
    and the shared ablation command takes each row's Development figures, not Testing's."""
    import json

    from edgeaffect.families.spectrotemporal import FAMILY
    from edgeaffect.workflows.ablation import run_ablation, table_lines

    assert FAMILY.ablation_figures == "development"
    generate_avec2013(tmp_path / "corpus", per_partition=2, seconds=4.0, seed=3)
    doc = run_ablation("spectrotemporal-tiny", tmp_path / "corpus", tmp_path / "abl", rows="temporal", epochs=1)
    info = json.loads((tmp_path / "abl" / "temporal" / "run.json").read_text())
    row, = doc["rows"]
    assert doc["figures"] == "development" and "figures on development" in table_lines(doc)[0]
    assert (row["mae"], row["rmse"]) == (info["development"]["mae"], info["development"]["rmse"])
    assert info["development"] != info["test"]


def test_litert_targets_get_a_dynamic_range_chain_before_float():
    """The sequence's TFLite full int8 is recorded only, so every target that runs LiteRT gets
    dynamic range (``int8_fallbacks``) before its first float format: a Pi bundle has a
    quantized chain that can gate. TensorRT targets keep their list (no dynamic quantization)."""
    from edgeaffect.contract import get_family
    from edgeaffect.export.targets import bundle_formats, get_target

    family = get_family("spectrotemporal")
    host, rpi4, rpi5, orin = (get_target(k) for k in ("host", "rpi4", "rpi5", "jetson-orin-nano"))
    assert bundle_formats(family, rpi4) == ("tflite-int8", "tflite-dynamic-int8", "tflite-fp32")
    assert bundle_formats(family, rpi5) == ("tflite-int8", "tflite-dynamic-int8", "tflite-fp32")
    assert bundle_formats(family, host) == ("tflite-int8", "tflite-dynamic-int8", "tflite-fp32", "onnx-fp32",
                                            "onnx-qdq")
    assert bundle_formats(family, orin) == orin.formats
    # a family without fallbacks keeps its list
    assert bundle_formats(get_family("speechnet"), rpi4) == rpi4.formats
