"""``fiberscope.sample_class``: inputs the network cannot tell apart, spread along a class.

The class is traced on the engine (the ``"tangent"`` policy, as :func:`fiberscope.trace`);
then ``n`` points are placed at equal arclength along the traced polyline (an even spread, not
the clustered points of a random walk, which would also cluster points where the class turns)
and each is projected back onto the class with the engine's corrector, all in one batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..engine import Session, Snapshot, Stats, correct
from ..errors import FiberscopeError, InputError, Interrupted
from ..outputs import OutputMap, describe_output
from ._progress import progress_callback
from .problem import (
    Problem,
    check_budget,
    check_positive,
    check_regular,
    check_step,
    level_tolerance,
    one_dimensional_classes,
    prepare,
)
from .results import SampleResult, TraceResult
from .trace import trace_phases, trace_results


def resample_polyline(points: Tensor, n: int, closed: bool) -> tuple[Tensor, Tensor, float]:
    """``n`` points at equal arclength along a polyline.

    Parameters
    ----------
    points : torch.Tensor
        ``(K, d)`` vertices in order.
    n : int
        Number of points.
    closed : bool
        The polyline is a loop (the last vertex connects to the first); the points then go
        once around it, the first vertex first.

    Returns
    -------
    samples : torch.Tensor
        ``(n, d)``.
    positions : torch.Tensor
        ``(n,)`` arclength of each sample.
    length : float
        Total length.
    """
    pts = torch.cat((points, points[:1])) if closed else points
    seg = torch.linalg.vector_norm(pts[1:] - pts[:-1], dim=1)
    cum = torch.cat((seg.new_zeros(1), torch.cumsum(seg, 0)))
    length = float(cum[-1])
    if closed:
        pos = torch.arange(n, dtype=pts.dtype, device=pts.device) * (length / n)
    else:
        pos = torch.linspace(0.0, length, n, dtype=pts.dtype, device=pts.device)
    idx = torch.clamp(torch.searchsorted(cum, pos, right=True) - 1, 0, len(seg) - 1)
    u = ((pos - cum[idx]) / torch.clamp(seg[idx], min=1e-300)).clamp(0.0, 1.0).unsqueeze(1)
    samples = pts[idx] + u * (pts[idx + 1] - pts[idx])
    if not closed:
        samples[-1] = pts[-1]
    samples[0] = pts[0]
    return samples, pos, length


def sample_class(
    model: Callable[..., Any],
    x0: Any,
    n: int = 100,
    *,
    step: float = 0.01,
    max_steps: int = 10_000,
    bounds: Any = None,
    tol: float = 1e-12,
    output: OutputMap | str | None = None,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    dtype: Any = None,
    batched: bool | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> SampleResult | list[SampleResult]:
    """``n`` inputs that the model cannot tell from ``x0``, spread evenly along its class.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network, ``R^n -> R^(n-1)`` (after the output map).
    x0 : tensor or array-like
        Start point; its class is sampled. A batch of starts (leading dimension; see
        ``batched``) is traced together, as members of one engine run, and returns a list.
    n : int
        Number of samples (at least 2).
    step : float
        Largest step of the trace (smaller steps give a more accurate arclength).
    max_steps : int
        Accepted steps per trace branch.
    bounds : tuple, optional
        Box; open classes are sampled from one box exit to the other.
    tol : float
        Residual tolerance: every sample has ``max |N(x) - N(x0)| <= tol``.
    output : callable or str, optional
        Output map.
    max_angle, sing_tol : float
        As for :func:`fiberscope.trace`.
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
        Continue an interrupted run exactly.

    Returns
    -------
    SampleResult or list of SampleResult
        The samples, their outputs and arclength positions, the trace; a list for a batch of
        starts (a class whose trace stops early, at the box or a singular point, is sampled
        along what was traced while the others go on).

    Raises
    ------
    InputError
        Bad options, or more samples than memory allows.
    ModelError
        The classes are not curves.
    SingularPointError
        The start is singular.
    Interrupted
        Ctrl-C or ``stop``.

    Examples
    --------
    >>> import fiberscope as fs
    >>> net = fs.load_model("surface_1")
    >>> s = fs.sample_class(net, [0.25, 0.25], n=50)
    >>> len(s), s.closed, s.residual < 1e-9
    (50, True, True)
    """
    n = check_positive(n, "n", integer=True)
    if n < 2:
        raise InputError(f"n must be at least 2, got {n}")
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    problem = prepare(
        model,
        x0,
        bounds=bounds,
        output=output,
        require_m=one_dimensional_classes,
        batched=batched,
        dtype=dtype,
    )
    step = check_step(step, problem)
    check_budget(
        problem.size * n * (problem.n + problem.m) * 8 * 6,
        f"{n} samples" + (f" for each of {problem.size} starts" if problem.batched else ""),
        "ask for fewer samples (-n)" + (" or give fewer starts" if problem.batched else ""),
    )
    from ..geometry.linalg import oriented_tangents

    _, s_min, s_max = oriented_tangents(problem.js)
    for b in range(problem.size):
        check_regular(problem, float(s_min[b]), float(s_max[b]), sing_tol)
    options = {
        "n": n,
        "step": step,
        "max_steps": max_steps,
        "bounds": problem.box_list(),
        "tol": tol,
        "output": describe_output(problem.fn.output_map),
        "max_angle": max_angle,
        "sing_tol": sing_tol,
        "x0": problem.starts_list(),
        "input_shape": list(problem.fn.input_shape),
    }
    stats = Stats()
    callback, close = progress_callback(progress, "sample")
    session = Session(
        "sample_class",
        options,
        problem.ys,
        stats=stats,
        total=2 * max_steps * problem.size,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    try:
        try:
            phases = trace_phases(
                problem,
                session,
                method="corrected",
                step=step,
                max_steps=max_steps,
                tol=tol,
                max_angle=max_angle,
                sing_tol=sing_tol,
            )
        except KeyboardInterrupt:
            snapshot = session.snapshot()  # before the partial samples are projected
            partial = _partial_samples(problem, session, n, options)
            raise Interrupted(partial, snapshot) from None
    finally:
        close()
    trace_opts = {k: v for k, v in options.items() if k != "n"} | {
        "method": "corrected",
        "direction": "both",
    }
    got = trace_results(problem, phases, "corrected", trace_opts, stats)
    out = _samples(problem, got, n, options, stats)
    session.finish()
    return out if problem.batched else out[0]


def _partial_samples(
    problem: Problem, session: Session, n: int, options: dict[str, Any]
) -> SampleResult | list[SampleResult] | None:
    """Samples along the part of each class traced before an interruption (``complete=False``).

    The trace is the traced part (each branch a prefix of the uninterrupted run's branch);
    the ``n`` samples are spread evenly along it and projected onto the class. None when
    nothing can be assembled (a second Ctrl-C while the samples are being projected).
    """
    stats = dataclasses.replace(session.stats)  # the projections count in the partial only
    trace_opts = {k: v for k, v in options.items() if k != "n"} | {
        "method": "corrected",
        "direction": "both",
    }
    try:
        got = trace_results(
            problem, dict(session.states()), "corrected", trace_opts, stats, complete=False
        )
        out = _samples(problem, got, n, options, stats, complete=False)
    except (KeyboardInterrupt, FiberscopeError):
        return None
    return out if problem.batched else out[0]


def _samples(
    problem: Problem,
    got: TraceResult | list[TraceResult],
    n: int,
    options: dict[str, Any],
    stats: Stats,
    *,
    complete: bool = True,
) -> list[SampleResult]:
    """``n`` samples spread along each start's trace and projected back onto its class.

    A partial trace (``complete=False``) is sampled along what was traced; one that is still
    a single point gives ``n`` copies of it.
    """
    tol = float(options["tol"])
    traces = got if isinstance(got, list) else [got]
    which = (lambda b: f" (start {b} of the batch)") if problem.batched else (lambda b: "")
    spread: list[tuple[Tensor, Tensor, float]] = []
    for b, tr in enumerate(traces):
        flat = tr.points.reshape(len(tr), -1).to(torch.float64)
        if not complete and len(tr) < 2:
            spread.append((flat[:1].repeat(n, 1), flat.new_zeros(n), 0.0))
            continue
        if len(tr) < 2:
            raise InputError(
                f"the traced class{which(b)} has a single point; nothing to sample (check the box)"
            )
        if tr.closed:
            # Start the loop at the start point: roll the backward branch behind it.
            flat = torch.roll(flat, -tr.start_index, dims=0)
        samples, pos, length = resample_polyline(flat, n, tr.closed)
        if length == 0.0:
            raise InputError(f"the traced class{which(b)} has zero length; nothing to sample")
        spread.append((samples, pos, length))
    # every start's samples are projected back onto its class in one batch
    everything = torch.cat([sp[0] for sp in spread])
    values = problem.fn.values(everything)
    stats.value_evals += everything.shape[0]
    rows: list[int] = []
    owner: list[int] = []
    for b, tr in enumerate(traces):
        keep = [0] if tr.closed else [0, n - 1]
        inner = [i for i in range(n) if i not in keep]
        rows += [b * n + i for i in inner]
        owner += [b] * len(inner)
    if rows:
        sel = torch.tensor(rows, device=everything.device)
        goal = problem.ys[torch.tensor(owner, device=problem.ys.device)]
        tol_v = level_tolerance(tol, goal)
        cor = correct(problem.fn, everything[sel], goal, tol_v, max_iter=30, stats=stats)
        bad = (~cor.ok).nonzero().reshape(-1)
        if bad.numel():
            r = rows[int(bad[0])]
            raise InputError(
                f"could not project sample {r % n}{which(r // n)} back onto the class (near a "
                "singular point?); use a smaller step"
            )
        everything[sel] = cor.x
        values[sel] = cor.y
    out = []
    for b, (tr, (_, pos, length)) in enumerate(zip(traces, spread, strict=True)):
        opts = dict(options)
        if problem.batched:
            opts["x0"] = problem.xs[b].tolist()
            opts["batch_index"] = b
        out.append(
            SampleResult(
                points=problem.unflatten(everything[b * n : (b + 1) * n]),
                outputs=values[b * n : (b + 1) * n].reshape(n, -1),
                arclength=pos,
                y0=problem.ys[b],
                closed=tr.closed,
                length=length,
                spacing=length / n if tr.closed else length / (n - 1),
                trace=tr,
                options=opts,
                stats=stats,
                complete=complete and tr.complete,
            )
        )
    return out
