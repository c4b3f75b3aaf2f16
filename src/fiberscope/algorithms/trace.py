"""``fiberscope.trace``: reconstruct the 1-D equivalence class through a point (or many)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..engine import Context, Members, RunState, Session, Snapshot, Stats, StepControl
from ..engine.policies import Simec, Tangent
from ..errors import InputError, Interrupted
from ..geometry.linalg import oriented_tangents
from ..outputs import OutputMap, describe_output
from ._progress import progress_callback
from .problem import (
    Problem,
    check_positive,
    check_regular,
    check_step,
    level_tolerance,
    one_dimensional_classes,
    prepare,
)
from .results import TraceResult

METHODS = ("corrected", "paper")
DIRECTIONS = ("both", "forward", "backward")
PAPER_BOX = ("stop", "clamp")
#: Largest step, relative to ``max(1, max |x0|)``, that the corrected tracer can shrink to a
#: usable size (it halves down to ``step * 1e-9`` at most).
MAX_STEP_RATIO = 1e6


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
    dtype: Any = None,
    batched: bool | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> TraceResult | list[TraceResult]:
    """Trace the equivalence class ``N^{-1}(N(x0))`` through ``x0`` (a curve).

    The network must map ``R^n -> R^(n-1)`` (after the optional output map), so that the
    class through a regular point is locally a curve.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network (see :func:`fiberscope.load_model`), any dtype.
    x0 : tensor or array-like
        Start point, any shape; points are returned in the same shape. A batch of starts
        (leading dimension; see ``batched``) is traced together and returns a list.
    step : float
        Step length. For ``"corrected"`` it is the *largest* step (the step adapts below it);
        for ``"paper"`` it is the authors' fixed ``delta``.
    max_steps : int
        Accepted steps per branch.
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
        :func:`fiberscope.outputs.output_map`).
    paper_box : {"stop", "clamp"}
        Paper mode with ``bounds``: stop at the boundary (record the clamped point and stop)
        or clamp every step and continue.
    max_angle : float
        Corrected mode: largest tangent turn per step, radians.
    sing_tol : float
        Relative threshold on the singular values of J for a singular point.
    dtype : torch.dtype or str, optional
        Precision of the Jacobians (``"float32"``, ``"bfloat16"`` for speed); outputs and
        residuals stay float64.
    batched : bool, optional
        ``x0`` holds a batch of starts along its first dimension (default: decided from the
        model when its input size is known).
    progress : bool or callable, optional
        True for a progress bar (plain lines on stderr outside terminals and notebooks), or
        ``progress(done, total)``.
    stop : callable, optional
        Polled between steps; when it returns True the trace stops and raises
        :class:`~fiberscope.errors.Interrupted` (so does Ctrl-C).
    checkpoint : callable, optional
        ``checkpoint(snapshot)`` every ``checkpoint_every`` steps and when a branch ends, with
        a :class:`~fiberscope.engine.Snapshot` (see :mod:`fiberscope.io.checkpoint`).
    checkpoint_every : int
        Steps between checkpoints (only used with ``checkpoint``).
    resume : Snapshot, optional
        Continue an interrupted trace exactly where it stopped (same model and options).

    Returns
    -------
    TraceResult or list of TraceResult
        Points ordered along the curve (start included), outputs, arclength, stop reasons,
        drift, statistics; a list for a batch of starts.

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
    Interrupted
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
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    max_angle = check_positive(max_angle, "max_angle")
    sing_tol = check_positive(sing_tol, "sing_tol")
    problem = prepare(
        model,
        x0,
        bounds=bounds,
        metric=metric,
        output=output,
        require_m=one_dimensional_classes,
        batched=batched,
        dtype=dtype,
    )
    step = check_step(step, problem)
    scale = max(1.0, float(problem.xs.abs().max()))
    if step > MAX_STEP_RATIO * scale:
        # the step adapts down by at most 1e9 before a branch gives up as "singular", so a
        # step this far above the input's scale would end every branch with a false stop
        raise InputError(
            f"step {step:g} is huge for inputs of size {scale:g} (at most "
            f"{MAX_STEP_RATIO * scale:g}); give a step near the size of the features you "
            "want to see"
        )
    _, s_min, s_max = oriented_tangents(problem.js)
    if method == "corrected":
        for i in range(problem.size):
            check_regular(problem, float(s_min[i]), float(s_max[i]), sing_tol)
    options = {
        "method": method,
        "step": step,
        "max_steps": max_steps,
        "direction": direction,
        "bounds": problem.box_list(),
        "tol": tol,
        "metric": None if problem.metric is None else problem.metric.tolist(),
        "output": describe_output(problem.fn.output_map),
        "paper_box": paper_box if method == "paper" else None,
        "max_angle": max_angle,
        "sing_tol": sing_tol,
        "dtype": str(problem.fn.jac_dtype).removeprefix("torch."),
        "x0": problem.starts_list(),
        "input_shape": list(problem.fn.input_shape),
    }
    branches = ["forward", "backward"] if direction == "both" else [direction]
    stats = Stats()
    callback, close = progress_callback(progress, f"trace ({method})")
    session = Session(
        "trace",
        options,
        problem.ys,
        stats=stats,
        total=max_steps * len(branches) * problem.size,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    try:
        try:
            trace_phases(
                problem,
                session,
                method=method,
                step=step,
                max_steps=max_steps,
                tol=tol,
                branches=branches,
                max_angle=max_angle,
                sing_tol=sing_tol,
                paper_box=paper_box,
            )
        except KeyboardInterrupt:
            partial = _results(problem, session, method, options, stats, complete=False)
            raise Interrupted(partial, session.snapshot()) from None
    finally:
        close()
    session.finish()
    return _results(problem, session, method, options, stats, complete=True)


def trace_phases(
    problem: Problem,
    session: Session,
    *,
    method: str,
    step: float,
    max_steps: int,
    tol: float,
    branches: list[str] | None = None,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    paper_box: str = "stop",
    prefix: str = "",
) -> dict[str, RunState]:
    """Trace the class of every start of ``problem``: a forward phase, then a backward one.

    The backward branch runs only for starts whose forward branch did not close its loop.
    Every start is a member; each phase is one engine run of all of them.

    Parameters
    ----------
    problem : Problem
        The starts (``xs``), their levels (``ys``) and Jacobians (``js``).
    session : Session
        The verb's session (progress, interruption, checkpoints).
    method : {"corrected", "paper"}
        Tangent policy or the authors' SiMEC-1D.
    step, max_steps, tol, max_angle, sing_tol, paper_box
        As for :func:`trace`.
    branches : list of str, optional
        ``["forward", "backward"]`` (default), or one of them.
    prefix : str
        Prefix of the phase names.

    Returns
    -------
    dict
        ``{"forward": RunState, "backward": RunState}`` (the branches that ran); members
        carry their start's index in ``vars["start"]``.
    """
    stats = session.stats
    if method == "corrected":
        policy: Any = Tangent(max_angle=max_angle, sing_tol=sing_tol)
    else:
        policy = Simec(box=paper_box if problem.box is not None else None)
    ctl = StepControl(step=step, max_steps=max_steps, adaptive=method == "corrected")
    tol_all = level_tolerance(tol, problem.ys)
    done: dict[str, RunState] = {}
    for name in branches or ["forward", "backward"]:
        sign = 1.0 if name == "forward" else -1.0
        starts = _open_starts(problem, done.get("forward"))
        if not starts:
            break
        sel = torch.tensor(starts, dtype=torch.int64)
        ctx = Context(fn=problem.fn, box=problem.box, stats=stats, metric=problem.metric)
        done[name] = session.phase(
            prefix + name,
            ctx,
            policy,
            ctl,
            lambda sel=sel, sign=sign: _members(problem, sel, sign, step, method, tol_all),
        )
    return done


def _open_starts(problem: Problem, forward: RunState | None) -> list[int]:
    """Starts whose class still needs a branch (all, or those the forward branch did not close)."""
    if forward is None:
        return list(range(problem.size))
    mem = forward.mem
    start = mem.vars["start"].tolist()
    return [int(start[i]) for i in range(len(mem)) if mem.reasons[i] != "closed"]


def _members(
    problem: Problem, sel: Tensor, sign: float, step: float, method: str, tol: Tensor
) -> Members:
    d = sel.to(problem.xs.device)
    mem = Members.start(problem.xs[d], problem.ys[d], problem.js[d], problem.ys[d], step, tol[d])
    signs = torch.full((sel.numel(),), sign, dtype=torch.float64)
    if method == "corrected":
        Tangent.init(mem, signs)
    else:
        Simec.init(mem, signs)
    mem.vars["start"] = sel.to(problem.xs.device)
    return mem


def _results(
    problem: Problem,
    session: Session,
    method: str,
    options: dict[str, Any],
    stats: Stats,
    *,
    complete: bool,
) -> TraceResult | list[TraceResult]:
    phases = dict(session.states())
    return trace_results(problem, phases, method, options, stats, complete=complete)


def trace_results(
    problem: Problem,
    phases: dict[str, RunState],
    method: str,
    options: dict[str, Any],
    stats: Stats,
    *,
    complete: bool = True,
) -> TraceResult | list[TraceResult]:
    """Assemble one :class:`TraceResult` per start from the branch phases.

    Parameters
    ----------
    problem : Problem
        The starts.
    phases : dict
        ``{"forward": RunState, "backward": RunState}``.
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        Options recorded in every result.
    stats : Stats
        Statistics recorded in every result.
    complete : bool
        False for the partial results of an interrupted run.

    Returns
    -------
    TraceResult or list of TraceResult
        A list when ``problem.batched``.
    """
    out = []
    for s in range(problem.size):
        out.append(_one(problem, s, phases, method, options, stats, complete))
    return out if problem.batched else out[0]


def _one(
    problem: Problem,
    s: int,
    phases: dict[str, RunState],
    method: str,
    options: dict[str, Any],
    stats: Stats,
    complete: bool,
) -> TraceResult:
    branches: dict[str, tuple[Tensor | None, Tensor | None, Tensor | None]] = {}
    reasons: dict[str, str] = {}
    messages: dict[str, str] = {}
    stop_points: dict[str, list[float]] = {}
    energy: dict[str, float] = {}
    closed = False
    for name, st in phases.items():
        mem = st.mem
        where = (mem.vars["start"] == s).nonzero().reshape(-1)
        if where.numel() == 0:
            continue
        i = int(where[0])
        branches[name] = (st.rec.rows(i, "x"), st.rec.rows(i, "y"), st.rec.rows(i, "cond"))
        reason = mem.reasons[i]
        if reason is None:
            reason = "interrupted"
            messages[name] = f"interrupted after {int(mem.k[i])} steps"
            stop_points[name] = mem.x[i].tolist()
        else:
            messages[name] = mem.messages[i]
            stop_points[name] = mem.stop_points[i] or problem.xs[s].tolist()
        reasons[name] = reason
        closed = closed or reason == "closed"
        if method == "paper":
            energy[name] = float(mem.vars["energy"][i])
    x0, y0 = problem.xs[s], problem.ys[s]
    n, m = problem.n, problem.m

    def rows(name: str, k: int, width: int) -> Tensor:
        got = branches.get(name, (None, None, None))[k]
        if got is None:
            return x0.new_zeros((0, width))
        return got.reshape(-1, width)

    bp, bo, bc = rows("backward", 0, n), rows("backward", 1, m), rows("backward", 2, 1)
    fp, fo, fc = rows("forward", 0, n), rows("forward", 1, m), rows("forward", 2, 1)
    points = torch.cat((bp.flip(0), x0.unsqueeze(0), fp))
    outputs = torch.cat((bo.flip(0), y0.unsqueeze(0), fo))
    start = bp.shape[0]
    branch = torch.zeros(points.shape[0], dtype=torch.int64)
    branch[:start] = -1
    branch[start + 1 :] = 1
    seg = torch.linalg.vector_norm(points[1:] - points[:-1], dim=1)
    cum = torch.cat((seg.new_zeros(1), torch.cumsum(seg, 0)))
    arclength = cum - cum[start]
    drift = float((outputs - y0).abs().max())
    conditioning = None
    if method == "corrected":
        _, s_min, s_max = oriented_tangents(problem.js[s : s + 1])
        c0 = s_min if m == 1 else torch.where(s_max > 0, s_min / s_max, 0.0)
        if bc.shape[0] == bp.shape[0] and fc.shape[0] == fp.shape[0]:
            conditioning = torch.cat((bc.flip(0).reshape(-1), c0.reshape(-1), fc.reshape(-1)))
            conditioning = conditioning.to(torch.float64).cpu()
    opts = dict(options)
    if problem.batched:
        opts["x0"] = x0.tolist()
        opts["batch_index"] = s
    return TraceResult(
        points=problem.unflatten(points),
        outputs=outputs,
        branch=branch,
        arclength=arclength,
        start_index=start,
        y0=y0,
        closed=closed,
        stop_reasons=reasons,
        stop_points=stop_points,
        drift=drift,
        method=method,
        options=opts,
        stats=stats,
        messages=messages,
        energy=energy,
        conditioning=conditioning,
        complete=complete and all(r != "interrupted" for r in reasons.values()),
    )
