"""Classifier walks: from a point to the decision boundary and past it.

What is held fixed is chosen with an output map (a class score, a logit difference, a class
margin; see :mod:`fiberscope.outputs`). The decision flips where that scalar
crosses its threshold. :func:`boundary_walk` answers two questions:

- the gradient path: from ``x0`` along the direction in which the score changes fastest to
  the boundary (reached exactly, a point on the threshold level to ``tol``) and on to a point
  that the classifier decides the other way, ``beyond`` past the threshold;
- the smallest perturbation: the boundary point closest to ``x0`` (a local minimiser of
  ``||x - x0||`` on the boundary, found by sequential projection from the path's boundary
  point and certified by the first-order condition ``x - x0 || grad s(x)``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from ..geometry.jacobian import ModelFunction, OutputMap
from ..outputs import (
    OutputComponent,
    bind_output,
    describe_output,
    output_threshold,
    resolve_output,
)
from .corrected import newton_to_level
from .explore import (
    ExploreResult,
    WalkOptions,
    _assemble,
    check_start_gradient,
    raise_not_reached,
    require_scalar,
    walk_to_target,
)
from .problem import EPS, Problem, check_positive, prepare
from .result import TraceStats


@dataclass
class BoundaryWalkResult:
    """A walk from a start to the decision boundary and past it.

    Attributes
    ----------
    path : ExploreResult
        The whole gradient path, start -> boundary -> flipped point.
    boundary_index : int
        Row of ``path.points`` that lies on the boundary.
    threshold : float
        Score at which the decision flips.
    beyond : float
        How far past the threshold (in score units) the path goes.
    side : int
        ``+1`` if the start's score is above the threshold, ``-1`` below.
    decision_start, decision_flip : int or None
        The decision (class) at the start and at the flipped point, when the output map
        defines one (for a bare scalar score: 1 above the threshold, 0 below).
    closest_point : torch.Tensor
        The boundary point closest to the start (input shape).
    closest_distance : float
        ``||closest_point - x0||``: the smallest perturbation that reaches the boundary
        (locally; never more than ``boundary_distance``).
    closest_kkt : float
        ``sin`` of the angle between ``closest_point - x0`` and the score's gradient there
        (0 at an exact local minimiser).
    closest_converged : bool
        The projection iteration met its tolerance.
    options : dict
        Every parameter (JSON-ready).
    stats : TraceStats
        Solver statistics.
    """

    path: ExploreResult
    boundary_index: int
    threshold: float
    beyond: float
    side: int
    decision_start: int | None
    decision_flip: int | None
    closest_point: Tensor
    closest_distance: float
    closest_kkt: float
    closest_converged: bool
    options: dict[str, Any]
    stats: TraceStats = field(default_factory=TraceStats)

    @property
    def y0(self) -> float:
        """Score at the start."""
        return float(self.path.y0[0])

    @property
    def boundary_point(self) -> Tensor:
        """Where the gradient path meets the boundary (input shape)."""
        return self.path.points[self.boundary_index]

    @property
    def boundary_output(self) -> float:
        """Score at the boundary point (the threshold, to ``tol``)."""
        return float(self.path.outputs[self.boundary_index, 0])

    @property
    def boundary_length(self) -> float:
        """Arclength of the gradient path from the start to the boundary."""
        return float(self.path.arclength[self.boundary_index])

    @property
    def boundary_distance(self) -> float:
        """Straight-line distance from the start to the path's boundary point."""
        d = (self.boundary_point - self.path.start).reshape(-1)
        return float(torch.linalg.vector_norm(d))

    @property
    def flip_point(self) -> Tensor:
        """The end of the path, decided the other way (input shape)."""
        return self.path.end

    @property
    def flip_output(self) -> float:
        """Score at the flipped point."""
        return float(self.path.end_output[0])

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "kind": "boundary_walk",
            "y0": self.y0,
            "threshold": self.threshold,
            "side": self.side,
            "decision_start": self.decision_start,
            "decision_flip": self.decision_flip,
            "boundary_point": self.boundary_point.reshape(-1).tolist(),
            "boundary_output": self.boundary_output,
            "boundary_length": self.boundary_length,
            "boundary_distance": self.boundary_distance,
            "flip_point": self.flip_point.reshape(-1).tolist(),
            "flip_output": self.flip_output,
            "flip_length": self.path.length,
            "closest_point": self.closest_point.reshape(-1).tolist(),
            "closest_distance": self.closest_distance,
            "closest_kkt": self.closest_kkt,
            "closest_converged": self.closest_converged,
            "points": len(self.path),
            "stats": self.stats.as_dict(),
        }

    def save(self, path: str | Path, *, force: bool = True) -> tuple[Path, Path]:
        """Write the path to CSV (``phase`` 0 before the boundary, 1 after) and a JSON sidecar.

        Parameters
        ----------
        path : str or pathlib.Path
            CSV destination.
        force : bool
            Overwrite existing files.

        Returns
        -------
        tuple of pathlib.Path
            The CSV and JSON paths.
        """
        from ..io.results import save_boundary_walk

        return save_boundary_walk(self, path, force=force)

    def plot(self, model: Any = None, **kwargs: Any) -> Any:
        """Plot the walk (2-D inputs: over a heat map of the score); returns the figure."""
        from ..plot.plots import plot_boundary_walk

        return plot_boundary_walk(self, model=model, **kwargs)


def closest_level_point(
    fn: ModelFunction,
    x0: Tensor,
    x_start: Tensor,
    level: float,
    tol: float,
    stats: TraceStats,
    *,
    max_iter: int = 100,
) -> tuple[Tensor, float, bool]:
    """A local minimiser of ``||x - x0||`` on the level ``s(x) = level`` (scalar ``s``).

    Sequential projection: linearise the level at the current point ``x``, jump to the
    projection of ``x0`` onto that tangent plane, ``x0 + mu grad s(x)``, and return to the
    level with Gauss-Newton. A step that does not bring the point closer to ``x0`` is halved.
    At a solution ``x - x0`` is parallel to ``grad s(x)``.

    Parameters
    ----------
    fn : ModelFunction
        A model with one output.
    x0 : torch.Tensor
        The point to project (flat).
    x_start : torch.Tensor
        A point on the level to start from (flat).
    level : float
        The level.
    tol : float
        Residual tolerance on the level.
    stats : TraceStats
        Counters to update.
    max_iter : int
        Iteration cap.

    Returns
    -------
    x : torch.Tensor
        The point (flat), on the level to ``tol``.
    kkt : float
        ``|sin|`` of the angle between ``x - x0`` and ``grad s(x)``.
    converged : bool
        The step became negligible.
    """
    y_level = torch.tensor([level], dtype=torch.float64, device=x0.device)
    x = x_start
    y, jac = fn.value_and_jacobian(x)
    stats.jacobian_evals += 1
    dist = float(torch.linalg.vector_norm(x - x0))
    converged = False
    scale = 1.0 + float(x0.abs().max())
    for _ in range(max_iter):
        g = jac[0]
        gg = float(g @ g)
        if gg == 0.0:
            break
        mu = (level - float(y[0]) - float(g @ (x0 - x))) / gg
        z = x0 + mu * g
        moved = False
        for _half in range(30):
            res = newton_to_level(fn, z, y_level, tol, 20, stats)
            if res is not None:
                zc, yc, jc, _ = res
                dz = float(torch.linalg.vector_norm(zc - x0))
                if dz <= dist * (1 + 1e-12):
                    moved = True
                    break
            z = x + 0.5 * (z - x)
        if not moved:
            converged = True  # no step improves: x is a local minimiser up to rounding
            break
        step_len = float(torch.linalg.vector_norm(zc - x))
        x, y, jac, dist = zc, yc, jc, dz
        if step_len <= 1e-13 * scale:
            converged = True
            break
    g = jac[0]
    d = x - x0
    nd, ng = float(torch.linalg.vector_norm(d)), float(torch.linalg.vector_norm(g))
    if nd == 0.0 or ng == 0.0:
        kkt = 0.0
    else:
        gh = g / ng
        kkt = float(torch.linalg.vector_norm(d - (d @ gh) * gh)) / nd
    return x, kkt, converged


def boundary_walk(
    model: Callable[..., Any] | ModelFunction,
    x0: Any,
    *,
    output: OutputMap | None = None,
    threshold: float | None = None,
    beyond: float | None = None,
    step: float = 0.01,
    max_steps: int = 10_000,
    bounds: Any = None,
    tol: float = 1e-12,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    progress: Callable[[int, int], None] | None = None,
) -> BoundaryWalkResult:
    """Walk from ``x0`` to the decision boundary of a classifier and past it.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The classifier.
    x0 : tensor or array-like
        Start point.
    output : callable, optional
        Output map giving the decision score, e.g. :class:`~fiberscope.BinaryScore` (a
        probability, flips at 0.5), :class:`~fiberscope.LogitDifference`,
        :class:`~fiberscope.ClassMargin` (the start's class against the best other one).
        Needed when the model has several outputs.
    threshold : float, optional
        Score at which the decision flips; defaults to the output map's ``threshold``.
    beyond : float, optional
        How far past the threshold (score units) the path goes; by default as far as the
        start is on its side (``|N(x0) - threshold|``), so the flipped point is decided the
        other way with the same margin.
    step : float
        Largest step.
    max_steps : int
        Step cap of each leg.
    bounds : tuple, optional
        Box containing ``x0``; the walk must stay inside.
    tol : float
        Residual tolerance of the boundary point on the threshold level.
    max_angle, sing_tol : float
        As for :func:`fiberscope.explore`.
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    BoundaryWalkResult
        The path, the boundary point, the flipped point, the closest boundary point and the
        decisions at both ends.

    Raises
    ------
    ModelError
        The score is not a scalar (give an output map).
    InputError
        No threshold, a start on the boundary, bad options.
    TargetNotReachedError
        The boundary (or the flipped level) cannot be reached inside the box.

    Examples
    --------
    >>> import fiberscope as fs
    >>> net = fs.load_model("binary")
    >>> res = fs.boundary_walk(net, [0.0, -0.01499], threshold=0.5, beyond=0.1)
    >>> res.decision_start, res.decision_flip
    (1, 0)
    """
    step = check_positive(step, "step")
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    output = resolve_output(output)
    raw_problem = prepare(model, x0, bounds=bounds)
    bound_output = bind_output(output, raw_problem.y0)
    problem = (
        raw_problem
        if bound_output is None
        else prepare(model, x0, bounds=bounds, output=bound_output)
    )
    require_scalar(problem, "the decision-boundary walk")
    if threshold is None:
        threshold = output_threshold(bound_output)
    if threshold is None:
        raise InputError(
            "give threshold= (the score at which the decision flips, e.g. 0.5 for a "
            "probability) or an output map that declares one (BinaryScore, ClassMargin)"
        )
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number, got {threshold!r}") from None
    if not math.isfinite(threshold):
        raise InputError("threshold must be finite")
    y0 = float(problem.y0[0])
    scale_tol = max(tol, 64 * EPS * max(1.0, abs(y0)))
    if abs(y0 - threshold) <= scale_tol:
        raise InputError(
            f"the start is on the decision boundary (score {y0:.12g} = threshold {threshold:g}); "
            "start on one side of it, or use explore(..., target=...) to choose a side"
        )
    side = 1 if y0 > threshold else -1
    if beyond is None:
        beyond = abs(y0 - threshold)
    beyond = check_positive(beyond, "beyond")
    check_start_gradient(problem, "the boundary walk")
    opts = WalkOptions(
        step=step, max_steps=max_steps, tol=tol, max_angle=max_angle, sing_tol=sing_tol
    )
    stats = TraceStats()
    t_start = time.perf_counter()
    dev = problem.x0.device
    t_boundary = torch.tensor([threshold], dtype=torch.float64, device=dev)
    t_flip = torch.tensor([threshold - side * beyond], dtype=torch.float64, device=dev)
    options: dict[str, Any] = {
        "kind": "boundary_walk",
        "output": describe_output(bound_output),
        "threshold": threshold,
        "beyond": beyond,
        "step": step,
        "max_steps": max_steps,
        "bounds": None
        if problem.box is None
        else [problem.box[0].tolist(), problem.box[1].tolist()],
        "tol": tol,
        "max_angle": max_angle,
        "sing_tol": sing_tol,
        "x0": problem.x0.tolist(),
        "input_shape": list(problem.fn.input_shape),
    }

    def tick(offset: int) -> Callable[[int], None]:
        def cb(k: int) -> None:
            if progress is not None:
                progress(offset + k, 2 * max_steps)

        return cb

    def partial(
        points: list[Tensor], outputs: list[Tensor], reason: str, msg: str, tgt: Tensor
    ) -> ExploreResult:
        pts, outs, arc = _assemble(problem, points, outputs)
        return ExploreResult(
            points=pts,
            outputs=outs,
            arclength=arc,
            y0=problem.y0,
            target=tgt,
            epsilon=None,
            reached=reason == "reached",
            stop_reason=reason,
            stop_point=pts[-1].reshape(-1).tolist(),
            message=msg,
            method="corrected",
            options=options,
            stats=stats,
        )

    leg1 = walk_to_target(
        problem.fn,
        problem.x0,
        problem.y0,
        problem.J0,
        t_boundary,
        opts,
        stats,
        box=problem.box,
        progress=tick(0),
    )
    if leg1.reason != "reached":
        res = partial(leg1.points, leg1.outputs, leg1.reason, leg1.message, t_boundary)
        raise_not_reached(res, t_boundary, None)
    xb, yb = leg1.stop_point, leg1.stop_output
    assert xb is not None and yb is not None and leg1.jac is not None
    leg2 = walk_to_target(
        problem.fn, xb, yb, leg1.jac, t_flip, opts, stats, box=problem.box, progress=tick(max_steps)
    )
    points = [*leg1.points, *leg2.points]
    outputs = [*leg1.outputs, *leg2.outputs]
    if leg2.reason != "reached":
        res = partial(points, outputs, leg2.reason, leg2.message, t_flip)
        raise_not_reached(res, t_flip, None)
    path = partial(points, outputs, "reached", "crossed the decision boundary", t_flip)
    boundary_index = len(leg1.points)
    xc, kkt, converged = closest_level_point(
        problem.fn, problem.x0, xb, threshold, max(tol, scale_tol), stats
    )
    box = problem.box
    if box is not None and bool(((xc < box[0]) | (xc > box[1])).any()):
        xc, kkt, converged = xb, math.nan, False
    if float(torch.linalg.vector_norm(xc - problem.x0)) > float(
        torch.linalg.vector_norm(xb - problem.x0)
    ):
        xc = xb
    decision_start = _decision(bound_output, raw_problem, problem.x0, threshold, problem.y0)
    flip_flat = path.end.reshape(-1)
    decision_flip = _decision(bound_output, raw_problem, flip_flat, threshold, path.end_output)
    stats.wall_time = time.perf_counter() - t_start
    if progress is not None:
        progress(2 * max_steps, 2 * max_steps)
    return BoundaryWalkResult(
        path=path,
        boundary_index=boundary_index,
        threshold=threshold,
        beyond=beyond,
        side=side,
        decision_start=decision_start,
        decision_flip=decision_flip,
        closest_point=xc.reshape(problem.fn.input_shape),
        closest_distance=float(torch.linalg.vector_norm(xc - problem.x0)),
        closest_kkt=kkt,
        closest_converged=converged,
        options=options,
        stats=stats,
    )


def _decision(
    output: Any, raw_problem: Problem, x: Tensor, threshold: float, score: Tensor
) -> int | None:
    decide = getattr(output, "decision", None)
    if callable(decide) and not isinstance(output, OutputComponent):
        return int(decide(raw_problem.fn.value(x)))
    pair = getattr(output, "pair", None)
    if pair is not None and len(pair) == 2:
        return int(pair[0] if float(score.reshape(-1)[0]) > threshold else pair[1])
    return int(float(score.reshape(-1)[0]) > threshold)
