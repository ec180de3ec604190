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


class UnknownNameError(InputError):
    """A model, format, dataset or target name is not registered."""
