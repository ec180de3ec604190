"""The two files of ``edgeaffect reproduce``: a family's recipe (``reproduce.toml``) and
the result (``OUT/reproduce.json``, read by ``edgeaffect report``). ``load_result`` is the
one way to read a result: a hand-edited or truncated file is one line, not a traceback.

reproduce.json, version 1::

    {"kind": "edgeaffect-reproduce", "version": 1, "paper": id, "title": str, "model": str,
     "data": path, "corpus": name, "synthetic": bool, "quick": bool, "machine": str,
     "started": iso, "finished": iso | null,
     "rows": [{"table": str, "corpus": str, "protocol": str, "split": str, "runs": int,
               "seeds": [int], "metric": str,
               "ours": {"mean": num | null, "std": num | null, "values": [num]},
               "paper": num | null, "paper_row": str, "note": str}],
     "request": {"epochs": int | null, "options": {...}}}   (optional: what a resume must match)

Figures are in the metric's own unit: fractions for accuracy, precision, recall, F1 and the
reproducibility rates (GLR ... PCLR), BDI-II points for MAE / RMSE (``PERCENT`` says which
are shown as percent). ``runs`` counts finished runs (``seeds`` are theirs); ``ours`` of a
rate over runs (GLR ... PCLR) has one value.
"""

from __future__ import annotations

from pathlib import Path

from edgeaffect.errors import InputError
from edgeaffect.io import read_json
from edgeaffect.schema import Bool, Int, List, Nullable, Num, OneOf, Str, Table, check

KIND, VERSION = "edgeaffect-reproduce", 1
# Rates computed over all runs' decisions on one test set (edgeaffect/train/reproducibility.py).
ACROSS_RUNS = ("glr", "flr", "plr", "clr", "fclr", "pclr")
PERCENT = ("accuracy", "precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1", *ACROSS_RUNS)

METRIC_ROW = Table({"metric": Str(), "table": Str(), "paper_row": Str(), "paper": Num()}, optional={"paper"},
                   closed=True, what="a metric row ({metric, table, paper_row, paper?})")
PROTOCOL = Table({"name": Str(), "split": Str(), "describe": Str(), "runs": Int(min=1),
                  "seeds": List(Int(min=0), min_len=1, unique=True),
                  "split_seed": OneOf(Int(min=0), Str(choices=("seed",))), "note": Str(),
                  "metrics": List(METRIC_ROW, min_len=1)},
                 optional={"note"}, closed=True, what="a protocol table")
CORPUS = Table({"name": Str(), "layout": Str(), "model": Str(), "quick_model": Str(),
                "detect": List(Str(), min_len=1), "protocol": List(PROTOCOL, min_len=1)},
               optional={"quick_model"}, closed=True, what="a corpus table")
PAPER = Table({"title": Str(), "quick_epochs": Int(min=1), "quick_runs": Int(min=2),
               "corpus": List(CORPUS, min_len=1)}, closed=True, what="a paper table")

OURS = Table({"mean": Nullable(Num()), "std": Nullable(Num()), "values": List(Num())}, what="a table")
ROW = Table({"table": Str(), "corpus": Str(), "protocol": Str(), "split": Str(), "runs": Int(min=0),
             "seeds": List(Int(min=0)), "metric": Str(), "ours": OURS, "paper": Nullable(Num()),
             "paper_row": Str(), "note": Str(empty=True)}, what="a row")
RESULT = Table({"kind": Str(), "version": Int(min=1), "paper": Str(), "title": Str(), "model": Str(), "data": Str(),
                "corpus": Str(), "synthetic": Bool(), "quick": Bool(), "machine": Str(), "started": Str(),
                "finished": Nullable(Str()), "rows": List(ROW),
                "request": Table({"epochs": Nullable(Int(min=1)), "options": Table({})})},
                optional={"request"}, what="a JSON object")


def check_recipe(paper: str, table: dict, source: str) -> dict:
    check(PAPER, table, source, paper)
    for corpus in table["corpus"]:
        for proto in corpus["protocol"]:
            if len(proto["seeds"]) != proto["runs"]:
                raise InputError(f"{source}: {paper} {corpus['name']} '{proto['name']}': runs = {proto['runs']} "
                                 f"but {len(proto['seeds'])} seeds")
    return table


def check_result(doc, source: str = "reproduce.json") -> dict:
    """``doc`` if it is a version-1 reproduce result; else an InputError naming the field."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise InputError(f"{source} is not an `edgeaffect reproduce` result (kind must be '{KIND}')")
    if doc.get("version") != VERSION:
        raise InputError(f"{source} has version {doc.get('version')!r}; this edgeaffect reads version {VERSION}")
    return check(RESULT, doc, source)


def load_result(path: str | Path) -> dict:
    """Read and check ``OUT/reproduce.json`` (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "reproduce.json"
    doc = read_json(path, f"no reproduce result at {path}; run `edgeaffect reproduce PAPER --data CORPUS --out DIR`",
                    "run `edgeaffect reproduce` again")
    return check_result(doc, str(path))
