"""Speech-emotion corpus readers on files laid out as the real corpora, made here."""

from pathlib import Path

import numpy as np
import pytest

from edgeaffect.families.speechnet.corpora import CORPORA, detect_corpus, find_utterances
from edgeaffect.families.speechnet.synthetic import SpeechCorpusConfig, emodb_names, generate_emodb
from edgeaffect.errors import InputError
from edgeaffect.media.audio import write_wav


def _touch_wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, 0.1 * np.sin(np.arange(1600) / 3), 16000)
    return path


def _labels(root, corpus=None):
    spec, rows = find_utterances(root, corpus)
    return spec.name, {(r.path.name, r.label, r.speaker) for r in rows}


def test_emodb_by_its_file_names(tmp_path):
    for n in ("03a01Fa.wav", "16b10Wb.wav", "08a02Lc.wav", "notes.wav", "03a01Xa.wav"):
        _touch_wav(tmp_path / "wav" / n)
    name, rows = _labels(tmp_path)
    assert name == "emodb"
    assert rows == {("03a01Fa.wav", "happy", "03"), ("16b10Wb.wav", "angry", "16"), ("08a02Lc.wav", "boredom", "08")}


def test_savee_nested_and_flattened(tmp_path):
    _touch_wav(tmp_path / "AudioData" / "DC" / "sa01.wav")
    _touch_wav(tmp_path / "AudioData" / "KL" / "su15.wav")
    _touch_wav(tmp_path / "AudioData" / "JE" / "n30.wav")
    _touch_wav(tmp_path / "flat" / "JK_a03.wav")
    _touch_wav(tmp_path / "other" / "a01.wav")  # no speaker folder, no prefix: not SAVEE
    name, rows = _labels(tmp_path)
    assert name == "savee"
    assert rows == {("sa01.wav", "sad", "DC"), ("su15.wav", "surprised", "KL"), ("n30.wav", "neutral", "JE"),
                    ("JK_a03.wav", "angry", "JK")}


def test_ravdess_audio_keeps_speech_only(tmp_path):
    _touch_wav(tmp_path / "Actor_01" / "03-01-05-01-01-01-01.wav")  # angry speech
    _touch_wav(tmp_path / "Actor_02" / "03-01-03-02-02-01-02.wav")  # happy speech
    _touch_wav(tmp_path / "Actor_02" / "03-02-03-02-02-01-02.wav")  # song: left out
    name, rows = _labels(tmp_path, "ravdess")
    assert rows == {("03-01-05-01-01-01-01.wav", "angry", "01"), ("03-01-03-02-02-01-02.wav", "happy", "02")}


def test_crema_d(tmp_path):
    _touch_wav(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    _touch_wav(tmp_path / "AudioWAV" / "1091_TIE_SAD_HI.wav")
    _touch_wav(tmp_path / "AudioWAV" / "1001_DFA_XYZ_XX.wav")
    name, rows = _labels(tmp_path)
    assert name == "crema-d"
    assert rows == {("1001_DFA_ANG_XX.wav", "angry", "1001"), ("1091_TIE_SAD_HI.wav", "sad", "1091")}


def test_iemocap_four_classes_from_emoevaluation(tmp_path):
    s1 = tmp_path / "Session1"
    for utt in ("Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses01F_impro01_F002", "Ses01F_impro01_M003",
                "Ses01F_impro01_F004"):
        _touch_wav(s1 / "sentences" / "wav" / "Ses01F_impro01" / f"{utt}.wav")
    ev = s1 / "dialog" / "EmoEvaluation"
    ev.mkdir(parents=True)
    (ev / "Ses01F_impro01.txt").write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\n"
        "[10.01 - 11.36]\tSes01F_impro01_M001\texc\t[3.5, 3.5, 3.0]\n"
        "[14.8872 - 18.0486]\tSes01F_impro01_F002\tfru\t[2.0, 3.0, 3.0]\n"
        "[19.29 - 20.88]\tSes01F_impro01_M003\tang\t[1.5, 4.0, 4.0]\n"
        "[21.0 - 22.0]\tSes01F_impro01_F004\txxx\t[2.0, 2.0, 2.0]\n")
    name, rows = _labels(tmp_path)
    assert name == "iemocap"
    assert rows == {("Ses01F_impro01_F000.wav", "neutral", "Ses01F"), ("Ses01F_impro01_M001.wav", "happy", "Ses01M"),
                    ("Ses01F_impro01_M003.wav", "angry", "Ses01M")}
    assert CORPORA["iemocap"].labels == ("angry", "happy", "neutral", "sad")


def test_unknown_layout_names_the_known_ones(tmp_path):
    _touch_wav(tmp_path / "recordings" / "take1.wav")
    assert detect_corpus(tmp_path) is None
    with pytest.raises(InputError, match="no recognised speech-emotion corpus.*EmoDB:.*IEMOCAP:") as err:
        find_utterances(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="no savee files"):
        find_utterances(tmp_path, "savee")
    with pytest.raises(InputError, match="Did you mean 'emodb'"):
        find_utterances(tmp_path, "emodbb")
    with pytest.raises(InputError, match="not found"):
        find_utterances(tmp_path / "missing")


def test_synthetic_corpus_is_emodb_by_name_and_deterministic(tmp_path):
    cfg = SpeechCorpusConfig(speakers=2, texts=1)
    files = generate_emodb(tmp_path / "a", cfg)
    assert [f.name for f in files] == emodb_names(cfg) and len(files) == 14
    name, rows = _labels(tmp_path / "a")
    assert name == "emodb" and {r[1] for r in rows} == set(CORPORA["emodb"].labels)
    again = generate_emodb(tmp_path / "b", cfg)
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(files, again))
