"""A synthetic depression-interview corpus in DAIC-WOZ's layout (tests, demos): per
participant a 16 kHz interview alternating interviewer questions and participant answers,
its tab-separated transcript, and the official split files with PHQ8_Binary / PHQ8_Score.

The interviewer is one fixed voice. A participant's answers follow the label the way the
literature describes depressed speech: flatter pitch, slower syllables, longer pauses,
lower energy (each drawn around a per-class centre, so classes overlap a little).
Deterministic from the seed. Its figures are never paper results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect.families.wav2vec2.daicwoz import SPLIT_FILES

SR = 16000
SPLIT_SIZES = {"train": 4, "val": 2, "test": 2}  # participants per split for scale 1
HEADER = "Participant_ID,PHQ8_Binary,PHQ8_Score,Gender"


def voice(seconds: float, rng: np.random.Generator, *, f0: float, span: float, syllable_s: float, pause_s: float,
          gain: float) -> np.ndarray:
    """A voiced syllable train: harmonics under a moving pitch, pauses between syllables."""
    out, total, n = [], 0, int(seconds * SR)
    while total < n:
        length = max(32, int(SR * syllable_s * rng.uniform(0.8, 1.2)))
        t = np.arange(length) / SR
        pitch = f0 * (1 + rng.uniform(-0.05, 0.05)) + span * rng.uniform(-1, 1) * np.sin(np.pi * t / t[-1])
        phase = 2 * np.pi * np.cumsum(pitch) / SR
        formant = rng.uniform(2.0, 5.0)
        voiced = sum(np.sin(k * phase) / (k * (1 + (k / formant - 2) ** 2 / 4)) for k in range(1, 20))
        out.append(gain * np.hanning(length) * voiced)
        out.append(np.zeros(int(SR * pause_s * rng.uniform(0.5, 1.5))))
        total += out[-2].size + out[-1].size
    return np.concatenate(out)[:n]


def answer(depressed: bool, seconds: float, rng: np.random.Generator, f0: float) -> np.ndarray:
    d = float(np.clip(rng.normal(0.75 if depressed else 0.25, 0.1), 0.0, 1.0))
    return voice(seconds, rng, f0=f0, span=70.0 * (1 - d) + 5.0, syllable_s=0.12 + 0.16 * d,
                 pause_s=0.04 + 0.30 * d, gain=0.35 * (1 - 0.6 * d))


def interview(depressed: bool, speech_s: float, seed: int) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """(audio, turns as (start, stop, speaker)) with about ``speech_s`` of participant speech."""
    rng = np.random.default_rng(seed)
    f0 = rng.uniform(95, 200)
    parts, turns, t, said = [], [], 0.0, 0.0
    while said < speech_s:
        for who, seconds in (("Ellie", rng.uniform(1.0, 2.0)), ("Participant", rng.uniform(2.0, 4.0))):
            gap = np.zeros(int(SR * rng.uniform(0.3, 0.6)))
            if who == "Ellie":
                y = voice(seconds, rng, f0=220.0, span=40.0, syllable_s=0.15, pause_s=0.05, gain=0.3)
            else:
                y = answer(depressed, seconds, rng, f0)
                said += seconds
            parts += [gap, y]
            t += gap.size / SR
            turns.append((round(t, 3), round(t + y.size / SR, 3), who))
            t += y.size / SR
    parts.append(np.zeros(int(SR * 0.5)))
    y = np.concatenate(parts)
    return (y + 0.002 * rng.standard_normal(y.size)).astype(np.float32), turns


def generate_daicwoz(folder: str | Path, *, scale: int = 1, speech_s: float = 8.0, seed: int = 0) -> list[Path]:
    """4 / 2 / 2 participants per ``scale`` in train / dev / test, half of each depressed,
    with ids from 300 as DAIC-WOZ's. The test split file carries labels here (the released
    DAIC-WOZ one does not) so that a synthetic run can be scored on it too."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.media.audio import write_wav

    folder, rng, files, pid = Path(folder), np.random.default_rng(seed), [], 300
    folder.mkdir(parents=True, exist_ok=True)
    from edgeaffect.data.synthetic import mark

    mark(folder, "daicwoz")
    for part, per in SPLIT_SIZES.items():
        n = per * scale
        labels = rng.permutation(np.arange(n) % 2)
        rows = [HEADER]
        for y in labels:
            score = int(rng.integers(10, 24)) if y else int(rng.integers(0, 10))
            rows.append(f"{pid},{int(y)},{score},{int(rng.integers(0, 2))}")
            sub = folder / f"{pid}_P"
            sub.mkdir(exist_ok=True)
            wav, tsv = sub / f"{pid}_AUDIO.wav", sub / f"{pid}_TRANSCRIPT.csv"
            if not wav.exists() or not tsv.exists():
                audio, turns = interview(bool(y), speech_s, seed * 10_000 + pid)
                write_wav(wav, audio, SR)
                atomic_write_text(tsv, "start_time\tstop_time\tspeaker\tvalue\n" + "".join(
                    f"{a:.3f}\t{b:.3f}\t{who}\t{'question' if who == 'Ellie' else 'answer'}\n" for a, b, who in turns))
            files.append(wav)
            pid += 1
        atomic_write_text(folder / SPLIT_FILES["daicwoz"][part], "\n".join(rows) + "\n")
    return files
