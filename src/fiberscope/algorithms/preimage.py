"""``fiberscope.preimage``: the family of classes that fills the preimage of an output interval.

Corrected method (default): ``K`` target levels spaced evenly over ``[a, b]`` (both ends
included); the engine walks from ``x0`` down to ``a`` and up to ``b`` with the ``"target"``
policy, landing exactly on every level on the way (one leg per level), then traces every
level reached as one batch with the ``"tangent"`` policy (closed levels once, open ones to the
box). For 2-D inputs the region is measured as well: the band ``a <= N <= b`` on a grid of the
network's own values, restricted to the connected component(s) that the traced levels touch,
its area, a polygon from the traced extreme levels where they bound it, and the distance from
the traced extreme levels to the network's own contours at ``a`` and ``b``.

Paper method: the authors' driver (their ``main.cpp``). From ``x0``, ``nst`` times: trace the
current level both ways with stop-at-boundary SiMEC-1D, then SiMExp-1D with ``epsilon / nst``
to the next level; twice, with the SiMExp direction flag inverted (``true``) and not
(``false``). Here the two sweeps' SiMExp legs run as two members of one engine phase and the
``2 nst`` levels are then traced as one batch. Its known flaws are reproduced: every sub-step
overshoots, the last level reached is never traced, closed levels are traced round and round.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..engine import Context, Members, Session, Snapshot, Stats, StepControl
from ..engine.policies import Simexp, Target
from ..errors import FiberscopeError, InputError, Interrupted
from ..geometry.jacobian import ModelFunction
from ..outputs import OutputMap, describe_output
from ._progress import progress_callback
from .explore import assemble_path, check_start_gradient, paper_invert_for, raise_not_reached
from .problem import (
    EPS,
    Problem,
    check_budget,
    check_positive,
    check_step,
    level_tolerance,
    one_dimensional_classes,
    prepare,
)
from .results import BandRegion, ExploreResult, PreimageResult, TraceResult
from .trace import trace_phases, trace_results

METHODS = ("corrected", "paper")
#: Bytes per grid node of the region measurement (values, masks, labels, weights).
_GRID_BYTES = 64


def preimage(
    model: Callable[..., Any],
    x0: Any,
    interval: Any,
    *,
    levels: int = 11,
    bounds: Any,
    step: float = 0.01,
    max_steps: int = 10_000,
    method: str = "corrected",
    tol: float = 1e-12,
    output: OutputMap | str | None = None,
    metric: Any = None,
    partial: bool = False,
    region: bool = True,
    resolution: int = 400,
    nst: int = 100,
    exp_step: float | None = None,
    exp_max_steps: int = 10_000,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    dtype: Any = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> PreimageResult:
    """Trace the family of classes that fills the preimage of ``[a, b]`` reachable from ``x0``.

    The model must map ``R^n -> R^(n-1)`` (classes are curves): a scalar network of two
    inputs, or ``m = n - 1`` outputs with ``a`` and ``b`` given as ``m``-vectors (the levels
    are then spaced along the output segment from ``a`` to ``b``).

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network.
    x0 : tensor or array-like
        Start; ``N(x0)`` must lie in the interval.
    interval : tuple
        ``(a, b)``.
    levels : int
        Corrected: number of levels ``K >= 2`` spaced evenly over ``[a, b]``, ends included.
    bounds : tuple
        The box ``(lo, hi)`` (required: open levels are traced to it; the region is measured
        inside it).
    step : float
        Corrected: largest step of walks and traces. Paper: SiMEC-1D's ``delta``.
    max_steps : int
        Accepted steps per member: per level trace branch, and per walk across the levels
        (paper: SiMEC-1D's number of iterations per direction).
    method : {"corrected", "paper"}
        fiberscope's exact levels or the authors' driver.
    tol : float
        Residual tolerance of every point on its level.
    output : callable or str, optional
        Output map.
    metric : array-like, optional
        SPD output metric (paper mode's eigen-problems).
    partial : bool
        Corrected: trace the levels that can be reached and list the others in
        ``result.unreached`` instead of raising :class:`TargetNotReachedError`.
    region : bool
        Measure the band (2-D inputs).
    resolution : int
        Grid points per axis for the region.
    nst : int
        Paper: levels per sweep (the authors' 100).
    exp_step : float, optional
        Paper: SiMExp-1D's step (default ``step / 100``).
    exp_max_steps : int
        Paper: SiMExp-1D's step cap per sub-step (the authors' 10000).
    max_angle, sing_tol : float
        Corrected: as for :func:`fiberscope.trace`.
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
        Continue an interrupted run exactly.

    Returns
    -------
    PreimageResult
        The traced levels, the exploration path and (2-D) the region with its area.

    Raises
    ------
    InputError
        No bounds, an empty interval or one that does not contain ``N(x0)``, bad options,
        or more levels or grid nodes than memory allows.
    ModelError
        The classes are not curves (``m != n - 1``), e.g. a vector output without an output
        map for a 2-D input.
    TargetNotReachedError
        A level cannot be reached inside the box (unless ``partial``).
    Interrupted
        Ctrl-C or ``stop``.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    resolution = check_positive(resolution, "resolution", integer=True)
    if resolution < 16:
        raise InputError(f"resolution must be at least 16, got {resolution}")
    if bounds is None:
        raise InputError(
            "preimage needs bounds=(lo, hi): open levels are traced to the box and the region "
            "is measured inside it"
        )
    problem = prepare(
        model,
        x0,
        bounds=bounds,
        metric=metric,
        output=output,
        require_m=one_dimensional_classes,
        batched=False,
        dtype=dtype,
    )
    step = check_step(step, problem)
    a, b = parse_interval(interval, problem, tol)
    check_start_gradient(problem, "preimage")
    assert problem.box is not None
    if region and problem.n == 2:
        check_budget(
            resolution * resolution * _GRID_BYTES,
            f"a {resolution}x{resolution} grid",
            "use a smaller --resolution",
        )
    options: dict[str, Any] = {
        "method": method,
        "interval": [a.tolist(), b.tolist()],
        "step": step,
        "max_steps": max_steps,
        "bounds": problem.box_list(),
        "tol": tol,
        "output": describe_output(problem.fn.output_map),
        "metric": None if problem.metric is None else problem.metric.tolist(),
        "x0": problem.x0.tolist(),
        "input_shape": list(problem.fn.input_shape),
        "resolution": resolution,
    }
    stats = Stats()
    if method == "corrected":
        levels = check_positive(levels, "levels", integer=True)
        if levels < 2:
            raise InputError(f"levels must be at least 2 (both ends of the interval), got {levels}")
        check_budget(
            levels * _level_bytes(problem, max_steps),
            f"{levels} levels",
            "use fewer levels or a smaller max_steps",
        )
        options.update(levels=levels, partial=partial, max_angle=max_angle, sing_tol=sing_tol)
        total = max_steps * 3 * levels
    else:
        if problem.m != 1:
            raise InputError("the authors' preimage driver (method='paper') needs a scalar output")
        nst = check_positive(nst, "nst", integer=True)
        exp_step = check_positive(exp_step if exp_step is not None else step / 100, "exp_step")
        exp_max_steps = check_positive(exp_max_steps, "exp_max_steps", integer=True)
        check_budget(
            2 * nst * _level_bytes(problem, max_steps),
            f"{2 * nst} paper levels",
            "use a smaller nst or max_steps",
        )
        options.update(nst=nst, exp_step=exp_step, exp_max_steps=exp_max_steps)
        total = 2 * nst * (2 * max_steps + exp_max_steps)
    callback, close = progress_callback(progress, f"preimage ({method})")
    session = Session(
        "preimage",
        options,
        problem.ys,
        stats=stats,
        total=total,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    known = _Known()
    try:
        try:
            if method == "corrected":
                res = _corrected(
                    problem,
                    a,
                    b,
                    levels,
                    step,
                    max_steps,
                    tol,
                    partial,
                    max_angle,
                    sing_tol,
                    stats,
                    options,
                    session,
                    known,
                )
            else:
                assert exp_step is not None
                res = _paper(
                    problem,
                    a,
                    b,
                    nst,
                    step,
                    max_steps,
                    exp_step,
                    exp_max_steps,
                    stats,
                    options,
                    session,
                    known,
                )
        except KeyboardInterrupt:
            snapshot = session.snapshot()  # before the partial result evaluates the model
            partial_res = _partial_preimage(problem, a, b, method, options, session, known)
            raise Interrupted(partial_res, snapshot) from None
    finally:
        close()
    if region and problem.n == 2 and res.traces:
        lv = res.levels[:, 0].tolist()
        low, high = (float(a[0]), float(b[0])) if method == "corrected" else (min(lv), max(lv))
        res.region = band_region(
            problem.fn,
            None,
            problem.box,
            low,
            high,
            res.traces,
            lv,
            requested=(float(a[0]), float(b[0])),
            resolution=resolution,
        )
    session.finish()
    return res


@dataclass
class _Known:
    """What an interrupted preimage run has established so far (for its partial result)."""

    #: the exploration path as of the live phase's last commit: ``path(states)``
    path: Callable[[dict[str, Any]], tuple[Tensor, Tensor]] | None = None
    #: the levels being traced: their starts, outputs and the traces' sub-problem
    sub: Problem | None = None
    goals: Tensor | None = None
    trace_options: dict[str, Any] = field(default_factory=dict)
    unreached: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _partial_preimage(
    problem: Problem,
    a: Tensor,
    b: Tensor,
    method: str,
    options: dict[str, Any],
    session: Session,
    known: _Known,
) -> PreimageResult | None:
    """The preimage as of the last committed step of an interrupted run (``complete=False``).

    While the run is still walking to the levels: the path so far and no traced level;
    once it traces them: every level with the part of its class traced so far (each a
    partial trace). None when nothing can be assembled (a second Ctrl-C meanwhile).
    """
    try:
        states = dict(session.states())
        if known.path is not None:
            pp, po = known.path(states)
        else:
            pp, po = problem.x0.unsqueeze(0), problem.y0.unsqueeze(0)
        traces: list[TraceResult] = []
        if known.sub is not None and known.goals is not None:
            sub = known.sub
            phases = {
                name.removeprefix("trace-"): st
                for name, st in states.items()
                if name.startswith("trace-")
            }
            got = trace_results(
                sub,
                phases,
                "paper" if method == "paper" else "corrected",
                known.trace_options,
                Stats(),
                complete=False,
            )
            assert isinstance(got, list)
            for s_, tr in enumerate(got):
                tr.options = dict(known.trace_options, x0=sub.xs[s_].tolist())
            traces, goals, st = got, known.goals, sub.xs
        else:
            goals = problem.y0.new_zeros((0, problem.m))
            st = problem.x0.new_zeros((0, problem.n))
        return PreimageResult(
            interval=torch.stack((a, b)),
            y0=problem.y0,
            levels=goals,
            traces=traces,
            starts=problem.unflatten(st),
            path=problem.unflatten(pp),
            path_outputs=po.reshape(pp.shape[0], -1),
            region=None,
            method=method,
            options=options,
            stats=session.stats,
            unreached=list(known.unreached),
            complete=False,
            **known.extra,
        )
    except (KeyboardInterrupt, FiberscopeError):
        return None


def _level_bytes(problem: Problem, max_steps: int) -> int:
    """Memory a traced level may need at most (two branches of points and outputs)."""
    return 2 * max_steps * (problem.n + problem.m + 2) * 8


def _trace_levels(
    problem: Problem,
    starts: Tensor,
    goals: Tensor,
    step: float,
    max_steps: int,
    tol: float,
    stats: Stats,
    session: Session,
    known: _Known,
    *,
    paper: bool,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
) -> list[TraceResult]:
    """Trace every level (one member per level) forward, then backward where not closed."""
    fn = problem.fn
    _, js = fn.values_and_jacobians(starts)
    stats.jacobian_evals += starts.shape[0]
    sub = Problem(
        fn=fn, xs=starts, ys=goals, js=js, box=problem.box, metric=problem.metric, batched=True
    )
    method = "paper" if paper else "corrected"
    opts = {
        "method": method,
        "step": step,
        "max_steps": max_steps,
        "direction": "both",
        "bounds": problem.box_list(),
        "tol": tol,
        "input_shape": list(fn.input_shape),
    }
    known.sub, known.goals, known.trace_options = sub, goals, opts
    phases = trace_phases(
        sub,
        session,
        method=method,
        step=step,
        max_steps=max_steps,
        tol=tol,
        max_angle=max_angle,
        sing_tol=sing_tol,
        paper_box="stop",
        prefix="trace-",
    )
    out = trace_results(sub, phases, method, opts, Stats())
    assert isinstance(out, list)
    for s, tr in enumerate(out):
        tr.options = dict(opts, x0=starts[s].tolist())
    return out


def _corrected(
    problem: Problem,
    a: Tensor,
    b: Tensor,
    k_levels: int,
    step: float,
    max_steps: int,
    tol: float,
    partial: bool,
    max_angle: float,
    sing_tol: float,
    stats: Stats,
    options: dict[str, Any],
    session: Session,
    known: _Known,
) -> PreimageResult:
    d = b - a
    dd = float(d @ d)
    s0 = float((problem.y0 - a) @ d) / dd
    params = [k / (k_levels - 1) for k in range(k_levels)]
    targets = [a + s * d for s in params]
    slack = max(tol, 64 * EPS * max(1.0, float(problem.y0.abs().max()))) / math.sqrt(dd)
    below = [k for k in reversed(range(k_levels)) if params[k] < s0 - slack]
    above = [k for k in range(k_levels) if params[k] > s0 + slack]
    starts: dict[int, Tensor] = {
        k: problem.x0 for k in range(k_levels) if abs(params[k] - s0) <= slack
    }
    walks = [(name, order) for name, order in (("down", below), ("up", above)) if order]
    unreached = known.unreached

    def path_of(states: dict[str, Any]) -> tuple[Tensor, Tensor]:
        got: dict[str, tuple[Tensor | None, Tensor | None]] = {}
        walked = states.get("levels")
        if walked is not None:
            for j, (name, _) in enumerate(walks):
                got[name] = (walked.rec.rows(j, "x"), walked.rec.rows(j, "y"))
        return _join_path(problem, got.get("down"), got.get("up"))

    known.path = path_of
    paths: dict[str, tuple[Tensor | None, Tensor | None]] = {
        "down": (None, None),
        "up": (None, None),
    }
    if walks:
        legs = max(len(order) for _, order in walks)
        tg = torch.stack(
            [
                torch.stack([targets[order[min(j, len(order) - 1)]] for j in range(legs)])
                for _, order in walks
            ]
        )
        nlegs = torch.tensor([len(order) for _, order in walks])
        w = len(walks)
        tol_w = torch.maximum(
            level_tolerance(tol, problem.ys.expand(w, -1)),
            level_tolerance(tol, tg.reshape(-1, problem.m)).reshape(w, legs).amax(dim=1),
        )

        def fresh() -> Members:
            mem = Members.start(
                problem.xs.expand(w, -1),
                problem.ys.expand(w, -1),
                problem.js.expand(w, -1, -1),
                problem.ys.expand(w, -1),
                step,
                tol_w,
            )
            # a member with fewer levels than the other repeats its last one (never walked)
            Target.init(mem, tg, nlegs)
            return mem

        ctx = Context(fn=problem.fn, box=problem.box, stats=stats, metric=problem.metric)
        policy = Target(max_angle=max_angle, sing_tol=sing_tol)
        state = session.phase(
            "levels", ctx, policy, StepControl(step=step, max_steps=max_steps), fresh
        )
        mem, rec = state.mem, state.rec
        for j, (name, order) in enumerate(walks):
            pts, outs = rec.rows(j, "x"), rec.rows(j, "y")
            paths[name] = (pts, outs)
            ends = rec.rows(j, "leg_end")
            got = [] if ends is None else pts[ends.to(pts.device)]
            for q, k in enumerate(order[: len(got)]):
                starts[k] = got[q]
            if len(got) < len(order):
                reason = mem.reasons[j] or "max_steps"
                message = mem.messages[j]
                k = order[len(got)]
                if not partial:
                    p_all, o_all, arc = _path(problem, pts, outs)
                    res = ExploreResult(
                        points=p_all,
                        outputs=o_all,
                        arclength=arc,
                        y0=problem.y0,
                        target=targets[k],
                        epsilon=None,
                        reached=False,
                        stop_reason=reason,
                        stop_point=p_all[-1].reshape(-1).tolist(),
                        message=message,
                        method="corrected",
                        options=dict(options),
                        stats=stats,
                    )
                    raise_not_reached(res, targets[k], None)
                for kk in order[len(got) :]:
                    unreached.append(
                        {"level": targets[kk].tolist(), "reason": reason, "message": message}
                    )
    order = sorted(starts)
    st = torch.stack([starts[k] for k in order])
    goals = torch.stack([targets[k] for k in order]).reshape(len(order), -1)
    traces = _trace_levels(
        problem,
        st,
        goals,
        step,
        max_steps,
        tol,
        stats,
        session,
        known,
        paper=False,
        max_angle=max_angle,
        sing_tol=sing_tol,
    )
    pp, po = _join_path(problem, paths["down"], paths["up"])
    return PreimageResult(
        interval=torch.stack((a, b)),
        y0=problem.y0,
        levels=goals,
        traces=traces,
        starts=problem.unflatten(st),
        path=problem.unflatten(pp),
        path_outputs=po.reshape(pp.shape[0], -1),
        region=None,
        method="corrected",
        options=options,
        stats=stats,
        unreached=list(unreached),
    )


def _join_path(
    problem: Problem,
    low: tuple[Tensor | None, Tensor | None] | None,
    high: tuple[Tensor | None, Tensor | None] | None,
) -> tuple[Tensor, Tensor]:
    """The path from the lowest output to the highest: ``low`` reversed, ``x0``, ``high``."""
    pts, outs = [problem.x0.unsqueeze(0)], [problem.y0.unsqueeze(0)]
    if low is not None and low[0] is not None and low[1] is not None:
        pts.insert(0, low[0].flip(0))
        outs.insert(0, low[1].flip(0))
    if high is not None and high[0] is not None and high[1] is not None:
        pts.append(high[0])
        outs.append(high[1])
    return torch.cat(pts), torch.cat(outs)


def _path(
    problem: Problem, pts: Tensor | None, outs: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:

    return assemble_path(problem, 0, pts, outs)


def _paper(
    problem: Problem,
    a: Tensor,
    b: Tensor,
    nst: int,
    step: float,
    max_steps: int,
    exp_step: float,
    exp_max_steps: int,
    stats: Stats,
    options: dict[str, Any],
    session: Session,
    known: _Known,
) -> PreimageResult:
    fn = problem.fn
    y0 = float(problem.y0[0])
    eps_up, eps_down = float(b[0]) - y0, y0 - float(a[0])
    invert_up = paper_invert_for(problem, "up")
    # The authors' order: the SiMExp flag inverted (true) first, then not (false).
    inverts = (True, False)
    eps_used = [eps_up if inv == invert_up else eps_down for inv in inverts]
    moving = [i for i in range(2) if eps_used[i] > 0]
    pts_sweep: dict[int, tuple[Tensor | None, Tensor | None, Tensor | None]] = {
        0: (None, None, None),
        1: (None, None, None),
    }

    def sweeps_so_far(states: dict[str, Any]) -> tuple[Tensor, Tensor]:
        swept = states.get("sweeps")
        got: list[tuple[Tensor | None, Tensor | None]] = []
        if swept is not None:
            got = [(swept.rec.rows(j, "x"), swept.rec.rows(j, "y")) for j in range(len(moving))]
        got = [g for g in got if g[0] is not None]
        if len(got) == 2 and float(got[0][1][-1, 0]) > float(got[1][1][-1, 0]):  # type: ignore[index]
            got.reverse()
        if len(got) == 1 and float(got[0][1][-1, 0]) > float(problem.y0[0]):  # type: ignore[index]
            got.insert(0, (None, None))
        return _join_path(problem, got[0] if got else None, got[1] if len(got) > 1 else None)

    known.path = sweeps_so_far
    if moving:
        sel = torch.tensor(moving)
        w = len(moving)

        def fresh() -> Members:
            mem = Members.start(
                problem.xs.expand(w, -1),
                problem.ys.expand(w, -1),
                problem.js.expand(w, -1, -1),
                problem.ys.expand(w, -1),
                exp_step,
            )
            sign = torch.tensor([-1.0 if inverts[i] else 1.0 for i in moving], dtype=torch.float64)
            eps = torch.tensor([eps_used[i] / nst for i in moving], dtype=torch.float64)
            Simexp.init(mem, sign, eps, torch.full((w,), nst, dtype=torch.int64))
            return mem

        ctx = Context(fn=fn, box=None, stats=stats, metric=problem.metric)
        state = session.phase(
            "sweeps",
            ctx,
            Simexp(),
            StepControl(step=exp_step, max_steps=exp_max_steps * nst, adaptive=False),
            fresh,
        )
        for j, i in enumerate(sel.tolist()):
            r = state.rec
            pts_sweep[i] = (r.rows(j, "x"), r.rows(j, "y"), r.rows(j, "leg_end"))
    level_starts: list[Tensor] = []
    sweeps: list[int] = []
    finals: list[Tensor] = []
    for i in range(2):
        pts, _, ends = pts_sweep[i]
        if pts is None:
            seq = [problem.x0] * nst
            final = problem.x0
        else:
            ends_idx = ends.to(pts.device).nonzero().reshape(-1).tolist()
            leg_ends = [pts[e] for e in ends_idx]
            # a leg that never reached its epsilon: the authors' loop goes on from the last point
            while len(leg_ends) < nst:
                leg_ends.append(pts[-1])
            seq = [problem.x0, *leg_ends[: nst - 1]]
            final = leg_ends[nst - 1]
        level_starts.extend(seq)
        sweeps.extend([i] * nst)
        finals.append(final)
    st = torch.stack(level_starts)
    goals = fn.values(st)
    known.extra = {"sweeps": sweeps}
    traces = _trace_levels(
        problem,
        st,
        goals,
        step,
        max_steps,
        0.0,
        stats,
        session,
        known,
        paper=True,
    )
    final_pts = torch.stack(finals)
    final_outs = fn.values(final_pts)
    options["epsilon_per_sweep"] = eps_used
    options["invert_per_sweep"] = [True, False]
    # Path ordered from low to high output: the sweep that went down, reversed, then the other.
    ends_y = [float(fo[0]) for fo in final_outs]
    low_sweep = 0 if ends_y[0] <= ends_y[1] else 1
    lp, lo_, _ = pts_sweep[low_sweep]
    hp, ho, _ = pts_sweep[1 - low_sweep]
    parts_p = [problem.x0.unsqueeze(0)]
    parts_o = [problem.y0.unsqueeze(0)]
    if lp is not None:
        parts_p.insert(0, lp.flip(0))
        parts_o.insert(0, lo_.flip(0))
    if hp is not None:
        parts_p.append(hp)
        parts_o.append(ho)
    pp, po = torch.cat(parts_p), torch.cat(parts_o)
    return PreimageResult(
        interval=torch.stack((a, b)),
        y0=problem.y0,
        levels=goals,
        traces=traces,
        starts=problem.unflatten(st),
        path=problem.unflatten(pp),
        path_outputs=po.reshape(pp.shape[0], -1),
        region=None,
        method="paper",
        options=options,
        stats=stats,
        sweeps=sweeps,
        final_points=problem.unflatten(final_pts),
        final_outputs=final_outs.reshape(2, -1),
    )


def parse_interval(interval: Any, problem: Problem, tol: float) -> tuple[Tensor, Tensor]:
    """Validate ``interval=(a, b)`` against the start's output.

    For one output ``a < b`` are numbers with ``a <= N(x0) <= b``; for ``m`` outputs they are
    ``m``-vectors and ``N(x0)`` must lie on the segment from ``a`` to ``b``.

    Parameters
    ----------
    interval : tuple
        ``(a, b)``.
    problem : Problem
        The validated problem.
    tol : float
        Tolerance for the containment test.

    Returns
    -------
    tuple of torch.Tensor
        ``a`` and ``b``, each ``(m,)``.
    """
    if not isinstance(interval, (tuple, list)) or len(interval) != 2:
        raise InputError("interval must be a pair (a, b)")
    m, dev = problem.m, problem.x0.device
    ends = []
    for name, v in zip(("lower", "upper"), interval, strict=True):
        try:
            t = torch.as_tensor(v, dtype=torch.float64).reshape(-1).to(dev)
        except Exception:
            raise InputError(f"the interval's {name} end must be numbers, got {v!r}") from None
        if t.numel() != m:
            if m > 1 and t.numel() == 1:
                raise InputError(
                    f"a scalar interval needs a scalar output, but the model has {m} outputs; "
                    "choose one with an output map (e.g. OutputComponent(k); CLI: --output), "
                    f"or give both ends as {m} values"
                )
            raise InputError(
                f"the interval's {name} end has {t.numel()} values, the model {m} outputs"
            )
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"the interval's {name} end must be finite")
        ends.append(t)
    a, b = ends
    y0 = problem.y0
    slack = max(tol, 64 * EPS * max(1.0, float(y0.abs().max())))
    if m == 1:
        av, bv, yv = float(a[0]), float(b[0]), float(y0[0])
        if not av < bv:
            raise InputError(
                f"empty interval [{av:g}, {bv:g}]: the lower end must be below the upper end"
            )
        if not av - slack <= yv <= bv + slack:
            raise InputError(
                f"the interval [{av:g}, {bv:g}] does not contain N(x0) = {yv:.10g}; the preimage "
                "is followed from x0, so choose an interval around its output"
            )
        return a, b
    d = b - a
    dd = float(d @ d)
    if dd == 0.0:
        raise InputError("empty interval: both ends are the same output")
    s = float((y0 - a) @ d) / dd
    off = float(torch.linalg.vector_norm(y0 - a - s * d))
    if off > 1e-9 * (1.0 + math.sqrt(dd)) or not -1e-12 <= s <= 1 + 1e-12:
        raise InputError(
            "the output segment from a to b does not contain N(x0) "
            f"({off:.3g} off it, at s={s:.3g}); choose a segment through N(x0)"
        )
    return a, b


def _shoelace(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _perimeter(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Counter-clockwise coordinate along the box boundary, from the lower-left corner."""
    w, h = hi[0] - lo[0], hi[1] - lo[1]
    d = [abs(p[1] - lo[1]), abs(p[0] - hi[0]), abs(p[1] - hi[1]), abs(p[0] - lo[0])]
    face = int(np.argmin(d))
    if face == 0:
        return float(np.clip(p[0] - lo[0], 0, w))
    if face == 1:
        return float(w + np.clip(p[1] - lo[1], 0, h))
    if face == 2:
        return float(w + h + np.clip(hi[0] - p[0], 0, w))
    return float(2 * w + h + np.clip(hi[1] - p[1], 0, h))


def _box_arc(
    p_from: float, p_to: float, ccw: bool, lo: np.ndarray, hi: np.ndarray
) -> list[np.ndarray]:
    """Corners of the box passed when going along its boundary from ``p_from`` to ``p_to``."""
    w, h = hi[0] - lo[0], hi[1] - lo[1]
    per = 2 * (w + h)
    corners = [
        (0.0, np.array([lo[0], lo[1]])),
        (w, np.array([hi[0], lo[1]])),
        (w + h, np.array([hi[0], hi[1]])),
        (2 * w + h, np.array([lo[0], hi[1]])),
    ]
    span = (p_to - p_from) % per if ccw else (p_from - p_to) % per
    out = []
    for c, pt in corners:
        off = (c - p_from) % per if ccw else (p_from - c) % per
        if 0 < off < span:
            out.append((off, pt))
    return [pt for _, pt in sorted(out, key=lambda t: t[0])]


def _on_box(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    scale = 1e-8 * (1.0 + float(np.abs(hi - lo).max()))
    return bool(np.min(np.concatenate((np.abs(p - lo), np.abs(p - hi)))) <= scale)


def band_polygon(
    low: TraceResult, high: TraceResult, lo: np.ndarray, hi: np.ndarray
) -> tuple[list[np.ndarray] | None, float | None]:
    """Polygon of the region between two traced levels of a 2-D model (see :class:`BandRegion`).

    Parameters
    ----------
    low, high : TraceResult
        The extreme traced levels.
    lo, hi : numpy.ndarray
        Box corners.

    Returns
    -------
    rings : list of numpy.ndarray or None
        ``[outer, inner]`` for nested closed levels; one stitched ring for two open levels
        whose ends lie on the box; None otherwise.
    area : float or None
        The enclosed area.
    """
    from matplotlib.path import Path as MplPath

    pa = low.points.reshape(len(low), -1).cpu().numpy()
    pb = high.points.reshape(len(high), -1).cpu().numpy()
    if low.closed and high.closed:
        area_a, area_b = abs(_shoelace(pa)), abs(_shoelace(pb))
        outer, inner = (pa, pb) if area_a >= area_b else (pb, pa)
        if MplPath(outer).contains_point(inner[0]):
            return [outer, inner], abs(area_a - area_b)
        return None, None
    if low.closed or high.closed:
        return None, None
    ends = [pa[0], pa[-1], pb[0], pb[-1]]
    if not all(_on_box(e, lo, hi) for e in ends):
        return None, None
    per = 2 * float((hi[0] - lo[0]) + (hi[1] - lo[1]))
    pa0, pa1, pb0, pb1 = (_perimeter(e, lo, hi) for e in ends)
    for ccw in (True, False):

        def dist(p_from: float, p_to: float, ccw: bool = ccw) -> float:
            return (p_to - p_from) % per if ccw else (p_from - p_to) % per

        cands = {"a0": dist(pa1, pa0), "b0": dist(pa1, pb0), "b1": dist(pa1, pb1)}
        first = min(cands, key=lambda k: cands[k])
        if first == "a0":
            continue
        seq, p_first, p_other = (pb, pb0, pb1) if first == "b0" else (pb[::-1], pb1, pb0)
        if dist(p_other, pa0) > dist(p_other, pa1):
            continue
        parts = [
            pa,
            *_box_arc(pa1, p_first, ccw, lo, hi),
            seq,
            *_box_arc(p_other, pa0, ccw, lo, hi),
        ]
        ring = np.vstack([np.atleast_2d(p) for p in parts])
        return [ring], abs(_shoelace(ring))
    return None, None


def _segment_distance(points: np.ndarray, segments: list[np.ndarray]) -> np.ndarray:
    """Distance from each point to the nearest segment of a set of polylines."""
    if not segments or points.size == 0:
        return np.full(points.shape[0], np.inf)
    a = np.vstack([s[:-1] for s in segments if len(s) > 1])
    b = np.vstack([s[1:] for s in segments if len(s) > 1])
    ab = b - a
    denom = np.maximum((ab**2).sum(-1), 1e-300)
    out = np.empty(points.shape[0])
    for i in range(0, points.shape[0], 256):
        p = points[i : i + 256]
        ap = p[:, None, :] - a[None]
        u = np.clip((ap * ab[None]).sum(-1) / denom[None], 0.0, 1.0)
        d = ap - u[..., None] * ab[None]
        out[i : i + 256] = np.sqrt((d**2).sum(-1)).min(axis=1)
    return out


def grid_contours(
    xs: np.ndarray, ys: np.ndarray, values: np.ndarray, level: float
) -> list[np.ndarray]:
    """The network's own level set ``N = level`` on a grid (marching squares), as polylines.

    Parameters
    ----------
    xs, ys : numpy.ndarray
        Grid axes.
    values : numpy.ndarray
        ``(len(ys), len(xs))`` values.
    level : float
        The level.

    Returns
    -------
    list of numpy.ndarray
        Polylines ``(P, 2)`` in input coordinates.
    """
    import contourpy

    gen = contourpy.contour_generator(x=xs, y=ys, z=values, name="serial")
    return [np.asarray(line, dtype=np.float64) for line in gen.lines(level) if len(line) > 1]


def grid_values(
    fn: ModelFunction, lo: np.ndarray, hi: np.ndarray, resolution: int, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (first) output of a 2-input model on a ``resolution x resolution`` grid, in float64.

    Parameters
    ----------
    fn : ModelFunction
        The model (any dtype; evaluated in float64 with its output map).
    lo, hi : numpy.ndarray
        Box corners.
    resolution : int
        Points per axis.
    chunk : int
        Points per batch.

    Returns
    -------
    xs, ys, values : numpy.ndarray
        Axes ``(R,)`` and values ``(R, R)``, ``values[i, j]`` at ``(xs[j], ys[i])``.
    """
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution, dtype=torch.float64)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=1).to(fn.device)
    vals = torch.cat([fn.values(pts[i : i + chunk])[:, 0] for i in range(0, len(pts), chunk)])
    return xs.numpy(), ys.numpy(), vals.reshape(resolution, resolution).cpu().numpy()


def band_region(
    model: Any,
    output: OutputMap | None,
    box: tuple[Tensor, Tensor],
    low: float,
    high: float,
    traces: list[TraceResult],
    levels: list[float],
    *,
    requested: tuple[float, float] | None = None,
    resolution: int = 400,
) -> BandRegion:
    """Measure the band ``low <= N <= high`` reached by the traced levels (2-D inputs).

    Parameters
    ----------
    model : ModelFunction
        The network as a model function (its output map applied).
    output : None
        Unused (the model function carries its output map).
    box : tuple of torch.Tensor
        ``(lo, hi)``.
    low, high : float
        The band's output range.
    traces : list of TraceResult
        The traced levels (their points pick the connected components).
    levels : list of float
        The output of each trace (the lowest and highest bound the polygon).
    requested : tuple of float, optional
        The interval whose own contours the extreme levels are compared with (default
        ``(low, high)``).
    resolution : int
        Grid points per axis.

    Returns
    -------
    BandRegion
        Masks, areas, polygon, boundary distances.
    """
    from scipy import ndimage

    lo_t, hi_t = box
    lo, hi = lo_t.cpu().numpy().astype(np.float64), hi_t.cpu().numpy().astype(np.float64)
    xs, ys, z = grid_values(model, lo, hi, resolution)
    band = (z >= low) & (z <= high)
    labels, _ = ndimage.label(band, structure=np.ones((3, 3), dtype=bool))
    hx = (hi[0] - lo[0]) / (resolution - 1)
    hy = (hi[1] - lo[1]) / (resolution - 1)
    touched: set[int] = set()
    for tr in traces:
        p = tr.points.reshape(len(tr), -1).cpu().numpy()
        j = np.clip(np.rint((p[:, 0] - lo[0]) / hx).astype(int), 0, resolution - 1)
        i = np.clip(np.rint((p[:, 1] - lo[1]) / hy).astype(int), 0, resolution - 1)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                ii = np.clip(i + di, 0, resolution - 1)
                jj = np.clip(j + dj, 0, resolution - 1)
                touched.update(int(v) for v in np.unique(labels[ii, jj]) if v)
    mask = np.isin(labels, sorted(touched)) if touched else np.zeros_like(band)
    w = np.ones(resolution)
    w[0] = w[-1] = 0.5
    weights = np.outer(w, w) * hx * hy
    area = float((weights * mask).sum())
    band_area = float((weights * band).sum())
    polygon, polygon_area = None, None
    distances: dict[str, dict[str, float]] = {}
    if traces:
        k_lo = int(np.argmin(levels))
        k_hi = int(np.argmax(levels))
        if k_lo != k_hi:
            polygon, polygon_area = band_polygon(traces[k_lo], traces[k_hi], lo, hi)
        req = requested if requested is not None else (low, high)
        for name, k, lev in (("low", k_lo, req[0]), ("high", k_hi, req[1])):
            pts = traces[k].points.reshape(len(traces[k]), -1).cpu().numpy()
            d = _segment_distance(pts, grid_contours(xs, ys, z, lev))
            distances[name] = {"level": float(lev), "max": float(d.max()), "mean": float(d.mean())}
    return BandRegion(
        xs=xs,
        ys=ys,
        values=z,
        mask=mask,
        band_mask=band,
        low=low,
        high=high,
        area=area,
        band_area=band_area,
        polygon=polygon,
        polygon_area=polygon_area,
        boundary_distance=distances,
        resolution=resolution,
    )
