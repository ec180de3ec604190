"""One entry point per step for every model family: load the corpus its way, train its
way. The CLI, the pipeline and the reproducibility / ablation drivers go through here;
each step asks the model's family (``edgeaffect.families``)."""

from __future__ import annotations

import sys
from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.contract import get_model


def load_corpus(model: str, data: str | Path, cache_dir: str | Path, corpus: str | None = None, log=sys.stderr):
    """The feature dataset ``model`` trains on, built from the corpus folder ``data``."""
    spec = get_model(model)
    return spec.family_plugin.load_corpus(spec, Path(data), Path(cache_dir), corpus, log=log)


def check_request(model: str, split: str = "paper", ablation: str | None = None, options: dict | None = None):
    """Refuse a split, ablation or option the model's family does not have, before any work."""
    family = get_model(model).family_plugin
    if split not in family.split_kinds:
        raise InputError(f"unknown split '{split}' for {model}; choose one of: {', '.join(family.split_kinds)}")
    family.check_ablation(ablation)
    family.check_options(options or {})
    return family


def train(model: str, dataset, out: str | Path, *, split: str = "paper", seed: int = 0, split_seed: int | None = None,
          epochs: int | None = None, deterministic: bool = False, ablation: str | None = None,
          options: dict | None = None, log=sys.stderr):
    """Train under the process's distribution strategy (``edgeaffect.train.distribute``:
    callers wrap the call in ``distribute.using(name)``). Only the chief writes ``out``: any
    other worker trains into a private temporary folder, removed when the strategy's block
    ends."""
    from edgeaffect.train import distribute

    spec = get_model(model)
    family = check_request(model, split, ablation, options)
    dist = distribute.current()
    folder = dist.output_dir(Path(out))
    run = family.train(spec, dataset, folder, split=split, seed=seed, split_seed=split_seed, epochs=epochs,
                       deterministic=deterministic, ablation=ablation, options=options or {}, log=log)
    if dist.strategy is not None and dist.is_chief:
        _record_distribution(folder, dist.describe())
        run.info["distribution"] = dist.describe()
    return run


def _record_distribution(folder: Path, what: dict) -> None:
    """run.json says how the run was distributed (written by the family, completed here)."""
    import json

    from edgeaffect.io import atomic_write_text

    path = folder / "run.json"
    if path.is_file():
        info = json.loads(path.read_text())
        info["distribution"] = what
        atomic_write_text(path, json.dumps(info, indent=2))


def test_predictions(run, dataset):
    """(decision per test sample, targets) of a trained run on its own split."""
    from edgeaffect.train.runs import test_outputs

    outputs, y = test_outputs(run, dataset)
    return run.family.task.decisions(outputs), y
