"""Model families as plug-ins. A family is one folder (or an installed package) that
registers a ``Family`` and its named model variants on import; shared code finds it by the
name a model spec, a run folder or a bundle's manifest carries.

Every sub-package of this folder is a built-in family (found on disk, so adding one is
adding a folder); another package adds one through the ``edgeaffect.families`` entry-point
group, and a test can call ``register_family``.
"""

from __future__ import annotations

import importlib

from edgeaffect._optional import lookup
from edgeaffect.families.base import DeviceAdapter, Family, LiveInput, Stage
from edgeaffect.families.tasks import Bounds, ClassificationTask, DetectionTask, Prediction, RegressionTask, Task

ENTRY_POINT_GROUP = "edgeaffect.families"
_FAMILIES: dict[str, Family] = {}
_loaded = False

__all__ = ["Bounds", "ClassificationTask", "DetectionTask", "DeviceAdapter", "Family", "LiveInput", "Prediction", "Stage",
           "RegressionTask", "Task", "get_family", "list_families", "load_all", "register_family"]


def register_family(family: Family) -> Family:
    if family.name in _FAMILIES and _FAMILIES[family.name] is not family:
        raise ValueError(f"model family '{family.name}' registered twice")
    _FAMILIES[family.name] = family
    return family


def load_all() -> None:
    """Import the built-in families and any installed through the entry-point group."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in builtin_families():
        importlib.import_module(module)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def builtin_families() -> list[str]:
    """The sub-packages of this folder, by module name."""
    import pkgutil

    return [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.ispkg]


def list_families() -> list[str]:
    load_all()
    return sorted(_FAMILIES)


def get_family(name: str) -> Family:
    load_all()
    return lookup("model family", name, _FAMILIES)
