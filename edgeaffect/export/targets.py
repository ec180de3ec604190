"""Export targets (``targets.toml``): which artifacts, runtime and options each device gets."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources

from edgeaffect._optional import lookup
from edgeaffect.errors import InputError

OPTION_FLAGS = {"threads": "--threads", "precision": "--precision", "workspace_mib": "--workspace-mib",
                "max_batch": "--max-batch"}
PRECISIONS = ("fp16", "int8", "int8-calibrated")


@dataclass(frozen=True)
class Target:
    key: str
    name: str
    device: str
    formats: tuple[str, ...]
    runtime: str
    extra: str
    options: tuple[str, ...]
    defaults: dict = field(default_factory=dict)  # option -> default value
    fallback_runtime: str | None = None
    jetpack: str | None = None
    tensorrt: str | None = None
    # options for the format writers that accept them (``ExportFormat.options``), e.g. the ONNX
    # opset the device's parser takes; not user options (the device decides them)
    writer_options: dict = field(default_factory=dict)

    @property
    def is_jetson(self) -> bool:
        return self.runtime == "tensorrt"

    @property
    def runs_here(self) -> bool:
        """The target is the exporting machine: its timings are the device's."""
        return self.device == "host"


def load_targets() -> dict[str, Target]:
    data = tomllib.loads(resources.files("edgeaffect.export").joinpath("targets.toml").read_text())
    writer_keys = _writer_option_names()
    out = {}
    for key, t in data.items():
        out[key] = Target(key, t["name"], t["device"], tuple(t["formats"]), t["runtime"], t["extra"],
                          tuple(t.get("options", ())), {o: t[o] for o in t.get("options", ()) if o in t},
                          t.get("fallback_runtime"), t.get("jetpack"), t.get("tensorrt"),
                          {o: t[o] for o in writer_keys if o in t})
    return out


def _writer_option_names() -> set[str]:
    """Every option some registered format's writer accepts (a new format brings its own)."""
    from edgeaffect.export.formats import get_format, list_formats

    return {o for f in list_formats() for o in get_format(f).options}


def deploy_threads(device_key: str) -> int:
    """The threads the export target for catalog device ``device_key`` runs with, else 1."""
    for t in load_targets().values():
        if t.device == device_key and "threads" in t.defaults:
            return int(t.defaults["threads"])
    return 1


def get_target(key: str) -> Target:
    return lookup("target", key, load_targets())


def resolve_options(target: Target, given: dict) -> dict:
    """The target's defaults overridden by ``given`` (None = not given); options the target
    does not support are refused by name."""
    refused = [o for o, v in given.items() if v is not None and o not in target.options]
    if refused:
        supported = ", ".join(OPTION_FLAGS[o] for o in target.options) or "none"
        raise InputError(f"target '{target.key}' does not support {', '.join(OPTION_FLAGS[o] for o in refused)} "
                         f"(it supports: {supported})")
    opts = {**target.defaults, **{o: v for o, v in given.items() if v is not None}}
    if "precision" in opts and opts["precision"] not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, given '{opts['precision']}'")
    for o in ("threads", "workspace_mib", "max_batch"):
        if o in opts and int(opts[o]) < 1:
            raise InputError(f"{OPTION_FLAGS[o]} must be >= 1, given {opts[o]}")
    return opts


def bundle_formats(family, target: Target) -> tuple[str, ...]:
    """The formats of ``family``'s bundle for ``target``: the family's list for it
    (``Family.target_formats``) with its ``int8_fallbacks`` added before the first float
    format, each where the target's install runs the fallback's runtime. Not on TensorRT
    targets: TensorRT's ONNX parser takes no dynamic quantization."""
    names = tuple(family.target_formats(target))
    return names if target.is_jetson else with_int8_fallbacks(family, names)


def with_int8_fallbacks(family, names) -> tuple[str, ...]:
    """``names`` with ``family.int8_fallbacks`` added before the first float format, each whose
    runtime one of ``names`` already runs (what the install of those formats has)."""
    from edgeaffect.export.formats import get_format

    names = list(names)
    runtimes = {get_format(n).runtime for n in names}
    added = [n for n in family.int8_fallbacks if n not in names and get_format(n).runtime in runtimes]
    first_float = next((i for i, n in enumerate(names) if get_format(n).precision != "int8"), len(names))
    return tuple(names[:first_float] + added + names[first_float:])
