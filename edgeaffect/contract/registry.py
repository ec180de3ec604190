"""Families and their model variants, registered by name (as timm's ``register_model``).

A family registers its ``Family`` and its named variants (a ``ModelSpec`` each) when its
package is imported. The built-in families are the sub-packages of ``edgeaffect.families``,
found on disk (adding one is adding a folder); another installed package adds one through
the ``edgeaffect.families`` entry-point group, a module named in ``EDGEAFFECT_PLUGINS``
(comma-separated; its ``register()`` is called when it has one) adds one without being
installed, and a test can call ``register_family``.
Both are found by name at run time, never imported here by module: the contract stays
below the families it describes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from edgeaffect._optional import lookup
from edgeaffect.errors import InputError

if TYPE_CHECKING:
    from edgeaffect.contract.family import Family

# Where the built-in families live, and the entry-point group installed ones register in.
BUILTIN_PACKAGE = "edgeaffect.families"
ENTRY_POINT_GROUP = "edgeaffect.families"
PLUGINS_VARIABLE = "EDGEAFFECT_PLUGINS"

_FAMILIES: dict[str, "Family"] = {}
_MODELS: dict[str, "ModelSpec"] = {}
_loaded = False


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    paper: str
    task: str
    labels: tuple[str, ...]
    inputs: dict[str, tuple]  # input name -> per-sample shape
    config: Any  # the family's config dataclass (architecture + training recipe)
    build: Callable[[Any], Any]  # config -> tf_keras.Model
    cost: Callable[[Any], list]  # config -> per-layer cost rows (no TensorFlow needed)
    paper_figures: dict = field(default_factory=dict)  # what the paper reports, with its source

    @property
    def params(self) -> int:
        return sum(row.params for row in self.cost(self.config))

    @property
    def flops(self) -> int:
        return sum(row.flops for row in self.cost(self.config))

    def build_model(self):
        return self.build(self.config)

    @property
    def family_plugin(self) -> "Family":
        """The ``Family`` this variant belongs to (what shared code asks)."""
        return get_family(self.family)


def register_family(family: "Family") -> "Family":
    if family.name in _FAMILIES and _FAMILIES[family.name] is not family:
        raise ValueError(f"model family '{family.name}' registered twice")
    _FAMILIES[family.name] = family
    return family


def register_model(factory: Callable[[], ModelSpec]) -> Callable[[], ModelSpec]:
    spec = factory()
    if spec.name in _MODELS:
        raise ValueError(f"model '{spec.name}' registered twice")
    _MODELS[spec.name] = spec
    return factory


def load_all() -> None:
    """Import the built-in families, any installed through the entry-point group (each
    registers itself and its variants on import) and the modules ``EDGEAFFECT_PLUGINS`` names."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in builtin_families():
        importlib.import_module(module)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    for module in plugin_modules():
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise InputError(f"{PLUGINS_VARIABLE} names '{module}', which does not import ({exc}); "
                             "is its folder on PYTHONPATH?") from None
        register = getattr(plugin, "register", None)
        if callable(register):
            register()


def plugin_modules() -> list[str]:
    """The module names in ``EDGEAFFECT_PLUGINS`` (e.g. a family kept beside its tests)."""
    import os

    return [m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(",") if m.strip()]


def builtin_families() -> list[str]:
    """The sub-packages of ``BUILTIN_PACKAGE``, by module name."""
    import pkgutil

    package = importlib.import_module(BUILTIN_PACKAGE)
    return [f"{BUILTIN_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if m.ispkg]


def list_families() -> list[str]:
    load_all()
    return sorted(_FAMILIES)


def get_family(name: str) -> "Family":
    load_all()
    return lookup("model family", name, _FAMILIES)


def list_models() -> list[str]:
    load_all()
    return sorted(_MODELS)


def get_model(name: str) -> ModelSpec:
    load_all()
    return lookup("model", name, _MODELS)
