"""A depression corpus -> per participant its speech segments (cached, 16-bit, exactly the
wav's samples) -> per segment its wav2vec 2.0 feature (frames, hidden), cached as one .npy
per segment (the ``embed --layers sum`` format) under a folder named after the backbone.

Two steps because the backbone is a training option: ``build_corpus`` reads the corpus
(what ``load_corpus`` returns); ``embed_corpus`` runs the backbone over it when a run asks.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.families.wav2vec2.daicwoz import (find_participants, normalise, participant_segments,
                                                  read_transcript)
from edgeaffect.families.wav2vec2.model import DetectorConfig
from edgeaffect.io import atomic_path, atomic_write_text

PCM = 32768.0


@dataclass
class DepressionCorpus:
    folder: Path  # the cache folder: <pid>_audio.npy per participant, features-*/ per backbone
    pids: list[str]
    labels: np.ndarray  # (N,) PHQ8_Binary, -1 unknown
    scores: np.ndarray  # (N,) PHQ8_Score, nan unknown
    parts: np.ndarray  # (N,) train / val / test
    counts: np.ndarray  # (N,) segments per participant
    corpus: str
    config: DetectorConfig
    features_dir: Path | None = None  # set by embed_corpus (frozen-feature runs)
    root: Path | None = None  # the corpus folder it was read from (to cut it again another way)
    _cache: dict = field(default_factory=dict, repr=False)

    def participants(self, part: str, labelled: bool = True) -> np.ndarray:
        keep = self.parts == part
        if labelled:
            keep &= self.labels >= 0
        return np.flatnonzero(keep)

    def audio(self, i: int) -> np.ndarray:
        """Participant i's raw segments [shape=(S, samples)], float32 in [-1, 1)."""
        return np.load(self.folder / f"{self.pids[i]}_audio.npy").astype(np.float32) / PCM

    def features(self, i: int) -> np.ndarray:
        """Participant i's segment features [shape=(S, frames, hidden)]."""
        if i not in self._cache:
            if self.features_dir is None:
                raise RuntimeError("embed_corpus has not run on this corpus")
            d = self.features_dir / self.pids[i]
            self._cache[i] = np.stack([np.load(d / f"{s:03d}.npy") for s in range(int(self.counts[i]))])
        return self._cache[i]

    def batch(self, idx, segments: int | None = None) -> dict[str, np.ndarray]:
        """Padded features and mask for participants ``idx``; ``segments``: pad / cut to this many."""
        feats = [self.features(int(i)) for i in idx]
        s = segments or max(len(f) for f in feats)
        c = self.config
        x = np.zeros((len(feats), s, c.frames, c.hidden), np.float32)
        m = np.zeros((len(feats), s), np.float32)
        for j, f in enumerate(feats):
            n = min(len(f), s)
            x[j, :n], m[j, :n] = f[:n], 1.0
        return {"features": x, "segment_mask": m}

    def audio_batch(self, idx, segments: int | None = None) -> dict[str, np.ndarray]:
        """Padded normalised segments and mask for participants ``idx`` (the fine-tuning input)."""
        segs = [normalise(self.audio(int(i))) for i in idx]
        s = segments or max(len(a) for a in segs)
        x = np.zeros((len(segs), s, self.config.samples), np.float32)
        m = np.zeros((len(segs), s), np.float32)
        for j, a in enumerate(segs):
            n = min(len(a), s)
            x[j, :n], m[j, :n] = a[:n], 1.0
        return {"audio": x, "segment_mask": m}

    def inputs(self, idx, segments: int | None = None) -> dict[str, np.ndarray]:
        """What the run's model takes: audio when it fine-tunes the backbone, else features."""
        return self.audio_batch(idx, segments) if self.config.fine_tune else self.batch(idx, segments)

    def record(self) -> dict:
        return {"pids": self.pids, "labels": self.labels.tolist(), "scores": [None if np.isnan(s) else float(s)
                                                                          for s in self.scores],
                "parts": self.parts.tolist(), "counts": self.counts.tolist(), "corpus": self.corpus}


def _key(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# The DetectorConfig fields that decide a participant's segments.
CUT_FIELDS = ("sample_rate", "segment_s", "tail", "vad")


def cutting(config: DetectorConfig) -> dict:
    """What decides the segments, as the cache key holds it. Without the voice-activity step
    it is the key of the caches made before that step existed, so they are used as they are."""
    seg = {"sample_rate": config.sample_rate, "segment_s": config.segment_s, "tail": config.tail}
    if config.vad is not None:
        seg["vad"] = config.vad.to_dict()
    return seg


def build_corpus(root, config: DetectorConfig, corpus: str | None, cache_dir, log=sys.stderr) -> DepressionCorpus:
    """Read every participant of the split files; cut and cache their speech segments."""
    from edgeaffect.media import read_audio
    from edgeaffect.progress import Progress

    layout, rows = find_participants(root, corpus)
    key = _key([layout, cutting(config), [(str(p.audio), p.audio.stat().st_size,
                                           p.transcript and p.transcript.stat().st_size) for p in rows]])
    folder = Path(cache_dir) / f"wav2vec2-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    counts, progress = [], Progress("participants", len(rows), stream=log)
    for n, p in enumerate(rows):
        path = folder / f"{p.pid}_audio.npy"
        if path.is_file():
            counts.append(int(np.load(path, mmap_mode="r").shape[0]))
            continue
        y, sr = read_audio(p.audio)
        turns = read_transcript(p.transcript) if p.transcript is not None else None
        segs = participant_segments(y, sr, turns, sample_rate=config.sample_rate, segment_s=config.segment_s,
                                    tail=config.tail, what=f"participant {p.pid} ({p.audio})", vad=config.vad)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, np.clip(np.round(segs * PCM), -32768, 32767).astype(np.int16))
        counts.append(len(segs))
        progress(n + 1)
    return DepressionCorpus(folder, [p.pid for p in rows], np.asarray([p.label for p in rows], np.int64),
                            np.asarray([p.score for p in rows], np.float64), np.asarray([p.part for p in rows]),
                            np.asarray(counts, np.int64), layout, config, root=Path(root))


def cut_as(data: DepressionCorpus, config: DetectorConfig, log=sys.stderr) -> DepressionCorpus:
    """``data`` with its segments cut as ``config`` says (a run's ``--vad`` may differ from
    the model's default the corpus was read with): ``data`` itself when they already are,
    else the corpus read again into its own cache folder beside the first."""
    if cutting(data.config) == cutting(config):
        return data
    if data.root is None:
        raise InputError("this corpus was not read from a folder, so it cannot be cut again with other "
                         "preprocessing (voice activity); load it with the run's settings")
    print(f"cutting the corpus again ({'with' if config.vad else 'without'} silence and noise removal)",
          file=log, flush=True)
    changed = replace(data.config, **{k: getattr(config, k) for k in CUT_FIELDS})
    return build_corpus(data.root, changed, data.corpus, data.folder.parent, log)


def checkpoint_ident(folder: Path) -> dict:
    """What identifies a checkpoint folder's weights: its path and its files' sizes and times."""
    folder = Path(folder)
    return {"checkpoint": str(folder.resolve()), "files": sorted(
        [f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in folder.iterdir() if f.is_file())}


def backbone_for(config: DetectorConfig, checkpoint: str | Path | None, seed: int = 0):
    """(Keras wav2vec 2.0, its config, what identifies its weights). Without a checkpoint
    only a small config may run with random weights (tests, demos)."""
    from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, build_wav2vec2
    from edgeaffect.families.wav2vec2.checkpoint import load_pretrained

    if checkpoint is not None:
        folder = Path(checkpoint)
        model, bconfig = load_pretrained(folder)
        if int(bconfig.hidden_size) != config.hidden:
            raise InputError(f"the checkpoint in {folder} has hidden size {bconfig.hidden_size}, the model "
                             f"expects {config.hidden}; pick the matching variant (base: wav2vec2-daicwoz, large: "
                             "wav2vec2-large-daicwoz)")
        return model, bconfig, checkpoint_ident(folder)
    if config.hidden > 64:
        raise InputError("this model needs pretrained wav2vec 2.0 weights: give --backbone with a local Hugging "
                         "Face checkpoint folder (config.json + model.safetensors or pytorch_model.bin)")
    from edgeaffect.keras_backend import keras

    keras().utils.set_random_seed(seed)
    bconfig = Wav2Vec2Config.from_dict(config.backbone)
    return build_wav2vec2(bconfig), bconfig, {"random": seed, "config": config.backbone}


def segment_features(model, segments: np.ndarray, layers: str, batch: int = 4) -> np.ndarray:
    """Raw segments (S, samples) -> their features (S, frames, hidden): the sum of the
    transformer layers' outputs or the last one's, per segment."""
    from edgeaffect.families.wav2vec2.backbone import sum_hidden_states
    from edgeaffect.families.wav2vec2.model import LAYER_CHOICES

    out = []
    for a in range(0, len(segments), batch):
        states = model(normalise(segments[a:a + batch]), training=False)
        f = sum_hidden_states(states, LAYER_CHOICES[layers])
        out.append(np.asarray(f, np.float32))
    return np.concatenate(out)


def embed_corpus(data: DepressionCorpus, checkpoint: str | Path | None, seed: int = 0,
                 log=sys.stderr) -> DepressionCorpus:
    """Compute (or find cached) every participant's segment features with the backbone."""
    from edgeaffect.progress import Progress

    model, _, ident = backbone_for(data.config, checkpoint, seed)
    folder = data.folder / f"features-{_key([ident, data.config.layers])}"
    todo = [i for i in range(len(data.pids)) if not (folder / data.pids[i] / "done").is_file()]
    if todo:
        print(f"wav2vec 2.0 features ({data.config.layers} of the layers) for {len(todo)} participants -> {folder}",
              file=log, flush=True)
    progress = Progress("participants embedded", len(todo), stream=log)
    for n, i in enumerate(todo):
        d = folder / data.pids[i]
        d.mkdir(parents=True, exist_ok=True)
        feats = segment_features(model, data.audio(i), data.config.layers)
        for s, f in enumerate(feats):
            with atomic_path(d / f"{s:03d}.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, f)
        atomic_write_text(d / "done", f"{len(feats)}\n")
        progress(n + 1)
    data.features_dir = folder
    data._cache.clear()
    return data


def corpus_from_record(folder: Path, features_dir: str | None, record: dict, config: DetectorConfig
                       ) -> DepressionCorpus:
    return DepressionCorpus(Path(folder), list(record["pids"]), np.asarray(record["labels"], np.int64),
                            np.asarray([np.nan if s is None else s for s in record["scores"]], np.float64),
                            np.asarray(record["parts"]), np.asarray(record["counts"], np.int64), record["corpus"],
                            config, Path(features_dir) if features_dir else None)
