"""Train the spectrotemporal network: the official partitions (Training to fit,
Development for the learning curves and the module comparisons, Testing for the reported
figures); Adam 1e-4, batch 32, RMSE loss (the paper's Sec. "Experimental settings"); the
model after the last epoch: the paper gives no epoch count and no stopping rule, and its
Figs. 8-9 plot the validation loss only as a curve, so nothing is chosen on Development.
Figures are per recording (the mean over its sequences), as AVEC reports them.

A run folder holds ``run.json`` (config, normalisation, metrics), ``weights.h5`` and
``features.npz`` (the segment features, for export).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgeaffect.families.spectrotemporal.dataset import SpectroDataset, load_dataset, save_dataset
from edgeaffect.families.spectrotemporal.features import to_pixels
from edgeaffect.families.spectrotemporal.model import SpectroNetConfig
from edgeaffect.io import atomic_path, atomic_write_text
from edgeaffect.contract import get_model
from edgeaffect.train import distribute
from edgeaffect.train.resume import fit, write_split
from edgeaffect.train.runs import Run


# What training keeps (run.json "kept"): no early stopping, since the paper states none.
KEPT = "the model after the last epoch (no early stopping: the paper gives no stopping rule)"


@dataclass
class SpectroRun(Run):
    norm: dict | None = None

    @property
    def config(self) -> SpectroNetConfig:
        return self.spec.config

    def split_inputs(self, data: SpectroDataset, part: str):
        """Every sequence of the part's recordings; each sequence's target is its recording's score."""
        x, y, _ = sequence_inputs(data, data.recordings(part), self.norm)
        return x, y

    def recording_inputs(self, data: SpectroDataset, part: str) -> list[tuple[dict, float]]:
        """Per recording with at least one sequence: the device adapter's per-segment inputs
        (from the cached features) and its score."""
        from edgeaffect.families.spectrotemporal.device import segment_inputs

        out = []
        for i in data.recordings(part):
            a, b = int(data.offsets[i]), int(data.offsets[i + 1])
            if b - a >= self.config.segments:
                out.append((segment_inputs(data.mel[a:b], data.vlnep[a:b], self.norm), float(data.scores[i])))
        return out

    def preprocessing(self) -> dict:
        return {"kind": "spectrotemporal", "features": self.config.features.to_dict(),
                "vlnep_rule": self.config.vlnep_rule, "normalisation": self.norm,
                "output": "BDI-II score per sequence; the recording's score is their mean"}


def sequence_inputs(data: SpectroDataset, idx, norm: dict):
    rows, owner = data.sequences(idx)
    pixels = to_pixels(data.mel[rows.ravel()], np.asarray(norm["mel_mean"], np.float32),
                       np.asarray(norm["mel_std"], np.float32)).reshape(*rows.shape, *data.mel.shape[1:])
    h = ((data.vlnep - np.asarray(norm["vlnep_mean"], np.float32)) / np.asarray(norm["vlnep_std"], np.float32))[rows]
    return {"spectrogram": pixels, "vlnep": h.astype(np.float32)}, data.scores[owner], owner


def normalisation(data: SpectroDataset) -> dict:
    """Per-channel log-Mel and per-bin VLNEP statistics over the training partition's segments."""
    segs = np.concatenate([np.arange(data.offsets[i], data.offsets[i + 1]) for i in data.recordings("train")])
    mel = data.mel[segs].astype(np.float64)
    v = data.vlnep[segs].astype(np.float64)
    return {"mel_mean": mel.mean(axis=(0, 1, 2)).tolist(), "mel_std": (mel.std(axis=(0, 1, 2)) + 1e-6).tolist(),
            "vlnep_mean": v.mean(0).tolist(), "vlnep_std": np.maximum(v.std(0), 1e-3).tolist()}


def rmse_loss():
    from edgeaffect.keras_backend import tf

    t = tf()

    def rmse(y_true, y_pred):
        return t.sqrt(t.reduce_mean(t.square(y_true - y_pred)) + 1e-9)

    return rmse


def per_recording(pred: np.ndarray, owner: np.ndarray) -> np.ndarray:
    recs = np.unique(owner)
    return recs, np.asarray([pred[owner == r].mean() for r in recs])


def segment_feature_cache(extractor, data: SpectroDataset, norm: dict, path: Path, key: str, log) -> np.ndarray:
    """The frozen extractor's features of every segment, computed once (in batches, with
    progress) and kept in the run folder: with the backbone frozen, epochs then cost only the
    transformer. Reused when ``key`` (the weights and the config) matches."""
    from edgeaffect.progress import Progress

    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key and len(z["features"]) == len(data.mel):
                return z["features"]
    mean, std = np.asarray(norm["mel_mean"], np.float32), np.asarray(norm["mel_std"], np.float32)
    batch, out = 64, []
    shown = Progress("frozen-backbone features (segments)", len(data.mel), stream=log)
    for a in range(0, len(data.mel), batch):
        out.append(extractor.predict(to_pixels(data.mel[a : a + batch], mean, std), batch_size=batch, verbose=0))
        shown(min(a + batch, len(data.mel)))
    feats = np.concatenate(out).astype(np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, features=feats, key=np.asarray(key))
    return feats


def cached_sequence_inputs(data: SpectroDataset, idx, feats: np.ndarray, norm: dict):
    rows, owner = data.sequences(idx)
    h = ((data.vlnep - np.asarray(norm["vlnep_mean"], np.float32)) / np.asarray(norm["vlnep_std"], np.float32))[rows]
    return {"spectral": feats[rows], "vlnep": h.astype(np.float32)}, data.scores[owner], owner


def _frozen_inputs(spec, c, data: SpectroDataset, norm: dict, out: Path, log):
    """(the extractor, each part's cached-feature sequence inputs) for a frozen backbone."""
    import hashlib

    from edgeaffect.families.spectrotemporal.model import build_extractor

    extractor = build_extractor(c)
    weights = Path(c.backbone_weights)
    stamp = f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}" if c.backbone_weights != "none" else "random"
    key = hashlib.sha1(json.dumps([c.to_dict(), stamp, norm]).encode()).hexdigest()
    feats = segment_feature_cache(extractor, data, norm, out / "segment-features.npz", key, log)
    return extractor, [cached_sequence_inputs(data, data.recordings(p), feats, norm) for p in ("train", "val", "test")]


def train_spectronet(spec, data: SpectroDataset, out: Path, *, seed: int, epochs: int | None, task,
                     deterministic: bool = False, log=sys.stderr) -> SpectroRun:
    """The whole network end to end; with ``freeze_backbone`` the sequence model alone, on
    the frozen extractor's cached per-segment features (the same function, far cheaper)."""
    from edgeaffect.keras_backend import keras, tf

    k, c = keras(), spec.config
    out.mkdir(parents=True, exist_ok=True)
    k.utils.set_random_seed(seed)
    if deterministic:
        tf().config.experimental.enable_op_determinism()
    norm = normalisation(data)
    run = SpectroRun(out, spec, None, {}, norm)
    if c.freeze_backbone:
        from edgeaffect.families.spectrotemporal.model import build_sequence_model

        extractor, parts = _frozen_inputs(spec, c, data, norm, out, log)
        build = lambda: build_sequence_model(c)  # noqa: E731
    else:
        parts = [sequence_inputs(data, data.recordings(p), norm) for p in ("train", "val", "test")]
        build = spec.build_model
    (x_tr, y_tr, _), (x_va, y_va, own_va), (x_te, y_te, own_te) = parts
    with distribute.scope():  # --strategy: the model and its optimizer on every replica
        model = build()
        model.compile(optimizer=k.optimizers.Adam(c.learning_rate), loss=rmse_loss(), metrics=["mae"])
    distribute.per_replica_note(c.batch_size, log)
    n_epochs = epochs or c.epochs
    what = "sequence model on cached frozen-backbone features" if c.freeze_backbone else "end to end"
    print(f"training {spec.name} ({what}): {len(y_tr)} / {len(y_va)} / {len(y_te)} sequences, {n_epochs} epochs",
          file=log, flush=True)
    # Killed and run again with the same request, training resumes after the last finished
    # epoch with the same weights, optimizer, dropout and sample order (edgeaffect.train.resume).
    digest = write_split(out, {p: data.recordings(p) for p in ("train", "val", "test")})
    request = {"model": spec.name, "model_config": c.to_dict(), "seed": seed, "deterministic": deterministic,
               "training": what}
    t0 = time.monotonic()
    result = fit(model, x_tr, y_tr, validation=(x_va, y_va), epochs=n_epochs, batch_size=c.batch_size, seed=seed,
                 run_dir=out, request=request, split_sha256=digest, log=log, log_every=max(1, n_epochs // 10))
    pred = model.predict(x_te, batch_size=64, verbose=0).reshape(-1)
    development = _figures(model, x_va, own_va, data, task, spec)  # the model the inputs were cut for
    if c.freeze_backbone:  # the whole network from its two parts, for export and for Keras users
        from edgeaffect.families.spectrotemporal.model import copy_weights

        whole = spec.build_model()
        copy_weights(extractor, whole, shared_only=True)
        copy_weights(model, whole, shared_only=True)
        model = whole
    recs, scores = per_recording(pred, own_te)
    report = task.report(data.scores[recs], scores, spec.labels)
    train_mean = float(data.scores[data.recordings("train")].mean())
    baseline = float(np.abs(data.scores[recs] - train_mean).mean())
    run.info.update({"model": spec.name, "family": spec.family, "model_config": c.to_dict(), "seed": seed,
                     "corpus": data.corpus, "split": {"kind": "paper", "train": int(len(data.recordings("train"))),
                                                      "val": int(len(data.recordings("val"))), "test": len(recs)},
                     "epochs": len(result["history"]), "kept": KEPT, "curves": _curves(result["history"]),
                     "train_seconds": round(time.monotonic() - t0, 1),
                     "split_sha256": digest, "resumed_from_epoch": result["resumed_from"],
                     "training": what,
                     "norm": norm, "test": {key: report[key] for key in task.summary_keys()},
                     "test_unit": "recording (mean over its sequences)",
                     # The paper compares its modules (Tables 1-3) on Development: the ablation table reads these.
                     "development": development,
                     "baseline_mae_predicting_the_training_mean": baseline,
                     "note": "Figures on the data given to train; on the synthetic corpus they are not paper results."})
    with atomic_path(out / "weights.h5") as tmp:
        model.save_weights(str(tmp))
    save_dataset(out / "features.npz", data)
    atomic_write_text(out / "run.json", json.dumps(run.info, indent=2))
    result["checkpoint"].remove()  # the run is finished: run.json is its record
    print(f"  test MAE {report['mae']:.2f}, RMSE {report['rmse']:.2f} per recording (predicting the training mean: "
          f"MAE {baseline:.2f})", file=log, flush=True)
    run.model = model
    return run


def _figures(model, x, owner, data: SpectroDataset, task, spec) -> dict:
    """A partition's summary figures per recording (the mean over its sequences)."""
    pred = model.predict(x, batch_size=64, verbose=0).reshape(-1)
    recs, scores = per_recording(pred, owner)
    report = task.report(data.scores[recs], scores, spec.labels)
    return {key: report[key] for key in task.summary_keys()}


def _curves(history: list[dict]) -> dict:
    """The per-epoch training and Development losses (the paper's Figs. 8-9), for the record."""
    return {"loss": [h["loss"] for h in history], "val_loss": [h["val_loss"] for h in history]}


def load_spectro_run(folder: Path, info: dict) -> SpectroRun:
    spec = get_model(info["model"])
    # The trained weights are in weights.h5: the ImageNet file it started from is not needed again.
    spec = replace(spec, config=replace(SpectroNetConfig.from_dict(info["model_config"]), backbone_weights="none"))
    model = spec.build_model()
    model.load_weights(str(folder / "weights.h5"))
    return SpectroRun(folder, spec, model, info, info["norm"])


def spectro_run_dataset(run: SpectroRun) -> SpectroDataset:
    return load_dataset(run.folder / "features.npz", run.config.features)
