"""Classifier walks: from a point to the decision boundary and past it.

What is held fixed is chosen with an output map (a class score, a logit difference, a class
margin; see :mod:`fiberscope.outputs`). The decision flips where that scalar crosses its
threshold. :func:`boundary_walk` answers two questions, in any input dimension:

- the gradient path: from ``x0`` along the direction in which the score changes fastest to
  the boundary (reached exactly, a point on the threshold level to ``tol``) and on to a point
  that the classifier decides the other way, ``beyond`` past the threshold (the engine's
  ``"target"`` policy with two legs);
- the smallest perturbation: the boundary point closest to ``x0`` (a local minimiser of
  ``||x - x0||`` on the boundary, the engine's ``"closest"`` policy from the path's boundary
  point, certified by the first-order condition ``x - x0 || grad s(x)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..engine import Context, Members, Session, Snapshot, Stats, StepControl
from ..engine.policies import Closest, Target
from ..errors import InputError, Interrupted
from ..outputs import (
    OutputComponent,
    OutputMap,
    bind_output,
    describe_output,
    output_threshold,
    resolve_output,
)
from ._progress import progress_callback
from .explore import assemble_path, check_start_gradient, raise_not_reached, require_scalar
from .problem import EPS, Problem, check_positive, check_step, level_tolerance, prepare
from .results import BoundaryWalkResult, ExploreResult


def boundary_walk(
    model: Callable[..., Any],
    x0: Any,
    *,
    output: OutputMap | str | None = None,
    threshold: float | None = None,
    beyond: float | None = None,
    step: float = 0.01,
    max_steps: int = 10_000,
    bounds: Any = None,
    tol: float = 1e-12,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    box: str = "stop",
    dtype: Any = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> BoundaryWalkResult:
    """Walk from ``x0`` to the decision boundary of a classifier and past it.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The classifier (any input shape).
    x0 : tensor or array-like
        Start point.
    output : callable or str, optional
        Output map giving the decision score, e.g. ``fiberscope.outputs.BinaryScore()`` (a
        probability, flips at 0.5), ``LogitDifference(i, j)``, ``ClassMargin()`` (the
        start's class against the best other one), or a string such as ``"logit-diff 3 5"``.
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
        Accepted steps of the walk (both legs together) and of the closest-point search.
    bounds : tuple, optional
        Box containing ``x0``; the walk must stay inside.
    tol : float
        Residual tolerance of the boundary point on the threshold level.
    max_angle, sing_tol : float
        As for :func:`fiberscope.explore`.
    box : {"stop", "constrain"}
        With ``bounds``: the walks end where they leave the box (``"stop"``), or the box's
        faces become constraints (``"constrain"``: pixels stay in [0, 1] while the walk goes
        on, so the closest boundary point is the closest one *inside* the box).
    dtype : torch.dtype or str, optional
        Precision of the Jacobians (outputs stay float64).
    progress : bool or callable, optional
        True for a progress bar or lines on stderr, or ``progress(done, total)``.
    stop : callable, optional
        Polled between steps; True raises :class:`~fiberscope.errors.Interrupted`.
    checkpoint : callable, optional
        ``checkpoint(snapshot)`` every ``checkpoint_every`` steps.
    checkpoint_every : int
        Steps between checkpoints.
    resume : Snapshot, optional
        Continue an interrupted walk exactly.

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
    Interrupted
        Ctrl-C or ``stop``.

    Examples
    --------
    >>> import fiberscope as fs
    >>> net = fs.load_model("binary")
    >>> res = fs.boundary_walk(net, [0.0, -0.01499], threshold=0.5, beyond=0.1)
    >>> res.decision_start, res.decision_flip
    (1, 0)
    """
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    max_angle = check_positive(max_angle, "max_angle")
    sing_tol = check_positive(sing_tol, "sing_tol")
    if box not in ("stop", "constrain"):
        raise InputError(f"unknown box handling {box!r}; use 'stop' or 'constrain'")
    constrain = box == "constrain"
    output = resolve_output(output)
    raw_problem = prepare(model, x0, bounds=bounds, batched=False)
    bound_output = bind_output(output, raw_problem.y0)
    problem = (
        raw_problem
        if bound_output is None
        else prepare(model, x0, bounds=bounds, output=bound_output, batched=False, dtype=dtype)
    )
    require_scalar(problem, "the decision-boundary walk")
    step = check_step(step, problem)
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
        "bounds": problem.box_list(),
        "tol": tol,
        "max_angle": max_angle,
        "sing_tol": sing_tol,
        "box": box,
        "dtype": str(problem.fn.jac_dtype).removeprefix("torch."),
        "x0": problem.x0.tolist(),
        "input_shape": list(problem.fn.input_shape),
    }
    stats = Stats()
    callback, close = progress_callback(progress, "boundary walk")
    session = Session(
        "boundary_walk",
        options,
        problem.ys,
        stats=stats,
        total=2 * max_steps,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    targets = torch.stack((t_boundary, t_flip)).unsqueeze(0)
    tol_w = torch.maximum(
        level_tolerance(tol, problem.ys), level_tolerance(tol, targets.reshape(-1, 1)).amax()
    )

    def walkers() -> Members:
        mem = Members.start(problem.xs, problem.ys, problem.js, problem.ys, step, tol_w)
        Target.init(mem, targets)
        return mem

    try:
        try:
            ctx = Context(fn=problem.fn, box=problem.box, stats=stats)
            walk = session.phase(
                "walk",
                ctx,
                Target(max_angle=max_angle, sing_tol=sing_tol, constrain_box=constrain),
                StepControl(step=step, max_steps=max_steps),
                walkers,
            )
            mem, rec = walk.mem, walk.rec
            pts, outs = rec.rows(0, "x"), rec.rows(0, "y")
            ends = rec.rows(0, "leg_end")
            n_ends = 0 if ends is None else int(ends.sum())
            reason = mem.reasons[0] or "max_steps"

            def partial_path(tgt: Tensor, why: str, msg: str) -> ExploreResult:
                p_all, o_all, arc = assemble_path(problem, 0, pts, outs)
                return ExploreResult(
                    points=p_all,
                    outputs=o_all,
                    arclength=arc,
                    y0=problem.y0,
                    target=tgt,
                    epsilon=None,
                    reached=why == "reached",
                    stop_reason=why,
                    stop_point=p_all[-1].reshape(-1).tolist(),
                    message=msg,
                    method="corrected",
                    options=options,
                    stats=stats,
                )

            if n_ends == 0:
                raise_not_reached(
                    partial_path(t_boundary, reason, mem.messages[0]), t_boundary, None
                )
            if n_ends == 1:
                raise_not_reached(partial_path(t_flip, reason, mem.messages[0]), t_flip, None)
            assert pts is not None and ends is not None
            boundary_row = int(ends.to(torch.int64).nonzero()[0])
            xb = pts[boundary_row]
            path = partial_path(t_flip, "reached", "crossed the decision boundary")
            yb, jb = problem.fn.value_and_jacobian(xb)
            stats.jacobian_evals += 1

            def searcher() -> Members:
                m2 = Members.start(
                    xb.unsqueeze(0),
                    yb.unsqueeze(0),
                    jb.unsqueeze(0),
                    t_boundary.unsqueeze(0),
                    step,
                    max(tol, scale_tol),
                )
                Closest.init(m2, problem.xs)
                return m2

            ctx2 = Context(fn=problem.fn, box=problem.box, stats=stats)
            found = session.phase(
                "closest",
                ctx2,
                Closest(constrain_box=constrain),
                StepControl(step=step, max_steps=max_steps),
                searcher,
            )
        except KeyboardInterrupt:
            raise Interrupted(None, session.snapshot()) from None
    finally:
        close()
    m2 = found.mem
    xc = m2.x[0]
    converged = m2.reasons[0] == "minimum"
    if problem.box is not None and bool(((xc < problem.box[0]) | (xc > problem.box[1])).any()):
        xc, converged = xb, False
    if float(torch.linalg.vector_norm(xc - problem.x0)) > float(
        torch.linalg.vector_norm(xb - problem.x0)
    ):
        xc = xb
    kkt = _kkt(problem, xc)
    decision_start = _decision(bound_output, raw_problem, problem.x0, threshold, problem.y0)
    flip_flat = path.end.reshape(-1)
    decision_flip = _decision(bound_output, raw_problem, flip_flat, threshold, path.end_output)
    session.finish()
    return BoundaryWalkResult(
        path=path,
        boundary_index=boundary_row + 1,
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


def _kkt(problem: Problem, x: Tensor) -> float:
    """``|sin|`` of the angle between ``x - x0`` and the score's gradient at ``x``."""
    _, jac = problem.fn.value_and_jacobian(x)
    g = jac[0]
    d = x - problem.x0
    nd, ng = float(torch.linalg.vector_norm(d)), float(torch.linalg.vector_norm(g))
    if nd == 0.0 or ng == 0.0:
        return 0.0
    gh = g / ng
    return float(torch.linalg.vector_norm(d - (d @ gh) * gh)) / nd


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
