"""Predictor-corrector continuation of a 1-D class (fiberscope's default method).

Each step predicts along the unit tangent of ``ker J`` (oriented so that ``det[J; t] > 0``),
then corrects back to the level ``N(x) = y0`` with Gauss-Newton,
``x <- x - J^T (J J^T)^{-1} (N(x) - y0)``, to a residual near machine precision. The Jacobian
of the last corrector iteration is the next predictor's, so a typical step costs two
Jacobian evaluations. The step adapts to the corrector's convergence and the turning of the
tangent, never above the user's ``step``. A branch stops when it closes a loop, leaves the box
(the last point is on the box face *and* on the class), reaches a singular point, or runs out
of steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..geometry.jacobian import ModelFunction
from ..geometry.kernel import oriented_tangent
from .problem import EPS, Problem
from .result import TraceStats


@dataclass(frozen=True)
class CorrectedOptions:
    """Options of the corrected tracer (validated by :func:`fiberscope.trace`).

    Attributes
    ----------
    step : float
        Largest step (the user's ``step``).
    max_steps : int
        Accepted steps per branch.
    tol : float
        Residual tolerance ``max |N(x) - y0|`` for the corrector.
    max_angle : float
        Largest turn of the tangent in one step (radians); larger turns halve the step.
    min_step : float
        Steps below this mean the curve cannot be followed: the branch stops as singular.
    sing_tol : float
        A point is singular when ``s_min(J) < sing_tol * s_max(J)`` or ``s_min(J)`` fell below
        ``sing_tol`` times its value at the start.
    max_newton : int
        Corrector iterations per step.
    """

    step: float
    max_steps: int
    tol: float = 1e-12
    max_angle: float = 0.3
    min_step: float = 0.0
    sing_tol: float = 1e-8
    max_newton: int = 8


@dataclass
class Branch:
    """Points of one branch (the start excluded) and why it stopped."""

    points: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    conditioning: list[float] = field(default_factory=list)
    reason: str = "max_steps"
    message: str = ""
    stop_point: Tensor | None = None


def _min_norm_correction(jac: Tensor, r: Tensor) -> Tensor:
    """Minimum-norm ``dx`` with ``J dx = r`` (``J`` has full row rank)."""
    if jac.shape[0] == 1:
        g = jac[0]
        return g * (r[0] / (g @ g))
    return jac.T @ torch.linalg.solve(jac @ jac.T, r)


def newton_to_level(
    fn: ModelFunction,
    x: Tensor,
    y0: Tensor,
    tol: float,
    max_iter: int,
    stats: TraceStats,
) -> tuple[Tensor, Tensor, Tensor, int] | None:
    """Gauss-Newton projection of ``x`` onto the level ``N = y0``.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x : torch.Tensor
        Flat start of the iteration.
    y0 : torch.Tensor
        Target output.
    tol : float
        Residual tolerance (max-abs).
    max_iter : int
        Iteration cap.
    stats : TraceStats
        Counters to update.

    Returns
    -------
    tuple or None
        ``(x, y, J, iterations)`` at the converged point, or None when the iteration did not
        converge (diverged, stagnated above the tolerance, or hit a rank-deficient J).
    """
    prev = math.inf
    for it in range(max_iter + 1):
        y, jac = fn.value_and_jacobian(x)
        stats.jacobian_evals += 1
        r = y - y0
        rn = float(r.abs().max())
        if not math.isfinite(rn):
            return None
        if rn <= tol or (it > 0 and rn >= prev and rn <= 100 * tol):
            return x, y, jac, it
        if it == max_iter or (it > 0 and rn >= prev):
            return None
        prev = rn
        stats.newton_iterations += 1
        try:
            dx = _min_norm_correction(jac, r)
        except RuntimeError:
            return None
        if not bool(torch.isfinite(dx).all()):
            return None
        x = x - dx
    return None


def _outside(x: Tensor, box: tuple[Tensor, Tensor] | None) -> bool:
    if box is None:
        return False
    lo, hi = box
    return bool(((x < lo) | (x > hi)).any())


def locate_box_exit(
    fn: ModelFunction,
    x_in: Tensor,
    x_out: Tensor,
    y0: Tensor,
    box: tuple[Tensor, Tensor],
    tol: float,
    stats: TraceStats,
) -> tuple[Tensor, Tensor] | None:
    """Point where the class leaves the box: on a box face and on the level ``N = y0``.

    The face is the first one the chord ``x_in -> x_out`` crosses. On that face one coordinate
    is fixed and Newton solves ``N(x) = y0`` for the others (``n - 1`` unknowns, ``m = n - 1``
    equations). Returns ``(x, y)`` or None if the solve fails (class tangent to the face).
    """
    lo, hi = box
    x_a = x_in
    for _ in range(x_in.numel()):
        d = x_out - x_a
        best_s, face, value = 2.0, -1, 0.0
        for i in torch.nonzero((x_out < lo) | (x_out > hi)).reshape(-1).tolist():
            bound = lo[i] if x_out[i] < lo[i] else hi[i]
            di = float(d[i])
            s = 0.0 if di == 0 else float((bound - x_a[i]) / di)
            if s < best_s:
                best_s, face, value = s, i, float(bound)
        if face < 0:
            return None
        z = x_a + max(0.0, min(1.0, best_s)) * d
        z[face] = value
        free = [j for j in range(z.numel()) if j != face]
        solved = None
        for _it in range(30):
            y, jac = fn.value_and_jacobian(z)
            stats.jacobian_evals += 1
            r = y - y0
            if float(r.abs().max()) <= tol:
                solved = (z, y)
                break
            jf = jac[:, free]
            try:
                dz = torch.linalg.lstsq(jf, r.unsqueeze(1)).solution.reshape(-1)
            except RuntimeError:
                return None
            if not bool(torch.isfinite(dz).all()):
                return None
            z = z.clone()
            z[free] = z[free] - dz
        if solved is None:
            return None
        z, y = solved
        slack = 1e-12 * (1.0 + float((hi - lo).abs().max()))
        if not bool(((z < lo - slack) | (z > hi + slack)).any()):
            return torch.minimum(torch.maximum(z, lo), hi), y
        # The exit on this face lies outside another face: the class leaves through that one.
        x_out = z
    return None


def trace_branch(
    problem: Problem,
    sign: int,
    opts: CorrectedOptions,
    stats: TraceStats,
    progress: Callable[[int], None] | None = None,
) -> Branch:
    """Follow the class from the start in one direction.

    Parameters
    ----------
    problem : Problem
        Validated model, start and box.
    sign : int
        ``+1`` along the oriented tangent (``det[J; t] > 0``), ``-1`` against it.
    opts : CorrectedOptions
        Step, tolerances and caps.
    stats : TraceStats
        Counters to update.
    progress : callable, optional
        Called with the number of accepted steps every 64 steps.

    Returns
    -------
    Branch
        Accepted points (start excluded) and the stop reason.
    """
    fn, x0, y0, box = problem.fn, problem.x0, problem.y0, problem.box
    tol = max(opts.tol, 64 * EPS * max(1.0, float(y0.abs().max())))
    x, jac = x0, problem.J0
    t, s_min, s_max = oriented_tangent(jac)
    t = t * sign
    t0 = t
    s_ref = s_min
    cos_max = math.cos(opts.max_angle)
    cos_grow = math.cos(opts.max_angle / 3)
    h = opts.step
    h_min = opts.min_step if opts.min_step > 0 else opts.step * 1e-9
    out = Branch()
    left_start = False
    curv: Tensor | None = None
    for k in range(opts.max_steps):
        if progress is not None and k % 64 == 0 and k:
            progress(k)
        while True:
            # Second-order predictor: the tangent's rate of turn from the last step estimates
            # the curvature vector, so the corrector usually converges in one iteration.
            xp = x + h * t if curv is None else x + h * t + (0.5 * h * h) * curv
            res = newton_to_level(fn, xp, y0, tol, opts.max_newton, stats)
            if res is not None:
                xc, yc, jc, iters = res
                tc, s_min, s_max = oriented_tangent(jc)
                tc = tc * sign
                cos = float(tc @ t)
                moved = float(torch.linalg.vector_norm(xc - xp))
                if cos >= cos_max and moved <= h and s_max > 0:
                    break
            stats.rejected += 1
            h *= 0.5
            if h < h_min:
                out.reason = "singular"
                out.stop_point = x
                out.message = (
                    f"the step fell below {h_min:.3g} without staying on the class near "
                    f"{_fmt(x)} (s_min={s_min:.3g}): a singular point, a crossing or a cusp"
                )
                return out
        stats.steps += 1
        h_used = h
        if box is not None and _outside(xc, box):
            exit_ = locate_box_exit(fn, x, xc, y0, box, tol, stats)
            out.reason = "boundary"
            if exit_ is None:
                out.stop_point = x
                out.message = "left the box; the exit point could not be located exactly"
                return out
            xe, ye = exit_
            if float(torch.linalg.vector_norm(xe - x)) > 0:
                out.points.append(xe)
                out.outputs.append(ye)
                out.conditioning.append(_cond(s_min, s_max, fn.m))
            out.stop_point = xe
            out.message = f"left the box at {_fmt(xe)}"
            return out
        if left_start:
            a = float((x - x0) @ t0)
            b = float((xc - x0) @ t0)
            if a < 0.0 <= b:
                seg = xc - x
                u = min(1.0, max(0.0, -float((x - x0) @ seg) / max(float(seg @ seg), 1e-300)))
                dist = float(torch.linalg.vector_norm(x - x0 + u * seg))
                if dist <= 2.0 * h_used:
                    out.reason = "closed"
                    out.stop_point = x0
                    out.message = f"returned to the start after {k} steps"
                    return out
        elif float(torch.linalg.vector_norm(xc - x0)) > 4.0 * h_used:
            left_start = True
        out.points.append(xc)
        out.outputs.append(yc)
        out.conditioning.append(_cond(s_min, s_max, fn.m))
        curv = (tc - t) / float(torch.linalg.vector_norm(xc - x))
        x, t = xc, tc
        if s_min < opts.sing_tol * s_max or s_min < opts.sing_tol * s_ref:
            out.reason = "singular"
            out.stop_point = xc
            out.message = (
                f"the Jacobian lost rank at {_fmt(xc)} (s_min={s_min:.3g}, s_max={s_max:.3g})"
            )
            return out
        if iters <= 2 and cos >= cos_grow and h < opts.step:
            h = min(opts.step, 1.5 * h)
    out.stop_point = x
    out.message = f"stopped after max_steps={opts.max_steps} steps"
    return out


def _cond(s_min: float, s_max: float, m: int) -> float:
    if m == 1:
        return s_min
    return 0.0 if s_max == 0 else s_min / s_max


def _fmt(x: Tensor) -> str:
    vals = x.reshape(-1)[:6].tolist()
    more = ", ..." if x.numel() > 6 else ""
    return "(" + ", ".join(f"{v:.6g}" for v in vals) + more + ")"
