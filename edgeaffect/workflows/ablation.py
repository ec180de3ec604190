"""``edgeaffect ablation``: one training run per row of a family's ablation table, same split
and seed, and the table of their figures on the partition the family names
(``Family.ablation_figures``: the paper's; test unless a paper compares modules on another)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgeaffect.contract import get_model
from edgeaffect.errors import InputError
from edgeaffect.io import atomic_write_text

def row_names(model: str, rows: str | None) -> list[str]:
    """The rows asked for (default: all), each checked before any training."""
    family = get_model(model).family_plugin
    if not family.ablations:
        raise InputError(f"ablations are not defined for {model} (the {family.name} family has none)")
    names = [r.strip() for r in (rows or ",".join(family.ablations)).split(",") if r.strip()]
    for name in names:
        family.check_ablation(name)
    return names


def run_ablation(model: str, data: Path, out: Path, *, rows: str | None = None, split: str = "paper",
                 epochs: int | None = None, seed: int = 0, corpus: str | None = None, options: dict | None = None,
                 log=sys.stderr) -> dict:
    """Train every row into ``out/<row>`` and write ``out/ablation.json``; returns its content."""
    from edgeaffect.train.families import load_corpus, train

    names = row_names(model, rows)
    family = get_model(model).family_plugin
    family.check_options(options or {})
    dataset = load_corpus(model, data, out / "cache", corpus, log=log)
    results = []
    for name in names:
        run = train(model, dataset, out / name, split=split, seed=seed, epochs=epochs, ablation=name,
                    options=options, log=log)
        # Keras' count: the analytic cost covers the paper's backbones, not every ablation's.
        params = run.model.count_params() if run.model is not None else run.spec.params
        results.append({"row": name, "params": int(params), **run.info[family.ablation_figures]})
    from edgeaffect.machine import machine

    doc = {"model": model, "split": split, "seed": seed, "figures": family.ablation_figures, "machine": machine(),
           "rows": results}
    atomic_write_text(out / "ablation.json", json.dumps(doc, indent=2))
    return doc


def table_lines(doc: dict) -> list[str]:
    task = get_model(doc["model"]).family_plugin.task
    kind, keys = task.kind, task.table_figures
    # an ablation.json written before "figures" existed holds test figures
    lines = [f"{doc['model']}, {doc['split']} split, seed {doc['seed']}, figures on {doc.get('figures', 'test')} "
             "(this machine's data, not the paper's figures)"]
    if kind == "regression":
        lines.append("row                    params        MAE     RMSE")
        lines += [f"{r['row']:20s} {r['params']:9,d}   {r['mae']:8.3f} {r['rmse']:8.3f}" for r in doc["rows"]]
        return lines
    lines.append("row                    params   accuracy  precision  recall    F1   (macro over the classes)")
    # a row resumed from an ablation.json written before a figure existed has none: n/a
    lines += [f"{r['row']:20s} {r['params']:9,d}   " + "    ".join(_percent(r.get(k)) for k in keys)
              for r in doc["rows"]]
    return lines


def _percent(value) -> str:
    return f"{100 * value:6.2f}" if isinstance(value, (int, float)) else f"{'n/a':>6s}"
