"""A synthetic depression corpus in the AVEC2013 layout (tests, demos): each recording is
a voiced syllable train whose prosody follows its BDI-II score the way the literature
describes depressed speech: flatter pitch, slower rate, longer pauses, lower energy as
the score rises. Deterministic from the seed. Its figures are never paper results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect.families.spectrotemporal.avec import PARTITIONS

SR = 8000


def speech(score: float, seconds: float, seed: int) -> np.ndarray:
    """One recording for a BDI-II ``score`` in [0, 63]."""
    rng = np.random.default_rng(seed)
    d = score / 63.0
    f0_mean = rng.uniform(100, 180)
    f0_span = 60.0 * (1 - d) + 5.0  # Hz of pitch movement per syllable: flatter when depressed
    syllable_s = 0.16 + 0.14 * d  # slower
    pause_s = 0.05 + 0.35 * d  # longer pauses
    gain = 0.3 * (1 - 0.7 * d)  # quieter
    out, n = [], int(seconds * SR)
    total = 0
    while total < n:
        length = int(SR * syllable_s * rng.uniform(0.8, 1.2))
        t = np.arange(length) / SR
        f0 = f0_mean + f0_span * rng.uniform(-1, 1) * np.sin(np.pi * t / t[-1])
        phase = 2 * np.pi * np.cumsum(f0) / SR
        formant = rng.uniform(1.0, 3.0)
        voiced = sum(np.sin(k * phase) / (k * (1 + (k / formant - 3) ** 2 / 4)) for k in range(1, 16))
        out.append(gain * np.hanning(length) * voiced)
        out.append(np.zeros(int(SR * pause_s * rng.uniform(0.5, 1.5))))
        total += out[-2].size + out[-1].size
    y = np.concatenate(out)[:n]
    return (y + 0.002 * rng.standard_normal(n)).astype(np.float32)


def generate_avec2013(folder: str | Path, *, per_partition: int, seconds: float, seed: int) -> list[Path]:
    """``per_partition`` recordings in each of Training / Development / Testing, scores drawn
    uniformly over 0-45 (AVEC's range in practice)."""
    from edgeaffect.io import atomic_write_text
    from edgeaffect.media.audio import write_wav

    from edgeaffect.data.synthetic import mark

    folder, rng, files = Path(folder), np.random.default_rng(seed), []
    mark(folder, "avec2013")
    for pi, part in enumerate(PARTITIONS):
        for i in range(per_partition):
            subject = f"{200 + pi * 100 + i}_1"
            score = float(rng.integers(0, 46))
            wav = folder / part / "Audio" / f"{subject}_audio.wav"
            label = folder / part / "DepressionLabels" / f"{subject}_Depression.csv"
            wav.parent.mkdir(parents=True, exist_ok=True)
            if not wav.exists():
                write_wav(wav, speech(score, seconds, seed * 10_000 + pi * 1000 + i), SR)
            if not label.exists():
                atomic_write_text(label, f"{score:g}\n")
            files.append(wav)
    return files
