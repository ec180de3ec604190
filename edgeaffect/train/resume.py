"""Training that survives a kill: an epoch loop whose whole state is saved after every epoch
and comes back when the same command runs again.

A run folder being trained holds ``checkpoint.npz``, written atomically (temp file, then
rename) after each epoch: the epoch counter, the weights, the optimizer's variables (Adam's
step and moments), the dropout layers' random-generator states, the early-stopping state
(best value, its epoch, the wait, the best weights) and the history so far. Everything else
an epoch depends on is a function of the seed and the epoch number: the order of the
training samples is ``default_rng([seed, epoch])``'s permutation. So a run killed at any
moment loses at most the epoch it was in, and with TensorFlow's op determinism on, the
resumed run ends with the same weights as one never interrupted (tests/test_kill_resume.py).

The checkpoint also records the request (model, split, seed, config, ...) and a digest of
the split's sample indices; a checkpoint of another request is refused, not mixed in.
It is removed once ``run.json`` (the finished run's record) has been written.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.io import atomic_write_bytes, atomic_write_text

CHECKPOINT = "checkpoint.npz"
SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class EarlyStop:
    """Keras's EarlyStopping (min mode), its state kept in the checkpoint."""

    monitor: str = "val_loss"
    min_delta: float = 0.0
    patience: int = 10
    restore_best_weights: bool = True


def split_digest(parts: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(parts):
        h.update(name.encode())
        h.update(np.asarray(parts[name], np.int64).tobytes())
    return h.hexdigest()


def write_split(run_dir: Path, parts: dict[str, np.ndarray]) -> str:
    """``split.json``: which samples (dataset rows) are train / val / test, and its digest."""
    digest = split_digest(parts)
    atomic_write_text(run_dir / SPLIT_FILE, json.dumps({"sha256": digest, **{k: np.asarray(v).tolist()
                                                                          for k, v in parts.items()}}))
    return digest


def _take(x, idx):
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]


def _size(x) -> int:
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def seed_dropout(model, seed: int) -> list:
    """Give every random layer (Dropout, ...) its own seeded ``tf.random.Generator``, whose
    state is a variable we can save and restore (Keras's default legacy random ops keep
    theirs inside the kernels, out of reach). Returns the generators, in layer order."""
    from tf_keras.src import backend as keras_backend

    generators = []
    for i, layer in enumerate(model._flatten_layers(include_self=False)):
        if isinstance(getattr(layer, "_random_generator", None), keras_backend.RandomGenerator):
            g = keras_backend.RandomGenerator(seed=int(seed) * 1000 + i, rng_type="stateful")
            g._maybe_init()
            object.__setattr__(layer, "_random_generator", g)  # not tracked: weights files stay as they were
            generators.append(g)
    return generators


def _optimizer_variables(model) -> list:
    opt = model.optimizer
    opt.build(model.trainable_variables)  # creates the step and the moments now, so they can be restored
    return list(opt.variables)


class Checkpoint:
    def __init__(self, run_dir: Path, request: dict):
        self.path = Path(run_dir) / CHECKPOINT
        self.request = json.loads(json.dumps(request))  # as it reads back from JSON

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(str(arrays.pop("meta")))
        except Exception as exc:  # a checkpoint is written atomically; this is another file
            raise InputError(f"{self.path} is not a readable checkpoint ({type(exc).__name__}); delete it to "
                             "train from the start") from None
        if meta.get("request") != self.request:
            theirs, ours = meta.get("request") or {}, self.request
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise InputError(f"{self.path.parent} holds an interrupted run of another request (differs in: "
                             f"{', '.join(diff)}); give another --out, or delete {self.path.name} to start over")
        return {"meta": meta, "arrays": arrays}

    def save(self, meta: dict, groups: dict[str, list[np.ndarray]]) -> None:
        arrays = {"meta": np.array(json.dumps({**meta, "request": self.request}))}
        for name, values in groups.items():
            arrays.update({f"{name}/{i}": np.asarray(v) for i, v in enumerate(values)})
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(self.path, buf.getvalue())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _group(arrays: dict, name: str) -> list[np.ndarray]:
    n = sum(1 for k in arrays if k.startswith(name + "/"))
    return [arrays[f"{name}/{i}"] for i in range(n)]


def _share_state(dist, model, opt_vars, generators, start, state, best_weights, have, arrays):
    """The chief's resume point on every worker: first what it has (epoch, early-stopping
    state), then, when it resumes, its weights, optimizer and generator states."""
    best = state["best"]
    meta = np.asarray([float(have), start, best_weights is not None, np.nan if best is None else best,
                       -1 if state["best_epoch"] is None else state["best_epoch"], state["wait"], state["stopped"]],
                      np.float64)
    meta = dist.broadcast([meta])[0]
    have, start, has_best = bool(meta[0]), int(meta[1]), bool(meta[2])
    state = {"best": None if np.isnan(meta[3]) else float(meta[3]),
             "best_epoch": None if meta[4] < 0 else int(meta[4]), "wait": int(meta[5]), "stopped": bool(meta[6])}
    if not have:
        return start, state, None, (None, None, None)
    weights, opt_values, rng = arrays
    own = (model.get_weights(), [v.numpy() for v in opt_vars], [g._generator.state.numpy() for g in generators])
    parts = [list(a) if a is not None else b for a, b in zip((weights, opt_values, rng), own)]
    best = list(best_weights) if best_weights is not None else own[0]
    sizes = [len(p) for p in parts]
    flat = dist.broadcast([*parts[0], *parts[1], *parts[2], *(best if has_best else [])])
    a, b, c = sizes[0], sizes[0] + sizes[1], sum(sizes)
    return start, state, (flat[c:] if has_best else None), (flat[:a], flat[a:b], flat[b:c])


def fit(model, x, y, *, validation, epochs: int, batch_size: int, seed: int, run_dir: Path, request: dict,
        split_sha256: str, early_stop: EarlyStop | None = None, log=sys.stderr, log_every: int = 10) -> dict:
    """Train ``model`` (compiled) for up to ``epochs`` epochs, resuming from the run folder's
    checkpoint when there is one of the same request. Returns {"history": per-epoch logs,
    "resumed_from": epochs already done when this call started, "stopped_early": bool}."""
    from edgeaffect.train import distribute

    dist = distribute.current()
    run_dir = Path(run_dir)
    ckpt = Checkpoint(run_dir, {**request, "split_sha256": split_sha256, "epochs": epochs})
    with dist.scope():  # the generators and the optimizer's variables belong to the model's strategy
        generators = seed_dropout(model, seed)
        opt_vars = _optimizer_variables(model)
    history: list[dict] = []
    state = {"best": None, "best_epoch": None, "wait": 0, "stopped": False}
    best_weights = None
    saved = ckpt.load() if dist.is_chief else None
    start = 0
    if saved is not None:
        meta, arrays = saved["meta"], saved["arrays"]
        weights, opt_values, rng = _group(arrays, "weights"), _group(arrays, "optimizer"), _group(arrays, "rng")
        if len(weights) != len(model.get_weights()) or len(opt_values) != len(opt_vars) or len(rng) != len(generators):
            raise InputError(f"{ckpt.path} does not fit this model; delete it to train from the start")
        history, state, start = meta["history"], meta["early_stop"], int(meta["epoch"])
        best_weights = _group(arrays, "best") or None
        print(f"resuming from the checkpoint after epoch {start} ({run_dir / CHECKPOINT})", file=log, flush=True)
    else:
        weights = opt_values = rng = None
    if dist.name == "multi-worker":  # every worker continues from the chief's checkpoint
        start, state, best_weights, (weights, opt_values, rng) = _share_state(
            dist, model, opt_vars, generators, start, state, best_weights, saved is not None, (weights, opt_values, rng))
    if weights is not None:
        model.set_weights(weights)
        for v, value in zip(opt_vars, opt_values):
            v.assign(value)
        for g, value in zip(generators, rng):
            g._generator.state.assign(value)
    n = _size(y)
    t0 = time.monotonic()
    epoch = start
    while epoch < epochs and not state["stopped"]:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        h = model.fit(_take(x, order), y[order], batch_size=batch_size, epochs=1, shuffle=False,
                      validation_data=validation, verbose=0)
        logs = {k: float(v[-1]) for k, v in h.history.items()}
        history.append(logs)
        if early_stop is not None:
            current = logs[early_stop.monitor]
            if early_stop.restore_best_weights and best_weights is None:
                best_weights = model.get_weights()
                state["best_epoch"] = epoch
            state["wait"] += 1
            if state["best"] is None or current + early_stop.min_delta < state["best"]:
                state["best"], state["best_epoch"] = current, epoch
                if early_stop.restore_best_weights:
                    best_weights = model.get_weights()
                state["wait"] = 0
            if state["wait"] >= early_stop.patience and epoch > 0:
                state["stopped"] = True
        epoch += 1
        if epoch % log_every == 0 or epoch == 1:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
            print(f"  epoch {epoch}: {shown} ({time.monotonic() - t0:.0f} s)", file=log, flush=True)
        if dist.is_chief:
            ckpt.save({"epoch": epoch, "history": history, "early_stop": state},
                      {"weights": model.get_weights(), "optimizer": [v.numpy() for v in opt_vars],
                       "rng": [g._generator.state.numpy() for g in generators], "best": best_weights or []})
    if early_stop is not None and early_stop.restore_best_weights and best_weights is not None:
        model.set_weights(best_weights)
    return {"history": history, "resumed_from": start, "stopped_early": bool(state["stopped"]),
            "checkpoint": ckpt}
