"""One error hierarchy. Every message says what was wrong and what to do.

The CLI turns any ``EdgeAffectError`` into one line on stderr and exit code 2.
"""


class EdgeAffectError(Exception):
    """Base class: a problem the user can fix (bad input, missing package, ...)."""

    exit_code = 2


class InputError(EdgeAffectError):
    """A file, path or argument given by the user is missing, unreadable or invalid."""


class MediaError(InputError):
    """Audio or video could not be decoded, or holds too little to use."""


class MissingDependencyError(EdgeAffectError):
    """An optional package is not installed; the message names the pip extra."""


class VerificationError(EdgeAffectError):
    """An exported model disagrees with the model it came from beyond the stated bound."""


class DeviceError(EdgeAffectError):
    """A remote device could not be reached, refused a command, ran out of time or space."""


class UnknownNameError(InputError):
    """A model, format, dataset or target name is not registered."""


# What a model file that parses but holds nonsense (a name that is not UTF-8, an index past
# a table, a zero stride) raises deep inside a reader, once past the reader's own checks.
CORRUPT_MODEL = (ValueError, RuntimeError, KeyError, IndexError, TypeError, AttributeError, StopIteration,
                 OverflowError, ZeroDivisionError, MemoryError)


def corrupt_model(path, exc: BaseException) -> InputError:
    """The one line for a model file a reader could not make sense of."""
    from pathlib import Path

    first = (str(exc).splitlines() or [""])[0][:160]
    kind = Path(path).suffix.lower()[1:] or "model"
    return InputError(f"{path} is not a valid {kind} model or is corrupted ({type(exc).__name__}: {first}); "
                      "export it again")
