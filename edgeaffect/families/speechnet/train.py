"""Train SpeechNet as the paper's Sec. 5.1: random 90/10 split, 200 epochs, batch 256,
dropout 0.5, Adam 1e-3, the balanced margin loss; or a speaker-independent split.

The paper trains on all of its 90 % and keeps the model after the last epoch. We do the
same (no model selection on validation data), but hold a tenth of the training part out
as a validation set for the learning curves and the QAT fine-tune's early stopping.

A run folder holds ``run.json`` (model config, normalisation statistics, split, metrics),
``split.json`` (which utterances are train / val / test), ``weights.h5``, ``features.npz``
(this run's features, for export) and metrics files. A run killed while training resumes
from its last finished epoch when the same command runs again (``edgeaffect.train.resume``).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgeaffect import __version__
from edgeaffect.families.speechnet.dataset import SpeechDataset, load_speech_dataset, save_speech_dataset, sequences
from edgeaffect.data.splits import make_split
from edgeaffect.errors import InputError
from edgeaffect.io import atomic_path, atomic_write_text
from edgeaffect.contract import ModelSpec, get_model
from edgeaffect.families.speechnet.model import SpeechNetConfig, ablate
from edgeaffect.train import distribute
from edgeaffect.families.speechnet.losses import balanced_class_weights, balanced_margin_loss
from edgeaffect.contract.metrics import classification_report, save_report
from edgeaffect.train.resume import fit, write_split
from edgeaffect.train.runs import Run

SPLIT_FRACTIONS = {"paper": (0.1, 0.1), "speaker": (0.2, 0.2)}  # (test, validation of the rest)


@dataclass
class SpeechRun(Run):
    """A SpeechNet run; ``spec`` carries this run's config (an ablation or a small variant)."""

    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    @property
    def config(self) -> SpeechNetConfig:
        return self.spec.config

    @property
    def feature_config(self):
        return self.config.features

    def split(self, data: SpeechDataset):
        kind = self.info["split"]["kind"]
        test, val = SPLIT_FRACTIONS[kind]
        return make_split(kind, data.labels, data.clip_ids, data.speakers, test_fraction=test, val_fraction=val,
                          seed=self.info["split_seed"])

    def split_inputs(self, data: SpeechDataset, part: str = "test") -> tuple[dict, np.ndarray]:
        idx = getattr(self.split(data), part)
        return {"features": sequences(data, idx, self.config.max_frames, self.mean, self.std)}, data.labels[idx]

    def loss(self):
        return balanced_margin_loss(np.asarray(self.info["class_weights"], np.float32), self.config.margin_alphas)

    def preprocessing(self) -> dict:
        return {"kind": "fusion", "features": self.config.features.to_dict(), "max_frames": self.config.max_frames,
                "long_utterances": "centre crop to max_frames; short ones zero-padded after standardisation",
                "mean": self.mean.tolist(), "std": self.std.tolist(),
                "output": "capsule lengths in [0, 1), one per class; the label is the longest"}


def _spec_for(model_name: str, config: SpeechNetConfig | None) -> ModelSpec:
    spec = get_model(model_name)
    if config is None:
        return spec
    return replace(spec, config=config, inputs={"features": (config.max_frames, config.features.dim)})


def train_speechnet(model_name: str, data: SpeechDataset, run_dir: str | Path, *, split: str = "paper",
                    seed: int = 0, split_seed: int | None = None, epochs: int | None = None,
                    config: SpeechNetConfig | None = None, ablation: str | None = None,
                    deterministic: bool = False, log=sys.stderr) -> SpeechRun:
    from edgeaffect.keras_backend import keras, tf

    spec = _spec_for(model_name, config)
    if ablation:
        spec = _spec_for(model_name, ablate(spec.config, ablation))
    cfg: SpeechNetConfig = spec.config
    if split not in SPLIT_FRACTIONS:
        raise InputError(f"unknown split '{split}' for SpeechNet; choose one of: {', '.join(SPLIT_FRACTIONS)}")
    if tuple(data.label_names) != tuple(spec.labels):
        raise InputError(f"the data's classes {list(data.label_names)} are not {model_name}'s {list(spec.labels)}; "
                         f"build the features with the model's labels")
    if data.feature_config != cfg.features:
        raise InputError("the data's fusion-feature config differs from the model's; rebuild the features")
    k, run_dir = keras(), Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    k.utils.set_random_seed(seed)
    if deterministic:
        tf().config.experimental.enable_op_determinism()
    split_seed = seed if split_seed is None else split_seed
    test_f, val_f = SPLIT_FRACTIONS[split]
    sp = make_split(split, data.labels, data.clip_ids, data.speakers, test_fraction=test_f, val_fraction=val_f,
                    seed=split_seed)
    mean, std = data.frame_statistics(sp.train)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)  # a constant dimension stays at 0, not NaN
    weights = (balanced_class_weights(data.labels[sp.train], cfg.n_classes) if cfg.class_weights == "balanced"
               else np.ones(cfg.n_classes, np.float32))
    info = {"toolkit_version": __version__, "model": model_name, "family": spec.family, "corpus": data.corpus,
            "tensorflow": tf().__version__, "model_config": cfg.to_dict(), "ablation": ablation or "full",
            "split": sp.describe(), "split_seed": split_seed, "seed": seed, "deterministic": deterministic,
            "class_weights": weights.tolist(), "labels": list(spec.labels)}
    onehot = np.eye(cfg.n_classes, dtype=np.float32)
    run = SpeechRun(run_dir, spec, None, info, mean, std)
    x_tr, y_tr = run.split_inputs(data, "train")
    x_va, y_va = run.split_inputs(data, "val")
    x_te, y_te = run.split_inputs(data, "test")
    with distribute.scope():  # --strategy: the model and its optimizer on every replica
        model = spec.build_model()
        model.compile(optimizer=k.optimizers.Adam(cfg.learning_rate), loss=run.loss(), metrics=["accuracy"])
    distribute.per_replica_note(cfg.batch_size, log)
    n_epochs = epochs or cfg.epochs
    print(f"training {model_name} ({info['ablation']}): {sp.describe()} utterances, {n_epochs} epochs, "
          f"batch {cfg.batch_size}", file=log, flush=True)
    digest = write_split(run_dir, {"train": sp.train, "val": sp.val, "test": sp.test})
    request = {k: info[k] for k in ("model", "model_config", "ablation", "split", "split_seed", "seed",
                                    "deterministic", "class_weights")}
    t0 = time.monotonic()
    result = fit(model, x_tr["features"], onehot[y_tr], validation=(x_va["features"], onehot[y_va]), epochs=n_epochs,
                 batch_size=cfg.batch_size, seed=seed, run_dir=run_dir, request=request, split_sha256=digest,
                 log=log, log_every=max(1, n_epochs // 10))
    history = result["history"]
    train_s = time.monotonic() - t0
    scores = model.predict(x_te["features"], batch_size=256, verbose=0)
    report = classification_report(y_te, scores.argmax(axis=1), spec.labels)
    report["split"] = sp.describe()
    save_report(report, run_dir, "metrics", f"{model_name} ({split} split): accuracy {report['accuracy']:.3f}")
    with atomic_path(run_dir / "weights.h5") as tmp:
        model.save_weights(str(tmp))
    info.update({"mean": mean.tolist(), "std": std.tolist(), "epochs": len(history), "split_sha256": digest,
                 "resumed_from_epoch": result["resumed_from"], "train_seconds": round(train_s, 1),
                 "final": {"loss": history[-1]["loss"], "val_accuracy": history[-1]["val_accuracy"]},
                 "test": {key: report[key] for key in ("n", "accuracy", "macro_precision", "macro_recall", "macro_f1")},
                 "skipped_files": len(data.skipped),
                 "note": "Accuracy on the data given to train; on the synthetic corpus it is not a paper result."})
    save_speech_dataset(run_dir / "features.npz", data)
    atomic_write_text(run_dir / "run.json", json.dumps(info, indent=2))
    result["checkpoint"].remove()  # the run is finished: run.json is its record
    print(f"  test accuracy {report['accuracy']:.4f}, macro F1 {report['macro_f1']:.4f} ({train_s:.0f} s)",
          file=log, flush=True)
    run.model = model
    return run


def load_speech_run(run_dir: Path, info: dict) -> SpeechRun:
    spec = _spec_for(info["model"], SpeechNetConfig.from_dict(info["model_config"]))
    model = spec.build_model()
    model.load_weights(str(run_dir / "weights.h5"))
    return SpeechRun(run_dir, spec, model, info, np.asarray(info["mean"], np.float32),
                     np.asarray(info["std"], np.float32))


def speech_run_dataset(run: SpeechRun) -> SpeechDataset:
    path = run.folder / "features.npz"
    if not path.exists():
        raise InputError(f"{run.folder} has no features.npz; retrain the run with `edgeaffect train`")
    return load_speech_dataset(path)
