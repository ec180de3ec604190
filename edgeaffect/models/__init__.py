"""Model registry. Adding a model is one new module here that calls ``register_model``;
it is imported by ``_MODULES`` below so the registry knows it by name."""

from edgeaffect.models.registry import ModelSpec, get_model, list_models, register_model

__all__ = ["ModelSpec", "get_model", "list_models", "register_model"]
