"""AVEC-layout corpus -> per-recording segment features (desktop side: the librosa log-Mel,
the NumPy VLNEP), cached; sequences are cut when a run asks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect.families.spectrotemporal.avec import find_recordings
from edgeaffect.families.spectrotemporal.features import (SpectroConfig, prepare_audio, recording_features,
                                                          sequence_starts)
from edgeaffect.io import atomic_path


@dataclass
class SpectroDataset:
    mel: np.ndarray  # (total segments, frames, n_mels, 3) raw 3-channel log-Mel
    vlnep: np.ndarray  # (total segments, 256)
    offsets: np.ndarray  # (N + 1,): recording i is segments offsets[i]:offsets[i + 1]
    scores: np.ndarray  # (N,) BDI-II
    parts: np.ndarray  # (N,) train / val / test
    names: list[str]
    corpus: str
    config: SpectroConfig

    def recordings(self, part: str) -> np.ndarray:
        return np.flatnonzero(self.parts == part)

    def sequences(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """(segment indices [shape=(n_seq, S)], recording of each sequence)."""
        rows, owner = [], []
        for i in idx:
            a, b = self.offsets[i], self.offsets[i + 1]
            for s in sequence_starts(int(b - a), self.config):
                rows.append(a + s + np.arange(self.config.segments_per_sequence))
                owner.append(i)
        return np.asarray(rows, np.int64), np.asarray(owner, np.int64)


def _librosa_segments(y, sr, config: SpectroConfig, what: str) -> np.ndarray:
    from edgeaffect.families.spectrotemporal.features_librosa import three_channel_librosa

    recording_features(y, sr, config, what)  # the same checks and errors as the device
    z = three_channel_librosa(prepare_audio(y, sr, config, what), config)
    f = config.frames_per_segment
    n = z.shape[0] // f
    return z[: n * f].reshape(n, f, config.n_mels, 3)


def build_dataset(root, config: SpectroConfig, rule: str, corpus: str | None = None, cache_dir=None,
                  log=None) -> SpectroDataset:
    from edgeaffect.families.spectrotemporal.vlnep import vlnep_histograms
    from edgeaffect.media import read_audio

    layout, rows = find_recordings(root, corpus)
    cache = None
    if cache_dir is not None:
        import hashlib

        key = hashlib.sha1(json.dumps([layout, config.to_dict(), rule, [(str(r.path), r.score, r.path.stat().st_size)
                                                                      for r in rows]]).encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"spectrotemporal-{key}.npz"
        if cache.exists():
            return load_dataset(cache, config)
    mels, hists, counts = [], [], []
    for r in rows:
        y, sr = read_audio(r.path)
        z = _librosa_segments(y, sr, config, str(r.path))
        mels.append(z)
        hists.append(vlnep_histograms(z[..., 0], rule))
        counts.append(len(z))
    data = SpectroDataset(np.concatenate(mels), np.concatenate(hists), np.concatenate([[0], np.cumsum(counts)]),
                          np.asarray([r.score for r in rows], np.float32), np.asarray([r.part for r in rows]),
                          [r.path.name for r in rows], layout, config)
    if cache is not None:
        save_dataset(cache, data)
    return data


def save_dataset(path: Path, d: SpectroDataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mel=d.mel, vlnep=d.vlnep, offsets=d.offsets, scores=d.scores, parts=d.parts,
                     names=np.asarray(d.names), corpus=np.asarray(d.corpus))


def load_dataset(path: Path, config: SpectroConfig) -> SpectroDataset:
    with np.load(path, allow_pickle=False) as z:
        return SpectroDataset(z["mel"], z["vlnep"], z["offsets"], z["scores"], z["parts"], list(z["names"]),
                              str(z["corpus"]), config)
