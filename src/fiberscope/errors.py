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


class TargetNotReachedError(FiberscopeError):
    """A walk across classes stopped before it reached the requested output level.

    Attributes
    ----------
    closest_output : list of float
        The output closest to the target that the walk reached.
    closest_point : list of float
        Where (flat input coordinates).
    reason : str
        ``"boundary"`` (the walk left the box), ``"singular"`` (the gradient vanished: a
        local extremum or a saddle of the output), or ``"max_steps"``.
    result : object or None
        The partial result (e.g. an :class:`~fiberscope.ExploreResult`) for inspection.
    """

    def __init__(
        self,
        message: str,
        *,
        closest_output: list[float] | None = None,
        closest_point: list[float] | None = None,
        reason: str = "",
        result: object = None,
    ) -> None:
        super().__init__(message)
        self.closest_output = closest_output
        self.closest_point = closest_point
        self.reason = reason
        self.result = result


class UnsafeModelError(ModelLoadError):
    """A model file would need unpickling arbitrary Python objects (or native code) to load."""


class CheckpointError(FiberscopeError):
    """A checkpoint is missing, corrupt, or was written for a different run."""


class Interrupted(KeyboardInterrupt):  # noqa: N818 - an interruption, like its base class
    """A run was stopped (Ctrl-C, SIGTERM or a ``stop=`` flag) before it finished.

    It is a :class:`KeyboardInterrupt`, so code that does not care still stops; code that
    does can keep what was done. Every verb raises it.

    Attributes
    ----------
    result : object
        The partial result up to the last completed step (``result.complete`` is False where
        the result has that field), or None when nothing useful was done yet.
    snapshot : Snapshot
        Everything needed to continue exactly: pass it back as ``resume=snapshot`` to the
        same verb with the same arguments.
    """

    def __init__(self, result: object, snapshot: object) -> None:
        super().__init__("the run was interrupted")
        self.result = result
        self.snapshot = snapshot


#: The name used before every verb could be interrupted.
TraceInterrupted = Interrupted


class OutputSelectionError(InputError, ModelError):
    """An ``--output`` / ``output=`` selection is malformed or does not fit the model's output."""
