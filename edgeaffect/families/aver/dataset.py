"""Corpus -> cached feature arrays for AVER. Unusable clips are skipped and counted."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeaffect.data.jobs import forget, map_files
from edgeaffect.families.aver.corpora import find_av_clips
from edgeaffect.families.aver.ravdess import Clip, EMOTIONS
from edgeaffect.errors import EdgeAffectError
from edgeaffect.families.aver.features import AverFeatureConfig, clip_features, split_segments
from edgeaffect.features.mfcc import mfcc as mfcc_numpy
from edgeaffect.io import atomic_path, file_stamp
from edgeaffect.media import read_audio, read_frames_at


@dataclass
class AverDataset:
    face: np.ndarray  # (N, 64, 64) uint8
    mfcc: np.ndarray  # (N, 40) float32
    labels: np.ndarray  # (N,) int
    speakers: np.ndarray  # (N,) str
    clip_ids: np.ndarray  # (N,) int, index into clip_names
    clip_names: list[str]
    mfcc_stretched: np.ndarray | None = None  # (N, 40): the audio time-stretched (augmentation)
    skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.size)


def _clip_arrays(clip: Clip, config: AverFeatureConfig, stretch_rate: float | None):
    y, sr = read_audio(clip.audio)
    frames = read_frames_at(clip.video, config.n_segments, config.frame_position)
    feats = clip_features(frames, y, sr, config)
    if stretch_rate:
        import librosa

        segs = split_segments(y, config.n_segments, config.mfcc.n_fft)
        feats["mfcc_stretched"] = np.stack([
            mfcc_numpy(librosa.effects.time_stretch(s, rate=stretch_rate), sr, config.mfcc).mean(axis=1) for s in segs
        ]).astype(np.float32)
    return feats


def _worker(args):
    clip, config, stretch_rate = args
    try:
        return _clip_arrays(clip, config, stretch_rate), None
    except EdgeAffectError as exc:
        return None, str(exc)
    except Exception as exc:  # a broken file must not stop a corpus; it is counted and logged
        return None, f"{type(exc).__name__}: {exc}"


def _cache_key(clips: list[Clip], config: AverFeatureConfig, stretch_rate, labels: tuple = EMOTIONS) -> str:
    extra = [] if tuple(labels) == EMOTIONS else [list(labels)]  # RAVDESS caches keep their key
    h = hashlib.sha1(json.dumps([config.to_dict(), stretch_rate, *extra], sort_keys=True).encode())
    for c in clips:
        for p in {c.video, c.audio}:
            h.update(f"{p.name if c.name is not None else p}:{file_stamp(p)}".encode())
    return h.hexdigest()[:16]


def build_aver_dataset(root: str | Path, config: AverFeatureConfig = AverFeatureConfig(), *,
                       stretch_rate: float | None = None, cache_dir: str | Path | None = None,
                       workers: int | None = None, corpus: str | None = None, labels: tuple = EMOTIONS,
                       log=sys.stderr) -> AverDataset:
    """``corpus``: a layout of ``corpora.LAYOUTS`` (None: recognised); ``labels``: the
    model's label order, which the clips' labels index."""
    clips = find_av_clips(root, tuple(labels), corpus)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"aver-features-{_cache_key(clips, config, stretch_rate, labels)}.npz"
        if cache.exists():
            return load_dataset(cache)
    parts = cache.with_suffix(".parts") if cache is not None else None  # per-clip results: resumable
    results = map_files(_worker, [(c, config, stretch_rate) for c in clips], "features", workers=workers,
                        resume=parts, log=log)
    data = _assemble(clips, results, config.n_segments)
    if data.skipped:
        print(f"  skipped {len(data.skipped)} of {len(clips)} clips:", file=log)
        for name, why in list(data.skipped.items())[:10]:
            print(f"    {name}: {why}", file=log)
    if not len(data):
        raise EdgeAffectError(f"no usable clips under {root}: all {len(clips)} were skipped (see the reasons above)")
    if cache is not None:
        save_dataset(cache, data)
        forget(parts)
    return data


def _assemble(clips: list[Clip], results, n: int) -> AverDataset:
    face, mfcc, stretched, labels, speakers, clip_ids, names, skipped = [], [], [], [], [], [], [], {}
    for clip, (feats, error) in zip(clips, results):
        if feats is None:
            skipped[clip.video.name] = error
            continue
        face.append(feats["face"])
        mfcc.append(feats["mfcc"])
        if "mfcc_stretched" in feats:
            stretched.append(feats["mfcc_stretched"])
        labels += [clip.label] * n
        speakers += [clip.speaker] * n
        clip_ids += [len(names)] * n
        names.append(clip.video.name if clip.name is not None else "/".join(clip.video.parts[-4:]))
    return AverDataset(
        face=np.concatenate(face) if face else np.zeros((0, 64, 64), np.uint8),
        mfcc=np.concatenate(mfcc) if mfcc else np.zeros((0, 40), np.float32),
        labels=np.asarray(labels, dtype=np.int64), speakers=np.asarray(speakers),
        clip_ids=np.asarray(clip_ids, dtype=np.int64), clip_names=names,
        mfcc_stretched=np.concatenate(stretched) if stretched else None, skipped=skipped,
    )


def save_dataset(path: Path, d: AverDataset) -> None:
    extra = {} if d.mfcc_stretched is None else {"mfcc_stretched": d.mfcc_stretched}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, face=d.face, mfcc=d.mfcc, labels=d.labels, speakers=d.speakers, clip_ids=d.clip_ids,
                     clip_names=np.asarray(d.clip_names), skipped=np.asarray(json.dumps(d.skipped)), **extra)


def load_dataset(path: Path) -> AverDataset:
    z = np.load(path, allow_pickle=False)
    return AverDataset(face=z["face"], mfcc=z["mfcc"], labels=z["labels"], speakers=z["speakers"],
                       clip_ids=z["clip_ids"], clip_names=list(z["clip_names"]),
                       mfcc_stretched=z["mfcc_stretched"] if "mfcc_stretched" in z else None,
                       skipped=json.loads(str(z["skipped"])))
