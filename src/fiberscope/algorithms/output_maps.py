"""Output maps: which outputs of a model define "the same" (classifier scores, margins, ...).

An output map is a plain callable applied to the model's *unbatched* output tensor; it must be
written with differentiable torch operations (it is differentiated with ``torch.func`` and
batched with ``torch.vmap`` for heat maps). Every algorithm accepts one through ``output=``.

The classes here add three optional pieces of information that the classifier walks use:

- ``threshold``: the value of the (scalar) map at which the decision flips
  (0.5 for a probability, 0 for a logit difference or a class margin);
- ``decision(raw_output)``: the decision (class index) for a raw model output;
- ``bind(raw_output)``: a copy whose free parameters (the class of the start) are fixed from
  the model's raw output at the start.

They are small frozen dataclasses, so string front ends (``--output logits[3]``) can build them
and results can record them (``repr`` and ``spec`` are stable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError

__all__ = [
    "BinaryScore",
    "ClassMargin",
    "ClassProbability",
    "LogitDifference",
    "OutputComponent",
    "Softmax",
    "bind_output",
    "describe_output",
    "output_threshold",
    "resolve_output",
]


def _flat(y: Tensor) -> Tensor:
    return y.reshape(-1)


def _check_index(index: Any, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        raise InputError(f"{what} must be an integer, got {index!r}")
    return index


def _check_range(index: int, size: int, what: str) -> None:
    if not -size <= index < size:
        raise InputError(f"{what} {index} is out of range: the model has {size} outputs")


@dataclass(frozen=True)
class OutputComponent:
    """One output of the model, ``y[index]``, as a 1-vector (e.g. one logit or one score).

    Parameters
    ----------
    index : int
        Index into the flattened output (negative indices count from the end).
    threshold : float, optional
        Where the decision flips, if this output is a decision score.
    """

    index: int
    threshold: float | None = None

    def __post_init__(self) -> None:
        _check_index(self.index, "the output index")

    def __call__(self, y: Tensor) -> Tensor:
        f = _flat(y)
        return f[self.index : self.index + 1] if self.index != -1 else f[-1:]

    @property
    def __name__(self) -> str:  # recorded by trace() in its options
        return self.spec

    @property
    def spec(self) -> str:
        """Short text form, e.g. ``y[3]``."""
        return f"y[{self.index}]"

    def check(self, size: int) -> None:
        """Refuse an index outside a model output of ``size`` entries."""
        _check_range(self.index, size, "output index")

    def decision(self, raw: Tensor) -> int:
        """1 if the score is above the threshold, else 0."""
        t = 0.5 if self.threshold is None else self.threshold
        return int(float(self(raw)[0]) > t)


@dataclass(frozen=True)
class BinaryScore(OutputComponent):
    """The score of a binary classifier (one output, a probability); flips at ``threshold``.

    Parameters
    ----------
    index : int
        Which output holds the score (0 for a single-output network).
    threshold : float
        Decision threshold (0.5 for a probability, 0 for a logit).
    """

    index: int = 0
    threshold: float | None = 0.5

    @property
    def spec(self) -> str:
        """Short text form, e.g. ``score[0]>0.5``."""
        return f"score[{self.index}]>{self.threshold:g}"


@dataclass(frozen=True)
class LogitDifference:
    """``y[i] - y[j]``: positive where class ``i`` beats class ``j``; flips at 0.

    Parameters
    ----------
    i, j : int
        The two classes (indices into the flattened output).
    log : bool
        Take logarithms first (for models that output probabilities).
    """

    i: int
    j: int
    log: bool = False
    threshold: float = 0.0

    def __post_init__(self) -> None:
        _check_index(self.i, "the first class")
        _check_index(self.j, "the second class")
        if self.i == self.j:
            raise InputError(f"a logit difference needs two different classes, got {self.i} twice")

    def __call__(self, y: Tensor) -> Tensor:
        f = _flat(y)
        if self.log:
            f = torch.log(f)
        return (f[self.i] - f[self.j]).reshape(1)

    @property
    def __name__(self) -> str:
        return self.spec

    @property
    def spec(self) -> str:
        """Short text form, e.g. ``logit-diff 3 5``."""
        return f"logit-diff {self.i} {self.j}" + (" (log)" if self.log else "")

    def check(self, size: int) -> None:
        """Refuse class indices outside a model output of ``size`` entries."""
        _check_range(self.i, size, "class")
        _check_range(self.j, size, "class")

    def decision(self, raw: Tensor) -> int:
        """``i`` where the difference is positive, else ``j``."""
        return self.i if float(self(raw)[0]) > 0 else self.j


@dataclass(frozen=True)
class Softmax:
    """The full probability vector ``softmax(y)`` (``m`` = number of classes)."""

    def __call__(self, y: Tensor) -> Tensor:
        return torch.softmax(_flat(y), dim=0)

    @property
    def __name__(self) -> str:
        return self.spec

    @property
    def spec(self) -> str:
        """Short text form: ``softmax``."""
        return "softmax"

    def check(self, size: int) -> None:
        """Any output size works."""

    def decision(self, raw: Tensor) -> int:
        """The most probable class."""
        return int(torch.argmax(_flat(raw)))


@dataclass(frozen=True)
class ClassProbability:
    """``softmax(y)[index]``, the probability of one class (from logits).

    Its decision threshold is 0.5 only for two classes; for more, use :class:`ClassMargin`.

    Parameters
    ----------
    index : int
        The class.
    threshold : float, optional
        Decision threshold (set it to 0.5 for a two-class model).
    """

    index: int
    threshold: float | None = None

    def __post_init__(self) -> None:
        _check_index(self.index, "the class index")

    def __call__(self, y: Tensor) -> Tensor:
        p = torch.softmax(_flat(y), dim=0)
        return p[self.index : self.index + 1] if self.index != -1 else p[-1:]

    @property
    def __name__(self) -> str:
        return self.spec

    @property
    def spec(self) -> str:
        """Short text form, e.g. ``softmax[3]``."""
        return f"softmax[{self.index}]"

    def check(self, size: int) -> None:
        """Refuse a class outside a model output of ``size`` entries."""
        _check_range(self.index, size, "class")

    def decision(self, raw: Tensor) -> int:
        """The most probable class."""
        return int(torch.argmax(_flat(raw)))


@dataclass(frozen=True)
class ClassMargin:
    """Margin of one class over the best other one: ``y[c] - max_{j != c} y[j]``; flips at 0.

    Positive exactly where ``c`` is the decision (the argmax). With ``cls=None`` the class is
    the decision at the start (fixed by :func:`bind_output`).

    Parameters
    ----------
    cls : int, optional
        The class ``c``; ``None`` for "the class of the start".
    log : bool
        Take logarithms first (for models that output probabilities).
    """

    cls: int | None = None
    log: bool = False
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.cls is not None:
            _check_index(self.cls, "the class")

    def __call__(self, y: Tensor) -> Tensor:
        if self.cls is None:
            raise InputError("ClassMargin(cls=None) must be bound to a start first (bind_output)")
        f = _flat(y)
        if self.log:
            f = torch.log(f)
        c = self.cls % f.shape[0]
        others = torch.cat((f[:c], f[c + 1 :]))
        return (f[c] - others.max()).reshape(1)

    @property
    def __name__(self) -> str:
        return self.spec

    @property
    def spec(self) -> str:
        """Short text form, e.g. ``margin 3``."""
        return (
            "margin" + ("" if self.cls is None else f" {self.cls}") + (" (log)" if self.log else "")
        )

    def check(self, size: int) -> None:
        """A margin needs two classes at least."""
        if size < 2:
            raise InputError(f"a class margin needs at least 2 outputs, the model has {size}")
        if self.cls is not None:
            _check_range(self.cls, size, "class")

    def bind(self, raw: Tensor) -> ClassMargin:
        """Fix the class to the decision of the raw output ``raw`` (when it is not given)."""
        if self.cls is not None:
            return self
        return replace(self, cls=int(torch.argmax(_flat(raw))))

    def decision(self, raw: Tensor) -> int:
        """The argmax class."""
        return int(torch.argmax(_flat(raw)))


def bind_output(
    output: Callable[[Tensor], Tensor] | None, raw: Tensor
) -> Callable[[Tensor], Tensor] | None:
    """Validate an output map against a raw model output and fix its free parameters.

    Parameters
    ----------
    output : callable or None
        The output map.
    raw : torch.Tensor
        The model's raw output at the start.

    Returns
    -------
    callable or None
        The map, bound to the start where it has a ``bind`` method.
    """
    if output is None:
        return None
    check = getattr(output, "check", None)
    if callable(check):
        check(int(raw.numel()))
    bind = getattr(output, "bind", None)
    if callable(bind):
        return bind(raw)
    return output


def resolve_output(output: Any) -> Callable[[Tensor], Tensor] | None:
    """Turn a selection string (``"logits[3]"``, ``"logit-diff 3 5"``) into a callable.

    Callables (and None) are returned unchanged; strings are parsed by
    :func:`fiberscope.models.outputs.output_map`.

    Parameters
    ----------
    output : callable, str or None
        The output map or its text form.

    Returns
    -------
    callable or None
        The output map.
    """
    if isinstance(output, str):
        from ..models.outputs import output_map

        return output_map(output)
    if output is not None and not callable(output):
        raise InputError(
            f"output must be a callable or a selection string, got {type(output).__name__}"
        )
    return output


def output_threshold(output: Any) -> float | None:
    """The decision threshold an output map declares, or None.

    Maps with a ``threshold`` attribute declare it; a difference of two logits or
    probabilities (a selection with a ``pair``) flips at 0.
    """
    t = getattr(output, "threshold", None)
    if t is None and getattr(output, "pair", None) is not None:
        return 0.0
    return None if t is None else float(t)


def describe_output(output: Any) -> str | None:
    """Stable text description of an output map for result metadata."""
    if output is None:
        return None
    spec = getattr(output, "spec", None)
    if isinstance(spec, str):
        return spec
    return getattr(output, "__name__", None) or repr(output)
