"""The NumPy MFCC (device side) against librosa (the reference)."""

import numpy as np
import pytest

from edgeaffect.features import mfcc as mfcc_np
from edgeaffect.features import mfcc_librosa
from edgeaffect.families.aver.features import audio_features
from edgeaffect.media import read_audio
from tests.conftest import speech_like

# Measured max |diff| is about 2e-5 on coefficients of magnitude ~100-500 (float32 STFT
# in librosa against float64 here); the bound leaves 50x headroom.
ATOL = 1e-3


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_mfcc_matches_librosa_on_speech_like_signals(sr):
    y = speech_like(sr, 0.7, seed=sr)
    a = mfcc_np.mfcc(y, sr)
    b = mfcc_librosa.mfcc(y, sr)
    assert a.shape == b.shape == (40, 1 + y.size // 512)
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_mfcc_matches_librosa_on_chirp_and_short_segment():
    sr = 16000
    t = np.arange(3000) / sr  # shorter than two FFT windows
    y = (0.5 * np.sin(2 * np.pi * (100 + 3000 * t) * t)).astype(np.float32)
    np.testing.assert_allclose(mfcc_np.mfcc(y, sr), mfcc_librosa.mfcc(y, sr), atol=ATOL, rtol=0)


def test_segment_features_match_librosa_on_a_synthetic_clip(corpus):
    clip = sorted(corpus.rglob("*.mp4"))[5]
    y, sr = read_audio(clip)
    a = audio_features(y, sr)
    b = audio_features(y, sr, mfcc_fn=mfcc_librosa.mfcc)
    assert a.shape == (6, 40)
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)


def test_mel_filterbank_matches_librosa():
    import librosa

    np.testing.assert_allclose(mfcc_np.mel_filterbank(16000, 2048, 128, 0.0, 8000.0),
                               librosa.filters.mel(sr=16000, n_fft=2048), atol=1e-6, rtol=1e-4)
