"""``fiberscope.trace``: reconstruct the 1-D equivalence class through a point."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from ..geometry.jacobian import OutputMap
from ..geometry.kernel import oriented_tangent
from . import corrected, paper
from .problem import Problem, check_positive, check_regular, one_dimensional_classes, prepare
from .result import TraceResult, TraceStats

METHODS = ("corrected", "paper")
DIRECTIONS = ("both", "forward", "backward")
PAPER_BOX = ("stop", "clamp")


def _branch_signs(direction: str) -> list[tuple[str, int]]:
    if direction == "forward":
        return [("forward", 1)]
    if direction == "backward":
        return [("backward", -1)]
    return [("forward", 1), ("backward", -1)]


def trace(
    model: Callable[..., Any],
    x0: Any,
    *,
    step: float = 0.01,
    max_steps: int = 10_000,
    bounds: Any = None,
    direction: str = "both",
    method: str = "corrected",
    metric: Any = None,
    tol: float = 1e-12,
    output: OutputMap | None = None,
    paper_box: str = "stop",
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    progress: Callable[[int, int], None] | None = None,
) -> TraceResult:
    """Trace the equivalence class ``N^{-1}(N(x0))`` through ``x0`` (a curve).

    The network must map ``R^n -> R^(n-1)`` (after the optional output map), so that the
    class through a regular point is locally a curve.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network (see :func:`fiberscope.load_model`).
    x0 : tensor or array-like
        Start point, any shape; points are returned in the same shape.
    step : float
        Step length. For ``"corrected"`` it is the *largest* step (the step adapts below it);
        for ``"paper"`` it is the authors' fixed ``delta``.
    max_steps : int
        Steps per branch.
    bounds : tuple, optional
        Box ``(lo, hi)``, scalars or one value per coordinate. It must contain ``x0``.
    direction : {"both", "forward", "backward"}
        Corrected: forward follows the tangent ``t`` with ``det[J; t] > 0`` (in 2-D the
        gradient turned +90 degrees, counter-clockwise around increasing output).
        Paper: forward is the authors' ``x + delta v``, backward their ``x - delta v``.
    method : {"corrected", "paper"}
        fiberscope's predictor-corrector (default) or the authors' SiMEC-1D.
    metric : array-like, optional
        SPD output metric ``G`` (identity by default). It changes paper mode's eigen-problem
        and energy; the class itself does not depend on it.
    tol : float
        Corrector tolerance on ``max |N(x) - N(x0)|`` (raised to a few ulps of ``|N(x0)|``
        when that is larger).
    output : callable, optional
        Output map applied to the model's output (which outputs define "the same").
    paper_box : {"stop", "clamp"}
        Paper mode with ``bounds``: stop at the boundary (record the clamped point and stop)
        or clamp every step and continue.
    max_angle : float
        Corrected mode: largest tangent turn per step, radians.
    sing_tol : float
        Relative threshold on the singular values of J for a singular point.
    progress : callable, optional
        ``progress(done, total)`` called now and then with accepted steps.

    Returns
    -------
    TraceResult
        Points ordered along the curve (start included), outputs, arclength, stop reasons,
        drift, statistics.

    Raises
    ------
    InputError
        Bad start point, bounds or options.
    ModelError
        The model raises, returns a non-tensor or has ``m != n - 1`` outputs.
    SingularPointError
        The start is a singular point.

    Examples
    --------
    >>> import fiberscope as fs
    >>> net = fs.load_model("surface_1")
    >>> res = fs.trace(net, [0.25, 0.25], step=0.0125)
    >>> res.closed, res.drift < 1e-9
    (True, True)
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if direction not in DIRECTIONS:
        raise InputError(f"unknown direction {direction!r}; use one of {', '.join(DIRECTIONS)}")
    if paper_box not in PAPER_BOX:
        raise InputError(f"unknown paper_box {paper_box!r}; use 'stop' or 'clamp'")
    step = check_positive(step, "step")
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    max_angle = check_positive(max_angle, "max_angle")
    sing_tol = check_positive(sing_tol, "sing_tol")
    problem = prepare(
        model, x0, bounds=bounds, metric=metric, output=output, require_m=one_dimensional_classes
    )
    if problem.box is not None:
        span = float((problem.box[1] - problem.box[0]).min())
        if math.isfinite(span) and step > span:
            raise InputError(
                f"step {step:g} is larger than the box ({span:g} on its narrowest axis); "
                "use a smaller step"
            )
    _, s_min, s_max = oriented_tangent(problem.J0)
    if method == "corrected":
        check_regular(problem, s_min, s_max, sing_tol)

    stats = TraceStats()
    total = max_steps * (2 if direction == "both" else 1)
    done = [0]

    def tick(k: int) -> None:
        if progress is not None:
            progress(done[0] + k, total)

    t_start = time.perf_counter()
    branches: dict[str, tuple[list[Tensor], list[Tensor], list[float]]] = {}
    reasons: dict[str, str] = {}
    stop_points: dict[str, list[float]] = {}
    messages: dict[str, str] = {}
    energy: dict[str, float] = {}
    closed = False
    for name, sign in _branch_signs(direction):
        if method == "corrected":
            opts = corrected.CorrectedOptions(
                step=step, max_steps=max_steps, tol=tol, max_angle=max_angle, sing_tol=sing_tol
            )
            br = corrected.trace_branch(problem, sign, opts, stats, progress=tick)
            branches[name] = (br.points, br.outputs, br.conditioning)
            reasons[name] = br.reason
            messages[name] = br.message
            stop = br.stop_point if br.stop_point is not None else problem.x0
            stop_points[name] = stop.tolist()
            if br.reason == "closed":
                closed = True
                break
        else:
            variant = None if problem.box is None else paper_box
            run = paper.simec_1d(
                problem.fn,
                problem.x0,
                step=step,
                n_steps=max_steps,
                invert=sign < 0,
                metric=problem.metric,
                box=problem.box,
                variant=variant,
                stats=stats,
                progress=tick,
            )
            branches[name] = (run.points, run.outputs, [])
            reasons[name] = run.reason
            messages[name] = run.message
            energy[name] = run.energy
            stop_points[name] = (run.points[-1] if run.points else problem.x0).tolist()
        done[0] += max_steps
    stats.wall_time = time.perf_counter() - t_start
    if progress is not None:
        progress(total, total)
    return _assemble(
        problem,
        branches,
        closed=closed,
        reasons=reasons,
        stop_points=stop_points,
        messages=messages,
        energy=energy,
        stats=stats,
        method=method,
        options={
            "method": method,
            "step": step,
            "max_steps": max_steps,
            "direction": direction,
            "bounds": None
            if problem.box is None
            else [problem.box[0].tolist(), problem.box[1].tolist()],
            "tol": tol,
            "metric": None if problem.metric is None else problem.metric.tolist(),
            "output": None if output is None else getattr(output, "__name__", repr(output)),
            "paper_box": paper_box if method == "paper" else None,
            "max_angle": max_angle,
            "sing_tol": sing_tol,
            "x0": problem.x0.tolist(),
            "input_shape": list(problem.fn.input_shape),
        },
    )


def _assemble(
    problem: Problem,
    branches: dict[str, tuple[list[Tensor], list[Tensor], list[float]]],
    *,
    closed: bool,
    reasons: dict[str, str],
    stop_points: dict[str, list[float]],
    messages: dict[str, str],
    energy: dict[str, float],
    stats: TraceStats,
    method: str,
    options: dict[str, Any],
) -> TraceResult:
    """Order the branches into one curve: reversed backward branch, start, forward branch."""
    back_pts, back_out, back_c = branches.get("backward", ([], [], []))
    fwd_pts, fwd_out, fwd_c = branches.get("forward", ([], [], []))
    x0 = problem.x0
    pts = [*reversed(back_pts), x0, *fwd_pts]
    outs = [*reversed(back_out), problem.y0, *fwd_out]
    points = torch.stack(pts)
    outputs = torch.stack(outs).reshape(len(pts), -1)
    start = len(back_pts)
    branch = torch.zeros(len(pts), dtype=torch.int64)
    branch[:start] = -1
    branch[start + 1 :] = 1
    seg = torch.linalg.vector_norm(points[1:] - points[:-1], dim=1)
    cum = torch.cat((seg.new_zeros(1), torch.cumsum(seg, 0)))
    arclength = cum - cum[start]
    drift = float((outputs - problem.y0).abs().max())
    cond0 = oriented_tangent(problem.J0)
    c0 = cond0[1] if problem.m == 1 else (cond0[1] / cond0[2] if cond0[2] else 0.0)
    conds = [*reversed(back_c), c0, *fwd_c]
    conditioning = torch.tensor(conds, dtype=torch.float64) if len(conds) == len(pts) else None
    return TraceResult(
        points=problem.unflatten(points),
        outputs=outputs,
        branch=branch,
        arclength=arclength,
        start_index=start,
        y0=problem.y0,
        closed=closed,
        stop_reasons=reasons,
        stop_points=stop_points,
        drift=drift,
        method=method,
        options=options,
        stats=stats,
        messages=messages,
        energy=energy,
        conditioning=conditioning,
    )
