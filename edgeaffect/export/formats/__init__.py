"""The export-format registry. Every module in this folder writes one family of formats and
registers them by name (``register_format``); the registry imports them all on first use,
so adding a format is adding one file here."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from edgeaffect._optional import lookup

_FORMATS: dict[str, "ExportFormat"] = {}


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    source: str  # "float": from the trained model; "qat": from the QAT model
    runtime: str  # the runtime that verifies it (edgeaffect.runtime.RUNTIMES)
    # "float32", "float16" or "int8": the model's task turns it into verification bounds
    # (edgeaffect.contract.tasks), so a format never assumes what its outputs mean.
    precision: str
    # (keras_model, input_specs, calibration, path, **options) -> dict of facts about the written
    # file for the manifest (e.g. its ONNX opset), or None
    write: Callable
    description: str
    # writer options it accepts (a target's ``writer_options``, e.g. ``onnx_opset``); the
    # exporter passes only these, so a format without an opset never sees one
    options: tuple[str, ...] = ()
    # An int8 format's writer for a float model (post-training quantization), where ``write``
    # needs a QAT model to be int8 at all (the QDQ ONNX); None: ``write`` does both.
    post_training_write: Callable | None = None
    # ``write`` chooses which layers stay float: the exporter passes it ``accept`` (a candidate
    # file's bytes -> the task bounds it fails on every gating kernel set) and the user's
    # quantization options (``full_int8``, ``max_float_layers``).
    searches: bool = False
    # the same for ``post_training_write``
    post_training_searches: bool = False
    # Per-layer sensitivity of its int8 file (``edgeaffect.export.sensitivity``): a context
    # manager (keras_model, input_specs, calibration) -> ``Ranking``; None: the format has none.
    sensitivity: Callable | None = None

    def writer(self, post_training: bool) -> tuple[Callable, bool]:
        """(the function that writes the file, whether it chooses its float layers)."""
        if post_training and self.post_training_write is not None:
            return self.post_training_write, self.post_training_searches
        return self.write, self.searches


@dataclass
class Ranking:
    """A quantized format's layers, the error int8 adds at each first, and how to write the file
    with chosen layers left float (``write(nodes) -> bytes``; ``write([])``: every layer int8)."""
    layers: list[tuple[str, str, float]]  # (node, op type, error)
    unit: str  # what the error measures
    write: Callable
    # node -> relative RMSE at the model's output with that node alone int8 (the order the
    # export's search takes them in), where the format measures it; None: it does not
    at_output: dict[str, float] | None = None


def register_format(fmt: ExportFormat) -> ExportFormat:
    if fmt.name in _FORMATS:
        raise ValueError(f"export format '{fmt.name}' registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def _load_all() -> None:
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{m.name}")


def writer_options(fmt: ExportFormat, target) -> dict:
    """The target's writer options that ``fmt`` accepts (a format without an opset gets none)."""
    given = target.writer_options if target is not None else {}
    return {k: v for k, v in given.items() if k in fmt.options}


def list_formats() -> list[str]:
    _load_all()
    return list(_FORMATS)


def get_format(name: str) -> ExportFormat:
    _load_all()
    return lookup("export format", name, _FORMATS)
