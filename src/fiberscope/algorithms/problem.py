"""Validation shared by every algorithm: the start point, the model, bounds, options.

Everything a user can get wrong is checked here, once, before any work is done, and reported
as a one-line :class:`~fiberscope.errors.FiberscopeError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..engine.control import check_step_moves
from ..errors import InputError, ModelError, SingularPointError
from ..geometry.jacobian import ModelFunction, OutputMap, as_model_function
from ..geometry.metric import check_output_metric
from ..outputs import resolve_output

DTYPE = torch.float64
EPS = torch.finfo(DTYPE).eps


def as_start_point(x0: Any, *, name: str = "start point") -> Tensor:
    """Convert a user's start point to a detached float64 tensor, refusing NaN/inf.

    Parameters
    ----------
    x0 : tensor or array-like
        The point, in the model's input shape.
    name : str
        What to call it in error messages.

    Returns
    -------
    torch.Tensor
        float64 tensor on the input's device.
    """
    if isinstance(x0, Tensor):
        if x0.is_complex():
            raise InputError(f"the {name} is complex; fiberscope needs real inputs")
        if x0.is_meta:
            raise InputError(
                f"the {name} is on the meta device (it has no values); give a tensor with data"
            )
        if x0.layout != torch.strided:
            raise InputError(
                f"the {name} is a sparse tensor ({x0.layout}); give a dense one (x.to_dense())"
            )
        x = x0.detach().to(DTYPE)
    else:
        try:
            x = torch.as_tensor(x0, dtype=DTYPE)
        except Exception:
            raise InputError(f"the {name} must be a list of numbers or a tensor") from None
    if x.numel() == 0:
        raise InputError(f"the {name} is empty")
    bad = (~torch.isfinite(x)).reshape(-1).nonzero()
    if bad.numel():
        i = int(bad[0])
        raise InputError(
            f"the {name} has a non-finite coordinate ({float(x.reshape(-1)[i])} at index {i}); "
            "give finite numbers"
        )
    return x


def expected_input_size(model: Any) -> int | None:
    """Number of inputs the model expects, when it can be read off its first ``nn.Linear``."""
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[0], nn.Linear):
        return int(model[0].in_features)
    return None


def _vector(value: Any, n: int, what: str) -> Tensor:
    try:
        v = torch.as_tensor(value, dtype=DTYPE)
    except Exception:
        raise InputError(f"{what} must be numbers") from None
    if v.ndim == 0:
        v = v.expand(n).clone()
    v = v.reshape(-1)
    if v.numel() != n:
        raise InputError(f"{what} has {v.numel()} values but the input has {n} coordinates")
    if torch.isnan(v).any():
        raise InputError(f"{what} contains NaN")
    return v


def check_bounds(bounds: Any, x0: Tensor) -> tuple[Tensor, Tensor] | None:
    """Validate ``bounds=(lo, hi)`` against the start point (flat float64).

    Parameters
    ----------
    bounds : tuple or None
        ``(lo, hi)``, each a scalar or a sequence/tensor with one value per input coordinate.
    x0 : torch.Tensor
        Flat start point.

    Returns
    -------
    tuple of torch.Tensor or None
        Flat ``lo`` and ``hi`` on the start's device.
    """
    if bounds is None:
        return None
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise InputError("bounds must be a pair (lo, hi), each with one value per coordinate")
    n = x0.numel()
    lo = _vector(bounds[0], n, "the lower bound").to(x0.device)
    hi = _vector(bounds[1], n, "the upper bound").to(x0.device)
    bad = (lo >= hi).nonzero()
    if bad.numel():
        i = int(bad[0])
        raise InputError(
            f"empty box on axis {i}: lower bound {float(lo[i]):g} is not below upper bound "
            f"{float(hi[i]):g}"
        )
    outside = ((x0 < lo) | (x0 > hi)).nonzero()
    if outside.numel():
        i = int(outside[0])
        raise InputError(
            f"the start point is outside the bounds on axis {i}: {float(x0[i]):g} not in "
            f"[{float(lo[i]):g}, {float(hi[i]):g}]; widen the bounds or move the start"
        )
    return lo, hi


def check_positive(value: Any, name: str, *, integer: bool = False) -> Any:
    """Refuse a non-positive, non-finite or non-numeric option."""
    if integer:
        if isinstance(value, bool) or not isinstance(value, (int,)) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
        return int(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return v


@dataclass
class Problem:
    """A validated model and start point(s), flattened to float64 vectors.

    Attributes
    ----------
    fn : ModelFunction
        The model as a map ``R^n -> R^m``.
    xs, ys : torch.Tensor
        Flat start points ``(B, n)`` and their outputs ``(B, m)``.
    js : torch.Tensor
        Jacobians at the starts ``(B, m, n)``.
    box : tuple of torch.Tensor or None
        Flat ``(lo, hi)``.
    metric : torch.Tensor or None
        Output metric (``None`` = identity).
    batched : bool
        The user gave a batch of starts (results are returned as a list).
    """

    fn: ModelFunction
    xs: Tensor
    ys: Tensor
    js: Tensor
    box: tuple[Tensor, Tensor] | None
    metric: Tensor | None
    batched: bool = False

    @property
    def x0(self) -> Tensor:
        """The (first) start, flat ``(n,)``."""
        return self.xs[0]

    @property
    def y0(self) -> Tensor:
        """Output at the (first) start ``(m,)``."""
        return self.ys[0]

    @property
    def J0(self) -> Tensor:  # noqa: N802 - the mathematical name
        """Jacobian at the (first) start ``(m, n)``."""
        return self.js[0]

    @property
    def size(self) -> int:
        """Number of starts ``B``."""
        return int(self.xs.shape[0])

    @property
    def n(self) -> int:
        """Number of input coordinates."""
        return self.fn.n

    @property
    def m(self) -> int:
        """Number of outputs."""
        return self.fn.m

    def unflatten(self, flat: Tensor) -> Tensor:
        """Reshape ``(K, n)`` flat points back to ``(K, *input_shape)``."""
        return flat.reshape(flat.shape[0], *self.fn.input_shape)

    def box_list(self) -> list[list[float]] | None:
        """The box as JSON-ready lists."""
        return None if self.box is None else [self.box[0].tolist(), self.box[1].tolist()]

    def starts_list(self) -> list[float] | list[list[float]]:
        """The start(s) as JSON-ready lists (one list per start for a batch)."""
        return self.xs.tolist() if self.batched else self.xs[0].tolist()


def is_batch(model: Any, x: Tensor, batched: bool | None) -> bool:
    """Whether ``x`` is a batch of starts (leading dimension) rather than one start.

    Parameters
    ----------
    model : callable
        The model.
    x : torch.Tensor
        The user's start(s).
    batched : bool or None
        The user's choice; None decides from the model when its input size is known (a
        ``(B, n)`` array for a model whose first layer takes ``n`` inputs is a batch).

    Returns
    -------
    bool
        True for a batch.
    """
    if batched is not None:
        if batched and x.ndim < 2:
            raise InputError(
                "batched=True needs starts with a leading batch dimension, e.g. shape (B, n)"
            )
        return bool(batched)
    size = expected_input_size(model)
    return size is not None and x.ndim == 2 and x.shape[1] == size and x.shape[0] >= 1


def prepare(
    model: Callable[..., Any] | ModelFunction,
    x0: Any,
    *,
    bounds: Any = None,
    metric: Any = None,
    output: OutputMap | str | None = None,
    require_m: Callable[[int, int], str | None] | None = None,
    batched: bool | None = None,
    dtype: Any = None,
    jacobian: bool = True,
) -> Problem:
    """Validate everything about one run and evaluate the model at the start(s).

    Parameters
    ----------
    model : callable, torch.nn.Module or ModelFunction
        The network.
    x0 : tensor or array-like
        Start point in the model's input shape, or a batch of them (see ``batched``).
    bounds : tuple, optional
        ``(lo, hi)`` box; must contain every start.
    metric : array-like, optional
        SPD output metric.
    output : callable or str, optional
        Output map, or a selection string such as ``"logits[3]"`` (see
        :func:`fiberscope.outputs.output_map`).
    require_m : callable, optional
        ``require_m(n, m)`` returns an error message when the output dimension is not one the
        calling algorithm supports.
    batched : bool, optional
        ``x0`` has a leading batch dimension (None: decided by :func:`is_batch`).
    dtype : torch.dtype or str, optional
        Precision of the Jacobians (float64 by default; outputs are always float64).
    jacobian : bool
        Evaluate the Jacobians at the starts (False: matrix-free runs get ``(B, m, 0)``
        placeholders).

    Returns
    -------
    Problem
        The validated problem.
    """
    x = as_start_point(x0)
    batch = is_batch(model, x, batched)
    starts = x if batch else x.unsqueeze(0)
    if starts.shape[0] == 0:
        raise InputError("the batch of starts is empty")
    size = expected_input_size(model)
    if size is not None and starts[0].numel() != size:
        raise InputError(
            f"the start point has {starts[0].numel()} coordinates but the model takes {size} inputs"
        )
    if isinstance(model, nn.Module) and model.training and _has_stochastic_layers(model):
        import warnings

        warnings.warn(
            "the model is in training mode and has dropout/batch-norm layers; "
            "fiberscope evaluates it in eval mode (model.eval())",
            stacklevel=3,
        )
        model.eval()
    output = resolve_output(output)
    fn = as_model_function(model, starts[0], output=output, dtype=parse_dtype(dtype))
    if fn.input_shape != tuple(starts[0].shape):
        raise InputError(
            f"the start point has shape {tuple(starts[0].shape)} but the model function was "
            f"built for {fn.input_shape}"
        )
    if require_m is not None:
        msg = require_m(fn.n, fn.m)
        if msg:
            raise ModelError(msg)
    xs = starts.reshape(starts.shape[0], -1).to(fn.device)
    box = None
    for i in range(xs.shape[0]):
        box = check_bounds(bounds, xs[i])
    if jacobian:
        ys, js = fn.values_and_jacobians(xs)
    else:
        from ..geometry.matfree import placeholder

        ys = fn.values(xs)
        js = placeholder(xs.shape[0], fn.m, xs)
    if not torch.isfinite(ys).all():
        raise ModelError("the model returned NaN or inf at a start point")
    if not torch.isfinite(js).all():
        raise ModelError("the model's Jacobian at the start contains NaN or inf")
    check_deterministic(fn, xs[0])
    g = check_output_metric(metric, fn.m, device=xs.device)
    return Problem(fn=fn, xs=xs, ys=ys, js=js, box=box, metric=g, batched=batch)


def parse_dtype(dtype: Any) -> torch.dtype | None:
    """``None``, a torch floating dtype, or its name (``"float32"``, ``"bfloat16"``, ...).

    Parameters
    ----------
    dtype : torch.dtype, str or None
        The user's choice.

    Returns
    -------
    torch.dtype or None
        The dtype (None: float64).
    """
    if dtype is None or isinstance(dtype, torch.dtype):
        if isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
            raise InputError(f"dtype must be a floating-point type, got {dtype}")
        return dtype
    names = {
        "float64": torch.float64,
        "double": torch.float64,
        "float32": torch.float32,
        "float": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
        "half": torch.float16,
    }
    key = str(dtype).lower().removeprefix("torch.")
    if key not in names:
        raise InputError(f"unknown dtype {dtype!r}; use float64, float32, bfloat16 or float16")
    return names[key]


def check_step(step: Any, problem: Problem, name: str = "step") -> float:
    """A positive step that can move every start, not larger than the box.

    Parameters
    ----------
    step : float
        The user's step.
    problem : Problem
        The validated problem.
    name : str
        What to call it in messages.

    Returns
    -------
    float
        The step.
    """
    step = check_positive(step, name)
    scale = float(problem.xs.abs().max())
    why = check_step_moves(step, scale)
    if why is not None:
        raise InputError(why.replace("step ", f"{name} ", 1))
    if problem.box is not None:
        span = float((problem.box[1] - problem.box[0]).min())
        if math.isfinite(span) and step > span:
            raise InputError(
                f"{name} {step:g} is larger than the box ({span:g} on its narrowest axis); "
                f"use a smaller {name}"
            )
    return step


def memory_budget() -> int:
    """Bytes one run may allocate: ``FIBERSCOPE_MEMORY_BUDGET`` or half the machine's memory.

    Returns
    -------
    int
        The budget in bytes.
    """
    env = os.environ.get("FIBERSCOPE_MEMORY_BUDGET")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise InputError(
                f"FIBERSCOPE_MEMORY_BUDGET must be a number of bytes, got {env!r}"
            ) from None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(total // 2)


def check_budget(nbytes: float, what: str, fix: str) -> None:
    """Refuse a run whose arrays would exceed :func:`memory_budget` before allocating them.

    Parameters
    ----------
    nbytes : float
        Bytes the run would need at most.
    what : str
        What is that large (for the message).
    fix : str
        How to make it smaller.

    Raises
    ------
    InputError
        When ``nbytes`` exceeds the budget.
    """
    budget = memory_budget()
    if nbytes > budget:
        raise InputError(
            f"{what} would need up to {_gib(nbytes)} of memory, more than the "
            f"{_gib(budget)} a run may use (half the machine's memory, or "
            f"FIBERSCOPE_MEMORY_BUDGET); {fix}"
        )


def _gib(nbytes: float) -> str:
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GiB"
    return f"{nbytes / 2**20:.0f} MiB"


def level_tolerance(tol: float, ys: Tensor) -> Tensor:
    """Per-member residual tolerance: ``tol``, raised to a few ulps of ``|N|`` where larger.

    Parameters
    ----------
    tol : float
        The user's tolerance.
    ys : torch.Tensor
        ``(B, m)`` the levels.

    Returns
    -------
    torch.Tensor
        ``(B,)``.
    """
    scale = torch.clamp(ys.abs().amax(dim=-1), min=1.0)
    return torch.clamp(64 * EPS * scale, min=tol)


def check_deterministic(fn: ModelFunction, x: Tensor, rtol: float = 1e-6) -> None:
    """Refuse a model whose output changes between two evaluations at the same point.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x : torch.Tensor
        Flat point.
    rtol : float
        Allowed difference relative to ``1 + max |y|`` (room for nondeterministic GPU sums).

    Raises
    ------
    ModelError
        If the two outputs differ by more than that (dropout or noise active in ``forward``).
    """
    a, b = fn.value(x).detach(), fn.value(x).detach()
    diff = float((a - b).abs().max())
    if not diff <= rtol * (1.0 + float(a.abs().max())):
        raise ModelError(
            f"the model is not deterministic: two evaluations at the start differ by {diff:.3g} "
            "(dropout or noise active in forward?); fiberscope needs a fixed function: call "
            "model.eval() or remove the randomness"
        )


def _has_stochastic_layers(model: nn.Module) -> bool:
    kinds = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)
    return any(isinstance(mod, kinds) for mod in model.modules())


def check_regular(problem: Problem, s_min: float, s_max: float, sing_tol: float) -> None:
    """Refuse to start at a singular point (rank J < m)."""
    if s_max == 0.0:
        raise SingularPointError(
            "the start is a singular point of the network: its Jacobian is zero there (the "
            "bottom of a bowl, a flat region, or a model that rounds or thresholds its input); "
            "start at a nearby point"
        )
    if s_min <= sing_tol * s_max or s_min <= 1e-300:
        ratio = 0.0 if s_max == 0 else s_min / s_max
        raise SingularPointError(
            "the start is a singular point of the network (Jacobian rank below "
            f"{problem.m}: s_min={s_min:.3g}, s_min/s_max={ratio:.3g}); its class is not a "
            "curve there, so start at a nearby point instead"
        )


def one_dimensional_classes(n: int, m: int) -> str | None:
    """Error message unless the model maps R^n -> R^(n-1) (1-D classes)."""
    if m == n - 1:
        return None
    if m >= n:
        return (
            f"1-D tracing needs m = n - 1 outputs, but the model maps R^{n} -> R^{m}; with m >= n "
            "the classes are points, so pick fewer outputs with an output map"
        )
    return (
        f"1-D tracing needs m = n - 1 outputs, but the model maps R^{n} -> R^{m}: its classes "
        f"are {n - m}-dimensional; n-D classes need a different command (a random walk, "
        "not yet in fiberscope), not trace"
    )
