"""The mark every synthetic-corpus writer leaves at the corpus root, so that a figure
measured on it is never shown as a paper result (``edgeaffect reproduce`` reads it)."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = ".edgeaffect-synthetic"


def mark(root: str | Path, layout: str) -> None:
    """Write the marker at ``root`` (idempotent)."""
    from edgeaffect.io import atomic_write_text

    path = Path(root) / MARKER
    if not path.is_file():
        Path(root).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"synthetic": True, "layout": layout,
                                            "note": "written by edgeaffect's synthetic corpus writer; "
                                                    "no figure on it is a paper result"}) + "\n")


def is_synthetic(folder: str | Path) -> bool:
    """Whether ``folder`` is (inside) a corpus a synthetic writer made."""
    folder = Path(folder).resolve()
    return any((p / MARKER).is_file() for p in (folder, *folder.parents))
