"""Train the detector's head on frozen wav2vec 2.0 features (the paper's recipe otherwise):
Adam with PyTorch's weight decay (an L2 term in the gradient) at 6e-3, batches of 32
participants, up to 200 epochs, stopping after 10 without a better development loss and
keeping the best epoch's weights. Scores are per participant.

Splits: ``paper`` trains on DAIC-WOZ's train split, stops early on its dev split and
reports on dev (the paper's protocol: its numbers are on dev, which also chose the epoch,
an optimistic figure); ``heldout`` stops early on a stratified fifth of the train split
(``split_seed``) so that the dev figures are untouched by the training. Test figures are
reported only where the split files carry test labels.

A run folder holds ``run.json`` (config, participants, metrics) and ``weights.h5``; the
features stay in the corpus cache it names. A frozen-feature run also records its backbone
exactly, for the staged export: ``backbone.npz`` (every layer's weights) for the random
tiny backbone, the checkpoint folder and its files' sizes and times for a real one (a
changed or missing checkpoint is refused at export, never silently replaced).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgeaffect.families.wav2vec2.daicwoz import normalise
from edgeaffect.families.wav2vec2.dataset import DepressionCorpus, corpus_from_record, cut_as, embed_corpus
from edgeaffect.families.wav2vec2.model import (ABLATIONS, SETTING_ROWS, DetectorConfig, ablate, apply_setting,
                                                apply_vad, build_head, setting_of)
from edgeaffect.io import atomic_path, atomic_write_text
from edgeaffect.contract import get_model
from edgeaffect.train.runs import Run

BACKBONE_FILE = "backbone.npz"


@dataclass
class DetectorRun(Run):
    parts: dict | None = None  # train / val / test participant indices
    data: DepressionCorpus | None = None

    @property
    def config(self) -> DetectorConfig:
        return self.spec.config

    def split_inputs(self, data: DepressionCorpus, part: str):
        idx = np.asarray(self.parts[part], np.int64)
        make = data.audio_batch if self.config.fine_tune else data.batch
        return make(idx, self.config.max_segments), data.labels[idx]

    def recording_inputs(self, data: DepressionCorpus, part: str) -> list[tuple[dict, float]]:
        """Per labelled participant of ``part``: the device adapter's input (its segments,
        normalised, the first ``max_segments``) and its label. A corpus without test labels
        (DAIC-WOZ as released) verifies on dev instead: the exporter needs labelled ones."""
        idx = [i for i in self.parts[part] if data.labels[i] >= 0]
        if not idx and part == "test":
            idx = [i for i in self.parts["val"] if data.labels[i] >= 0]
        return [({"audio": normalise(data.audio(int(i))[: self.config.max_segments])}, float(data.labels[i]))
                for i in idx]

    def backbone_weights(self) -> dict:
        """Keras layer name -> weights of the backbone this run's head was trained on."""
        c = self.config
        if c.fine_tune:  # the backbone is inside the model, fine-tuned
            sub = next(layer for layer in self.model.layers if layer.name.startswith("wav2vec2")
                       and hasattr(layer, "layers"))
            return {layer.name: layer.get_weights() for layer in sub.layers if layer.weights}
        saved = self.folder / BACKBONE_FILE
        if saved.is_file():
            with np.load(saved) as z:
                out: dict = {}
                for key in sorted(z.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
                    out.setdefault(key.rsplit("/", 1)[0], []).append(z[key])
            return out
        record = self.info.get("backbone_checkpoint")
        if record is not None:
            from edgeaffect.errors import InputError
            from edgeaffect.families.wav2vec2.checkpoint import read_checkpoint
            from edgeaffect.families.wav2vec2.dataset import checkpoint_ident

            folder = Path(record["checkpoint"])
            if not folder.is_dir() or checkpoint_ident(folder) != record:
                raise InputError(f"the run in {self.folder} was trained on the wav2vec 2.0 checkpoint {folder}, "
                                 "which is missing or has changed since; restore it or train again")
            return read_checkpoint(folder)[1]
        # Runs made before the backbone was recorded: the random tiny one is rebuilt (seed 0).
        from edgeaffect.families.wav2vec2.dataset import backbone_for

        model, _, _ = backbone_for(c, None, seed=0)
        return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}

    def preprocessing(self) -> dict:
        c = self.config
        return {"kind": "wav2vec2-detector", "sample_rate": c.sample_rate, "segment_s": c.segment_s,
                "tail": c.tail, "vad": c.vad.to_dict() if c.vad else None, "layers": c.layers,
                "max_segments": c.max_segments, "frames": c.frames, "hidden": c.hidden, "backbone": c.backbone,
                "live_segments": c.live_segments,
                "output": "p(depressed) per participant from all its segments; weights: each segment's share"}


def split_parts(data: DepressionCorpus, split: str, split_seed: int | None) -> dict[str, list[int]]:
    train, dev, test = (data.participants(p) for p in ("train", "val", "test"))
    if not len(train) or not len(dev):
        from edgeaffect.errors import InputError

        raise InputError("the corpus needs labelled participants in both the train and the dev split files")
    if split == "paper":
        return {"train": train.tolist(), "stop": dev.tolist(), "val": dev.tolist(), "test": test.tolist()}
    rng = np.random.default_rng(0 if split_seed is None else split_seed)
    stop = []
    for y in (0, 1):
        members = rng.permutation(train[data.labels[train] == y])
        stop += members[: max(1, len(members) // 5)].tolist()
    return {"train": sorted(set(train.tolist()) - set(stop)), "stop": sorted(stop), "val": dev.tolist(),
            "test": test.tolist()}


def _weights(y: np.ndarray, balance: bool) -> tuple[float, float]:
    if not balance:
        return 1.0, 1.0
    pos = max(1, int((y == 1).sum()))
    neg = max(1, int((y == 0).sum()))
    return len(y) / (2.0 * neg), len(y) / (2.0 * pos)


def fit_head(model, data: DepressionCorpus, parts: dict, c: DetectorConfig, *, seed: int, epochs: int,
             log=sys.stderr) -> dict:
    """The custom loop: L2 weight decay in the gradient (PyTorch Adam's), the class weights,
    early stopping on the ``stop`` participants; the best epoch's weights are kept. When
    the backbone is in the model its trainable variables get their own Adam at
    ``lr_backbone``."""
    from edgeaffect.families.wav2vec2.model import backbone_variables
    from edgeaffect.keras_backend import keras, tf

    from edgeaffect.train import distribute

    k, t = keras(), tf()
    dist = distribute.current()
    slow_ids = backbone_variables(model)
    with dist.scope():
        opt, slow_opt = k.optimizers.Adam(c.lr_head), k.optimizers.Adam(c.lr_backbone)
    y_all = data.labels.astype(np.float32)
    w_neg, w_pos = _weights(data.labels[parts["train"]], c.balance)
    variables = model.trainable_variables
    fast = [i for i, v in enumerate(variables) if id(v) not in slow_ids]
    slow = [i for i, v in enumerate(variables) if id(v) in slow_ids]

    @t.function(reduce_retracing=True)
    def step(x, m, y, w):
        with t.GradientTape() as tape:
            p = model([x, m], training=True)[:, 0]
            p = t.clip_by_value(p, 1e-7, 1 - 1e-7)
            loss = -t.reduce_mean(w * (y * t.math.log(p) + (1 - y) * t.math.log(1 - p)))
        grads = tape.gradient(loss, variables)
        grads = [g + c.weight_decay * v for g, v in zip(grads, variables)]
        opt.apply_gradients([(grads[i], variables[i]) for i in fast])
        if slow:
            slow_opt.apply_gradients([(grads[i], variables[i]) for i in slow])
        return loss

    step = step if dist.strategy is None else _replica_step(dist, model, variables, fast, slow, opt, slow_opt, c)

    def evaluate(idx):
        idx = np.asarray(idx)
        probs = predict(model, data, idx, c.batch_size)
        y = y_all[idx]
        p = np.clip(probs, 1e-7, 1 - 1e-7)
        loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        return loss, probs

    rng = np.random.default_rng(seed)
    train = np.asarray(parts["train"])
    best, best_weights, waited, history = None, model.get_weights(), 0, []
    t0 = time.monotonic()
    for epoch in range(epochs):
        losses, order = [], rng.permutation(train)
        for a in range(0, len(order), c.batch_size):
            idx = order[a:a + c.batch_size]
            x, m = _arrays(data.inputs(idx))
            y = y_all[idx]
            w = np.where(y == 1, w_pos, w_neg).astype(np.float32)
            losses.append(float(step(x, m, y, w)))
        stop_loss, probs = evaluate(parts["stop"])
        f1 = _f1(data.labels[parts["stop"]], probs)
        value = stop_loss if c.monitor == "loss" else -f1
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "stop_loss": stop_loss, "stop_f1": f1})
        if best is None or value < best - 1e-6:
            best, best_weights, waited = value, model.get_weights(), 0
            history[-1]["best"] = True
        else:
            waited += 1
        if epoch == 0 or (epoch + 1) % 10 == 0:
            print(f"  epoch {epoch + 1}: loss {np.mean(losses):.4f}  early-stop loss {stop_loss:.4f}  F1 {f1:.3f} "
                  f"({time.monotonic() - t0:.0f} s)", file=log, flush=True)
        if waited >= c.patience:
            break
    model.set_weights(best_weights)
    best_epoch = max(h["epoch"] for h in history if h.get("best"))
    return {"epochs": len(history), "best_epoch": best_epoch, "history": history}


def _replica_step(dist, model, variables, fast, slow, opt, slow_opt, c):
    """The same step under ``--strategy``: each replica takes its rows of the global batch;
    its loss is its share of the global mean (a sum over its rows / the global batch size),
    so the optimizer's sum over replicas is the single-device gradient; the weight-decay
    term is added once in all (a 1/replicas share per replica)."""
    from edgeaffect.keras_backend import tf

    t, strategy, replicas = tf(), dist.strategy, dist.replicas

    def replica(x, m, y, w, n):
        with t.GradientTape() as tape:
            p = model([x, m], training=True)[:, 0]
            p = t.clip_by_value(p, 1e-7, 1 - 1e-7)
            loss = -t.reduce_sum(w * (y * t.math.log(p) + (1 - y) * t.math.log(1 - p))) / n
        grads = tape.gradient(loss, variables)
        grads = [g + (c.weight_decay / replicas) * v for g, v in zip(grads, variables)]
        opt.apply_gradients([(grads[i], variables[i]) for i in fast])
        if slow:
            slow_opt.apply_gradients([(grads[i], variables[i]) for i in slow])
        return loss

    @t.function(reduce_retracing=True)
    def run(values):
        losses = strategy.run(replica, args=values)
        return strategy.reduce("SUM", losses, axis=None)

    def step(x, m, y, w):
        rows = np.array_split(np.arange(len(y)), replicas)
        n = np.float32(len(y))
        values = tuple(strategy.experimental_distribute_values_from_function(
            lambda ctx, a=a: a[rows[ctx.replica_id_in_sync_group]] if a.ndim else a) for a in (x, m, y, w, n))
        return run(values)

    return step


def _f1(y: np.ndarray, probs: np.ndarray) -> float:
    d = probs >= 0.5
    tp, fp, fn = int((d & (y == 1)).sum()), int((d & (y == 0)).sum()), int((~d & (y == 1)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _arrays(x: dict) -> tuple[np.ndarray, np.ndarray]:
    return x["audio"] if "audio" in x else x["features"], x["segment_mask"]


def predict(model, data: DepressionCorpus, idx, batch_size: int = 32) -> np.ndarray:
    out = []
    for a in range(0, len(idx), batch_size):
        out.append(np.asarray(model(list(_arrays(data.inputs(idx[a:a + batch_size]))), training=False))[:, 0])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def participant_report(task, data: DepressionCorpus, idx, probs) -> dict:
    """The task's report (precision / recall / F1 of the depressed class and macro over both
    classes, ROC AUC, accuracy, the confusion matrix) plus what always answering the
    majority would score."""
    y = data.labels[np.asarray(idx, np.int64)]
    r = task.report(y, probs.reshape(-1, 1), ())
    majority = int((y == 1).mean() > 0.5) if len(y) else 0
    r["majority_accuracy"] = float((y == majority).mean()) if len(y) else 0.0
    return r


def _fmt_auc(auc: float | None) -> str:
    return "undefined (one class only)" if auc is None else f"{auc:.3f}"


def train_detector(spec, data: DepressionCorpus, out: Path, *, split: str, seed: int, split_seed: int | None,
                   epochs: int | None, task, ablation: str | None, backbone: str | None, fine_tune: bool = False,
                   setting: str | None = None, vad: str | None = None, deterministic: bool = False,
                   log=sys.stderr) -> DetectorRun:
    from edgeaffect.families.wav2vec2.dataset import backbone_for
    from edgeaffect.families.wav2vec2.model import build_finetune
    from edgeaffect.keras_backend import keras, tf

    k = keras()
    # the paper's setting first, then the ablation row's change to it (Table 4 is fine-tuned)
    c = apply_vad(ablate(apply_setting(spec.config, setting), ablation), vad)
    if fine_tune:
        if setting and not c.fine_tune:
            from edgeaffect.errors import InputError

            raise InputError(f"--fine-tune contradicts --setting {setting}, a frozen setting")
        c = replace(c, fine_tune=True)
    spec = replace(spec, config=c)
    # This run's view of the corpus (the caller's object is left as it was: ablation rows share it),
    # its segments cut as this run says (--vad off: whole turns).
    data = cut_as(data, c, log)
    data = replace(data, config=replace(data.config, layers=c.layers, fine_tune=c.fine_tune), features_dir=None,
                   _cache={})
    out.mkdir(parents=True, exist_ok=True)
    parts = split_parts(data, split, split_seed)
    # The random tiny backbone is one fixed model (seed 0), whatever the run's seed.
    from edgeaffect.train import distribute

    if c.fine_tune:
        with distribute.scope():  # --strategy: the model on every replica
            bb, _, _ = backbone_for(c, backbone, seed=0)
            k.utils.set_random_seed(seed)
            model = build_finetune(c, bb)
    else:
        embed_corpus(data, backbone, seed=0, log=log)
        k.utils.set_random_seed(seed)
        with distribute.scope():
            model = build_head(c)
    distribute.per_replica_note(c.batch_size, log)
    if deterministic:
        tf().config.experimental.enable_op_determinism()
    n_epochs = epochs or c.epochs
    print(f"training {spec.name}{' (' + ablation + ')' if ablation else ''}: {len(parts['train'])} participants, "
          f"early stop on {len(parts['stop'])}, up to {n_epochs} epochs", file=log, flush=True)
    t0 = time.monotonic()
    fit = fit_head(model, data, parts, c, seed=seed, epochs=n_epochs, log=log)
    reports = {}
    for name in ("val", "test"):
        idx = np.asarray(parts[name], np.int64)
        if len(idx):
            reports[name] = participant_report(task, data, idx, predict(model, data, idx, c.batch_size))
    # The figure a run stands by: dev, the paper's reporting split.
    main = reports["val"]
    info = {"model": spec.name, "family": spec.family, "model_config": c.to_dict(), "ablation": ablation,
            "seed": seed, "split_seed": split_seed, "corpus": data.corpus, "labels": list(spec.labels),
            "vad": "on" if c.vad else "off", "setting": setting_of(c),
            "paper_row": SETTING_ROWS.get(setting_of(c), "no row of the paper")
            + (f", changed by the ablation row {ablation}" if ablation else ""),
            "split": {"kind": split, "train": len(parts["train"]), "early_stop": len(parts["stop"]),
                      "val": len(parts["val"]), "test": len(parts["test"])},
            "parts": parts, "epochs": fit["epochs"], "best_epoch": fit["best_epoch"],
            "train_seconds": round(time.monotonic() - t0, 1), "backbone": backbone or "random (tiny, tests)",
            "test": {key: main[key] for key in (*task.summary_keys(), "majority_accuracy")},
            "reported_on": "dev", "test_split": "dev (DAIC-WOZ development split; the paper reports on it)",
            "reports": reports, "history": fit["history"],
            "corpus_cache": str(data.folder), "features": str(data.features_dir) if data.features_dir else None,
            "participants": data.record(),
            "note": ("paper split: dev also chose the epoch (the paper's protocol, optimistic). " if split == "paper"
                     else "") + "Figures on the data given to train; on the synthetic corpus they are not paper "
                                "results."}
    if not c.fine_tune:
        if backbone is None:  # the random tiny backbone: its weights, so the export rebuilds it exactly
            bb, _, _ = backbone_for(c, None, seed=0)
            arrays = {f"{layer.name}/{j}": w for layer in bb.layers for j, w in enumerate(layer.get_weights())}
            with atomic_path(out / BACKBONE_FILE) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        else:
            from edgeaffect.families.wav2vec2.dataset import checkpoint_ident

            info["backbone_checkpoint"] = checkpoint_ident(Path(backbone))
    with atomic_path(out / "weights.h5") as tmp:
        model.save_weights(str(tmp))
    atomic_write_text(out / "run.json", json.dumps(info, indent=2))
    print(f"  dev macro precision {main['macro_precision']:.3f}, recall {main['macro_recall']:.3f}, "
          f"F1 {main['macro_f1']:.3f} (the paper's convention); depressed class precision {main['precision']:.3f}, "
          f"recall {main['recall']:.3f}, F1 {main['f1']:.3f}; AUC {_fmt_auc(main['auc'])}; accuracy "
          f"{main['accuracy']:.3f} (majority class {main['majority_accuracy']:.3f}) over {main['n']} participants",
          file=log, flush=True)
    return DetectorRun(out, spec, model, info, parts, data)


def load_detector_run(folder: Path, info: dict) -> DetectorRun:
    spec = get_model(info["model"])
    c = DetectorConfig.from_dict(info["model_config"])
    spec = replace(spec, config=c)
    if c.fine_tune:
        from edgeaffect.families.wav2vec2.backbone import Wav2Vec2Config, build_wav2vec2
        from edgeaffect.families.wav2vec2.model import build_finetune

        model = build_finetune(c, build_wav2vec2(Wav2Vec2Config.from_dict(c.backbone)))
    else:
        model = build_head(c)
    model.load_weights(str(folder / "weights.h5"))
    data = corpus_from_record(Path(info["corpus_cache"]), info["features"], info["participants"], c)
    return DetectorRun(folder, spec, model, info, info["parts"], data)


__all__ = ["ABLATIONS", "DetectorRun", "load_detector_run", "train_detector"]
