"""Train a registered AVER variant on a feature dataset, as the paper's Sec. III-D.

A run folder holds ``run.json`` (model, configs, normalisation statistics, split,
metrics), ``split.json`` (which samples are train / val / test), ``weights.h5`` and
``metrics*.json`` / ``*_confusion.png``. A run killed while training resumes from its last
finished epoch when the same command runs again (``checkpoint.npz``,
``edgeaffect.train.resume``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect import __version__
from edgeaffect.families.aver.dataset import AverDataset, load_dataset, save_dataset
from edgeaffect.data.splits import Split, make_split
from edgeaffect.errors import InputError
from edgeaffect.families.aver.features import AverFeatureConfig, model_inputs
from edgeaffect.io import atomic_path, atomic_write_text
from edgeaffect.contract import ModelSpec, get_model
from edgeaffect.train import distribute
from edgeaffect.contract.metrics import classification_report, save_report
from edgeaffect.train.resume import EarlyStop, fit, write_split
from edgeaffect.train.runs import Run


@dataclass
class AverRun(Run):
    """An AVER run: the model and everything needed to rebuild its inputs."""

    feature_config: AverFeatureConfig = AverFeatureConfig()
    mfcc_mean: np.ndarray | None = None
    mfcc_std: np.ndarray | None = None

    def inputs(self, face: np.ndarray, mfcc: np.ndarray) -> dict[str, np.ndarray]:
        return model_inputs({"face": face, "mfcc": mfcc}, self.mfcc_mean, self.mfcc_std)


def _augment(x: dict, y: np.ndarray, data: AverDataset, idx: np.ndarray, spec: ModelSpec, mean, std, rng):
    """RAVDESS augmentation (Sec. III-E): noisy faces paired with time-stretched audio, added as copies."""
    if data.mfcc_stretched is None:
        return x, y
    noisy = np.clip(x["face"] + rng.normal(0, np.sqrt(spec.config.face_noise_var), x["face"].shape), 0, 1)
    stretched = ((data.mfcc_stretched[idx] - mean) / std).astype(np.float32)[..., None]
    return ({"face": np.concatenate([x["face"], noisy.astype(np.float32)]),
             "mfcc": np.concatenate([x["mfcc"], stretched])}, np.concatenate([y, y]))


def train_aver(model_name: str, data: AverDataset, run_dir: str | Path, *, split: str = "paper", seed: int = 0,
               max_epochs: int | None = None, feature_config: AverFeatureConfig = AverFeatureConfig(),
               split_seed: int | None = None, deterministic: bool = False, log=sys.stderr) -> Run:
    """``seed`` drives initialisation, shuffling and augmentation; ``split_seed`` (default:
    ``seed``) the data split, so repeated runs can share one test set. ``deterministic``
    turns on TensorFlow's op determinism (slower; same seed, same weights)."""
    from edgeaffect.keras_backend import keras, tf

    spec = get_model(model_name)
    if data.labels.max() >= spec.config.n_classes:
        raise InputError(f"the data has label {data.labels.max()} but {model_name} has {spec.config.n_classes} classes")
    k, run_dir = keras(), Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    k.utils.set_random_seed(seed)
    if deterministic:
        tf().config.experimental.enable_op_determinism()
    sp: Split = make_split(split, data.labels, data.clip_ids, data.speakers,
                           seed=seed if split_seed is None else split_seed)
    mean = data.mfcc[sp.train].mean(axis=0)
    std = data.mfcc[sp.train].std(axis=0) + 1e-6
    onehot = np.eye(spec.config.n_classes, dtype=np.float32)

    def xy(idx):
        return model_inputs({"face": data.face[idx], "mfcc": data.mfcc[idx]}, mean, std), onehot[data.labels[idx]]

    (x_tr, y_tr), (x_va, y_va), (x_te, _) = xy(sp.train), xy(sp.val), xy(sp.test)
    if spec.config.augment:
        x_tr, y_tr = _augment(x_tr, y_tr, data, sp.train, spec, mean, std, np.random.default_rng(seed))

    cfg = spec.config
    with distribute.scope():  # --strategy: the model and its optimizer on every replica
        model = spec.build_model()
        model.compile(optimizer=k.optimizers.Adam(cfg.learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
                      loss="categorical_crossentropy", metrics=["accuracy"])
    distribute.per_replica_note(cfg.batch_size, log)
    digest = write_split(run_dir, {"train": sp.train, "val": sp.val, "test": sp.test})
    request = {"model": model_name, "split": split, "seed": seed, "split_seed": split_seed,
               "deterministic": deterministic, "model_config": cfg.to_dict(), "train_samples": len(y_tr)}
    print(f"training {model_name}: {sp.describe()} samples (train{' + augmented copies' if cfg.augment else ''}: "
          f"{len(y_tr)})", file=log, flush=True)
    t0 = time.monotonic()
    result = fit(model, x_tr, y_tr, validation=(x_va, y_va), epochs=max_epochs or cfg.max_epochs,
                 batch_size=cfg.batch_size, seed=seed, run_dir=run_dir, request=request, split_sha256=digest,
                 early_stop=EarlyStop("val_loss", cfg.min_delta, cfg.patience, restore_best_weights=True), log=log)
    train_s = time.monotonic() - t0
    probs = model.predict(x_te, batch_size=512, verbose=0)
    report = classification_report(data.labels[sp.test], probs.argmax(axis=1), spec.labels)
    report["split"] = sp.describe()
    save_report(report, run_dir, "metrics", f"{model_name} ({split} split): accuracy {report['accuracy']:.3f}")
    with atomic_path(run_dir / "weights.h5") as tmp:
        model.save_weights(str(tmp))
    info = {
        "toolkit_version": __version__, "model": model_name, "family": spec.family, "tensorflow": tf().__version__,
        "model_config": spec.config.to_dict(), "feature_config": feature_config.to_dict(),
        "mfcc_mean": mean.tolist(), "mfcc_std": std.tolist(), "labels": list(spec.labels),
        "split": sp.describe(), "split_sha256": digest, "seed": seed,
        "split_seed": seed if split_seed is None else split_seed, "epochs": len(result["history"]),
        "resumed_from_epoch": result["resumed_from"], "train_seconds": round(train_s, 1),
        "test": {key: report[key] for key in ("n", "accuracy", "macro_precision", "macro_recall", "macro_f1")},
        "skipped_clips": len(data.skipped),
        "note": "Accuracy on the data given to train; on the synthetic corpus it is not a paper result.",
    }
    save_dataset(run_dir / "features.npz", data)  # export verifies and calibrates on this run's own split
    atomic_write_text(run_dir / "run.json", json.dumps(info, indent=2))
    result["checkpoint"].remove()  # the run is finished: run.json is its record
    print(f"  test accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f} "
          f"({info['epochs']} epochs, {train_s:.0f} s)", file=log, flush=True)
    return AverRun(run_dir, spec, model, info, feature_config, mean, std)


def load_aver_run(run_dir: Path, info: dict) -> AverRun:
    spec = get_model(info["model"])
    model = spec.build_model()
    model.load_weights(str(run_dir / "weights.h5"))
    return AverRun(run_dir, spec, model, info, AverFeatureConfig.from_dict(info["feature_config"]),
                   np.asarray(info["mfcc_mean"], np.float32), np.asarray(info["mfcc_std"], np.float32))


def aver_run_dataset(run: AverRun) -> AverDataset:
    path = run.folder / "features.npz"
    if not path.exists():
        raise InputError(f"{run.folder} has no features.npz; retrain the run with `edgeaffect train`")
    return load_dataset(path)


def aver_split_inputs(run: AverRun, data: AverDataset, part: str = "test") -> tuple[dict, np.ndarray]:
    """The inputs and labels of a run's split part, rebuilt from its recorded seed and kind."""
    split_seed = run.info.get("split_seed")  # runs before split_seed was recorded split with their seed
    sp = make_split(run.info["split"]["kind"], data.labels, data.clip_ids, data.speakers,
                    seed=run.info["seed"] if split_seed is None else split_seed)
    idx = getattr(sp, part)
    return run.inputs(data.face[idx], data.mfcc[idx]), data.labels[idx]
