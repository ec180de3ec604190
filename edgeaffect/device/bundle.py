"""Device side: open an export / bundle folder and trust nothing until it checks out
(manifest version, toolkit version, every file's SHA-256)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edgeaffect import __version__
from edgeaffect.errors import InputError

MANIFEST_VERSION = 1


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version_tuple(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in v.split(".")[:3])


def read_manifest(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise InputError(f"not a bundle or export folder (no manifest.json): {folder}; make one with `edgeaffect export`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest.json in {folder} is not valid JSON ({exc})") from None
    made_by = str(manifest.get("toolkit_version", "0"))
    if int(manifest.get("manifest_version", 0)) > MANIFEST_VERSION or _version_tuple(made_by) > _version_tuple(__version__):
        raise InputError(f"{folder} was made by edgeaffect {made_by} (manifest v{manifest.get('manifest_version')}), "
                         f"newer than this install ({__version__}, reads up to v{MANIFEST_VERSION}): "
                         "upgrade with pip install -U edgeaffect")
    return manifest


def verify_checksums(folder: str | Path, manifest: dict) -> int:
    """Every file the manifest lists must exist and match its SHA-256. Returns how many."""
    folder = Path(folder)
    sums = manifest.get("checksums") or {e["file"]: e["sha256"] for e in manifest.get("files", {}).values()}
    for rel, digest in sums.items():
        path = folder / rel
        if not path.is_file():
            raise InputError(f"bundle {folder} is missing {rel}: copy the whole bundle folder again")
        if sha256(path) != digest:
            raise InputError(f"checksum mismatch for {rel} in {folder}: the file was changed or truncated; "
                             "copy the bundle again")
    return len(sums)


def open_bundle(folder: str | Path) -> dict:
    manifest = read_manifest(folder)
    verify_checksums(folder, manifest)
    return manifest
