"""One entry point per step for every model family: load the corpus its way, train its
way. The CLI and the reproducibility / ablation drivers go through here."""

from __future__ import annotations

import sys
from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.models import get_model


def load_corpus(model: str, data: str | Path, cache_dir: str | Path, corpus: str | None = None, log=sys.stderr):
    """The feature dataset ``model`` trains on, built from the corpus folder ``data``."""
    spec = get_model(model)
    if spec.family == "speechnet":
        from edgeaffect.data.speech_dataset import build_speech_dataset

        return build_speech_dataset(data, corpus, spec.config.features, labels=spec.labels, cache_dir=cache_dir,
                                    log=log)
    if corpus not in (None, "ravdess"):
        raise InputError(f"{model} reads the RAVDESS layout; --corpus {corpus} is for speech models")
    from edgeaffect.data.dataset import build_aver_dataset

    stretch = spec.config.time_stretch_rate if spec.config.augment else None
    return build_aver_dataset(data, stretch_rate=stretch, cache_dir=cache_dir, log=log)


def train(model: str, dataset, out: str | Path, *, split: str = "paper", seed: int = 0, split_seed: int | None = None,
          epochs: int | None = None, deterministic: bool = False, ablation: str | None = None, config=None,
          log=sys.stderr):
    spec = get_model(model)
    if spec.family == "speechnet":
        from edgeaffect.train.speechnet import train_speechnet

        return train_speechnet(model, dataset, out, split=split, seed=seed, split_seed=split_seed, epochs=epochs,
                               deterministic=deterministic, ablation=ablation, config=config, log=log)
    if ablation or config is not None:
        raise InputError(f"ablations and config overrides are for SpeechNet models, not {model}")
    from edgeaffect.train.trainer import train_aver

    return train_aver(model, dataset, out, split=split, seed=seed, split_seed=split_seed, max_epochs=epochs,
                      deterministic=deterministic, log=log)


def test_predictions(run, dataset):
    """(predicted class per test sample, true labels) of a trained run on its own split."""
    from edgeaffect.train.trainer import split_inputs

    x, y = split_inputs(run, dataset, "test")
    return run.model.predict(x, batch_size=256, verbose=0).argmax(axis=1), y
