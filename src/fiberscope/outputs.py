"""Output maps: which outputs of a model define "the same" (``output=`` / ``--output``).

An output map is a plain callable applied to the model's *unbatched* output tensor that returns
the tensor whose level sets fiberscope follows. It must be written with differentiable torch
operations (it is differentiated with ``torch.func`` and batched with ``torch.vmap``). Any
callable works; the :class:`OutputMap` protocol names the optional pieces the classifier walks
use:

- ``threshold``: the value of the (scalar) map at which the decision flips
  (0.5 for a probability, 0 for a logit difference or a class margin);
- ``decision(raw_output)``: the decision (class index) for a raw model output;
- ``bind(raw_output)``: a copy whose free parameters (the class of the start) are fixed from
  the model's raw output at the start;
- ``check(size)``: refuse a model output of ``size`` entries it cannot apply to;
- ``spec``: a stable text form recorded in result metadata.

Selections can be written as short strings (:func:`output_map`)::

    all | identity | logits | y         the whole output, flattened
    [I]  logits[I]  y[I]  out[I]         components of the flattened output
    softmax[I]  probs[I]                 softmax over the last axis, then components
    log-softmax[I]                       log-softmax over the last axis, then components
    sigmoid[I]                           elementwise sigmoid, then components
    logit-diff A B                       y[A] - y[B] (the decision between classes A and B)
    prob-diff A B                        softmax(y)[A] - softmax(y)[B]
    sum  sum[I]  mean  mean[I]           sum / mean of (some) components, one output

``I`` is an integer (``3``, ``-1``), a slice (``0:3``, ``2:``) or a comma list (``3,5,7``);
indices count in the flattened output, row-major. ``softmax`` without an index selects every
component, whose probabilities sum to one: that Jacobian always loses a rank, so it is refused
with a hint to drop one component.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from .errors import InputError, OutputSelectionError


@runtime_checkable
class OutputMap(Protocol):
    """What ``output=`` takes: a callable from the model's (unbatched) output to a tensor.

    Only ``__call__`` is required; ``threshold``, ``decision``, ``bind``, ``check`` and
    ``spec`` are optional and read with :func:`getattr` where they are used.
    """

    def __call__(self, y: Tensor) -> Tensor:  # pragma: no cover - protocol
        """Map one model output to the outputs that define the class."""
        ...


_IDENTITY_NAMES = {"all", "identity", "logits", "y", "out", "output", "outputs", "id"}
_TRANSFORMS = {
    "softmax": "softmax",
    "probs": "softmax",
    "probabilities": "softmax",
    "log-softmax": "log_softmax",
    "log_softmax": "log_softmax",
    "logsoftmax": "log_softmax",
    "sigmoid": "sigmoid",
    "sum": "sum",
    "mean": "mean",
}
_DIFFS = {
    "logit-diff": "identity",
    "logit_diff": "identity",
    "prob-diff": "softmax",
    "prob_diff": "softmax",
}
_INDEXED = re.compile(r"^([a-z_\-]*)\s*\[([^\[\]]*)\]$")


def _int(text: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise OutputSelectionError(
            f"output {spec!r}: {text.strip()!r} is not an integer index"
        ) from None


@dataclass(frozen=True)
class OutputSelection:
    """A parsed output selection; call it on the model's output tensor.

    Attributes
    ----------
    spec : str
        The text it was parsed from (also its ``__name__``, recorded in result metadata).
    transform : str
        ``"identity"``, ``"softmax"``, ``"log_softmax"``, ``"sigmoid"``, ``"sum"``, ``"mean"``
        or ``"diff"``.
    index : tuple or None
        ``("int", i)``, ``("slice", start, stop)`` or ``("list", (i, j, ...))``; None for all.
    pair : tuple of int or None
        ``(a, b)`` for a difference.
    diff_of : str
        What a difference is taken of: ``"identity"`` (logits) or ``"softmax"``.
    """

    spec: str
    transform: str = "identity"
    index: tuple[Any, ...] | None = None
    pair: tuple[int, int] | None = None
    diff_of: str = "identity"
    _checked: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def __name__(self) -> str:  # type: ignore[override]
        """The selection as written (used in metadata)."""
        return self.spec

    # ------------------------------------------------------------------ validation
    def positions(self, numel: int) -> list[int]:
        """Flat positions selected from an output with ``numel`` components."""
        if self.index is None:
            return list(range(numel))
        kind = self.index[0]
        if kind == "int":
            return [self._in_range(self.index[1], numel)]
        if kind == "list":
            return [self._in_range(i, numel) for i in self.index[1]]
        start, stop = self.index[1], self.index[2]
        picked = list(range(numel))[slice(start, stop)]
        if not picked:
            raise OutputSelectionError(
                f"output {self.spec!r}: the slice selects nothing from the model's {numel} outputs"
            )
        return picked

    def _in_range(self, i: int, numel: int) -> int:
        if not -numel <= i < numel:
            raise OutputSelectionError(
                f"output {self.spec!r}: index {i} is out of range for the model's {numel} "
                f"output{'s' if numel != 1 else ''}"
            )
        return i % numel

    def validate(self, shape: tuple[int, ...] | torch.Size) -> int:
        """Check the selection against the model's output shape; return the selected size.

        Parameters
        ----------
        shape : tuple of int
            Shape of the model's (unbatched) output.

        Returns
        -------
        int
            Number of outputs after the selection.

        Raises
        ------
        OutputSelectionError
            Index out of range, a repeated index, an empty slice, a softmax that selects a whole
            probability vector, or a vector operation on a scalar output.
        """
        shape = tuple(int(s) for s in shape)
        numel = math.prod(shape) if shape else 1
        where = f"the model's output has shape {shape}"
        if self.transform == "diff":
            a, b = (self._in_range(i, numel) for i in self.pair or (0, 0))
            if a == b:
                raise OutputSelectionError(
                    f"output {self.spec!r}: both indices name output {a}; the difference is 0"
                )
            if self.diff_of == "softmax" and not shape:
                raise OutputSelectionError(f"output {self.spec!r}: {where}, not a vector")
            return 1
        if self.transform in ("softmax", "log_softmax"):
            if not shape or shape[-1] < 2:
                raise OutputSelectionError(
                    f"output {self.spec!r}: softmax needs a vector of at least 2 outputs, but "
                    f"{where}"
                )
            picked = self.positions(numel)
            if len(set(picked)) != len(picked):
                raise OutputSelectionError(f"output {self.spec!r}: an index is repeated")
            last = shape[-1]
            rows: dict[int, int] = {}
            for p in picked:
                rows[p // last] = rows.get(p // last, 0) + 1
            if any(count == last for count in rows.values()):
                name = "softmax" if self.transform == "softmax" else "log-softmax"
                raise OutputSelectionError(
                    f"output {self.spec!r}: all {last} {name} outputs of a row are selected; "
                    f"they are tied by sum(p) = 1, so the Jacobian always loses a rank: select "
                    f"at most {last - 1}, e.g. {name}[0:{last - 1}]"
                )
            return len(picked)
        picked = self.positions(numel)
        if len(set(picked)) != len(picked):
            raise OutputSelectionError(f"output {self.spec!r}: an index is repeated")
        return 1 if self.transform in ("sum", "mean") else len(picked)

    def check(self, size: int) -> None:
        """Check against a flat model output of ``size`` entries (see :meth:`validate`).

        Parameters
        ----------
        size : int
            Number of model outputs.
        """
        self.validate((int(size),))

    # ------------------------------------------------------------------ evaluation
    def __call__(self, y: Tensor) -> Tensor:
        """Apply the selection to one (unbatched) model output.

        Parameters
        ----------
        y : torch.Tensor
            The model's output.

        Returns
        -------
        torch.Tensor
            The selected outputs, 1-D.
        """
        if not isinstance(y, Tensor):
            raise OutputSelectionError(
                f"output {self.spec!r}: the model returned {type(y).__name__}, not a tensor"
            )
        key = tuple(y.shape)
        if self._checked.get("shape") != key:
            self.validate(key)
            self._checked["shape"] = key
        if self.transform == "diff":
            z = torch.softmax(y, dim=-1) if self.diff_of == "softmax" else y
            flat = z.reshape(-1)
            a, b = self.pair  # type: ignore[misc]
            return (flat[a] - flat[b]).reshape(1)
        if self.transform == "softmax":
            y = torch.softmax(y, dim=-1)
        elif self.transform == "log_softmax":
            y = torch.log_softmax(y, dim=-1)
        elif self.transform == "sigmoid":
            y = torch.sigmoid(y)
        flat = y.reshape(-1)
        if self.index is not None:
            kind = self.index[0]
            if kind == "int":
                flat = flat[self.index[1]].reshape(1)
            elif kind == "slice":
                flat = flat[self.index[1] : self.index[2]]
            else:
                flat = flat[list(self.index[1])]
        if self.transform == "sum":
            return flat.sum().reshape(1)
        if self.transform == "mean":
            return flat.mean().reshape(1)
        return flat


def _parse_index(text: str, spec: str) -> tuple[Any, ...]:
    body = text.strip()
    if not body:
        raise OutputSelectionError(f"output {spec!r}: empty brackets; write e.g. [3] or [0:2]")
    if ":" in body:
        parts = body.split(":")
        if len(parts) != 2:
            raise OutputSelectionError(
                f"output {spec!r}: slices are start:stop (no step), got {body!r}"
            )
        start = _int(parts[0], spec) if parts[0].strip() else None
        stop = _int(parts[1], spec) if parts[1].strip() else None
        return ("slice", start, stop)
    if "," in body:
        items = [p for p in body.split(",")]
        if any(not p.strip() for p in items):
            raise OutputSelectionError(f"output {spec!r}: empty entry in the index list")
        return ("list", tuple(_int(p, spec) for p in items))
    return ("int", _int(body, spec))


def output_map(spec: str | OutputSelection) -> OutputSelection:
    """Parse an output selection such as ``"logits[3]"`` or ``"logit-diff 3 5"``.

    Parameters
    ----------
    spec : str or OutputSelection
        The selection (see the module docstring for the grammar).

    Returns
    -------
    OutputSelection
        A callable to pass as ``output=`` to :func:`fiberscope.trace` and friends. It checks
        itself against the model's output shape on first use.

    Raises
    ------
    OutputSelectionError
        If the text does not parse.

    Examples
    --------
    >>> import torch, fiberscope as fs
    >>> sel = fs.output_map("logit-diff 3 5")
    >>> sel(torch.arange(10.0))
    tensor([-2.])
    """
    if isinstance(spec, OutputSelection):
        return spec
    if not isinstance(spec, str):
        raise OutputSelectionError(
            f"an output selection must be a string such as 'logits[3]', got {type(spec).__name__}"
        )
    text = " ".join(spec.strip().lower().split())
    if not text:
        raise OutputSelectionError(
            "the output selection is empty; write e.g. 'logits[3]' or 'logit-diff 3 5'"
        )
    words = text.replace("(", " ").replace(")", " ").replace(",", " ").split()
    if words and words[0] in _DIFFS:
        if len(words) != 3:
            raise OutputSelectionError(
                f"output {spec!r}: {words[0]} takes two class indices, e.g. '{words[0]} 3 5'"
            )
        a, b = _int(words[1], spec), _int(words[2], spec)
        return OutputSelection(
            spec=spec.strip(), transform="diff", pair=(a, b), diff_of=_DIFFS[words[0]]
        )
    compact = text.replace(" [", "[")
    if compact in _IDENTITY_NAMES:
        return OutputSelection(spec=spec.strip())
    if compact in _TRANSFORMS:
        return OutputSelection(spec=spec.strip(), transform=_TRANSFORMS[compact])
    match = _INDEXED.match(compact)
    if match:
        name, body = match.group(1), match.group(2)
        index = _parse_index(body, spec)
        if name == "" or name in _IDENTITY_NAMES:
            return OutputSelection(spec=spec.strip(), index=index)
        if name in _TRANSFORMS:
            return OutputSelection(spec=spec.strip(), transform=_TRANSFORMS[name], index=index)
        known = sorted(set(_TRANSFORMS) | {"logits"})
        raise OutputSelectionError(
            f"output {spec!r}: unknown output {name!r}; use one of {', '.join(known)}"
        )
    raise OutputSelectionError(
        f"output {spec!r} is not a selection; write e.g. 'logits[3]', '[0:2]', 'softmax[1]', "
        "'logit-diff 3 5' or 'sum'"
    )


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
    :func:`output_map`.

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
