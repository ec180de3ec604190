"""Device side: open an export / bundle folder and trust nothing until it checks out
(manifest version, toolkit version, every field's type and range, every file inside the
folder, every file's SHA-256)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgeaffect import __version__
from edgeaffect.contract import Family, get_family
from edgeaffect.errors import InputError
from edgeaffect.io import sha256  # noqa: F401  (export.manifest takes it from here)
from edgeaffect.schema import SchemaError, Any, Int, List, Map, Nullable, OneOf, RelPath, Str, Table, check, field_error, show

MANIFEST_VERSION = 1

SHA256 = Str(pattern=r"[0-9a-f]{64}", what="a SHA-256 (64 lower-case hex digits)")
VERSION = Str(pattern=r"\d+(\.\d+)*([.+-]?[0-9A-Za-z.+-]*)?", what="a version string such as '0.1.0'")
SHAPE = List(Nullable(Int(min=1)), min_len=1, max_len=8)
FILE_ENTRY = Table({"file": RelPath(), "runtime": Str(), "sha256": SHA256, "format": Str(), "bytes": Int(min=0),
                    "description": Str(empty=True), "source_model": Str()},
                   optional={"format", "bytes", "description", "source_model"}, what="a table (file, runtime, sha256)")
ENGINE = Table({"file": RelPath(), "onnx": RelPath(), "precision": Str(), "workspace_mib": Int(min=1),
                "max_batch": Int(min=1)}, optional={"onnx"}, what="a table (file, precision, workspace_mib, max_batch)")
TARGET = Table({"key": Str(), "default_format": Str(), "options": Table({"threads": Int(min=1, max=1024)},
                                                                         optional={"threads"}),
                "engine": ENGINE}, optional={"key", "default_format", "options", "engine"})
STAGE = Table({"name": Str(), "folder": RelPath(), "per": Str(), "inputs": Table({}), "output": Table({})},
              optional={"per", "inputs", "output"}, what="a table (name, folder)")
# What the first reader needs before anything else: a newer manifest may change the rest.
VERSIONS = Table({"manifest_version": Int(min=1), "toolkit_version": VERSION}, what="a JSON object")
MANIFEST = Table({
    "manifest_version": Int(min=1),
    "toolkit_version": VERSION,
    "model": Str(),
    # Resolved once, when the manifest is read (``Bundle.family``); bundles from before
    # manifests named it are refused.
    "family": Str(what="the name of the model family that made it (an older bundle has none: "
                       "re-export it with `edgeaffect export`)"),
    "task": OneOf(Str(), Table({"kind": Str(), "description": Str(empty=True)}, optional={"description"})),
    "labels": List(Str(), min_len=1, unique=True),
    "inputs": Map(Table({"shape": SHAPE, "dtype": Str()}, optional={"dtype"}), min_len=1),
    "output": Table({"name": Str(), "shape": SHAPE}, optional={"name"}),
    "preprocessing": Table({}, what="a table (the family's preprocessing)"),
    "files": Map(FILE_ENTRY, min_len=1, what="a table of format -> file entry"),
    "verification": List(Any()),
    "trained": Table({}),
    "target": Nullable(TARGET),
    "checksums": Map(SHA256, key=RelPath(), what="a table of file name -> SHA-256"),
    # A staged export: one export folder per stage (each a manifest of its own), run in order.
    "stages": List(STAGE, min_len=1, max_len=8),
    "formats": List(Str(), min_len=1),
    "stage": Str(),  # in a stage's own manifest: which stage it is
    "verified_on": Str(),  # the machine the verification ran on (CPU, OS)
}, optional={"task", "inputs", "output", "files", "verification", "trained", "target", "checksums",
             "stages", "formats", "stage", "verified_on"}, what="a JSON object")


@dataclass(frozen=True)
class Bundle:
    """An export folder whose manifest checked out, and the model family it names: callers
    ask the bundle for the family, never the manifest."""

    folder: Path
    manifest: dict
    family: Family

    @property
    def stage(self) -> str | None:
        """In a stage's own folder (of a staged export): which stage it is."""
        return self.manifest.get("stage")

    @property
    def label(self) -> str:
        return export_label(self.manifest)

    def stage_folders(self) -> list[Path]:
        """The folder of each stage of a staged export, in order (none otherwise)."""
        return [self.folder / st["folder"] for st in self.manifest.get("stages") or []]

    def require_whole(self) -> None:
        """Refuse a stage's folder where the whole model must run (predict, demo): only the
        bundle above it knows the stages before and after."""
        if self.stage is None:
            return
        parent = _enclosing_bundle(self.folder)
        if parent is not None:
            raise InputError(f"{self.folder} is one stage of the bundle at {parent}; give that folder")
        raise InputError(f"{self.folder} is one stage ('{self.stage}') of a staged bundle; give the bundle's "
                         "folder (the one whose manifest.json lists the stages)")

    def stage_bundles(self) -> dict[str, "Bundle"]:
        """Each stage's own bundle by name (manifest checked; checksums are the caller's), each
        holding the stage this manifest lists in its folder: a stage folder swapped or edited
        after its checksum was dropped would otherwise run as the wrong stage."""
        out = {}
        for st in self.manifest.get("stages") or []:
            stage = read_bundle(self.folder / st["folder"])
            if stage.stage != st["name"] or stage.manifest["model"] != self.manifest["model"]:
                raise InputError(f"{stage.folder} holds stage {stage.stage!r} of {stage.manifest['model']}, but "
                                 f"{self.folder}/manifest.json lists it as stage '{st['name']}' of "
                                 f"{self.manifest['model']}: copy the whole bundle folder again")
            if stage.manifest["preprocessing"] != self.manifest["preprocessing"]:
                # The device makes the inputs from the bundle's; each stage was checked against its own.
                raise InputError(f"{stage.folder}/manifest.json: 'preprocessing' differs from the bundle's in "
                                 f"{self.folder}: copy the whole bundle folder again")
            out[st["name"]] = stage
        return out


def _enclosing_bundle(folder: Path) -> Path | None:
    """The bundle folder just above a stage's folder, when there is one."""
    parent = folder.resolve().parent
    return parent if (parent / "manifest.json").is_file() else None


def export_label(manifest: dict) -> str:
    """The model an export folder holds, as bench rows, budgets and baselines name it: a
    stage of a staged export is ``model/stage``."""
    return manifest["model"] + (f"/{manifest['stage']}" if "stage" in manifest else "")


def _version_tuple(v: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in v.split(".")[:3])


def read_bundle(folder: str | Path) -> Bundle:
    """The manifest, checked field by field (and by its family for the preprocessing) before
    anything uses it, with that family; every file it names must lie inside ``folder``.
    The checksums are ``verify_checksums``'s (``open_bundle`` does both)."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise InputError(f"not a bundle or export folder (no manifest.json): {folder}; make one with `edgeaffect export`")
    try:
        manifest = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"manifest.json in {folder} is not valid JSON ({exc})") from None
    source = f"manifest.json in {folder}"
    check(VERSIONS, manifest, source)
    _check_not_newer(folder, manifest)
    check(MANIFEST, manifest, source)
    _check_consistent(manifest, source)
    for where, rel in manifest_files(manifest):
        contained(folder, rel, source, where)
    family = _family(manifest, source)
    _check_stages(folder, family, manifest, source)
    _check_preprocessing(family, manifest, source)
    return Bundle(folder, manifest, family)


def _refuse_constant(name: str):
    # json accepts NaN / Infinity, which no number in a manifest may be.
    raise ValueError(f"{name} is not a number JSON allows")


def _check_not_newer(folder: Path, manifest: dict) -> None:
    made_by = manifest["toolkit_version"]
    if manifest["manifest_version"] > MANIFEST_VERSION or _version_tuple(made_by) > _version_tuple(__version__):
        raise InputError(f"{folder} was made by edgeaffect {made_by} (manifest v{manifest['manifest_version']}), "
                         f"newer than this install ({__version__}, reads up to v{MANIFEST_VERSION}): "
                         "upgrade with pip install -U edgeaffect")


def _check_consistent(manifest: dict, source: str) -> None:
    """Relations between fields that the per-field schema cannot see."""
    if "stages" in manifest:
        names = [st["name"] for st in manifest["stages"]]
        if len(set(names)) != len(names):
            raise field_error(source, "stages", "stages with different names", show(names))
    else:
        for key in ("files", "inputs"):
            if key not in manifest:
                expected = {"files": "a table of format -> file entry", "inputs": "a table of input -> shape"}[key]
                raise InputError(f"{source}: {SchemaError(key, expected + ', unless the export is staged', missing=True).line()}")
    formats = manifest.get("files") or dict.fromkeys(manifest.get("formats") or [])
    target = manifest.get("target") or {}
    default = target.get("default_format")
    if default is not None and formats and default not in formats:
        raise field_error(source, "target.default_format", f"one of the formats in 'files' ({', '.join(formats)})",
                          show(default))
    sums = manifest.get("checksums")
    for fmt, entry in (manifest.get("files") or {}).items() if sums else ():
        if sums.get(entry["file"]) != entry["sha256"]:
            # verify checks 'checksums' only: a file missing there would be run unchecked.
            raise field_error(source, f"checksums.<key {entry['file']!r}>", f"the SHA-256 of files.{fmt}",
                              show(sums.get(entry["file"])))
    output = manifest.get("output")
    task = manifest.get("task")
    kind = task.get("kind") if isinstance(task, dict) else None
    if output and kind == "classification" and output["shape"][-1] != len(manifest["labels"]):
        raise field_error(source, "output.shape", f"one score per label ({len(manifest['labels'])} labels)",
                          show(output["shape"]))


def manifest_files(manifest: dict) -> list[tuple[str, str]]:
    """(field, file name) of every file the manifest names."""
    out = [(f"files.{fmt}.file", e["file"]) for fmt, e in (manifest.get("files") or {}).items()]
    out += [(f"stages[{i}].folder", st["folder"]) for i, st in enumerate(manifest.get("stages") or [])]
    out += [(f"checksums.<key {rel!r}>", rel) for rel in manifest.get("checksums") or {}]
    engine = (manifest.get("target") or {}).get("engine") or {}
    out += [(f"target.engine.{k}", engine[k]) for k in ("file", "onnx") if k in engine]
    return out


def contained(folder: Path, rel: str, source: str, where: str) -> Path:
    """``folder / rel``, refused when it resolves outside ``folder`` (a symlink that leaves it)."""
    root = folder.resolve()
    path = (folder / rel).resolve()
    if not path.is_relative_to(root):
        raise field_error(source, where, f"a file inside {folder}", f"{rel!r}, which resolves to {path}")
    return folder / rel


def _family(manifest: dict, source: str) -> Family:
    try:
        return get_family(manifest["family"])
    except InputError as exc:  # a family this install does not have
        raise InputError(f"{source}: {exc}") from None


def _check_stages(folder: Path, family: Family, manifest: dict, source: str) -> None:
    """The stages a manifest lists, or the one its folder holds, must be those its family's
    adapter runs: a renamed, missing or unknown stage would otherwise fail only when predict
    reaches it (a KeyError)."""
    runs = tuple(family.adapter.stages)
    names = ", ".join(runs) or "none: the model runs whole"
    if "stages" in manifest:
        listed = [st["name"] for st in manifest["stages"]]
        if tuple(listed) != runs:
            raise field_error(source, "stages", f"the model's stages in the order they run ({names})", show(listed))
    elif "stage" in manifest:
        if manifest["stage"] not in runs:
            raise field_error(source, "stage", f"one of the model's stages ({names})", show(manifest["stage"]))
    elif runs:
        parent = _enclosing_bundle(folder)
        instead = f"the bundle's folder {parent}" if parent else "the bundle's folder (the one whose manifest.json lists the stages)"
        raise InputError(f"{source}: missing 'stage' (the model runs in stages, {names}, and this folder holds one "
                         f"without saying which); give {instead}")


def _check_preprocessing(family: Family, manifest: dict, source: str) -> None:
    """What the family's adapter reads, as it declares it, then its own checks across fields."""
    spec = family.adapter.preprocessing_spec
    if spec is not None:
        check(spec, manifest["preprocessing"], source, "preprocessing")
    try:
        family.adapter.validate(manifest["preprocessing"], manifest)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def verify_checksums(folder: str | Path, manifest: dict) -> int:
    """Every file the manifest lists must exist and match its SHA-256. Returns how many."""
    folder = Path(folder)
    sums = manifest.get("checksums") or {e["file"]: e["sha256"] for e in (manifest.get("files") or {}).values()}
    for rel, digest in sums.items():
        path = contained(folder, rel, f"manifest.json in {folder}", f"checksums.<key {rel!r}>")
        if not path.is_file():
            raise InputError(f"bundle {folder} is missing {rel}: copy the whole bundle folder again")
        if sha256(path) != digest:
            raise InputError(f"checksum mismatch for {rel} in {folder}: the file was changed or truncated; "
                             "copy the bundle again")
    return len(sums)


def open_bundle(folder: str | Path) -> Bundle:
    """A bundle ready to use: manifest checked, family resolved, every file's SHA-256 matched."""
    bundle = read_bundle(folder)
    verify_checksums(bundle.folder, bundle.manifest)
    return bundle


def verify_bundle(folder: str | Path) -> tuple[Bundle, int]:
    """``edgeaffect verify``: the bundle and how many files matched, each stage's included
    (a stage's own folder verifies as that stage)."""
    bundle = read_bundle(folder)
    n = verify_checksums(bundle.folder, bundle.manifest)
    for stage in bundle.stage_bundles().values():
        n += verify_checksums(stage.folder, stage.manifest)
    return bundle, n
