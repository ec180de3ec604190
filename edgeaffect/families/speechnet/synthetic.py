"""A synthetic speech-emotion corpus in EmoDB's own naming (``wav/03a01Fa.wav``).

Speech-like audio from the same voice model as the audio-visual corpus
(``synthetic.synth_speech``): prosody (pitch, pitch range, rate, loudness, spectral
tilt, jitter) depends on the emotion, voice and formants on the speaker, length on the
text. Deterministic from a seed. It exercises the real EmoDB reader and the feature
pipeline; no accuracy on it is a paper result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgeaffect.families.speechnet.corpora import EMODB_LETTERS
from edgeaffect.families.aver.synthetic import _VOICE, SyntheticConfig, _actor, synth_speech
from edgeaffect.media.audio import write_wav

EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
EMODB_TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
# Boredom is not in RAVDESS's voice table: low, flat, slow, quiet.
VOICES = {**_VOICE, "boredom": (0.90, 0.6, 2.6, 0.28, 1.6, 0.003, -0.2)}


@dataclass(frozen=True)
class SpeechCorpusConfig:
    speakers: int = 4
    texts: int = 4
    versions: int = 1
    min_seconds: float = 1.2
    max_seconds: float = 3.0
    sample_rate: int = 16000  # EmoDB's own rate
    seed: int = 0


def emodb_names(cfg: SpeechCorpusConfig) -> list[str]:
    if cfg.speakers > len(EMODB_SPEAKERS) or cfg.texts > len(EMODB_TEXTS):
        raise ValueError(f"EmoDB has {len(EMODB_SPEAKERS)} speakers and {len(EMODB_TEXTS)} texts")
    return [f"{s}{t}{letter}{'abcdefgh'[v]}.wav" for s in EMODB_SPEAKERS[: cfg.speakers]
            for t in EMODB_TEXTS[: cfg.texts] for letter in EMODB_LETTERS for v in range(cfg.versions)]


def generate_emodb(root: str | Path, cfg: SpeechCorpusConfig = SpeechCorpusConfig(), progress=None) -> list[Path]:
    """Write the corpus under ``root/wav``; files already there are kept (resumable)."""
    from edgeaffect.data.synthetic import mark

    mark(root, "emodb")
    folder = Path(root) / "wav"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, name in enumerate(emodb_names(cfg)):
        path = folder / name
        if not path.exists():
            speaker, text, letter = EMODB_SPEAKERS.index(name[:2]), EMODB_TEXTS.index(name[2:5]), name[5]
            rng = np.random.default_rng([cfg.seed, speaker, text, ord(letter), ord(name[6])])
            seconds = cfg.min_seconds + (cfg.max_seconds - cfg.min_seconds) * ((text * 0.37) % 1.0)
            voice_cfg = replace(SyntheticConfig(seed=cfg.seed, sample_rate=cfg.sample_rate), duration_s=seconds)
            # EmoDB's speakers 03, 10, 11, 12, 15 are male: odd actors in the voice model.
            actor = _actor(2 * speaker + (1 if name[:2] in ("03", "10", "11", "12", "15") else 0), voice_cfg)
            y = synth_speech(EMODB_LETTERS[letter], 1, actor, voice_cfg, rng, VOICES)
            write_wav(path, y, cfg.sample_rate)
        written.append(path)
        if progress:
            progress(i + 1)
    return written
