"""The audio people hand over: WAV as int16 / int24 / int32 / float32 (what sounddevice and
most recorders write) / 8-bit, FLAC, OGG (Vorbis, Opus), MP3. Each is written here with
soundfile from one signal and must read back as that signal, scaled as librosa scales it.

Tolerances: lossless formats within one step of their sample format (int16: 1/32768,
int24: 1/2**23, int32 and float: float32 rounding, 8-bit: 1/128); lossy formats the same
length, no delay, and a signal-to-error ratio of at least 12 dB (measured here: OGG
Vorbis 21, MP3 21, Opus 17 dB at the encoders' default quality)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeaffect.errors import MediaError
from edgeaffect.media import audio as audio_module
from edgeaffect.media import read_audio
from tests.conftest import speech_like

sf = pytest.importorskip("soundfile")
SR = 16000

LOSSLESS = [  # (file name, soundfile keywords, largest error allowed)
    ("int16.wav", dict(subtype="PCM_16"), 1 / 32768),
    ("int24.wav", dict(subtype="PCM_24"), 1 / 2**23),
    ("int32.wav", dict(subtype="PCM_32"), 1e-7),
    ("float32.wav", dict(subtype="FLOAT"), 0.0),
    ("uint8.wav", dict(subtype="PCM_U8"), 1 / 128),
    ("int16.flac", dict(subtype="PCM_16"), 1 / 32768),
    ("int24.flac", dict(subtype="PCM_24"), 1 / 2**23),
]
LOSSY = [
    ("vorbis.ogg", dict(format="OGG", subtype="VORBIS")),
    ("opus.ogg", dict(format="OGG", subtype="OPUS")),
    ("speech.mp3", dict(format="MP3", subtype="MPEG_LAYER_III")),
]


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return (0.8 * speech_like(SR, 1.0)).astype(np.float32)


def _write(tmp_path, name, y, **kw):
    path = tmp_path / name
    try:
        sf.write(str(path), y, SR, **kw)
    except (sf.LibsndfileError, ValueError, TypeError) as exc:  # an old libsndfile without MP3 / Opus
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {name}: {exc}")
    return path


def snr_db(y: np.ndarray, z: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(y**2) / max(np.sum((z - y) ** 2), 1e-30)))


@pytest.mark.parametrize("name,kw,tol", LOSSLESS, ids=[c[0] for c in LOSSLESS])
def test_lossless_audio_reads_back_as_written(tmp_path, signal, name, kw, tol):
    z, sr = read_audio(_write(tmp_path, name, signal, **kw))
    assert sr == SR and z.dtype == np.float32 and z.shape == signal.shape
    assert np.abs(z - signal).max() <= tol + 1e-9


@pytest.mark.parametrize("name,kw", LOSSY, ids=[c[0] for c in LOSSY])
def test_lossy_audio_reads_back_close_to_the_signal(tmp_path, signal, name, kw):
    z, sr = read_audio(_write(tmp_path, name, signal, **kw))
    assert sr == SR and z.dtype == np.float32 and z.shape == signal.shape
    assert snr_db(signal, z) >= 12.0


def test_float_wav_is_kept_as_stored_and_matches_librosa(tmp_path, signal):
    librosa = pytest.importorskip("librosa")
    loud = np.concatenate([signal, [1.5, -1.25]]).astype(np.float32)  # float WAV may exceed full scale
    path = _write(tmp_path, "loud.wav", loud, subtype="FLOAT")
    z, _ = read_audio(path)
    np.testing.assert_array_equal(z, loud)
    np.testing.assert_array_equal(z, librosa.load(path, sr=None)[0])
    for name, kw, _ in LOSSLESS[:3]:
        p = _write(tmp_path, name, signal, **kw)
        np.testing.assert_array_equal(read_audio(p)[0], librosa.load(p, sr=None)[0])


def test_stereo_is_mixed_to_mono(tmp_path, signal):
    stereo = np.stack([signal, 0.5 * signal], axis=1)
    z, _ = read_audio(_write(tmp_path, "stereo.wav", stereo, subtype="FLOAT"))
    np.testing.assert_allclose(z, 0.75 * signal, atol=1e-7)


def test_without_soundfile_pcm_wav_still_reads_and_other_formats_go_through_pyav(tmp_path, signal, monkeypatch):
    pytest.importorskip("av")
    wav = _write(tmp_path, "int16.wav", signal, subtype="PCM_16")
    flac = _write(tmp_path, "int16.flac", signal, subtype="PCM_16")
    f32 = _write(tmp_path, "float32.wav", signal, subtype="FLOAT")
    monkeypatch.setattr(audio_module, "_soundfile", lambda: None)
    assert np.abs(read_audio(wav)[0] - signal).max() <= 1 / 32768
    z, sr = read_audio(flac)  # PyAV decodes FLAC to int16: scaled by 32768, as librosa does
    assert sr == SR and np.abs(z - signal).max() <= 1 / 32768 + 1e-9
    with pytest.raises(MediaError, match="float WAV needs soundfile"):
        read_audio(f32)


def test_non_finite_float_wav_is_refused(tmp_path, signal):
    bad = signal.copy()
    bad[100] = np.nan
    with pytest.raises(MediaError, match="NaN or infinite"):
        read_audio(_write(tmp_path, "nan.wav", bad, subtype="FLOAT"))


@pytest.mark.parametrize("name,content", [("cut.flac", b"fLaC\x00\x00\x00\x22" + b"\x00" * 20),
                                          ("cut.ogg", b"OggS" + b"\x00" * 40), ("cut.mp3", b"ID3\x04" + b"\x00" * 40),
                                          ("cut.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ")])
def test_corrupt_compressed_audio_is_a_media_error(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(MediaError):
        read_audio(p)
