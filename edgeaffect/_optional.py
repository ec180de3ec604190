"""Import heavy or optional packages where they are used, with an error naming the fix."""

from __future__ import annotations

import difflib
import importlib
from types import ModuleType

from edgeaffect.errors import MissingDependencyError, UnknownNameError


def require(module: str, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error that names the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = package or module.split(".")[0]
        raise MissingDependencyError(
            f"'{pkg}' is not installed ({exc.__class__.__name__}: {exc}); "
            f"install it with: pip install 'edgeaffect[{extra}]'"
        ) from None


def lookup(kind: str, name: str, table: dict):
    """``table[name]``, or an error listing the choices and the closest match."""
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    choices = ", ".join(sorted(table))
    raise UnknownNameError(f"unknown {kind} '{name}'.{hint} Choose one of: {choices}.")
