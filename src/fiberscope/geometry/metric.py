"""Pullback metrics g = J^T G J of an output metric G."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from .jacobian import OutputMap, value_and_jacobian


def check_output_metric(
    metric: Any, m: int, *, device: torch.device | None = None
) -> Tensor | None:
    """Validate a user-given output metric and return it as a float64 tensor.

    Parameters
    ----------
    metric : array-like or None
        ``None`` (identity), or a symmetric positive-definite ``(m, m)`` matrix.
    m : int
        Output dimension.
    device : torch.device, optional
        Where the metric should live.

    Returns
    -------
    torch.Tensor or None
        The metric, or None for the identity.

    Raises
    ------
    InputError
        If the metric has the wrong shape, is not symmetric, or not positive definite.
    """
    if metric is None:
        return None
    try:
        g = torch.as_tensor(metric, dtype=torch.float64, device=device)
    except Exception:
        raise InputError("the output metric must be a numeric (m, m) matrix") from None
    if g.shape != (m, m):
        raise InputError(
            f"the output metric must be {m}x{m} (one row per output), got shape {tuple(g.shape)}"
        )
    if not torch.isfinite(g).all():
        raise InputError("the output metric contains NaN or inf")
    if not torch.allclose(g, g.T, rtol=1e-10, atol=1e-12):
        raise InputError("the output metric must be symmetric")
    if torch.linalg.cholesky_ex(g).info != 0:
        raise InputError("the output metric must be positive definite")
    return g


def metric_from_jacobian(jac: Tensor, metric: Tensor | None = None) -> Tensor:
    """Pullback ``J^T G J`` from a flat ``(m, n)`` Jacobian (``G`` = identity when None).

    Parameters
    ----------
    jac : torch.Tensor
        Jacobian ``(m, n)``.
    metric : torch.Tensor, optional
        Output metric ``(m, m)``.

    Returns
    -------
    torch.Tensor
        The ``(n, n)`` pullback metric.
    """
    gj = jac if metric is None else metric @ jac
    return jac.T @ gj


def pullback_metric(
    model: Callable[..., Any],
    x: Tensor | Sequence[float],
    *,
    metric: Any = None,
    output: OutputMap | None = None,
) -> Tensor:
    """Pullback metric ``g(x) = J(x)^T G J(x)`` of the output metric ``G`` at one input.

    It is positive semi-definite; its kernel is ``ker J``. Forming it costs O(n^2 m) memory and
    squares the condition number, so fiberscope's algorithms never use it to find kernels; it
    is provided for analysis and for the authors' ``paper`` mode.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network.
    x : torch.Tensor or sequence of float
        One input.
    metric : array-like, optional
        Symmetric positive-definite output metric ``(m, m)``; identity when omitted.
    output : callable, optional
        Output map applied to the model's output.

    Returns
    -------
    torch.Tensor
        ``(n, n)`` float64 matrix, with ``n`` the number of input entries.
    """
    _, jac = value_and_jacobian(model, x, output=output)
    flat = jac.reshape(jac.shape[0], -1)
    g = check_output_metric(metric, flat.shape[0], device=flat.device)
    return metric_from_jacobian(flat, g)
