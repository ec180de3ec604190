"""One training process for tests/test_distribute.py: the test-only tone family
(tests/toy_family.py) trained the way the project's families train (model built and
compiled in ``distribute.scope()``, the resumable epoch loop of ``edgeaffect.train.resume``,
``edgeaffect.train.families.train`` choosing the output folder), under a strategy.

    python tests/distribute_worker.py CORPUS OUT STRATEGY EPOCHS

MultiWorkerMirroredStrategy reads TF_CONFIG. The model has no dropout, so a distributed
step and a single-process step compute the same function of the same batch.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import toy_family  # noqa: E402
from edgeaffect.io import atomic_path, atomic_write_text  # noqa: E402

MODEL = "toy-tones-dist"
SPEC = replace(toy_family.SPEC, name=MODEL, family="toy-dist",
               config=replace(toy_family.SPEC.config, batch_size=16, learning_rate=1e-2))


class DistToyFamily(toy_family.ToyFamily):
    name = "toy-dist"

    def train(self, spec, dataset, out, *, split, seed, split_seed, epochs, deterministic, ablation, options,
              log=sys.stderr):
        from edgeaffect.keras_backend import keras, tf
        from edgeaffect.train import distribute
        from edgeaffect.train.resume import fit, write_split

        k, c = keras(), spec.config
        k.utils.set_random_seed(seed)
        if deterministic:
            tf().config.experimental.enable_op_determinism()
        out.mkdir(parents=True, exist_ok=True)
        parts = toy_family._split(len(dataset.y), seed if split_seed is None else split_seed)
        mean, std = dataset.x[parts["train"]].mean(0), dataset.x[parts["train"]].std(0) + 1e-6
        info = {"model": spec.name, "family": self.name, "seed": seed, "split_seed": seed,
                "split": {"kind": split, **{p: int(v.size) for p, v in parts.items()}},
                "mean": mean.tolist(), "std": std.tolist()}
        with distribute.scope():
            model = spec.build_model()
            model.compile(optimizer=k.optimizers.Adam(c.learning_rate), loss="mse")
        run = toy_family.ToyRun(out, spec, model, info, mean, std)
        (x_tr, y_tr), (x_va, y_va) = (self.split_inputs(run, dataset, p) for p in ("train", "val"))
        digest = write_split(out, parts)
        result = fit(model, x_tr["bands"], y_tr, validation=(x_va["bands"], y_va), epochs=epochs, batch_size=c.batch_size,
                     seed=seed, run_dir=out, request={"model": spec.name, "seed": seed}, split_sha256=digest, log=log)
        info.update({"epochs": len(result["history"]), "resumed_from_epoch": result["resumed_from"], "test": {}})
        with atomic_path(out / "weights.h5") as tmp:
            model.save_weights(str(tmp))
        atomic_write_text(out / "run.json", json.dumps(info, indent=2))
        result["checkpoint"].remove()
        return run


def main(corpus: str, out: str, strategy: str, epochs: str) -> None:
    from edgeaffect.contract import register_family
    from edgeaffect.contract import list_models, register_model
    from edgeaffect.train import distribute
    from edgeaffect.train.families import train

    register_family(DistToyFamily())
    if MODEL not in list_models():
        register_model(lambda: SPEC)
    with distribute.using(strategy) as dist:
        data = DistToyFamily().load_corpus(SPEC, Path(corpus), Path(out) / "cache")
        run = train(MODEL, data, Path(out), epochs=int(epochs), deterministic=True)
        w = np.concatenate([a.ravel() for a in run.model.get_weights()])
        print(json.dumps({"chief": dist.is_chief, "replicas": dist.replicas, "folder": str(run.folder),
                          "weights_sum": float(w.sum())}), flush=True)


def wav2vec2_head(strategy: str, out: str) -> None:
    """wav2vec2's own training loop (``fit_head``) on a tiny head without dropout, random
    features: the final weights to ``out`` (.npy)."""
    from edgeaffect.families.wav2vec2.model import build_head
    from edgeaffect.families.wav2vec2.train import fit_head
    from edgeaffect.contract import get_model
    from edgeaffect.train import distribute

    with distribute.using(strategy) as dist:
        from edgeaffect.keras_backend import keras

        c = replace(get_model("wav2vec2-tiny").config, dropout=0.0, batch_size=8)
        rng = np.random.default_rng(0)
        n = 24
        feats = rng.standard_normal((n, 3, c.frames, c.hidden)).astype(np.float32)

        class Data:
            labels = (np.arange(n) % 2).astype(np.int64)

            def inputs(self, idx, segments=None):
                idx = np.asarray(idx)
                return {"features": feats[idx], "segment_mask": np.ones((len(idx), 3), np.float32)}

        keras().utils.set_random_seed(0)
        with dist.scope():
            model = build_head(c)
        fit_head(model, Data(), {"train": list(range(18)), "stop": list(range(18, 24))}, c, seed=0, epochs=4)
        np.save(out, np.concatenate([w.ravel() for w in model.get_weights()]))
        print(json.dumps({"chief": dist.is_chief, "replicas": dist.replicas}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--wav2vec2":
        wav2vec2_head(*sys.argv[2:4])
    else:
        main(*sys.argv[1:5])
