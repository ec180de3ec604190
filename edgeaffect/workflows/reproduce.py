"""Run a paper's recipe on a corpus, run by run, resumably.

Layout of ``OUT``::

    reproduce.json                                   the result (edgeaffect/contract/reproduce.py), rewritten after each run
    cache/                                           the corpus's features
    runs/<corpus>/<protocol>/seed-<s>/               one training run (resumes from its last epoch)
    runs/<corpus>/<protocol>/seed-<s>/reproduce-run.json   that run's figures: written last, so a
                                                     run with this file is finished and never retrained
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError
from edgeaffect.io import atomic_write_text
from edgeaffect.contract.reproduce import ACROSS_RUNS, KIND, PERCENT, VERSION, check_recipe, check_result

RUN_FILE = "reproduce-run.json"
SYNTHETIC_NOTE = "synthetic corpus: not a paper result"


@dataclass(frozen=True)
class Recipe:
    paper: str
    title: str
    quick_epochs: int
    quick_runs: int
    corpora: list[dict]
    family: object
    source: Path


def recipes() -> dict[str, Recipe]:
    """Every paper id -> its recipe, from each family's ``reproduce.toml``."""
    from edgeaffect.contract import get_family, list_families

    out: dict[str, Recipe] = {}
    for name in list_families():
        family = get_family(name)
        path = family.reproduce_recipes
        if path is None:
            continue
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path} is not valid TOML ({exc})") from None
        for paper, table in doc.items():
            check_recipe(paper, table, str(path))
            out[paper] = Recipe(paper, table["title"], table["quick_epochs"], table["quick_runs"], table["corpus"],
                                family, path)
    return out


def get_recipe(paper: str) -> Recipe:
    from edgeaffect._optional import lookup

    return lookup("paper", paper, recipes())


def pick_corpus(recipe: Recipe, data: Path, corpus: str | None) -> dict:
    """The recipe's corpus entry for ``data``: named by ``corpus`` (its name or layout), or
    the first whose ``detect`` patterns match files under ``data``."""
    if not data.is_dir():
        raise InputError(f"corpus folder not found: {data}")
    entries = recipe.corpora
    if corpus is not None:
        for e in entries:
            if corpus.lower() in (e["name"].lower(), e["layout"].lower()):
                return e
        raise InputError(f"{recipe.paper} has no corpus '{corpus}'; choose one of: "
                         f"{', '.join(e['name'] for e in entries)}")
    for e in entries:
        if any(next(data.glob(pattern), None) is not None for pattern in e["detect"]):
            return e
    expected = "; ".join(f"{e['name']}: {' or '.join(e['detect'])}" for e in entries)
    raise InputError(f"no corpus of {recipe.paper} recognised under {data} (expected {expected}); "
                     "give --corpus NAME for a corpus in another layout")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _mean_std(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "std": None, "values": []}
    a = np.asarray(values, np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else None,
            "values": [float(v) for v in a]}


def _rows(entry: dict, protocols: list[dict], results: dict, notes: list[str]) -> list[dict]:
    from edgeaffect.train.reproducibility import reproducibility

    rows = []
    for proto in protocols:
        done = results.get(proto["name"], [])
        seeds = [r["seed"] for r in done]
        across = None
        for m in proto["metrics"]:
            note = "; ".join(n for n in (*notes, proto.get("note", "")) if n)
            if m["metric"] in ACROSS_RUNS:
                ours = {"mean": None, "std": None, "values": []}
                if across is None and len(done) >= 2 and all("decisions" in r for r in done):
                    targets = [r["targets"] for r in done]
                    if all(t == targets[0] for t in targets):
                        across = reproducibility(np.asarray([r["decisions"] for r in done]),
                                                 np.asarray(targets[0])).to_dict()
                if across is not None:
                    ours = {"mean": across[m["metric"]], "std": None, "values": [across[m["metric"]]]}
                note = "; ".join(n for n in (note, f"over the {len(done)} runs' decisions on one test set")
                                 if n)
            else:
                # a run without the figure (an AUC with one class in the split) adds no value
                ours = _mean_std([r["metrics"][m["metric"]] for r in done
                                  if r["metrics"].get(m["metric"]) is not None])
            n_test = done[0]["metrics"].get("n") if done else None
            split = proto["describe"] + (f"; n = {n_test} scored" if n_test is not None else "")
            rows.append({"table": m["table"], "corpus": entry["name"], "protocol": proto["name"], "split": split,
                         "runs": len(done), "seeds": seeds, "metric": m["metric"], "ours": ours,
                         "paper": m.get("paper"), "paper_row": m["paper_row"], "note": note})
    return rows


def _fmt(metric: str, v) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f} %" if metric in PERCENT else f"{v:.3f}"


def table_lines(doc: dict) -> list[str]:
    """Ours beside the paper's, one line per row (what ``reproduce`` prints at the end)."""
    head = f"{doc['paper']} on {doc['corpus']} ({doc['model']}; {doc['data']})"
    lines = [head]
    if doc["synthetic"]:
        lines.append("SYNTHETIC CORPUS: the 'ours' column is a plumbing check, not a paper result")
    if doc["quick"]:
        lines.append("--quick: few epochs and runs, the first protocol only; not the paper's schedule")
    width = max([len(r["protocol"]) for r in doc["rows"]] + [8])
    mwidth = max([len(r["metric"]) for r in doc["rows"]] + [9])
    lines.append(f"{'protocol':<{width}}  {'metric':<{mwidth}} {'ours (mean ± sd)':>20} {'runs':>4}  "
                 f"{'paper':>9}  paper's row")
    for r in doc["rows"]:
        o = r["ours"]
        ours = _fmt(r["metric"], o["mean"])
        if o["std"] is not None:
            ours += f" ± {_fmt(r['metric'], o['std']).replace(' %', '')}"
        lines.append(f"{r['protocol']:<{width}}  {r['metric']:<{mwidth}} {ours:>20} {r['runs']:>4}  "
                     f"{_fmt(r['metric'], r['paper']):>9}  {r['table']}: {r['paper_row']}")
    splits = {}
    for r in doc["rows"]:
        splits.setdefault(r["protocol"], (r["split"], r["note"]))
    for name, (split, note) in splits.items():
        lines.append(f"  {name}: {split}" + (f" ({note})" if note else ""))
    return lines


def _trained_before(run_dir: Path, model: str, split: str, seed: int, split_seed: int):
    """The run in ``run_dir`` when it finished training for this request but was stopped
    before its figures were recorded (killed between the two writes); else None."""
    from edgeaffect.train.runs import load_run

    if not (run_dir / "run.json").is_file():
        return None
    try:
        run = load_run(run_dir)
    except InputError:
        return None
    info = run.info
    same = (info.get("model") == model and info.get("seed") == seed and info.get("split", {}).get("kind") == split
            and info.get("split_seed") in (split_seed, None))
    return run if same else None


def parse_set_options(items: list[str]) -> dict:
    """``--set KEY=VALUE`` items -> training options (true / false become booleans)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set takes KEY=VALUE, got '{item}'")
        options[key.strip().replace("-", "_")] = {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    return options


def reproduce(paper: str, data: str | Path, out: str | Path, *, quick: bool = False, corpus: str | None = None,
              model: str | None = None, epochs: int | None = None, options: dict | None = None,
              log=sys.stderr) -> dict:
    """Run (or resume) ``paper``'s recipe on ``data``; returns the result written to
    ``out/reproduce.json``. ``model``: another registered model of the same family than the
    recipe's (a smaller variant); ``options``: the family's training options."""
    from edgeaffect.data.synthetic import is_synthetic
    from edgeaffect.machine import machine
    from edgeaffect.contract import get_model
    from edgeaffect.train.families import check_request, load_corpus, test_predictions, train

    recipe = get_recipe(paper)
    data, out = Path(data), Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the runs and reproduce.json")
    entry = pick_corpus(recipe, data, corpus)
    chosen = model or (entry.get("quick_model") if quick else None) or entry["model"]
    spec = get_model(chosen)
    if spec.family_plugin is not recipe.family:
        raise InputError(f"--model {chosen} is a {spec.family} model; {paper} trains {recipe.family.name} models "
                         f"(the recipe's: {entry['model']})")
    protocols = entry["protocol"][:1] if quick else entry["protocol"]
    for proto in protocols:
        check_request(chosen, proto["split"], None, options)
    n_epochs = epochs if epochs is not None else (recipe.quick_epochs if quick else None)
    synthetic = is_synthetic(data)
    notes = [SYNTHETIC_NOTE] if synthetic else []
    if quick:
        notes.append(f"--quick: {n_epochs} epochs, {recipe.quick_runs} runs")
    elif epochs is not None:
        notes.append(f"--epochs {epochs} (not the paper's schedule)")
    if chosen != entry["model"]:
        notes.append(f"model {chosen}, not the recipe's {entry['model']}")

    doc = {"kind": KIND, "version": VERSION, "paper": paper, "title": recipe.title, "model": chosen,
           "data": str(data.resolve()), "corpus": entry["name"], "synthetic": synthetic, "quick": quick,
           "machine": machine(), "started": _now(), "finished": None, "rows": [],
           "request": {"epochs": n_epochs, "options": {k: v for k, v in sorted((options or {}).items())
                                                       if v is not None}}}
    path = out / "reproduce.json"
    if path.is_file():
        try:
            old = check_result(json.loads(path.read_text()), str(path))
        except (json.JSONDecodeError, UnicodeDecodeError, InputError):
            old = None  # unreadable: the runs' own files are the record, rebuilt below
        if old is not None:
            keys = ("paper", "model", "data", "corpus", "quick", "request")
            if {k: old.get(k) for k in keys} != {k: doc[k] for k in keys}:
                raise InputError(f"{out} holds a reproduce of {old['paper']} ({old['model']}, {old['corpus']}, "
                                 f"quick={old['quick']}, {old.get('request')}) on {old['data']}; run it with the "
                                 "same arguments to resume, or give another --out")
            doc["started"] = old["started"]
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, list[dict]] = {}
    dataset = None
    for proto in protocols:
        seeds = proto["seeds"][: recipe.quick_runs] if quick else proto["seeds"]
        results[proto["name"]] = done = []
        for i, seed in enumerate(seeds):
            run_dir = out / "runs" / _slug(entry["name"]) / _slug(proto["name"]) / f"seed-{seed}"
            record = run_dir / RUN_FILE
            if record.is_file():
                try:
                    done.append(json.loads(record.read_text()))
                    print(f"{proto['name']}: run {i + 1}/{len(seeds)} (seed {seed}) finished before, kept",
                          file=log, flush=True)
                    continue
                except (json.JSONDecodeError, UnicodeDecodeError):
                    pass  # a damaged record: the run trains again (its folder resumes)
            if dataset is None:
                dataset = load_corpus(chosen, data, out / "cache", entry["layout"], log=log)
            split_seed = seed if proto["split_seed"] == "seed" else proto["split_seed"]
            print(f"{proto['name']}: run {i + 1}/{len(seeds)} (seed {seed}, split seed {split_seed})",
                  file=log, flush=True)
            run = _trained_before(run_dir, chosen, proto["split"], seed, split_seed)
            if run is None:
                run = train(chosen, dataset, run_dir, split=proto["split"], seed=seed, split_seed=split_seed,
                            epochs=n_epochs, options=options, log=log)
            result = {"seed": seed, "split_seed": split_seed, "split": proto["split"],
                      "metrics": dict(run.info["test"]), "epochs": run.info.get("epochs")}
            if recipe.family.reproducibility:
                decisions, targets = test_predictions(run, dataset)
                result["decisions"] = np.asarray(decisions).astype(int).tolist()
                result["targets"] = np.asarray(targets).astype(int).tolist()
            atomic_write_text(record, json.dumps(result))
            done.append(result)
            doc["rows"] = _rows(entry, protocols, results, notes)
            atomic_write_text(path, json.dumps(doc, indent=2))
    doc["rows"] = _rows(entry, protocols, results, notes)
    doc["finished"] = _now()
    atomic_write_text(path, json.dumps(check_result(doc, str(path)), indent=2))
    return doc
