"""Validation shared by every algorithm: the start point, the model, bounds, options.

Everything a user can get wrong is checked here, once, before any work is done, and reported
as a one-line :class:`~fiberscope.errors.FiberscopeError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError, ModelError, SingularPointError
from ..geometry.jacobian import ModelFunction, OutputMap, as_model_function
from ..geometry.metric import check_output_metric

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
    """A validated model + start point, flattened to float64 vectors.

    Attributes
    ----------
    fn : ModelFunction
        The model as a map ``R^n -> R^m``.
    x0, y0 : torch.Tensor
        Flat start point ``(n,)`` and its output ``(m,)``.
    J0 : torch.Tensor
        Jacobian at the start ``(m, n)``.
    box : tuple of torch.Tensor or None
        Flat ``(lo, hi)``.
    metric : torch.Tensor or None
        Output metric (``None`` = identity).
    """

    fn: ModelFunction
    x0: Tensor
    y0: Tensor
    J0: Tensor
    box: tuple[Tensor, Tensor] | None
    metric: Tensor | None

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


def prepare(
    model: Callable[..., Any] | ModelFunction,
    x0: Any,
    *,
    bounds: Any = None,
    metric: Any = None,
    output: OutputMap | None = None,
    require_m: Callable[[int, int], str | None] | None = None,
) -> Problem:
    """Validate everything about one run and evaluate the model at the start.

    Parameters
    ----------
    model : callable, torch.nn.Module or ModelFunction
        The network.
    x0 : tensor or array-like
        Start point in the model's input shape.
    bounds : tuple, optional
        ``(lo, hi)`` box; must contain ``x0``.
    metric : array-like, optional
        SPD output metric.
    output : callable or str, optional
        Output map, or a selection string such as ``"logits[3]"`` (see
        :func:`fiberscope.models.output_map`).
    require_m : callable, optional
        ``require_m(n, m)`` returns an error message when the output dimension is not one the
        calling algorithm supports.

    Returns
    -------
    Problem
        The validated problem.
    """
    x = as_start_point(x0)
    size = expected_input_size(model)
    if size is not None and x.numel() != size:
        raise InputError(
            f"the start point has {x.numel()} coordinates but the model takes {size} inputs"
        )
    if isinstance(model, nn.Module) and model.training and _has_stochastic_layers(model):
        import warnings

        warnings.warn(
            "the model is in training mode and has dropout/batch-norm layers; "
            "fiberscope evaluates it in eval mode (model.eval())",
            stacklevel=3,
        )
        model.eval()
    if isinstance(output, str):
        from ..outputs import output_map

        output = output_map(output)
    fn = as_model_function(model, x, output=output)
    if fn.input_shape != tuple(x.shape):
        raise InputError(
            f"the start point has shape {tuple(x.shape)} but the model function was built for "
            f"{fn.input_shape}"
        )
    if require_m is not None:
        msg = require_m(fn.n, fn.m)
        if msg:
            raise ModelError(msg)
    xf = x.reshape(-1).to(fn.device)
    box = check_bounds(bounds, xf)
    y0, j0 = fn.value_and_jacobian(xf)
    if not torch.isfinite(j0).all():
        raise ModelError("the model's Jacobian at the start contains NaN or inf")
    check_deterministic(fn, xf)
    g = check_output_metric(metric, fn.m, device=xf.device)
    return Problem(fn=fn, x0=xf, y0=y0, J0=j0, box=box, metric=g)


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
