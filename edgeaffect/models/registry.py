"""Models registered by name (as timm's ``register_model``): a spec per named variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from edgeaffect._optional import lookup

_REGISTRY: dict[str, "ModelSpec"] = {}


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
    def family_plugin(self):
        """The ``Family`` this variant belongs to (what shared code asks)."""
        from edgeaffect.families import get_family

        return get_family(self.family)


def register_model(factory: Callable[[], ModelSpec]) -> Callable[[], ModelSpec]:
    spec = factory()
    if spec.name in _REGISTRY:
        raise ValueError(f"model '{spec.name}' registered twice")
    _REGISTRY[spec.name] = spec
    return factory


def _load_all() -> None:
    from edgeaffect.families import load_all  # each family registers its variants on import

    load_all()


def list_models() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_model(name: str) -> ModelSpec:
    _load_all()
    return lookup("model", name, _REGISTRY)
