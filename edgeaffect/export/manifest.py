"""Every ``manifest.json`` an export writes: a one-model export's, each stage's of a staged
export, and the staged export's top manifest (its stages and the chain's verification).

The device reads them back through ``edgeaffect.device.bundle`` (the schema); the keys and
their order here are what existing bundles hold.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgeaffect import __version__
from edgeaffect.device.bundle import MANIFEST_VERSION, sha256
from edgeaffect.io import atomic_write_text

NAME = "manifest.json"


def header(run, description: str | None = None) -> dict:
    """The fields every manifest starts with (a whole export, a staged bundle, a stage)."""
    from edgeaffect.machine import machine

    return {
        "manifest_version": MANIFEST_VERSION,
        "toolkit_version": __version__,
        "model": run.spec.name,
        "family": run.family.name,
        "task": {"kind": run.family.task.kind, "description": description or run.spec.task},
        "labels": list(run.spec.labels),
        "verified_on": machine(),
    }


def input_specs(inputs: dict) -> dict:
    return {name: {"shape": [None, *shape], "dtype": "float32"} for name, shape in inputs.items()}


def trained_record(run) -> dict:
    return {k: run.info[k] for k in ("split", "seed", "epochs", "test") if k in run.info}


def file_entry(fmt, path: Path, source_model: str, facts: dict, quantization: str | None = None) -> dict:
    """One written file: what it is, what verifies it, its size and checksum, the writer's facts."""
    return {"file": path.name, "format": fmt.name, "source_model": source_model, "runtime": fmt.runtime,
            "bytes": path.stat().st_size, "sha256": sha256(path), "description": fmt.description,
            **({"quantization": quantization} if quantization else {}), **facts}


def model_manifest(run, files: dict, results) -> dict:
    """A one-model export: everything the device needs to rebuild the inputs exactly and to
    trust the files."""
    return {
        **header(run),
        "inputs": input_specs(run.spec.inputs),
        "output": {"name": run.family.task.output_name, "shape": [None, int(run.model.outputs[0].shape[-1])]},
        "preprocessing": run.family.preprocessing(run),
        "files": files,
        "verification": [v.to_dict() for v in results],
        "trained": trained_record(run),
    }


def stage_manifest(run, stage, files: dict, results, preprocessing: dict) -> dict:
    """One stage of a staged export: a complete export of its own (bench, profile and
    trt-check take it)."""
    return {
        **header(run, f"{run.spec.task}; stage '{stage.name}' (one {stage.per})"),
        "stage": stage.name,
        "inputs": input_specs(stage.inputs),
        "output": {"name": stage.name, "shape": [None, *[int(d) for d in stage.model.outputs[0].shape[1:]]]},
        "preprocessing": preprocessing,
        "files": files,
        "verification": [v.to_dict() for v in results],
        **({"recorded_only": dict(stage.recorded_only)} if stage.recorded_only else {}),
    }


def stage_entry(stage, manifest: dict) -> dict:
    """How the top manifest names a stage folder."""
    return {"name": stage.name, "folder": stage.name, "per": stage.per, "inputs": manifest["inputs"],
            "output": manifest["output"]}


def chain_manifest(run, stages: list[dict], results, preprocessing: dict, fmts, target, options) -> dict:
    """A staged export's top manifest: its stage folders and the chain's verification."""
    manifest = {
        **header(run),
        "stages": stages,
        "formats": [f.name for f in fmts],
        "preprocessing": preprocessing,
        "verification": [v.to_dict() for v in results],
        "trained": trained_record(run),
    }
    if target is not None:
        # The first of the target's formats whose whole chain gates: a format recorded for a
        # stage but not held to its bounds (``Stage.recorded_only``) is never the default.
        held = [f for f in target.formats if all(v.gating for v in results if v.format == f)]
        manifest["target"] = {"key": target.key, "default_format": (held or list(target.formats))[0],
                              "options": options or {}}
    return manifest


def seal(folder: Path, manifest: dict, checksums: dict | None = None) -> None:
    """Add the checksums (default: of every other file in ``folder``) and write the manifest."""
    if checksums is None:
        checksums = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.name != NAME}
    manifest["checksums"] = checksums
    atomic_write_text(folder / NAME, json.dumps(manifest, indent=2))


def stage_checksums(root: Path, stages) -> dict:
    """A staged export's top checksums: each stage's manifest (which holds its files')."""
    return {f"{s.name}/{NAME}": sha256(root / s.name / NAME) for s in stages}
