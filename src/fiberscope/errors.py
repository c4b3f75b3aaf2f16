"""Exceptions raised by fiberscope.

Every error a user can cause derives from :class:`FiberscopeError`. Its message is a single
line that names the problem and, where there is one, the fix. Front ends (the CLI) print that
line and exit with code 2; they never show a traceback for these.
"""

from __future__ import annotations


class FiberscopeError(Exception):
    """Base class of every error caused by bad input, a bad model or a bad file."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class InputError(FiberscopeError, ValueError):
    """A point, bound, step or option is malformed or inconsistent."""


class ModelError(FiberscopeError):
    """The model raised, returned something that is not a tensor, or has the wrong shape."""


class ModelLoadError(ModelError):
    """A model file or specification could not be read."""


class SingularPointError(FiberscopeError):
    """The Jacobian at the requested point does not have full rank."""


class OutputFileError(FiberscopeError):
    """An output file cannot be written (exists without ``--force``, or is not writable)."""
