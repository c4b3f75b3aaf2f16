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
from ..errors import FiberscopeError, InputError, Interrupted, TargetNotReachedError
from ..outputs import (
    OutputComponent,
    OutputMap,
    bind_output,
    describe_output,
    output_threshold,
    resolve_output,
)
from ._progress import progress_callback
from .explore import (
    _single,
    assemble_path,
    check_start_gradient,
    raise_not_reached,
    require_scalar,
)
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
    batched: bool | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> BoundaryWalkResult | list[BoundaryWalkResult]:
    """Walk from ``x0`` to the decision boundary of a classifier and past it.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The classifier (any input shape).
    x0 : tensor or array-like
        Start point, or a batch of starts (leading dimension; see ``batched``): all of them
        walk together, as members of one engine run, and each stops on its own.
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
    batched : bool, optional
        ``x0`` holds a batch of starts along its first dimension (default: decided from the
        model when its input size is known).
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
    BoundaryWalkResult or list of BoundaryWalkResult
        The path, the boundary point, the flipped point, the closest boundary point and the
        decisions at both ends; a list for a batch of starts (``beyond`` by default per
        start).

    Raises
    ------
    ModelError
        The score is not a scalar (give an output map).
    InputError
        No threshold, a start on the boundary, bad options, starts of a batch that bind the
        output map differently (e.g. of different classes for ``ClassMargin()``).
    TargetNotReachedError
        The boundary (or the flipped level) cannot be reached inside the box; in a batch,
        raised after every member has walked, naming the first start that fell short.
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
    raw_problem = prepare(model, x0, bounds=bounds, batched=batched)
    bound_output = _bind_batch(output, raw_problem)
    problem = (
        raw_problem
        if bound_output is None
        else prepare(
            model, x0, bounds=bounds, output=bound_output, batched=raw_problem.batched, dtype=dtype
        )
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
    b_all = problem.size
    which = _which(problem)
    y0s = problem.ys[:, 0].tolist()
    scale_tols = [max(tol, 64 * EPS * max(1.0, abs(y))) for y in y0s]
    for b, (y0, scale_tol) in enumerate(zip(y0s, scale_tols, strict=True)):
        if abs(y0 - threshold) <= scale_tol:
            raise InputError(
                f"the start{which(b)} is on the decision boundary (score {y0:.12g} = threshold "
                f"{threshold:g}); start on one side of it, or use explore(..., target=...) to "
                "choose a side"
            )
    sides = [1 if y > threshold else -1 for y in y0s]
    if beyond is None:
        beyonds = [abs(y - threshold) for y in y0s]
    else:
        beyonds = [check_positive(beyond, "beyond")] * b_all
    for b in range(b_all):
        check_start_gradient(_single(problem, b), "the boundary walk" + which(b))
    dev = problem.x0.device
    t_boundary = torch.full((b_all, 1), threshold, dtype=torch.float64, device=dev)
    t_flip = torch.tensor(
        [[threshold - sd * bd] for sd, bd in zip(sides, beyonds, strict=True)],
        dtype=torch.float64,
        device=dev,
    )
    options: dict[str, Any] = {
        "kind": "boundary_walk",
        "output": describe_output(bound_output),
        "threshold": threshold,
        "beyond": beyonds if problem.batched else beyonds[0],
        "step": step,
        "max_steps": max_steps,
        "bounds": problem.box_list(),
        "tol": tol,
        "max_angle": max_angle,
        "sing_tol": sing_tol,
        "box": box,
        "dtype": str(problem.fn.jac_dtype).removeprefix("torch."),
        "x0": problem.starts_list(),
        "input_shape": list(problem.fn.input_shape),
    }
    stats = Stats()
    callback, close = progress_callback(progress, "boundary walk")
    session = Session(
        "boundary_walk",
        options,
        problem.ys,
        stats=stats,
        total=2 * max_steps * b_all,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    targets = torch.stack((t_boundary, t_flip), dim=1)  # (B, 2 legs, 1)
    tol_w = torch.maximum(
        level_tolerance(tol, problem.ys),
        level_tolerance(tol, targets.reshape(-1, 1)).reshape(b_all, 2).amax(dim=1),
    )
    tol_c = torch.tensor(scale_tols, dtype=torch.float64, device=dev)

    def walkers() -> Members:
        mem = Members.start(problem.xs, problem.ys, problem.js, problem.ys, step, tol_w)
        Target.init(mem, targets)
        return mem

    paths: list[ExploreResult] = []
    rows: list[int] = []
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
            for b in range(b_all):
                opts_b = _options_of(problem, options, b, beyonds[b])
                path, row = _walk_result(
                    problem, b, mem, rec, t_boundary[b], t_flip[b], opts_b, stats
                )
                paths.append(path)
                rows.append(row)
            xb = torch.stack(
                [p.points[r + 1].reshape(-1) for p, r in zip(paths, rows, strict=True)]
            )
            yb, jb = problem.fn.values_and_jacobians(xb)
            stats.jacobian_evals += b_all

            def searcher() -> Members:
                m2 = Members.start(xb, yb, jb, t_boundary, step, tol_c)
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
            snapshot = session.snapshot()  # before the partial result evaluates the model
            partial = _partial_results(
                problem, raw_problem, bound_output, session, options, threshold, beyonds, sides
            )
            raise Interrupted(partial, snapshot) from None
    finally:
        close()
    m2 = found.mem
    out = []
    for b in range(b_all):
        x0b = problem.xs[b]
        xc = m2.x[b]
        converged = m2.reasons[b] == "minimum"
        if problem.box is not None and bool(((xc < problem.box[0]) | (xc > problem.box[1])).any()):
            xc, converged = xb[b], False
        if float(torch.linalg.vector_norm(xc - x0b)) > float(torch.linalg.vector_norm(xb[b] - x0b)):
            xc = xb[b]
        path = paths[b]
        flip_flat = path.end.reshape(-1)
        out.append(
            BoundaryWalkResult(
                path=path,
                boundary_index=rows[b] + 1,
                threshold=threshold,
                beyond=beyonds[b],
                side=sides[b],
                decision_start=_decision(bound_output, raw_problem, x0b, threshold, problem.ys[b]),
                decision_flip=_decision(
                    bound_output, raw_problem, flip_flat, threshold, path.end_output
                ),
                closest_point=xc.reshape(problem.fn.input_shape),
                closest_distance=float(torch.linalg.vector_norm(xc - x0b)),
                closest_kkt=_kkt(problem, xc, x0b),
                closest_converged=converged,
                options=_options_of(problem, options, b, beyonds[b]),
                stats=stats,
            )
        )
    session.finish()
    return out if problem.batched else out[0]


def _partial_results(
    problem: Problem,
    raw_problem: Problem,
    bound_output: Any,
    session: Session,
    options: dict[str, Any],
    threshold: float,
    beyonds: list[float],
    sides: list[int],
) -> BoundaryWalkResult | list[BoundaryWalkResult] | None:
    """The walks as of the last committed step of an interrupted run (``complete=False``).

    Each path is the part walked so far (a prefix of the uninterrupted run's path); the
    boundary point is known once the path has crossed the threshold level, the closest point
    once the search from it has begun. None when nothing can be assembled (a second Ctrl-C
    while the partial result is being evaluated).
    """
    try:
        states = dict(session.states())
        walk, found = states.get("walk"), states.get("closest")
        if walk is None:
            return None
        stats = session.stats
        out = []
        for b in range(problem.size):
            opts = _options_of(problem, options, b, beyonds[b])
            rec = walk.rec
            ends = rec.rows(b, "leg_end")
            crossed = [] if ends is None else ends.to(torch.int64).nonzero().reshape(-1).tolist()
            p_all, o_all, arc = assemble_path(problem, b, rec.rows(b, "x"), rec.rows(b, "y"))
            flipped = len(crossed) >= 2
            reason = "reached" if flipped else (walk.mem.reasons[b] or "interrupted")
            if not flipped and reason == "reached":
                reason = "interrupted"
            path = ExploreResult(
                points=p_all,
                outputs=o_all,
                arclength=arc,
                y0=problem.ys[b],
                target=torch.tensor(
                    [threshold - sides[b] * beyonds[b]], dtype=torch.float64, device=o_all.device
                ),
                epsilon=None,
                reached=flipped,
                stop_reason=reason,
                stop_point=p_all[-1].reshape(-1).tolist(),
                message="crossed the decision boundary"
                if flipped
                else f"interrupted after {p_all.shape[0] - 1} steps",
                method="corrected",
                options=opts,
                stats=stats,
                complete=flipped,
            )
            x0b = problem.xs[b]
            bidx = crossed[0] + 1 if crossed else None
            xc: Tensor | None = None
            dist = kkt = math.nan
            if bidx is not None:
                xb = p_all[bidx].reshape(-1)
                xc = xb
                rows_c = None if found is None else found.rec.rows(b, "x")
                if rows_c is not None and rows_c.shape[0]:
                    last = rows_c[-1].reshape(-1)
                    inside = problem.box is None or not bool(
                        ((last < problem.box[0]) | (last > problem.box[1])).any()
                    )
                    nearer = float(torch.linalg.vector_norm(last - x0b)) <= float(
                        torch.linalg.vector_norm(xb - x0b)
                    )
                    if inside and nearer:
                        xc = last
                dist = float(torch.linalg.vector_norm(xc - x0b))
                kkt = _kkt(problem, xc, x0b)
            out.append(
                BoundaryWalkResult(
                    path=path,
                    boundary_index=bidx,
                    threshold=threshold,
                    beyond=beyonds[b],
                    side=sides[b],
                    decision_start=_decision(
                        bound_output, raw_problem, x0b, threshold, problem.ys[b]
                    ),
                    decision_flip=_decision(
                        bound_output, raw_problem, p_all[-1].reshape(-1), threshold, o_all[-1]
                    )
                    if flipped
                    else None,
                    closest_point=None if xc is None else xc.reshape(problem.fn.input_shape),
                    closest_distance=dist,
                    closest_kkt=kkt,
                    closest_converged=False,
                    options=opts,
                    stats=stats,
                    complete=False,
                )
            )
    except (KeyboardInterrupt, FiberscopeError):
        return None
    return out if problem.batched else out[0]


def _which(problem: Problem) -> Callable[[int], str]:
    """`` (start b of the batch)`` for messages about one member of a batch, else nothing."""
    if problem.batched:
        return lambda b: f" (start {b} of the batch)"
    return lambda b: ""


def _bind_batch(output: OutputMap | None, raw_problem: Problem) -> OutputMap | None:
    """Bind the output map to the start(s); every start of a batch must bind it alike."""
    bound = bind_output(output, raw_problem.ys[0])
    for b in range(1, raw_problem.size):
        other = bind_output(output, raw_problem.ys[b])
        if other != bound:
            raise InputError(
                f"the starts of the batch bind the output map differently (start 0: "
                f"{describe_output(bound)}, start {b}: {describe_output(other)}), e.g. starts "
                "of different classes for ClassMargin(); give the class (ClassMargin(cls=k)) "
                "or batch starts of one class"
            )
    return bound


def _options_of(problem: Problem, options: dict[str, Any], b: int, beyond: float) -> dict[str, Any]:
    """The options of member ``b`` (its start, its ``beyond`` and its index in a batch)."""
    if not problem.batched:
        return options
    return dict(options) | {"x0": problem.xs[b].tolist(), "beyond": beyond, "batch_index": b}


def _walk_result(
    problem: Problem,
    b: int,
    mem: Members,
    rec: Any,
    t_boundary: Tensor,
    t_flip: Tensor,
    options: dict[str, Any],
    stats: Stats,
) -> tuple[ExploreResult, int]:
    """Member ``b``'s path to the flipped level and its boundary row; raises if it fell short."""
    pts, outs = rec.rows(b, "x"), rec.rows(b, "y")
    ends = rec.rows(b, "leg_end")
    n_ends = 0 if ends is None else int(ends.sum())
    reason = mem.reasons[b] or "max_steps"

    def partial_path(tgt: Tensor, why: str, msg: str) -> ExploreResult:
        p_all, o_all, arc = assemble_path(problem, b, pts, outs)
        return ExploreResult(
            points=p_all,
            outputs=o_all,
            arclength=arc,
            y0=problem.ys[b],
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

    try:
        if n_ends == 0:
            raise_not_reached(partial_path(t_boundary, reason, mem.messages[b]), t_boundary, None)
        if n_ends == 1:
            raise_not_reached(partial_path(t_flip, reason, mem.messages[b]), t_flip, None)
    except TargetNotReachedError as exc:
        if not problem.batched:
            raise
        raise TargetNotReachedError(
            f"start {b} of the batch: {exc}",
            closest_output=exc.closest_output,
            closest_point=exc.closest_point,
            reason=exc.reason,
            result=exc.result,
        ) from None
    assert pts is not None and ends is not None
    row = int(ends.to(torch.int64).nonzero()[0])
    return partial_path(t_flip, "reached", "crossed the decision boundary"), row


def _kkt(problem: Problem, x: Tensor, x0: Tensor) -> float:
    """``|sin|`` of the angle between ``x - x0`` and the score's gradient at ``x``."""
    _, jac = problem.fn.value_and_jacobian(x)
    g = jac[0]
    d = x - x0
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
