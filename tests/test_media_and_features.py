import numpy as np
import pytest

from edgeaffect.errors import InputError, MediaError
from edgeaffect.families.aver import faces
from edgeaffect.families.aver.faces import NoFaceError
from edgeaffect.families.aver.features import AverFeatureConfig, audio_features, face_features
from edgeaffect.media import read_audio, read_frames_at, video_info, write_wav
from tests.conftest import speech_like


def test_wav_roundtrip_16bit(tmp_path):
    y = speech_like(16000, 0.5)
    write_wav(tmp_path / "a.wav", y, 16000)
    z, sr = read_audio(tmp_path / "a.wav")
    assert sr == 16000 and z.shape == y.shape
    np.testing.assert_allclose(z, y, atol=1 / 32768 + 1e-7)  # one LSB of 16-bit PCM


def test_wav_matches_librosa_load(tmp_path):
    import librosa

    write_wav(tmp_path / "a.wav", speech_like(22050, 0.3), 22050)
    ours, sr = read_audio(tmp_path / "a.wav")
    ref, sr_ref = librosa.load(tmp_path / "a.wav", sr=None)
    assert sr == sr_ref
    np.testing.assert_allclose(ours, ref, atol=1e-7)


def test_audio_inside_mp4_is_decoded(corpus):
    clip = sorted(corpus.rglob("*.mp4"))[0]
    y, sr = read_audio(clip)
    assert sr == 16000
    assert abs(y.size / sr - 2.0) < 0.15  # AAC adds a little priming / padding
    assert 0.05 < np.abs(y).max() <= 1.0


@pytest.mark.parametrize("content,error", [(b"", MediaError), (b"RIFF\x00\x00\x00\x00WAVEjunk", MediaError),
                                           (b"not audio at all" * 10, MediaError)])
def test_bad_audio_files(tmp_path, content, error):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(error):
        read_audio(p)


def test_missing_file():
    with pytest.raises(InputError, match="not found"):
        read_audio("/no/such/file.wav")


def test_frames_at_sixths(corpus):
    clip = sorted(corpus.rglob("*.mp4"))[0]
    info = video_info(clip)
    assert info.frames == 60 and info.width == 320
    frames = read_frames_at(clip, 6)
    assert len(frames) == 6 and frames[0].shape == (240, 320, 3)


def test_corrupt_video(tmp_path):
    p = tmp_path / "bad.mp4"
    p.write_bytes(b"\x00" * 1000)
    with pytest.raises(MediaError):
        read_frames_at(p, 6)


def test_real_face_photo_is_detected():
    skimage_data = pytest.importorskip("skimage.data")
    img = skimage_data.astronaut()[:, :, ::-1].copy()  # RGB -> BGR
    box = faces.detect_face(faces.to_gray(img))
    assert box is not None
    x, y, w, h = box
    # The astronaut's face is around x=177, y=66, 95x95 px.
    assert abs(x - 177) < 30 and abs(y - 66) < 30 and 60 < w < 140


def test_face_features_shape_and_no_face():
    skimage_data = pytest.importorskip("skimage.data")
    img = skimage_data.astronaut()[:, :, ::-1].copy()
    crops = face_features([img] * 6)
    assert crops.shape == (6, 64, 64) and crops.dtype == np.uint8
    blank = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(NoFaceError):
        face_features([blank] * 6)
    # One frame without a face borrows the nearest frame's box.
    assert face_features([img] * 5 + [np.zeros_like(img)]).shape == (6, 64, 64)
    with pytest.raises(NoFaceError):
        face_features([img] * 5 + [np.zeros_like(img)], AverFeatureConfig(reuse_nearest_face=False))


def test_audio_too_short_and_silent():
    with pytest.raises(MediaError, match="too short"):
        audio_features(speech_like(16000, 0.5), 16000)  # 6 segments of 1333 < 2048 samples
    with pytest.raises(MediaError, match="silence"):
        audio_features(np.zeros(32000, np.float32), 16000)
    assert audio_features(speech_like(16000, 1.0), 16000).shape == (6, 40)
