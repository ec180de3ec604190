"""Speech corpus -> cached per-frame fusion features (librosa, the training side).

Utterances have different lengths: the frames of all utterances are stored end to end
(``frames``, ``offsets``) and cut to the model's fixed length only when a model asks
(``sequences``). Unusable files are skipped and counted, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeaffect.data.jobs import forget, map_files
from edgeaffect.families.speechnet.corpora import Utterance, find_utterances
from edgeaffect.errors import EdgeAffectError, InputError
from edgeaffect.families.speechnet.features import FusionConfig, fit_length, standardise
from edgeaffect.io import atomic_path, file_stamp


@dataclass
class SpeechDataset:
    frames: np.ndarray  # (sum of lengths, dim) float32, raw (not standardised)
    offsets: np.ndarray  # (N + 1,) int: utterance i is frames[offsets[i]:offsets[i + 1]]
    labels: np.ndarray  # (N,) int, index into label_names
    speakers: np.ndarray  # (N,) str
    names: list[str]
    label_names: tuple[str, ...]
    corpus: str
    feature_config: FusionConfig
    skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.size)

    @property
    def clip_ids(self) -> np.ndarray:
        return np.arange(len(self))

    def utterance(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i] : self.offsets[i + 1]]

    def frame_statistics(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and std over every frame of the utterances ``idx``."""
        rows = np.concatenate([self.utterance(i) for i in idx]).astype(np.float64)
        return rows.mean(axis=0).astype(np.float32), rows.std(axis=0).astype(np.float32)


def sequences(data: SpeechDataset, idx: np.ndarray, max_frames: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardised fixed-length model inputs [shape=(len(idx), max_frames, dim)]."""
    return np.stack([fit_length(standardise(data.utterance(i), mean, std), max_frames) for i in idx])


def _features(args):
    path, sr_config = args
    from edgeaffect.families.speechnet.features_librosa import fusion_features_librosa
    from edgeaffect.media import read_audio

    try:
        y, sr = read_audio(path)
        return fusion_features_librosa(y, sr, sr_config), None
    except EdgeAffectError as exc:
        return None, str(exc)
    except Exception as exc:  # one broken file must not stop a corpus; counted and logged
        return None, f"{type(exc).__name__}: {exc}"


def _cache_key(corpus: str, rows: list[Utterance], config: FusionConfig) -> str:
    h = hashlib.sha1(json.dumps([corpus, config.to_dict()], sort_keys=True).encode())
    for r in rows:
        h.update(f"{r.path.name}:{r.label}:{r.speaker}:{file_stamp(r.path)}".encode())
    return h.hexdigest()[:16]


def build_speech_dataset(root: str | Path, corpus: str | None = None, config: FusionConfig = FusionConfig(), *,
                         labels: tuple[str, ...] | None = None, cache_dir: str | Path | None = None,
                         workers: int | None = None, log=sys.stderr) -> SpeechDataset:
    spec, rows = find_utterances(root, corpus)
    label_names = tuple(labels or spec.labels)
    rows = [r for r in rows if r.label in label_names]
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"speech-features-{_cache_key(spec.name, rows, config)}.npz"
        if cache.exists():
            return load_speech_dataset(cache)
    parts = cache.with_suffix(".parts") if cache_dir is not None else None  # per-file results: resumable
    results = map_files(_features, [(r.path, config) for r in rows], "features", workers=workers,
                        min_parallel=32, chunksize=8, resume=parts, log=log)
    kept, feats, skipped = [], [], {}
    for row, (f, error) in zip(rows, results):
        if f is None:
            skipped[row.path.name] = error
        else:
            kept.append(row)
            feats.append(f)
    if skipped:
        print(f"  skipped {len(skipped)} of {len(rows)} files:", file=log)
        for name, why in list(skipped.items())[:10]:
            print(f"    {name}: {why}", file=log)
    if not kept:
        raise InputError(f"no usable utterances under {root}: all {len(rows)} were skipped (reasons above)")
    data = SpeechDataset(
        frames=np.concatenate(feats), offsets=np.concatenate([[0], np.cumsum([len(f) for f in feats])]),
        labels=np.asarray([label_names.index(r.label) for r in kept], np.int64),
        speakers=np.asarray([r.speaker for r in kept]), names=[r.path.name for r in kept],
        label_names=label_names, corpus=spec.name, feature_config=config, skipped=skipped)
    if cache is not None:
        save_speech_dataset(cache, data)
        forget(parts)
    return data


def save_speech_dataset(path: Path, d: SpeechDataset) -> None:
    meta = {"label_names": list(d.label_names), "corpus": d.corpus, "feature_config": d.feature_config.to_dict(),
            "skipped": d.skipped}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, frames=d.frames, offsets=d.offsets, labels=d.labels, speakers=d.speakers,
                     names=np.asarray(d.names), meta=np.asarray(json.dumps(meta)))


def load_speech_dataset(path: Path) -> SpeechDataset:
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    return SpeechDataset(frames=z["frames"], offsets=z["offsets"], labels=z["labels"], speakers=z["speakers"],
                         names=list(z["names"]), label_names=tuple(meta["label_names"]), corpus=meta["corpus"],
                         feature_config=FusionConfig.from_dict(meta["feature_config"]), skipped=meta["skipped"])
