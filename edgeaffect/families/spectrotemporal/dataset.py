"""AVEC-layout corpus -> per-recording segment features (desktop side: the librosa log-Mel,
the NumPy VLNEP), cached; sequences are cut when a run asks. Unusable recordings (shorter
than one sequence, silent, unreadable) are skipped with one line each and counted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeaffect.families.spectrotemporal.avec import PARTITIONS, find_recordings
from edgeaffect.families.spectrotemporal.features import (SpectroConfig, prepare_audio, recording_features,
                                                          sequence_starts)
from edgeaffect.errors import InputError, MediaError
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
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> why it was left out

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


def _recording(job):
    """One recording's (log-Mel segments, VLNEP histograms), or the one-line reason it is
    unusable (a worker returns its errors: one short recording must not stop a corpus)."""
    from edgeaffect.families.spectrotemporal.vlnep import vlnep_histograms
    from edgeaffect.media import read_audio

    path, config, rule = job
    try:
        y, sr = read_audio(path)
        z = _librosa_segments(y, sr, config, path.name)
    except MediaError as e:
        return str(e)
    return z, vlnep_histograms(z[..., 0], rule)


def _kept(rows, results, root, log) -> tuple[list, list, dict]:
    """(usable recordings, their results, skipped name -> reason); one line per skipped
    recording; an error when no recording, or no recording of a partition, is left."""
    kept = [(r, res) for r, res in zip(rows, results) if not isinstance(res, str)]
    skipped = {r.path.name: res for r, res in zip(rows, results) if isinstance(res, str)}
    report_skipped(skipped, len(rows), log)
    if not kept:
        raise InputError(f"no usable recordings under {root}: all {len(rows)} were skipped (reasons above)")
    # Training fits, Development draws the curves, Testing gives the figures: each needs one.
    for folder, part in PARTITIONS.items():
        if not any(r.part == part for r, _ in kept):
            raise InputError(f"no usable recordings left in {root}/{folder} (reasons above): "
                             "training needs Training, Development and Testing")
    return [r for r, _ in kept], [res for _, res in kept], skipped


def report_skipped(skipped: dict[str, str], total: int, log) -> None:
    if skipped:
        print(f"  skipped {len(skipped)} of {total} recordings:", file=log, flush=True)
        for name, why in skipped.items():  # the reasons mostly name the file already
            print(f"    {why if name in why else f'{name}: {why}'}", file=log, flush=True)


def build_dataset(root, config: SpectroConfig, rule: str, corpus: str | None = None, cache_dir=None,
                  log=None, workers: int | None = None) -> SpectroDataset:
    """Every recording's features, over ``workers`` processes (``edgeaffect.data.jobs``);
    with ``cache_dir``, cached and resumable (per-recording results kept until the cache is
    written)."""
    import sys

    from edgeaffect.data.jobs import forget, map_files

    layout, rows = find_recordings(root, corpus)
    cache = None
    if cache_dir is not None:
        import hashlib

        key = hashlib.sha1(json.dumps([layout, config.to_dict(), rule, [(str(r.path), r.score, r.path.stat().st_size)
                                                                      for r in rows]]).encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"spectrotemporal-{key}.npz"
        if cache.exists():
            data = load_dataset(cache, config)
            report_skipped(data.skipped, len(rows), log or sys.stderr)  # said again: the cache keeps them
            return data
    parts = cache.with_suffix(".parts") if cache is not None else None
    results = map_files(_recording, [(r.path, config, rule) for r in rows], "log-Mel + VLNEP (recordings)",
                        workers=workers, min_parallel=8, chunksize=1, resume=parts, log=log or sys.stderr)
    rows, results, skipped = _kept(rows, results, root, log or sys.stderr)
    mels, hists = [z for z, _ in results], [h for _, h in results]
    counts = [len(z) for z in mels]
    data = SpectroDataset(np.concatenate(mels), np.concatenate(hists), np.concatenate([[0], np.cumsum(counts)]),
                          np.asarray([r.score for r in rows], np.float32), np.asarray([r.part for r in rows]),
                          [r.path.name for r in rows], layout, config, skipped)
    if cache is not None:
        save_dataset(cache, data)
        forget(parts)
    return data


def save_dataset(path: Path, d: SpectroDataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mel=d.mel, vlnep=d.vlnep, offsets=d.offsets, scores=d.scores, parts=d.parts,
                     names=np.asarray(d.names), corpus=np.asarray(d.corpus),
                     skipped=np.asarray(json.dumps(d.skipped)))


def load_dataset(path: Path, config: SpectroConfig) -> SpectroDataset:
    with np.load(path, allow_pickle=False) as z:
        skipped = json.loads(str(z["skipped"])) if "skipped" in z.files else {}  # files written before skipping
        return SpectroDataset(z["mel"], z["vlnep"], z["offsets"], z["scores"], z["parts"], list(z["names"]),
                              str(z["corpus"]), config, skipped)
