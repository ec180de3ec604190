"""A small declarative validator for the JSON / TOML files the toolkit reads (a bundle's
manifest, a budgets file, a run's record).

Why not ``jsonschema``: it pulls in attrs, referencing, jsonschema-specifications and
rpds-py (a Rust extension) onto every Raspberry Pi / Jetson install, and its messages
("[] is not of type 'number'") name neither the file nor what to do. What these files need
is a handful of types with ranges, and one line naming the field and what was expected.

Usage::

    MANIFEST = Table({"labels": List(Str(), min_len=1), "threads": Int(min=1)},
                     optional={"threads"})
    check(MANIFEST, data, "manifest.json in bundle/")  # raises InputError on the first problem
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath, PureWindowsPath

from edgeaffect.errors import InputError


class SchemaError(ValueError):
    """One field that does not match: where it is, what was expected, what was found."""

    def __init__(self, where: str, expected: str, got_text: str = "", missing: bool = False):
        self.where, self.expected, self.got_text, self.missing = where, expected, got_text, missing
        super().__init__(self.line())

    def line(self) -> str:
        if self.missing:
            return f"missing '{self.where}' (expected {self.expected})"
        return f"'{self.where}' must be {self.expected}, got {self.got_text}"


def show(value) -> str:
    text = repr(value)
    kind = type(value).__name__
    return f"{text} ({kind})" if len(text) <= 40 else f"{text[:37]}... ({kind})"


def _join(where: str, key) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else str(key)


class Spec:
    """One expected value. ``check`` returns the value (unchanged) or raises SchemaError."""

    expected = "a value"

    def check(self, value, where: str):
        raise NotImplementedError

    def fail(self, value, where: str, expected: str | None = None, got_text: str | None = None):
        raise SchemaError(where, expected or self.expected, got_text or show(value))


class Any(Spec):
    def check(self, value, where):
        return value


class Bool(Spec):
    expected = "true or false"

    def check(self, value, where):
        if not isinstance(value, bool):
            self.fail(value, where)
        return value


def _range_text(lo, hi, lo_open=False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    return " and ".join(parts)


class Num(Spec):
    """A finite number (an int is fine; a bool, NaN or infinity is not)."""

    kind = "a finite number"

    def __init__(self, min: float | None = None, max: float | None = None, above: float | None = None):
        self.min, self.max, self.above = min, max, above
        rng = _range_text(above if above is not None else min, max, lo_open=above is not None)
        self.expected = f"{self.kind} {rng}".strip()

    def _type_ok(self, value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def check(self, value, where):
        if not self._type_ok(value) or not math.isfinite(value):
            self.fail(value, where)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max) \
                or (self.above is not None and value <= self.above):
            self.fail(value, where)
        return value


class Int(Num):
    kind = "an integer"

    def _type_ok(self, value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)


class Str(Spec):
    def __init__(self, choices=None, pattern: str | None = None, what: str | None = None, empty: bool = False):
        self.choices = tuple(choices) if choices else None
        self.pattern = re.compile(pattern) if pattern else None
        self.empty = empty
        if what:
            self.expected = what
        elif self.choices:
            self.expected = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            self.expected = "a string" if empty else "a non-empty string"

    def check(self, value, where):
        if not isinstance(value, str) or (not value and not self.empty):
            self.fail(value, where)
        if self.choices and value not in self.choices:
            self.fail(value, where)
        if self.pattern and not self.pattern.fullmatch(value):
            self.fail(value, where)
        return value


class RelPath(Str):
    """A file name inside a folder: relative, no '..', no drive or backslash tricks.
    (Symlinks are checked against the real folder by ``contained``.)"""

    expected = "a relative file name inside the folder (no '..', not absolute)"

    def __init__(self):
        super().__init__(what=self.expected)

    def check(self, value, where):
        super().check(value, where)
        posix, win = PurePosixPath(value), PureWindowsPath(value)
        if posix.is_absolute() or win.is_absolute() or win.drive or ".." in posix.parts or ".." in win.parts \
                or "\x00" in value:
            self.fail(value, where)
        return value


class Nullable(Spec):
    def __init__(self, inner: Spec):
        self.inner = inner
        self.expected = f"{inner.expected} or null"

    def check(self, value, where):
        return None if value is None else self.inner.check(value, where)


class OneOf(Spec):
    def __init__(self, *options: Spec):
        self.options = options
        self.expected = " or ".join(o.expected for o in options)

    def check(self, value, where):
        for option in self.options:
            try:
                return option.check(value, where)
            except SchemaError:
                continue
        self.fail(value, where)


class List(Spec):
    def __init__(self, item: Spec, min_len: int = 0, max_len: int | None = None, unique: bool = False):
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique
        self.expected = f"a list of {self._length()} items, each {item.expected}"

    def check(self, value, where):
        if not isinstance(value, list):
            self.fail(value, where)
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            self.fail(value, where, f"a list of {self._length()} items", f"{len(value)}")
        for i, v in enumerate(value):
            self.item.check(v, _join(where, i))
        if self.unique and len(set(map(repr, value))) != len(value):
            self.fail(value, where, "a list without repeated items")
        return value

    def _length(self) -> str:
        if self.max_len is None:
            return f"at least {self.min_len}" if self.min_len else "any number of"
        return str(self.min_len) if self.min_len == self.max_len else f"{self.min_len} to {self.max_len}"


class Tuple(Spec):
    """A fixed-length list whose items each have their own spec, e.g. ["mfcc", 40]."""

    def __init__(self, *items: Spec):
        self.items = items
        self.expected = "[" + ", ".join(i.expected for i in items) + "]"

    def check(self, value, where):
        if not isinstance(value, list) or len(value) != len(self.items):
            self.fail(value, where)
        for i, (spec, v) in enumerate(zip(self.items, value)):
            spec.check(v, _join(where, i))
        return value


class Table(Spec):
    """A JSON object / TOML table with known keys. Unknown keys are kept (a newer minor
    writer may add some) unless ``closed``."""

    def __init__(self, fields: dict[str, Spec], optional=(), closed: bool = False, what: str = "a table"):
        self.fields, self.optional, self.closed = fields, set(optional), closed
        self.expected = what

    def check(self, value, where):
        if not isinstance(value, dict):
            self.fail(value, where)
        for key, spec in self.fields.items():
            if key not in value:
                if key in self.optional:
                    continue
                raise SchemaError(_join(where, key), spec.expected, missing=True)
            spec.check(value[key], _join(where, key))
        if self.closed:
            unknown = sorted(set(value) - set(self.fields))
            if unknown:
                raise SchemaError(_join(where, unknown[0]), f"absent (not a known key; known: {', '.join(self.fields)})",
                                  show(value[unknown[0]]))
        return value


class Map(Spec):
    """A table whose keys are names (formats, input names, files) and whose values share a spec."""

    def __init__(self, value: Spec, key: Spec | None = None, min_len: int = 0, what: str = "a table"):
        self.value, self.key, self.min_len = value, key or Str(), min_len
        self.expected = what

    def check(self, value, where):
        if not isinstance(value, dict):
            self.fail(value, where)
        if len(value) < self.min_len:
            self.fail(value, where, f"{self.expected} with at least {self.min_len} entr{'y' if self.min_len == 1 else 'ies'}")
        for k, v in value.items():
            self.key.check(k, _join(where, f"<key {k!r}>"))
            self.value.check(v, _join(where, k))
        return value


def check(spec: Spec, value, source: str | None, at: str = ""):
    """``value`` if it matches ``spec``; otherwise an InputError naming ``source`` (when
    given) and the field (under ``at``)."""
    try:
        return spec.check(value, at)
    except SchemaError as exc:
        raise InputError(f"{source}: {exc.line()}" if source else exc.line()) from None


def field_error(source: str | None, where: str, expected: str, got_text: str) -> InputError:
    """The same one-line message, for checks across fields that a spec cannot express."""
    line = SchemaError(where, expected, got_text).line()
    return InputError(f"{source}: {line}" if source else line)
