"""Silence and noise removal inside the participant's turns (the wav2vec2 paper's
preprocessing, edgeaffect/families/wav2vec2/vad.py): on a synthetic turn of speech-like bursts
separated by silences and low-level noise of known lengths the step keeps the bursts and drops
the rest; silence alone is refused in one line; the setting is on by default, reaches run.json
and the manifest, and the device applies it to a wav and to the microphone; off gives the
segments of before, exactly."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.daicwoz import (cut_segments, find_participants, participant_segments,
                                                  read_transcript, resample, speech_only, voiced_speech)
from edgeaffect.families.wav2vec2.vad import (StreamingVad, VadSettings, drop_short_runs, extend_runs,
                                              frame_flatness, speech_mask)

SR = 16000
# Tolerances of the synthetic turn: at least this share of the bursts' samples is kept and at
# most this share of the silences' and of the noise's (each gap keeps only the 50 ms onset
# and 150 ms hangover around its bursts: 0.2 s of 2.5-3 s, about 7 %).
BURSTS_KEPT = 0.95
GAPS_KEPT = 0.10
BACKGROUND_DBFS = -65.0  # a quiet recording's hiss, everywhere
NOISE_DBFS = -42.0  # the noise stretches: 23 dB above it, about 25 dB below the bursts


def _level(dbfs: float) -> float:
    return 10.0 ** (dbfs / 20.0)


def speech_burst(seconds: float, rng, f0: float) -> np.ndarray:
    """Syllables (14 harmonics under a pitch that moves, a Hann envelope) with 30-60 ms
    pauses between them, as in running speech: the pauses belong to the burst."""
    out, total, n = [], 0, int(seconds * SR)
    while total < n:
        length = int(SR * rng.uniform(0.12, 0.20))
        t = np.arange(length) / SR
        pitch = f0 * (1 + 0.1 * np.sin(np.pi * t / t[-1])) + rng.uniform(-20, 20) * t / t[-1]
        phase = 2 * np.pi * np.cumsum(pitch) / SR
        out += [0.3 * np.hanning(length) * sum(np.sin(k * phase) / k for k in range(1, 15)),
                np.zeros(int(SR * rng.uniform(0.03, 0.06)))]
        total += out[-2].size + out[-1].size
    return np.concatenate(out)[:n]


def synthetic_turn(seed: int = 0):
    """(audio, what each sample is: 1 burst, 0 silence, 2 noise): five bursts of 1.2-1.8 s,
    separated by 2.5-3 s of silence or of white noise at -42 dBFS, over -65 dBFS hiss."""
    rng = np.random.default_rng(seed)
    parts, kinds = [], []
    layout = [(1.5, 2.5, 0), (1.2, 3.0, 2), (1.8, 2.5, 0), (1.4, 3.0, 2), (1.6, 2.5, 0)]
    for i, (burst_s, gap_s, gap_kind) in enumerate(layout):
        burst = speech_burst(burst_s, rng, 110.0 + 25.0 * i)
        gap = np.zeros(int(gap_s * SR)) if gap_kind == 0 else _level(NOISE_DBFS) * rng.standard_normal(int(gap_s * SR))
        parts += [burst, gap]
        kinds += [np.ones(burst.size, np.int8), np.full(gap.size, gap_kind, np.int8)]
    y = np.concatenate(parts)
    y = y + _level(BACKGROUND_DBFS) * rng.standard_normal(y.size)
    return y.astype(np.float32), np.concatenate(kinds)


def _shares(kept: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    return {name: float(kept[kinds == k].mean()) for name, k in (("bursts", 1), ("silence", 0), ("noise", 2))}


# --- the step on a synthetic turn ---

def test_keeps_the_bursts_and_drops_silences_and_noise():
    y, kinds = synthetic_turn()
    shares = _shares(speech_mask(y, SR, VadSettings()), kinds)
    assert shares["bursts"] >= BURSTS_KEPT, shares
    assert shares["silence"] <= GAPS_KEPT and shares["noise"] <= GAPS_KEPT, shares


def test_only_inside_the_turns_and_joined_in_order():
    y, kinds = synthetic_turn()
    # One turn over the first two bursts and the silence between them; the rest is the interviewer's.
    stop = np.flatnonzero(np.diff(kinds.astype(int)) != 0)[2] + 1  # end of the second burst
    turns = np.asarray([[0.0, stop / SR]])
    kept = speech_mask(y, SR, VadSettings(), spans=[(0, stop)])
    assert not kept[stop:].any()
    assert kept[:stop][kinds[:stop] == 1].mean() >= BURSTS_KEPT
    joined = voiced_speech(y, SR, turns, VadSettings(), "x")
    np.testing.assert_array_equal(joined, y[kept])  # the kept runs, in order, nothing else


def test_the_microphone_block_by_block_keeps_as_much():
    """StreamingVad (the live path): 0.25 s blocks, the threshold from the levels so far; it
    keeps the bursts and about what the whole-recording step keeps."""
    y, kinds = synthetic_turn()
    vad = StreamingVad(VadSettings(), SR)
    kept = sum(vad.push(y[a:a + SR // 4]).size for a in range(0, y.size, SR // 4))
    whole = int(speech_mask(y, SR, VadSettings()).sum())
    bursts = int((kinds == 1).sum())
    assert BURSTS_KEPT * bursts <= kept <= bursts + GAPS_KEPT * int((kinds != 1).sum())
    assert abs(kept - whole) <= 0.05 * whole, (kept, whole)


def test_flatness_tells_noise_from_voice_and_smoothing_keeps_syllables():
    rng = np.random.default_rng(1)
    noise = frame_flatness(rng.standard_normal(SR).astype(np.float32), 400, 160)
    voice = frame_flatness(speech_burst(1.0, rng, 120.0).astype(np.float32), 400, 160)
    assert np.median(noise) > 0.45 and np.median(voice) < 0.05
    mask = np.asarray([0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    assert drop_short_runs(mask, 2).tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert extend_runs(drop_short_runs(mask, 2), 1, 2).astype(int).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]


def test_silence_alone_yields_nothing_and_one_line():
    rng = np.random.default_rng(2)
    noise = (_level(NOISE_DBFS) * rng.standard_normal(20 * SR)).astype(np.float32)
    for quiet in (np.zeros(20 * SR, np.float32), noise):
        assert not speech_mask(quiet, SR, VadSettings()).any()
        with pytest.raises(InputError) as err:
            participant_segments(quiet, SR, np.asarray([[1.0, 19.0]]), sample_rate=SR, segment_s=7.0, tail="drop",
                                 what="participant 300", vad=VadSettings())
        line = str(err.value)
        assert "\n" not in line and line.startswith("participant 300: 0.0 s of participant speech left after "
                                                    "silence and noise removal") and "less than one 7 s" in line


def test_settings_round_trip_and_bad_ones_are_one_line():
    s = VadSettings()
    assert VadSettings.from_dict(s.to_dict()) == s
    with pytest.raises(InputError, match="hop_ms <= frame_ms"):
        VadSettings(hop_ms=30.0)
    with pytest.raises(InputError, match="unknown voice activity setting 'margin'"):
        VadSettings.from_dict({**s.to_dict(), "margin": 3})
    with pytest.raises(InputError, match="max_flatness must be a finite number"):
        VadSettings(max_flatness=float("nan"))


def test_off_gives_the_segments_of_before_exactly():
    """vad=None: the turns as they were read before the step existed (speech_only, resample, cut)."""
    from edgeaffect.families.wav2vec2.synthetic import interview

    y, turns = interview(True, 8.0, seed=5)
    t = np.asarray(sorted((a, b) for a, b, who in turns if who == "Participant"))
    before = cut_segments(resample(speech_only(y, SR, t, "x"), SR, 16000), 2 * SR, "drop")
    off = participant_segments(y, SR, t, sample_rate=SR, segment_s=2.0, tail="drop", what="x", vad=None)
    np.testing.assert_array_equal(off, before)
    on = participant_segments(y, SR, t, sample_rate=SR, segment_s=2.0, tail="drop", what="x", vad=VadSettings())
    assert len(on) < len(off)  # a depressed voice's long pauses go


# --- the setting: defaults, run.json, the manifest and the device ---

def test_on_by_default_for_every_model_and_a_train_option_turns_it_off():
    from edgeaffect.cli._options import family_options
    from edgeaffect.contract import get_family, get_model
    from edgeaffect.families.wav2vec2.dataset import cutting
    from edgeaffect.families.wav2vec2.model import DetectorConfig, apply_vad

    for name in ("wav2vec2-daicwoz", "wav2vec2-large-daicwoz", "wav2vec2-large-cmdc", "wav2vec2-tiny"):
        assert get_model(name).config.vad == VadSettings(), name
    fam = get_family("wav2vec2")
    assert family_options(fam, ["--vad", "off"]) == {"vad": "off"}
    with pytest.raises(InputError, match="Did you mean 'off'"):
        fam.check_options({"vad": "of"})
    c = DetectorConfig()
    assert apply_vad(c, "off").vad is None and apply_vad(apply_vad(c, "off"), "on").vad == VadSettings()
    # Off, the cache key is the one caches had before the step: they are used as they are.
    assert cutting(apply_vad(c, "off")) == {"sample_rate": 16000, "segment_s": 7.0, "tail": "drop"}
    # A config recorded before the step (no "vad") had none; one recorded with it keeps it.
    old = {k: v for k, v in c.to_dict().items() if k != "vad"}
    assert DetectorConfig.from_dict(old).vad is None and DetectorConfig.from_dict(c.to_dict()) == c


def test_device_module_loads_no_framework():
    code = ("import sys, edgeaffect.families.wav2vec2.vad, edgeaffect.families.wav2vec2.device\n"
            "bad = [m for m in ('tensorflow', 'keras', 'librosa') if m in sys.modules]\n"
            "sys.exit(1 if bad else 0)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from edgeaffect.families.wav2vec2.synthetic import generate_daicwoz
    from edgeaffect.train.families import load_corpus

    root = tmp_path_factory.mktemp("vad")
    generate_daicwoz(root, scale=1, speech_s=6.0, seed=0)
    return root, load_corpus("wav2vec2-tiny", root, root / "cache")


def _reference(root, vad):
    """Each participant's segments as the reader cuts them, straight from the files."""
    from edgeaffect.media import read_audio

    _, rows = find_participants(root)
    out = []
    for p in rows:
        y, sr = read_audio(p.audio)
        out.append(participant_segments(y, sr, read_transcript(p.transcript), sample_rate=SR, segment_s=2.0,
                                        tail="drop", what=p.pid, vad=vad))
    return out


def test_the_corpus_and_the_device_cut_with_it_and_an_old_manifest_without(corpus, tmp_path):
    from edgeaffect.contract import get_family, get_model
    from edgeaffect.families.wav2vec2.device import PREPROCESSING, DetectorAdapter
    from edgeaffect.families.wav2vec2.train import DetectorRun
    from edgeaffect.schema import check

    root, data = corpus
    on = _reference(root, VadSettings())
    assert [len(s) for s in on] == list(data.counts)
    np.testing.assert_allclose(data.audio(2), on[2], atol=1.0 / 32768)  # the cache holds 16-bit samples
    spec, fam = get_model("wav2vec2-tiny"), get_family("wav2vec2")
    pre = DetectorRun(tmp_path, spec, None, {}, {}, data).preprocessing()
    assert pre["vad"] == VadSettings().to_dict()
    check(PREPROCESSING, json.loads(json.dumps(pre)), None, "preprocessing")  # as the manifest is read
    wav = fam.recordings(root)[2]
    adapter = fam.device({"preprocessing": pre, "labels": list(spec.labels)})
    np.testing.assert_allclose(adapter.segments(adapter.load(wav)), data.audio(2), atol=1e-6)
    # A bundle made before the step: no "vad" in its preprocessing -> whole turns, as trained then.
    old = fam.device({"preprocessing": {k: v for k, v in pre.items() if k != "vad"}, "labels": list(spec.labels)})
    assert old.vad is None
    np.testing.assert_array_equal(old.segments(old.load(wav)), _reference(root, None)[2])
    bad = {**pre, "vad": {**pre["vad"], "hop_ms": 40.0}}
    with pytest.raises(InputError, match="'preprocessing.vad': .*hop_ms <= frame_ms"):
        DetectorAdapter.validate(bad, {})


def test_a_run_with_vad_off_records_it_and_cuts_whole_turns(corpus, tmp_path):
    from edgeaffect.train.families import train
    from edgeaffect.train.runs import load_run

    root, data = corpus
    run = train("wav2vec2-tiny", data, tmp_path / "off", epochs=1, seed=0, options={"vad": "off"})
    info = json.loads((tmp_path / "off" / "run.json").read_text())
    assert info["vad"] == "off" and info["model_config"]["vad"] is None
    assert info["corpus_cache"] != str(data.folder)  # cut again, into its own cache
    off = _reference(root, None)
    assert list(run.data.counts) == [len(s) for s in off]
    np.testing.assert_array_equal(np.round(run.data.audio(3) * 32768), np.round(off[3] * 32768))
    again = load_run(tmp_path / "off")
    assert again.config.vad is None and again.preprocessing()["vad"] is None
    assert data.config.vad == VadSettings()  # the caller's corpus is left as it was


def test_live_segments_hold_only_the_bursts():
    """The microphone path: with the step on, the 2 s segments it makes hold about the bursts'
    audio; off, every second of the stream."""
    from edgeaffect.contract import get_family, get_model
    from edgeaffect.demo.sources import AudioRing
    from edgeaffect.families.wav2vec2.model import apply_vad
    from edgeaffect.families.wav2vec2.train import DetectorRun

    spec, fam = get_model("wav2vec2-tiny"), get_family("wav2vec2")
    y, kinds = synthetic_turn()
    bursts_s, total_s = (kinds == 1).sum() / SR, y.size / SR
    made = {}
    for choice in ("on", "off"):
        run = DetectorRun(None, replace(spec, config=apply_vad(spec.config, choice)), None, {}, {}, None)
        adapter = fam.device({"preprocessing": run.preprocessing(), "labels": list(spec.labels)})

        class Source:
            ring = AudioRing(SR)

        for a in range(0, y.size, SR // 2):  # half a second at a time, read after each
            Source.ring.write(y[a:a + SR // 2])
            adapter.live_input(None, Source, None)
        made[choice] = adapter._count  # segments cut so far
    assert made["off"] == int(total_s // 2)
    assert int(BURSTS_KEPT * bursts_s // 2) <= made["on"] <= int((bursts_s + GAPS_KEPT * (total_s - bursts_s)) // 2)
