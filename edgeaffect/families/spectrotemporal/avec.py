"""AVEC2013 / AVEC2014 depression corpora: recordings, BDI-II labels, official partitions.

The label files' layout is unverified (DATASETS.md); this reader's assumption, written in
the model card and tested on fixture trees:

    <root>/{Training,Development,Testing}/Audio/<id>_audio.wav                      AVEC2013
    <root>/{Training,Development,Testing}/{Freeform,Northwind}/<id>_<Task>_audio.wav AVEC2014
    <root>/{Training,Development,Testing}/DepressionLabels/<id>_Depression.csv      both: one number

<id> is subject_session (e.g. 203_1). AVEC2014 has two recordings (tasks) per label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeaffect.errors import InputError

PARTITIONS = {"Training": "train", "Development": "val", "Testing": "test"}
LAYOUTS = {"avec2013": ("Audio",), "avec2014": ("Freeform", "Northwind")}
BDI_II = (0.0, 63.0)  # the inventory's total score


@dataclass(frozen=True)
class Recording:
    path: Path
    subject: str  # <id>: subject_session
    score: float
    part: str  # train / val / test (the official partition)


def detect_layout(root: Path) -> str:
    for name, folders in LAYOUTS.items():
        if any((root / p / f).is_dir() for p in PARTITIONS for f in folders):
            return name
    raise InputError(f"{root} is not an AVEC2013 / AVEC2014 tree: expected Training/Audio (2013) or "
                     "Training/Freeform and Training/Northwind (2014), with Training/DepressionLabels")


def _label(path: Path) -> float:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:  # a folder, a link to nowhere, bytes that are not text
        raise InputError(f"cannot read the label file {path} ({exc}); it should hold one BDI-II number") from None
    try:
        score = float(text.strip().split(",")[-1].split()[0])
    except (ValueError, IndexError):
        raise InputError(f"{path}: expected one BDI-II number, got {text[:40]!r}") from None
    if not BDI_II[0] <= score <= BDI_II[1]:  # NaN too: it would train, and every figure would be NaN
        raise InputError(f"{path}: a BDI-II score is {BDI_II[0]:g} to {BDI_II[1]:g}, got {text.strip()[:40]!r}")
    return score


def find_recordings(root: str | Path, corpus: str | None = None) -> tuple[str, list[Recording]]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"corpus folder not found: {root}")
    if corpus is not None and corpus not in LAYOUTS:
        raise InputError(f"unknown AVEC layout '{corpus}'; choose one of: {', '.join(LAYOUTS)}")
    layout = corpus or detect_layout(root)
    rows = []
    for folder, part in PARTITIONS.items():
        labels = root / folder / "DepressionLabels"
        for lab in sorted(labels.glob("*_Depression.csv")):
            subject = lab.name[: -len("_Depression.csv")]
            audio = [root / folder / t / (f"{subject}_audio.wav" if t == "Audio" else f"{subject}_{t}_audio.wav")
                     for t in LAYOUTS[layout]]
            missing = [a for a in audio if not a.is_file()]
            if missing:
                raise InputError(f"{lab} names recording {subject}, but {missing[0]} is missing")
            rows += [Recording(a, subject, _label(lab), part) for a in audio]
    if not rows:
        raise InputError(f"no labelled recordings under {root} (no */DepressionLabels/*_Depression.csv)")
    return layout, rows
