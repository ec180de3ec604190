"""Train / validation / test splits.

- ``paper``: stratified 80/20 train/test over *samples*, then 80/20 train/validation
  (the paper's protocol; the 6 samples of one clip can land on both sides, which flatters
  accuracy).
- ``clip``: the same proportions, stratified over clips, a clip's samples kept together.
- ``speaker``: speaker-independent, whole actors held out for test and validation.
- ``actor``: leave one actor out: fold ``seed % speakers`` (speakers in sorted order) is the
  test set; validation is a stratified fifth of the other actors' samples (for early
  stopping). Run it once per actor and average (AVER paper, Table II).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeaffect.errors import InputError

SPLITS = ("paper", "clip", "speaker", "actor")


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    kind: str

    def describe(self) -> dict:
        return {"kind": self.kind, "train": int(self.train.size), "val": int(self.val.size), "test": int(self.test.size)}


def stratified_holdout(labels: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held) with ``fraction`` of each class held out (at least one where possible)."""
    keep, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_held = int(round(fraction * idx.size))
        if idx.size > 1:
            n_held = min(max(n_held, 1), idx.size - 1)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _expand(groups: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(groups, chosen))


def make_split(kind: str, labels: np.ndarray, clip_ids: np.ndarray, speakers: np.ndarray,
               test_fraction: float = 0.2, val_fraction: float = 0.2, seed: int = 0) -> Split:
    split = _split(kind, labels, clip_ids, speakers, test_fraction, val_fraction, seed)
    for part in ("train", "val", "test"):
        if not getattr(split, part).size:  # training, early stopping and the figures each need samples
            raise InputError(f"the {kind} split of these {labels.size} samples leaves no {part} samples: the corpus "
                             "is too small for it (see which files were skipped, or add recordings)")
    return split


def _split(kind: str, labels: np.ndarray, clip_ids: np.ndarray, speakers: np.ndarray, test_fraction: float,
           val_fraction: float, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    if kind == "paper":
        rest, test = stratified_holdout(labels, test_fraction, rng)
        tr, va = stratified_holdout(labels[rest], val_fraction, rng)
        return Split(rest[tr], rest[va], test, kind)
    if kind == "clip":
        clips, first = np.unique(clip_ids, return_index=True)
        rest, test = stratified_holdout(labels[first], test_fraction, rng)
        tr, va = stratified_holdout(labels[first][rest], val_fraction, rng)
        return Split(_expand(clip_ids, clips[rest][tr]), _expand(clip_ids, clips[rest][va]),
                     _expand(clip_ids, clips[test]), kind)
    if kind == "speaker":
        people = rng.permutation(np.unique(speakers))
        if people.size < 3:
            raise InputError(f"a speaker-independent split needs at least 3 speakers, found {people.size}")
        n_test = max(1, int(round(test_fraction * people.size)))
        n_val = max(1, int(round(val_fraction * (people.size - n_test))))
        test_p, val_p, train_p = people[:n_test], people[n_test : n_test + n_val], people[n_test + n_val :]
        return Split(_expand(speakers, train_p), _expand(speakers, val_p), _expand(speakers, test_p), kind)
    if kind == "actor":
        people = np.unique(speakers)
        if people.size < 2:
            raise InputError(f"a leave-one-actor-out split needs at least 2 speakers, found {people.size}")
        held = people[seed % people.size]
        test = np.flatnonzero(speakers == held)
        rest = np.flatnonzero(speakers != held)
        tr, va = stratified_holdout(labels[rest], val_fraction, rng)
        return Split(rest[tr], rest[va], test, kind)
    raise InputError(f"unknown split '{kind}'; choose one of: {', '.join(SPLITS)}")
