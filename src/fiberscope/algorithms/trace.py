"""``fiberscope.trace``: reconstruct the 1-D equivalence class through a point."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from ..errors import CheckpointError, InputError, TraceInterrupted
from ..geometry.jacobian import OutputMap
from ..geometry.kernel import oriented_tangent
from . import corrected, paper
from .problem import Problem, check_positive, check_regular, one_dimensional_classes, prepare
from .result import TraceResult, TraceStats
from .snapshot import BranchRecord, TraceSnapshot

METHODS = ("corrected", "paper")
DIRECTIONS = ("both", "forward", "backward")
PAPER_BOX = ("stop", "clamp")
#: Largest step, relative to ``max(1, max |x0|)``, that the corrected tracer can shrink to a
#: usable size (it halves down to ``step * 1e-9`` at most).
MAX_STEP_RATIO = 1e6


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
    output: OutputMap | str | None = None,
    paper_box: str = "stop",
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[TraceSnapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: TraceSnapshot | None = None,
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
    output : callable or str, optional
        Output map applied to the model's output (which outputs define "the same"), or a
        selection such as ``"logits[3]"`` or ``"logit-diff 3 5"`` (see
        :func:`fiberscope.models.output_map`).
    paper_box : {"stop", "clamp"}
        Paper mode with ``bounds``: stop at the boundary (record the clamped point and stop)
        or clamp every step and continue.
    max_angle : float
        Corrected mode: largest tangent turn per step, radians.
    sing_tol : float
        Relative threshold on the singular values of J for a singular point.
    progress : callable, optional
        ``progress(done, total)`` called now and then with accepted steps.
    stop : callable, optional
        Polled between steps; when it returns True the trace stops and raises
        :class:`~fiberscope.errors.TraceInterrupted` (so does Ctrl-C).
    checkpoint : callable, optional
        ``checkpoint(snapshot)`` is called every ``checkpoint_every`` steps of a branch and
        when a branch ends, with a :class:`~fiberscope.algorithms.snapshot.TraceSnapshot`
        (see :class:`fiberscope.io.checkpoint.CheckpointWriter`).
    checkpoint_every : int
        Steps between checkpoints (only used with ``checkpoint``).
    resume : TraceSnapshot, optional
        Continue an interrupted trace exactly where it stopped (same model and options).

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
    CheckpointError
        ``resume`` was taken with other options or another model.
    TraceInterrupted
        Ctrl-C or ``stop``: carries the partial result and a snapshot to resume from.

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
    if isinstance(output, str):
        from ..outputs import output_map

        output = output_map(output)
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
    scale = max(1.0, float(problem.x0.abs().max()))
    if step > MAX_STEP_RATIO * scale:
        # the step adapts down by at most 1e9 before a branch gives up as "singular", so a
        # step this far above the input's scale would end every branch with a false stop
        raise InputError(
            f"step {step:g} is huge for inputs of size {scale:g} (at most "
            f"{MAX_STEP_RATIO * scale:g}); give a step near the size of the features you "
            "want to see"
        )
    _, s_min, s_max = oriented_tangent(problem.J0)
    if method == "corrected":
        check_regular(problem, s_min, s_max, sing_tol)

    options = {
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
    }
    if checkpoint is not None:
        checkpoint_every = check_positive(checkpoint_every, "checkpoint_every", integer=True)
    stats = TraceStats()
    resumed: dict[str, BranchRecord] = {}
    if resume is not None:
        check_resume(resume, options, problem.y0)
        corrected.restore_counters(stats, resume.stats)
        device = problem.x0.device
        resumed = {
            b.name: replace(
                b,
                points=[p.to(device) for p in b.points],
                outputs=[o.to(device) for o in b.outputs],
            )
            for b in resume.branches
        }
    total = max_steps * (2 if direction == "both" else 1)
    done = [0]

    def tick(k: int) -> None:
        if progress is not None:
            progress(done[0] + k, total)

    t_start = time.perf_counter()
    records: list[BranchRecord] = []
    live: list[Any] = []  # [name, sign, tracer] of the branch in progress
    closed = False

    def snapshot() -> TraceSnapshot:
        branches = list(records)
        counters = corrected.stats_counters(stats)
        if live:
            name, sign, tracer = live
            branches.append(_live_record(name, sign, tracer))
            counters = dict(tracer.state.stats)
        return TraceSnapshot(
            method=method,
            options=options,
            y0=problem.y0.tolist(),
            branches=branches,
            stats=counters,
            closed=closed,
        )

    def on_commit(tracer: Any) -> None:
        if checkpoint is not None and tracer.state.k % checkpoint_every == 0:
            checkpoint(snapshot())

    for name, sign in _branch_signs(direction):
        prior = resumed.get(name)
        if prior is not None and prior.finished:
            records.append(prior)
            done[0] += max_steps
            if prior.reason == "closed":
                closed = True
                break
            continue
        tracer = _make_tracer(problem, method, name, sign, prior, stats, options)
        live[:] = [name, sign, tracer]
        try:
            tracer.run(
                progress=tick,
                should_stop=stop,
                on_commit=on_commit if checkpoint is not None else None,
            )
        except KeyboardInterrupt:
            snap = snapshot()
            stats.wall_time = time.perf_counter() - t_start
            partial = _result_from_records(problem, snap.branches, closed, stats, method, options)
            partial.complete = False
            raise TraceInterrupted(partial, snap) from None
        live.clear()
        rec = _finished_record(name, sign, tracer)
        records.append(rec)
        if rec.reason == "closed":
            closed = True
        if checkpoint is not None:
            checkpoint(snapshot())
        if closed:
            break
        done[0] += max_steps
    stats.wall_time = time.perf_counter() - t_start
    if progress is not None:
        progress(total, total)
    return _result_from_records(problem, records, closed, stats, method, options)


def check_resume(snapshot: TraceSnapshot, options: dict[str, Any], y0: Tensor) -> None:
    """Refuse to resume ``snapshot`` with other options or a model with another output.

    Parameters
    ----------
    snapshot : TraceSnapshot
        The snapshot to continue.
    options : dict
        Options of the new call.
    y0 : torch.Tensor
        Output of the new call's model at the start.

    Raises
    ------
    CheckpointError
        On any difference.
    """
    if not isinstance(snapshot, TraceSnapshot):
        raise CheckpointError(f"resume= takes a TraceSnapshot, got {type(snapshot).__name__}")
    for key in sorted(set(options) | set(snapshot.options)):
        new, old = options.get(key), snapshot.options.get(key)
        if _plain(new) != _plain(old):
            raise CheckpointError(
                f"the checkpoint was written with {key}={_short(old)}, this run has "
                f"{key}={_short(new)}; resume with the same options"
            )
    if [float(v) for v in snapshot.y0] != y0.reshape(-1).tolist():
        raise CheckpointError(
            "the model's output at the start differs from the checkpoint's "
            f"({_short(snapshot.y0)} vs {_short(y0.tolist())}): is it the same model?"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _make_tracer(
    problem: Problem,
    method: str,
    name: str,
    sign: int,
    prior: BranchRecord | None,
    stats: TraceStats,
    options: dict[str, Any],
) -> Any:
    """A branch tracer, fresh or continuing ``prior`` (a branch in progress)."""
    if method == "corrected":
        opts = corrected.CorrectedOptions(
            step=options["step"],
            max_steps=options["max_steps"],
            tol=options["tol"],
            max_angle=options["max_angle"],
            sing_tol=options["sing_tol"],
        )
        if prior is None or prior.state is None:
            return corrected.BranchTracer(problem, sign, opts, stats)
        state = _restore_state(corrected.BranchState, prior, problem)
        branch = corrected.Branch(
            points=list(prior.points),
            outputs=list(prior.outputs),
            conditioning=list(prior.conditioning),
        )
        return corrected.BranchTracer(problem, sign, opts, stats, state=state, branch=branch)
    variant = None if problem.box is None else options["paper_box"]
    kwargs = dict(
        step=options["step"],
        n_steps=options["max_steps"],
        invert=sign < 0,
        metric=problem.metric,
        box=problem.box,
        variant=variant,
        stats=stats,
    )
    if prior is None or prior.state is None:
        return paper.SimecTracer(problem.fn, problem.x0, **kwargs)
    state = _restore_state(paper.PaperState, prior, problem)
    run = paper.PaperRun(points=list(prior.points), outputs=list(prior.outputs))
    return paper.SimecTracer(problem.fn, problem.x0, state=state, run=run, **kwargs)


def _restore_state(kind: Any, prior: BranchRecord, problem: Problem) -> Any:
    """Rebuild a tracer state from a snapshot, refusing one that does not fit the problem."""
    try:
        state = kind.from_dict(prior.state, problem.x0.device)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(
            f"the checkpoint's state of the {prior.name} branch is malformed ({exc})"
        ) from None
    n = problem.x0.numel()
    vectors = [v for v in vars(state).values() if isinstance(v, Tensor)]
    if any(v.shape != (n,) for v in vectors) or state.n_points != len(prior.points):
        raise CheckpointError(
            f"the checkpoint's state of the {prior.name} branch does not fit this problem "
            f"({n} coordinates, {len(prior.points)} points)"
        )
    return state


def _live_record(name: str, sign: int, tracer: Any) -> BranchRecord:
    """Record of a branch in progress, as of its last commit."""
    if tracer.finished:
        return _finished_record(name, sign, tracer)
    n = tracer.state.n_points
    if isinstance(tracer, corrected.BranchTracer):
        br = tracer.branch
        pts, outs, conds, energy = br.points[:n], br.outputs[:n], br.conditioning[:n], 0.0
    else:
        run = tracer.run_
        pts, outs, conds, energy = run.points[:n], run.outputs[:n], [], tracer.state.energy
    return BranchRecord(
        name=name,
        sign=sign,
        points=list(pts),
        outputs=list(outs),
        conditioning=list(conds),
        finished=False,
        reason="interrupted",
        message=f"interrupted after {tracer.state.k} steps",
        stop_point=tracer.state.x.tolist(),
        energy=energy,
        state=tracer.state.to_dict(),
    )


def _finished_record(name: str, sign: int, tracer: Any) -> BranchRecord:
    """Record of a branch that has stopped."""
    if isinstance(tracer, corrected.BranchTracer):
        br = tracer.branch
        stop = br.stop_point if br.stop_point is not None else tracer.problem.x0
        return BranchRecord(
            name=name,
            sign=sign,
            points=list(br.points),
            outputs=list(br.outputs),
            conditioning=list(br.conditioning),
            finished=True,
            reason=br.reason,
            message=br.message,
            stop_point=stop.tolist(),
        )
    run = tracer.run_
    stop = run.points[-1] if run.points else tracer.state.x
    return BranchRecord(
        name=name,
        sign=sign,
        points=list(run.points),
        outputs=list(run.outputs),
        finished=True,
        reason=run.reason,
        message=run.message,
        stop_point=stop.tolist(),
        energy=run.energy,
    )


def _result_from_records(
    problem: Problem,
    records: list[BranchRecord],
    closed: bool,
    stats: TraceStats,
    method: str,
    options: dict[str, Any],
) -> TraceResult:
    branches = {r.name: (r.points, r.outputs, r.conditioning) for r in records}
    return _assemble(
        problem,
        branches,
        closed=closed,
        reasons={r.name: r.reason for r in records},
        stop_points={r.name: r.stop_point or problem.x0.tolist() for r in records},
        messages={r.name: r.message for r in records},
        energy={r.name: r.energy for r in records} if method == "paper" else {},
        stats=stats,
        method=method,
        options=options,
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
