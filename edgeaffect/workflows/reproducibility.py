"""``edgeaffect reproducibility``: R training runs of one classifier on one split (one
process, or ``parallel`` processes at a time), their test decisions, and the rates of
``edgeaffect.train.reproducibility`` over them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgeaffect.contract import get_model
from edgeaffect.errors import InputError
from edgeaffect.io import atomic_write_text

RATES = ("glr", "flr", "plr", "clr", "fclr", "pclr")


def run_reproducibility(model: str, data: Path, out: Path, *, runs: int = 5, split: str = "paper",
                        epochs: int | None = None, corpus: str | None = None, deterministic: bool = False,
                        same_seed: bool = False, parallel: int = 1, log=sys.stderr) -> dict:
    """Train the runs (seeds 0..R-1, or all 0), write ``out/reproducibility.json``; returns it."""
    import numpy as np

    from edgeaffect.train.families import load_corpus, test_predictions
    from edgeaffect.train.reproducibility import reproducibility

    if runs < 2:
        raise InputError("--runs must be at least 2")
    if parallel < 1:
        raise InputError("--parallel must be at least 1")
    if not get_model(model).family_plugin.reproducibility:
        raise InputError(f"reproducibility metrics compare class decisions; {model} is not a classifier")
    dataset = load_corpus(model, data, out / "cache", corpus, log=log)
    seeds = [0 if same_seed else r for r in range(runs)]
    trained = (_in_processes(model, data, out, seeds, parallel, split, epochs, corpus, deterministic)
               if parallel > 1 else _in_this_process(model, dataset, out, seeds, split, epochs, deterministic, log))
    preds, y_test = [], None
    for run in trained:
        pred, y_test = test_predictions(run, dataset)
        preds.append(pred)
    rep = reproducibility(np.stack(preds), y_test)
    doc = {"model": model, "split": split, "seeds": "all seed 0" if same_seed else f"seeds 0..{runs - 1}",
           "epochs": epochs, "deterministic": deterministic, **rep.to_dict()}
    atomic_write_text(out / "reproducibility.json", json.dumps(doc, indent=2))
    return doc


def _in_this_process(model, dataset, out, seeds, split, epochs, deterministic, log):
    from edgeaffect.train.families import train

    for r, seed in enumerate(seeds):  # one at a time: each run's predictions are taken before the next trains
        yield train(model, dataset, out / f"run-{r}", split=split, seed=seed, split_seed=0, epochs=epochs,
                    deterministic=deterministic, log=log)


def _in_processes(model, data, out, seeds, parallel, split, epochs, corpus, deterministic):
    from edgeaffect.train.runs import load_run
    from edgeaffect.workflows.parallel import train_seeds

    folders = train_seeds(model, data, out, seeds, parallel=parallel, split=split, epochs=epochs, corpus=corpus,
                          deterministic=deterministic)
    return [load_run(folder) for folder in folders]


def table_lines(doc: dict) -> list[str]:
    return [f"{doc['model']}: {doc['runs']} runs ({doc['seeds']}, one {doc['split']} split), {doc['samples']} test "
            f"samples{', deterministic ops' if doc['deterministic'] else ''}",
            "   GLR    FLR    PLR    CLR   FCLR   PCLR   mean acc  (%)",
            " ".join(f"{100 * doc[k]:6.2f}" for k in RATES) + f"   {100 * doc['mean_accuracy']:6.2f}",
            "FLR read as R/2 <= C_i < R (Eq. 2 as printed equals GLR); see edgeaffect/train/reproducibility.py"]
