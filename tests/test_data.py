import numpy as np
import pytest

from edgeaffect.families.aver import ravdess
from edgeaffect.data.splits import make_split
from edgeaffect.families.aver.synthetic import SyntheticConfig, generate
from edgeaffect.errors import InputError


def test_parse_ravdess_name():
    n = ravdess.parse_name("01-01-06-02-01-02-13.mp4")
    assert (n.modality, n.emotion, n.intensity, n.statement, n.repetition, n.actor) == ("01", 5, 2, 1, 2, 13)
    assert ravdess.EMOTIONS[n.emotion] == "fearful"
    assert n.filename("mp4") == "01-01-06-02-01-02-13.mp4"
    assert ravdess.parse_name("01-01-09-01-01-01-01.mp4") is None  # no emotion 09
    assert ravdess.parse_name("readme.txt") is None


def test_find_clips_av_layout(corpus):
    clips = ravdess.find_clips(corpus)
    assert len(clips) == 4 * 30
    assert {c.speaker for c in clips} == {f"Actor_0{i}" for i in range(1, 5)}
    assert all(c.video == c.audio for c in clips)
    assert np.bincount([c.label for c in clips]).tolist() == [8] + [16] * 7  # neutral has no strong intensity


def test_find_clips_split_layout_pairs_video_and_wav(tmp_path):
    generate(tmp_path, SyntheticConfig(actors=1, statements=1, repetitions=1, layout="split", duration_s=1.0))
    clips = ravdess.find_clips(tmp_path)
    assert len(clips) == 15
    assert all(c.video.name.startswith("02-") and c.audio.name.startswith("03-") for c in clips)
    assert all(c.video.name[3:-4] == c.audio.name[3:-4] for c in clips)


def test_find_clips_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ravdess.find_clips(tmp_path / "nope")
    (tmp_path / "Actor_01").mkdir()
    (tmp_path / "Actor_01" / "03-01-01-01-01-01-01.wav").write_bytes(b"x")  # audio alone is not a clip
    with pytest.raises(InputError, match="no RAVDESS audio-visual clips"):
        ravdess.find_clips(tmp_path)


def test_generation_is_deterministic(tmp_path):
    cfg = SyntheticConfig(actors=1, statements=1, repetitions=1, duration_s=1.0)
    a = generate(tmp_path / "a", cfg)[3]
    b = generate(tmp_path / "b", cfg)[3]
    from edgeaffect.media import read_audio

    np.testing.assert_array_equal(read_audio(a)[0], read_audio(b)[0])


def _toy(n_clips=60, speakers=6, seed=0):
    rng = np.random.default_rng(seed)
    clip_labels = rng.integers(0, 4, n_clips)
    labels = np.repeat(clip_labels, 6)
    clip_ids = np.repeat(np.arange(n_clips), 6)
    spk = np.repeat(np.array([f"A{i % speakers}" for i in range(n_clips)]), 6)
    return labels, clip_ids, spk


def test_paper_split_is_stratified_80_20_then_80_20():
    labels, clip_ids, spk = _toy()
    s = make_split("paper", labels, clip_ids, spk)
    n = labels.size
    assert len(set(s.train) | set(s.val) | set(s.test)) == n
    assert abs(s.test.size - 0.2 * n) <= 4 and abs(s.val.size - 0.16 * n) <= 4
    for c in np.unique(labels):  # each class holds about 20 % out
        assert abs((labels[s.test] == c).sum() - 0.2 * (labels == c).sum()) <= 1


def test_clip_and_speaker_splits_do_not_leak():
    labels, clip_ids, spk = _toy()
    s = make_split("clip", labels, clip_ids, spk)
    assert not set(clip_ids[s.test]) & set(clip_ids[s.train])
    s = make_split("speaker", labels, clip_ids, spk)
    assert not set(spk[s.test]) & (set(spk[s.train]) | set(spk[s.val]))
    assert not set(spk[s.val]) & set(spk[s.train])
    with pytest.raises(InputError):
        make_split("speaker", labels, clip_ids, np.repeat(np.array(["A", "B"] * 30), 6))
