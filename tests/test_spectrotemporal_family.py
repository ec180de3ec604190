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
    from edgeaffect.families.spectrotemporal.device import SpectroAdapter
    from edgeaffect.families.spectrotemporal.model import tiny_config
    from edgeaffect.families.spectrotemporal.train import normalisation, sequence_inputs
    from edgeaffect.media import read_audio

    cfg = tiny_config()
    generate_avec2013(tmp_path / "c", per_partition=1, seconds=4.0, seed=1)
    data = build_dataset(tmp_path / "c", cfg.features, cfg.vlnep_rule)
    norm = normalisation(data)
    x_train, _, owner = sequence_inputs(data, [0], norm)
    adapter = SpectroAdapter({"features": cfg.features.to_dict(), "vlnep_rule": "match", "normalisation": norm},
                             None, ["BDI-II"])
    x_dev = adapter.inputs(read_audio(tmp_path / "c" / "Training" / "Audio" / "200_1_audio.wav"))
    assert x_dev["spectrogram"].shape == x_train["spectrogram"].shape
    # Pixels: 1e-3 dB / std * 42.5 is far below 0.05 of a pixel level.
    np.testing.assert_allclose(x_dev["spectrogram"], x_train["spectrogram"], atol=0.05)
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
