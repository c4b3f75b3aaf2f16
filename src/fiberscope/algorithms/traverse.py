"""``fiberscope.traverse``: walk on the class of a start toward a target input.

The exact version of level-set traversal (Balasubramanian et al., NeurIPS 2023): instead of
holding one confidence roughly fixed, every output of the network is held to the tolerance
while the walk moves toward the target; it ends at the point of the class of ``x0`` (inside the
box) nearest the target, a local minimum of the distance on the class (the engine's
``"closest"`` policy with the box faces as constraints).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..engine import Context, Members, RunState, Session, Snapshot, Stats, StepControl
from ..engine.policies import Closest
from ..engine.policies.walk import project_tangent
from ..errors import InputError, Interrupted
from ..outputs import OutputMap, describe_output
from ._progress import progress_callback
from .problem import (
    Problem,
    as_start_point,
    check_positive,
    check_step,
    level_tolerance,
    prepare,
)
from .results import TraverseResult
from .walk import _require_m_lt_n


def traverse(
    model: Callable[..., Any],
    x0: Any,
    target: Any,
    *,
    step: float = 0.05,
    max_steps: int = 10_000,
    bounds: Any = None,
    output: OutputMap | str | None = None,
    tol: float = 1e-12,
    rtol: float = 1e-8,
    dtype: Any = None,
    batched: bool | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> TraverseResult | list[TraverseResult]:
    """Walk from ``x0`` toward ``target`` while the network's outputs stay exactly ``N(x0)``.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network ``R^n -> R^m`` with ``m < n`` (after the output map).
    x0 : tensor or array-like
        Start, in the model's input shape (an image, ...), or a batch of starts (leading
        dimension; see ``batched``), walked together as members of one engine run.
    target : tensor or array-like
        The input to approach (same shape; e.g. an image of another class). With a batch of
        starts: one target for all of them, or one per start (the same leading dimension).
    step : float
        Largest step (input units).
    max_steps : int
        Accepted steps.
    bounds : tuple, optional
        Box ``(lo, hi)`` (e.g. ``(0, 1)`` for pixels): the walk stays in it, its faces
        becoming constraints.
    output : callable or str, optional
        Output map (which outputs are held; default: all).
    tol : float
        Residual tolerance ``max |N(x) - N(x0)|`` of every point.
    rtol : float
        The walk stops when the part of ``target - x`` tangent to the class is below
        ``rtol * |target - x|`` (a first-order minimum of the distance).
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
    TraverseResult or list of TraverseResult
        The path, the distance to the target along it, where and why it stopped; a list for
        a batch of starts (each member stops on its own, the others go on).

    Raises
    ------
    InputError
        A target of another shape or with NaN, a start outside the box, bad options.
    ModelError
        ``m >= n``, a model that raises or returns NaN.
    Interrupted
        Ctrl-C or ``stop``.

    Examples
    --------
    >>> import torch, fiberscope as fs
    >>> sphere = lambda x: (x**2).sum(-1, keepdim=True)
    >>> res = fs.traverse(sphere, [1.0, 0.0, 0.0], [0.0, 3.0, 0.0], step=0.2)
    >>> round(res.end_distance, 6), res.stop_reason
    (2.0, 'minimum')
    """
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    rtol = check_positive(rtol, "rtol")
    problem = prepare(
        model,
        x0,
        bounds=bounds,
        output=output,
        require_m=_require_m_lt_n,
        batched=batched,
        dtype=dtype,
    )
    step = check_step(step, problem)
    tflat = _targets(target, problem)
    options: dict[str, Any] = {
        "step": step,
        "max_steps": max_steps,
        "bounds": problem.box_list(),
        "output": describe_output(problem.fn.output_map),
        "tol": tol,
        "rtol": rtol,
        "dtype": str(problem.fn.jac_dtype).removeprefix("torch."),
        "x0": problem.x0.tolist(),
        "target": tflat.tolist() if problem.batched else tflat[0].tolist(),
        "input_shape": list(problem.fn.input_shape),
    }
    stats = Stats()
    callback, close = progress_callback(progress, "traverse")
    session = Session(
        "traverse",
        options,
        problem.ys,
        stats=stats,
        total=max_steps * problem.size,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    tol_all = level_tolerance(tol, problem.ys)
    policy = Closest(rtol=rtol, constrain_box=True)

    def fresh() -> Members:
        mem = Members.start(problem.xs, problem.ys, problem.js, problem.ys, step, tol_all)
        Closest.init(mem, tflat)
        return mem

    ctx = Context(fn=problem.fn, box=problem.box, stats=stats)
    try:
        try:
            state = session.phase(
                "traverse", ctx, policy, StepControl(step=step, max_steps=max_steps), fresh
            )
        except KeyboardInterrupt:
            states = session.states()
            partial: Any = None
            if states:
                partial = _results(problem, states[-1][1], tflat, options, stats)
                for r in partial:
                    r.complete = False
                if not problem.batched:
                    partial = partial[0]
            raise Interrupted(partial, session.snapshot()) from None
    finally:
        close()
    session.finish()
    out = _results(problem, state, tflat, options, stats)
    return out if problem.batched else out[0]


def _targets(target: Any, problem: Problem) -> Tensor:
    """The target(s) as flat ``(B, n)`` rows, one per start (a single target is shared)."""
    tgt = as_start_point(target, name="target")
    shape = problem.fn.input_shape
    if problem.batched and tuple(tgt.shape) == (problem.size, *shape):
        return tgt.reshape(problem.size, -1).to(problem.xs.device)
    if tuple(tgt.shape) != shape:
        per_start = f" or {(problem.size, *shape)} (one per start)" if problem.batched else ""
        raise InputError(
            f"the target has shape {tuple(tgt.shape)} but the start has "
            f"{shape}; give a target of the same shape{per_start}"
        )
    return tgt.reshape(1, -1).to(problem.xs.device).expand(problem.size, -1).clone()


def _results(
    problem: Problem,
    state: RunState,
    tflat: Tensor,
    options: dict[str, Any],
    stats: Stats,
) -> list[TraverseResult]:
    """One result per start."""
    out = []
    for i in range(problem.size):
        res = _result(problem, state, i, tflat[i : i + 1], options, stats)
        if problem.batched:
            res.options = dict(options) | {
                "x0": problem.xs[i].tolist(),
                "target": tflat[i].tolist(),
                "batch_index": i,
            }
        out.append(res)
    return out


def _result(
    problem: Problem,
    state: RunState,
    i: int,
    tflat: Tensor,
    options: dict[str, Any],
    stats: Stats,
) -> TraverseResult:
    mem, rec = state.mem, state.rec
    rows = rec.rows(i, "x")
    outs = rec.rows(i, "y")
    x0, y0 = problem.xs[i : i + 1], problem.ys[i : i + 1]
    pts = x0 if rows is None else torch.cat((x0, rows))
    ys = y0 if outs is None else torch.cat((y0, outs))
    dist = torch.linalg.vector_norm(pts - tflat, dim=-1)
    end = pts[-1:]
    _, jac = problem.fn.values_and_jacobians(end)
    want = tflat - end
    free = None
    if problem.box is not None:
        lo, hi = problem.box
        d = project_tangent(jac, want)
        slack = 1e-12 * (hi - lo)
        held = ((end <= lo + slack) & (d < 0)) | ((end >= hi - slack) & (d > 0))
        free = ~held
    d = project_tangent(jac, want, free=free)
    nw = float(torch.linalg.vector_norm(want))
    kkt = 0.0 if nw == 0.0 else float(torch.linalg.vector_norm(d)) / nw
    reason = mem.reasons[i] or "interrupted"
    return TraverseResult(
        points=problem.unflatten(pts),
        outputs=ys,
        distance=dist,
        target=tflat[0].reshape(problem.fn.input_shape),
        y0=problem.ys[i],
        target_output=problem.fn.value(tflat[0]),
        stop_reason=reason,
        message=mem.messages[i] or f"interrupted after {int(mem.k[i])} steps",
        kkt=kkt,
        residual=float((ys - problem.ys[i]).abs().max()),
        options=options,
        stats=stats,
    )
