"""The 107-dim fusion features: NumPy (device) against librosa (training), the composition
rule, and the one-line refusals for unusable audio."""

import numpy as np
import pytest

from edgeaffect.errors import InputError, MediaError
from edgeaffect.families.speechnet.features import (DEFAULT_COMPOSITION, FUSION_DIM, FusionConfig, fusion_features, model_input,
                                        resample)
from edgeaffect.families.speechnet.features_librosa import fusion_features_librosa
from tests.conftest import speech_like

# Stated tolerance: elementwise |numpy - librosa| <= 1e-3 + 1e-4 * |librosa| (float64 here,
# float32 in librosa; measured max relative difference about 2e-6 on speech).
RTOL, ATOL = 1e-4, 1e-3


def _signals():
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * 44100)) / 44100
    return {
        "speech 16 kHz": (speech_like(16000, 2.5, seed=1), 16000),
        "speech 22.05 kHz (resampled)": (speech_like(22050, 2.0, seed=2), 22050),
        "noise 16 kHz": ((0.1 * rng.standard_normal(24000)).astype(np.float32), 16000),
        "sweep 44.1 kHz (resampled)": ((0.3 * np.sin(2 * np.pi * (100 + 400 * t) * t)).astype(np.float32), 44100),
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_numpy_matches_librosa_within_the_stated_tolerance(name):
    y, sr = _signals()[name]
    cfg = FusionConfig()
    ref = fusion_features_librosa(y, sr, cfg)
    ours = fusion_features(y, sr, cfg)
    assert ours.shape == ref.shape and ours.shape[1] == FUSION_DIM
    bad = ~np.isclose(ours, ref, rtol=RTOL, atol=ATOL)
    names = cfg.names()
    worst = np.unravel_index(np.argmax(np.abs(ours - ref)), ref.shape)
    assert not bad.any(), f"{bad.sum()} values off, worst {names[worst[1]]}: {ours[worst]} vs {ref[worst]}"


def test_default_composition_sums_to_107_and_names_every_dimension():
    cfg = FusionConfig()
    assert sum(size for _, size in DEFAULT_COMPOSITION) == 107 == cfg.dim
    names = cfg.names()
    assert len(names) == 107 and len(set(names)) == 107
    assert names[0] == "mfcc0" and names[40] == "mfcc_delta0" and names[-1] == "pitch"


def test_a_composition_that_does_not_sum_to_107_is_refused():
    with pytest.raises(ValueError, match="sums to 110"):
        FusionConfig(composition=(("mfcc", 40), ("mfcc_delta", 40), ("chroma", 12), ("contrast", 7), ("tonnetz", 6),
                                  ("zcr", 1), ("centroid", 1), ("rolloff", 1), ("bandwidth", 1), ("pitch", 1)))
    with pytest.raises(ValueError, match="chroma"):
        FusionConfig(composition=(("mfcc", 60), ("mfcc_delta", 36), ("chroma", 11)))
    alt = FusionConfig(composition=(("mfcc", 40), ("mfcc_delta", 40), ("chroma", 12), ("contrast", 7),
                                    ("tonnetz", 6), ("zcr", 1), ("pitch", 1)))  # MODELS.md's example
    assert alt.dim == 107
    y = speech_like(16000, 1.0)
    np.testing.assert_allclose(fusion_features(y, 16000, alt), fusion_features_librosa(y, 16000, alt),
                               rtol=RTOL, atol=ATOL)


def test_config_round_trips_through_the_manifest_dict():
    cfg = FusionConfig()
    assert FusionConfig.from_dict(cfg.to_dict()) == cfg


def test_delta_is_the_papers_eq_17():
    y = speech_like(16000, 1.0)
    f = fusion_features(y, 16000)
    mfcc, delta = f[:, :40], f[:, 40:77]
    np.testing.assert_allclose(delta[1:-1], mfcc[2:, :37] - mfcc[:-2, :37], atol=1e-4)
    np.testing.assert_allclose(delta[0], mfcc[1, :37] - mfcc[0, :37], atol=1e-4)  # edge repeated


def test_resampling_keeps_a_tone_at_its_frequency():
    sr_in, f0 = 44100, 1000.0
    y = np.sin(2 * np.pi * f0 * np.arange(sr_in) / sr_in).astype(np.float32)
    out = resample(y, sr_in, 16000)
    assert out.size == 16000
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / out.size
    assert abs(peak_hz - f0) <= 1.0
    assert abs(np.abs(out).max() - 1.0) < 0.02


@pytest.mark.parametrize("signal, message", [
    (np.zeros(16000, np.float32), r"silent \(digital silence"),
    (np.full(16000, 1e-5, np.float32), "silent"),
    (np.sign(np.sin(np.arange(16000) / 5)).astype(np.float32), "clipped: "),
    (np.ones(500, np.float32) * 0.1, "shorter than one frame"),
    (np.array([0.1, np.nan] * 8000, np.float32), "NaN"),
])
def test_unusable_audio_gets_one_clear_line(signal, message):
    for fn in (fusion_features, fusion_features_librosa):
        with pytest.raises(MediaError, match=message) as err:
            fn(signal, 16000)
        assert "\n" not in str(err.value)


def test_nan_after_standardisation_is_refused():
    feats = fusion_features(speech_like(16000, 1.0), 16000)
    with pytest.raises(InputError, match="NaN or infinite after standardisation"):
        model_input(feats, feats.mean(axis=0), np.zeros(FUSION_DIM, np.float32), 48)
    x = model_input(feats, feats.mean(axis=0), feats.std(axis=0) + 1e-6, 48)
    assert x.shape == (1, 48, FUSION_DIM) and np.isfinite(x).all()
