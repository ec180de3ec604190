"""The export-format registry and the verification bounds each format must meet."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from edgeaffect._optional import lookup

_MODULES = ("edgeaffect.export.tflite", "edgeaffect.export.onnx", "edgeaffect.export.onnx_trt")
_FORMATS: dict[str, "ExportFormat"] = {}


@dataclass(frozen=True)
class Bounds:
    """What an export must meet against the Keras model it came from, on held-out data.

    max_abs: largest absolute difference of any output probability;
    agreement: fraction of samples with the same top-1 class;
    max_accuracy_drop: accuracy below the *float* Keras model, in absolute terms.
    """

    max_abs: float
    agreement: float
    max_accuracy_drop: float


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    source: str  # "float": from the trained model; "qat": from the QAT model
    runtime: str  # the runtime that verifies it (edgeaffect.runtime.RUNTIMES)
    bounds: Bounds
    write: Callable  # (keras_model, input_specs, calibration, path) -> None
    description: str


def register_format(fmt: ExportFormat) -> ExportFormat:
    if fmt.name in _FORMATS:
        raise ValueError(f"export format '{fmt.name}' registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def _load_all() -> None:
    for m in _MODULES:
        importlib.import_module(m)


def list_formats() -> list[str]:
    _load_all()
    return list(_FORMATS)


def get_format(name: str) -> ExportFormat:
    _load_all()
    return lookup("export format", name, _FORMATS)
