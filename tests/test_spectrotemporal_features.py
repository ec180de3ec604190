"""The spectrotemporal family's features: NumPy (device) against librosa (reference), the
segmentation, bad input, and VLNEP (Eqs. 3-7) against hand-computed codes."""

import shutil
import subprocess

import numpy as np
import pytest

from edgeaffect.errors import MediaError
from edgeaffect.families.spectrotemporal.features import (SpectroConfig, delta, log_mel, recording_features,
                                                          sequence_starts, three_channel)
from edgeaffect.families.spectrotemporal.vlnep import lnep, vlnep_codes, vlnep_histograms

CFG = SpectroConfig()


def speech_like(seconds=2.0, seed=0, sr=8000):
    """A gliding harmonic voice with a syllable envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * env * y + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def _close(a, b):
    # Tolerance: the log-Mel in dB within 1e-3 dB (float32 FFTs differ by rounding, and the
    # log magnifies it only where a band's power is near the 1e-10 floor); deltas likewise.
    np.testing.assert_allclose(a, b, atol=1e-3, rtol=0)


def test_numpy_log_mel_matches_librosa_on_speech_like_signals():
    from edgeaffect.families.spectrotemporal.features_librosa import three_channel_librosa

    for seed in range(3):
        y = speech_like(seed=seed)
        ours = three_channel(log_mel(y, CFG), CFG.delta_n)
        ref = three_channel_librosa(y, CFG)
        assert ours.shape == ref.shape == (1 + y.size // CFG.hop_length, 80, 3)
        _close(ours, ref)


def test_numpy_log_mel_matches_librosa_on_real_speech(tmp_path):
    from edgeaffect.families.spectrotemporal.features import resample
    from edgeaffect.families.spectrotemporal.features_librosa import three_channel_librosa
    from edgeaffect.media import read_audio

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): no real speech to test on")
    wav = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Der Nordwind und die Sonne stritten sich einmal."], check=True)
    y, sr = read_audio(wav)
    y = resample(y, sr, 8000)
    _close(three_channel(log_mel(y, CFG), CFG.delta_n), three_channel_librosa(y, CFG))


def test_every_mel_filter_holds_a_bin():
    from edgeaffect.features.mfcc import mel_filterbank

    assert (mel_filterbank(8000, CFG.n_fft, 80, 0.0, 4000.0).sum(axis=1) > 0).all()


def test_delta_is_eq_1_by_hand():
    x = np.arange(10, dtype=np.float32)[:, None] ** 2  # x_i = i^2
    d = delta(x, 3)
    # Interior: sum_n n((i+n)^2 - (i-n)^2) / (2 * 14) = sum_n 4 i n^2 / 28 = 2i.
    np.testing.assert_allclose(d[3:7, 0], 2 * np.arange(3, 7), atol=1e-5)
    # First frame, edges repeated: (1*(1-0) + 2*(4-0) + 3*(9-0)) / 28.
    assert d[0, 0] == pytest.approx((1 + 8 + 27) / 28)


def test_segments_and_sequences():
    cfg = SpectroConfig(segment_s=0.5, segments_per_sequence=4, sequence_hop=2)
    z = recording_features(speech_like(3.3), 8000, cfg)
    assert z.shape == (6, 50, 80, 3)
    assert sequence_starts(6, cfg).tolist() == [0, 2]
    assert sequence_starts(7, cfg).tolist() == [0, 2, 3]  # the last sequence ends on the last segment


def test_bad_audio_is_refused_in_one_line():
    cfg = SpectroConfig(segment_s=0.5, segments_per_sequence=4)
    with pytest.raises(MediaError, match="too short: 1.0 s gives 2 segments"):
        recording_features(speech_like(1.0), 8000, cfg)
    with pytest.raises(MediaError, match="silent"):
        recording_features(np.zeros(40000, np.float32), 8000, cfg)
    with pytest.raises(MediaError, match="sampled at 4000 Hz"):
        recording_features(speech_like(3.0, sr=4000), 4000, cfg)


# --- VLNEP by hand. Neighbour order: E, NE, N, NW, W, SW, S, SE (bit 0 .. bit 7). ---

def test_lnep_of_a_flat_image_is_all_ones():
    j = np.zeros((3, 3))
    # Every comparison a <= b holds, so all three signs match: every bit is 1.
    assert lnep(j, j).tolist() == [[255]]
    # XOR of three ones is one as well.
    assert lnep(j, j, "xor").tolist() == [[255]]


def test_lnep_by_hand_on_a_3x3_patch():
    j = np.array([[1, 2, 3], [8, 0, 4], [7, 6, 5]], float)  # J_c = 0
    # Neighbours in order E, NE, N, NW, W, SW, S, SE: 4, 3, 2, 1, 8, 7, 6, 5.
    ring = [4, 3, 2, 1, 8, 7, 6, 5]
    x = np.full((3, 3), 3.0)  # every X_i = 3
    bits_match, bits_xor = [], []
    for i in range(8):
        s = [ring[(i + 1) % 8] <= 3, ring[(i - 1) % 8] <= 3, 0 <= 3]
        bits_match.append(int(s[0] == s[1] == s[2]))
        bits_xor.append(int(s[0] ^ s[1] ^ s[2]))
    want = sum(b << i for i, b in enumerate(bits_match))
    # By hand: s(J_c, X_i) is always 1, so bit i is 1 only if J_{i+1} <= 3 and J_{i-1} <= 3:
    # only i = 2 (N; its neighbours NW = 1 and NE = 3) qualifies -> code 2^2.
    assert want == 4 and lnep(x, j).item() == 4
    assert lnep(x, j, "xor").item() == sum(b << i for i, b in enumerate(bits_xor))


def test_vlnep_takes_the_max_of_three_frames_and_histograms_sum_to_one():
    rng = np.random.default_rng(0)
    i, j, k = rng.standard_normal((3, 4, 5))
    codes = vlnep_codes(i, j, k)
    assert codes.shape == (2, 3) and codes.dtype == np.int64
    np.testing.assert_array_equal(codes, np.maximum.reduce([lnep(i, j), lnep(j, j), lnep(k, j)]))
    h = vlnep_histograms(rng.standard_normal((5, 10, 12)))
    assert h.shape == (5, 256)
    np.testing.assert_allclose(h.sum(axis=1), 1.0, atol=1e-6)
    # Segment 0's "previous" is itself: its codes equal those computed with (s0, s0, s1).
    s = rng.standard_normal((2, 6, 6))
    h0 = np.bincount(vlnep_codes(s[0], s[0], s[1]).ravel(), minlength=256) / 16
    np.testing.assert_allclose(vlnep_histograms(s)[0], h0)
