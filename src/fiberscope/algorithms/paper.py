"""The authors' algorithms, reproduced exactly ("paper mode").

SiMEC-1D (Benfenati & Marta, paper II): at each step build the pullback metric
``g = J^T G J``, eigen-decompose it, take the eigenvector ``v`` of the *lowest* eigenvalue,
flip it if ``v . v_prev < 0``, move ``x <- x + delta v`` (``x - delta v`` when the direction is
inverted) and accumulate the energy ``delta v^T g v`` (``g`` at the old point). The start is
not recorded. Bounded variants: ``clamp`` (clamp every coordinate after every step and go on)
and ``stop`` (clamp, record the clamped point, stop).

SiMExp-1D moves ``delta`` along the eigenvector of the *largest* eigenvalue until
``|N(x) - N(x0)| >= epsilon`` or a step cap.

These are kept for reproduction and comparison; they drift off the class (Euler error) and
are not the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..geometry.jacobian import ModelFunction
from ..geometry.metric import metric_from_jacobian
from .result import TraceStats


@dataclass
class PaperRun:
    """Points recorded by one run of the authors' algorithm (start excluded)."""

    points: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    energy: float = 0.0
    reason: str = "max_steps"
    message: str = ""
    last_direction: Tensor | None = None


def _eig_vector(g: Tensor, lowest: bool) -> Tensor:
    """Eigenvector of the lowest/highest eigenvalue of a symmetric matrix (LAPACK ``syevd``)."""
    _, vecs = torch.linalg.eigh(g)
    return vecs[:, 0] if lowest else vecs[:, -1]


def simec_1d(
    fn: ModelFunction,
    x0: Tensor,
    *,
    step: float,
    n_steps: int,
    invert: bool = False,
    metric: Tensor | None = None,
    box: tuple[Tensor, Tensor] | None = None,
    variant: str | None = None,
    stats: TraceStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> PaperRun:
    """The authors' SiMEC-1D: fixed Euler steps along the null eigenvector of ``g``.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x0 : torch.Tensor
        Flat start point (not recorded).
    step : float
        The step ``delta``.
    n_steps : int
        Number of steps ``K``.
    invert : bool
        Move ``x - delta v`` instead of ``x + delta v``.
    metric : torch.Tensor, optional
        Output metric ``G`` (identity when None).
    box : tuple of torch.Tensor, optional
        ``(h_inf, h_sup)``; used by the ``clamp`` and ``stop`` variants.
    variant : {None, "clamp", "stop"}
        Unbounded, clamp-and-continue, or clamp-record-and-stop.
    stats : TraceStats, optional
        Counters to update.
    progress : callable, optional
        Called with the step count every 256 steps.

    Returns
    -------
    PaperRun
        Recorded points and outputs, energy and stop reason.
    """
    stats = stats if stats is not None else TraceStats()
    run = PaperRun()
    x = x0.clone()
    v_prev = torch.zeros_like(x0)
    sgn = -1.0 if invert else 1.0
    y, jac = fn.value_and_jacobian(x)
    stats.jacobian_evals += 1
    for k in range(n_steps):
        if progress is not None and k % 256 == 0 and k:
            progress(k)
        g = metric_from_jacobian(jac, metric)
        v = _eig_vector(g, lowest=True)
        if float(v @ v_prev) < 0:
            v = -v
        run.energy += step * float(v @ (g @ v))
        x = x + sgn * step * v
        v_prev = v
        stop = False
        if box is not None and variant in ("clamp", "stop"):
            lo, hi = box
            if variant == "stop" and bool(((x < lo) | (x > hi)).any()):
                stop = True
            x = torch.minimum(torch.maximum(x, lo), hi)
        stats.steps += 1
        y, jac = fn.value_and_jacobian(x)
        stats.jacobian_evals += 1
        run.points.append(x)
        run.outputs.append(y)
        if stop:
            run.reason = "boundary"
            run.message = "reached the box (stop-at-boundary variant)"
            break
    run.last_direction = v_prev
    return run


def simexp_1d(
    fn: ModelFunction,
    x0: Tensor,
    *,
    step: float,
    epsilon: float,
    max_steps: int,
    invert: bool = False,
    metric: Tensor | None = None,
    stats: TraceStats | None = None,
) -> PaperRun:
    """The authors' SiMExp-1D: fixed steps along the top eigenvector of ``g``.

    Stops when ``max |N(x) - N(x0)| >= epsilon`` or after ``max_steps`` steps. As in the
    original, the sign reference is never updated from zero, so whether the output goes up or
    down depends on the eigen-solver's sign of the eigenvector.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x0 : torch.Tensor
        Flat start point (not recorded).
    step : float
        Step ``delta``.
    epsilon : float
        Output change at which to stop.
    max_steps : int
        Step cap.
    invert : bool
        Move ``x - delta v``.
    metric : torch.Tensor, optional
        Output metric.
    stats : TraceStats, optional
        Counters to update.

    Returns
    -------
    PaperRun
        Recorded points and outputs; ``reason`` is ``"reached"`` or ``"max_steps"``.
    """
    stats = stats if stats is not None else TraceStats()
    run = PaperRun()
    x = x0.clone()
    sgn = -1.0 if invert else 1.0
    y_start, jac = fn.value_and_jacobian(x)
    stats.jacobian_evals += 1
    for _ in range(max_steps):
        g = metric_from_jacobian(jac, metric)
        v = _eig_vector(g, lowest=False)
        run.energy += step * float(v @ (g @ v))
        x = x + sgn * step * v
        stats.steps += 1
        y, jac = fn.value_and_jacobian(x)
        stats.jacobian_evals += 1
        run.points.append(x)
        run.outputs.append(y)
        if float((y - y_start).abs().max()) >= epsilon:
            run.reason = "reached"
            return run
    run.reason = "max_steps"
    return run
