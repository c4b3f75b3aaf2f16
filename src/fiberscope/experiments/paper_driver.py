"""The authors' preimage-of-an-interval driver (paper II, ``main.cpp``), with its SiMEC-1D runs
advanced in lockstep.

The driver: from ``x0``, ``nst`` times, trace the current level both ways with stop-at-boundary
SiMEC-1D, then SiMExp-1D with ``epsilon / nst`` to the next level; done twice, with SiMExp's
direction flag inverted (``true``) first and not inverted (``false``) second. The SiMEC-1D runs
never feed back into the SiMExp chain (the original restores the level's start point after
each run), so the chain can be walked first and the ``2 * 2 * nst`` SiMEC-1D runs advanced
together, one batched Jacobian and one batched 2x2 eigen-decomposition per step. Every run
follows exactly the arithmetic of :class:`fiberscope.algorithms.paper.SimecTracer` (lowest
eigenvector of ``g = J^T J``, sign flip against the previous direction, ``x +- delta v``,
clamp, record the clamped point and stop at the box); only the Jacobians are evaluated for a
batch instead of one point at a time, which changes the last bits of a few of them. The first
direction of each run, whose sign is whatever the authors' eigen-solver returns, is taken
exactly as the one-at-a-time tracer takes it (its emulation of Eigen's solver); the tests
compare both drivers. For a 2-input scalar network, which is every experiment of paper II.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..algorithms import paper
from ..algorithms.paper import eigenvector as paper_eigenvector
from ..algorithms.result import TraceStats
from ..geometry.jacobian import as_model_function
from ..geometry.metric import metric_from_jacobian

__all__ = ["PaperInterval", "SimecRun", "batched_value_and_grad", "paper_interval", "simec_batch"]


@dataclass
class SimecRun:
    """One SiMEC-1D run (the start not recorded, as in the original).

    Attributes
    ----------
    points : numpy.ndarray
        ``(k, 2)`` recorded points.
    outputs : numpy.ndarray
        ``(k,)`` outputs there.
    reason : str
        ``"boundary"`` (stopped at the box) or ``"max_steps"``.
    """

    points: np.ndarray
    outputs: np.ndarray
    reason: str


def batched_value_and_grad(model: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """Outputs and gradients of a scalar-output model at a batch of points.

    The model must treat batch rows independently (any MLP in eval mode does).

    Parameters
    ----------
    model : callable
        Maps ``(B, n)`` float64 to ``(B, 1)`` or ``(B,)``.
    x : torch.Tensor
        ``(B, n)`` points.

    Returns
    -------
    y, g : torch.Tensor
        ``(B,)`` outputs and ``(B, n)`` gradients (detached).
    """
    xr = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = model(xr).reshape(x.shape[0], -1)[:, 0]
        (g,) = torch.autograd.grad(y.sum(), xr)
    return y.detach(), g.detach()


def simec_batch(
    model: Callable[[Tensor], Tensor],
    starts: Tensor,
    *,
    step: float,
    n_steps: int,
    invert: Sequence[bool],
    box: tuple[Tensor, Tensor] | None = None,
    variant: str | None = None,
) -> tuple[list[SimecRun], int]:
    """Many SiMEC-1D runs of a scalar 2-D network at once (identity output metric).

    Parameters
    ----------
    model : callable
        Scalar network, batch of points to outputs.
    starts : torch.Tensor
        ``(B, 2)`` start points (not recorded).
    step : float
        ``delta``.
    n_steps : int
        Iterations per run.
    invert : sequence of bool
        Per run: move ``x - delta v`` instead of ``x + delta v``.
    box : tuple of torch.Tensor, optional
        ``(lo, hi)`` for the bounded variants.
    variant : {None, "clamp", "stop"}
        Unbounded, clamp-and-continue, or clamp-record-and-stop.

    Returns
    -------
    runs : list of SimecRun
        One per start.
    steps : int
        Steps taken by all runs together.
    """
    x = starts.detach().to(torch.float64).clone()
    b = x.shape[0]
    sgn = torch.tensor([-1.0 if inv else 1.0 for inv in invert], dtype=torch.float64)
    if sgn.numel() != b:
        raise ValueError("one invert flag per start")
    _, grad = batched_value_and_grad(model, x)
    # The first direction keeps the sign the authors' eigen-solver (Eigen) gives at the start:
    # take it exactly as the one-at-a-time tracer does (its Jacobian and its emulation of
    # Eigen, see docs/paper-mode-spec.md). Later steps are signed against the previous
    # direction, so LAPACK's batched eigh gives the same vectors up to rounding.
    fn = as_model_function(model, x[0])
    first = []
    for i in range(b):
        _, jac = fn.value_and_jacobian(x[i].clone())
        first.append(paper_eigenvector(metric_from_jacobian(jac), lowest=True))
    v_first = torch.stack(first) if b else torch.zeros_like(x)
    v_prev = torch.zeros_like(x)
    active = torch.ones(b, dtype=torch.bool)
    end = torch.full((b,), n_steps, dtype=torch.int64)
    reason = ["max_steps"] * b
    pts: list[Tensor] = []
    outs: list[Tensor] = []
    lo, hi = box if box is not None else (None, None)
    for k in range(n_steps):
        if not bool(active.any()):
            break
        if k == 0:
            v = v_first
        else:
            g = grad[:, :, None] * grad[:, None, :]  # J^T J for one output
            v = torch.linalg.eigh(g)[1][:, :, 0]
        flip = (v * v_prev).sum(-1) < 0
        v = torch.where(flip[:, None], -v, v)
        xn = x + (sgn * step)[:, None] * v
        stop = torch.zeros(b, dtype=torch.bool)
        if lo is not None and variant in ("clamp", "stop"):
            if variant == "stop":
                stop = ((xn < lo) | (xn > hi)).any(-1)
            xn = torch.minimum(torch.maximum(xn, lo), hi)
        x = torch.where(active[:, None], xn, x)
        v_prev = torch.where(active[:, None], v, v_prev)
        y, grad = batched_value_and_grad(model, x)
        pts.append(x)
        outs.append(y)
        stopped = active & stop
        for i in stopped.nonzero().reshape(-1).tolist():
            end[i] = k + 1
            reason[i] = "boundary"
        active = active & ~stop
    if pts:
        all_pts = torch.stack(pts).numpy()
        all_out = torch.stack(outs).numpy()
    else:
        all_pts = np.zeros((0, b, 2))
        all_out = np.zeros((0, b))
    taken = min(n_steps, all_pts.shape[0])
    runs = []
    total = 0
    for i in range(b):
        k = min(int(end[i]), taken)
        total += k
        runs.append(SimecRun(all_pts[:k, i].copy(), all_out[:k, i].copy(), reason[i]))
    return runs, total


@dataclass
class PaperLevel:
    """One level of the authors' driver: its start and the two SiMEC-1D runs from it.

    Attributes
    ----------
    sweep : int
        0 for the SiMExp sweep with the flag inverted (run first), 1 for the other.
    start : numpy.ndarray
        ``(2,)`` where the level was entered.
    y0 : float
        Output there.
    backward, forward : SimecRun
        The runs with ``invert = true`` (``x - delta v``) and ``invert = false``.
    """

    sweep: int
    start: np.ndarray
    y0: float
    backward: SimecRun
    forward: SimecRun

    def curve(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The level as one polyline: backward run reversed, start, forward run.

        Returns
        -------
        points, outputs, start_index
            ``(K, 2)``, ``(K,)`` and the row of the start.
        """
        pts = np.vstack((self.backward.points[::-1], self.start[None], self.forward.points))
        outs = np.concatenate((self.backward.outputs[::-1], [self.y0], self.forward.outputs))
        return pts, outs, self.backward.points.shape[0]


@dataclass
class PaperInterval:
    """Result of the authors' interval driver.

    Attributes
    ----------
    levels : list of PaperLevel
        Every traced level, in the original's order (sweep 0 then sweep 1).
    paths : list of numpy.ndarray
        The SiMExp points of each sweep (``(P, 2)`` each, the start not included).
    path_outputs : list of numpy.ndarray
        Outputs along ``paths``.
    finals : list of numpy.ndarray
        Where each sweep ended (the last level reached, never traced).
    final_outputs : list of float
        Outputs there.
    steps : int
        SiMEC-1D plus SiMExp-1D steps.
    jacobian_evals : int
        Jacobian (gradient) evaluations.
    wall_time : float
        Seconds.
    options : dict
        The settings used.
    """

    levels: list[PaperLevel]
    paths: list[np.ndarray]
    path_outputs: list[np.ndarray]
    finals: list[np.ndarray]
    final_outputs: list[float]
    steps: int
    jacobian_evals: int
    wall_time: float
    options: dict[str, Any] = field(default_factory=dict)


def paper_interval(
    model: Any,
    x0: Sequence[float],
    *,
    epsilon: float,
    step: float,
    max_steps: int,
    exp_step: float,
    box: tuple[Sequence[float], Sequence[float]],
    nst: int = 100,
    exp_max_steps: int = 10_000,
) -> PaperInterval:
    """The authors' driver for the preimage of ``[N(x0) - epsilon, N(x0) + epsilon]``.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Scalar network of two inputs.
    x0 : sequence of float
        Start.
    epsilon : float
        SiMExp-1D's total output change per sweep (split into ``nst`` sub-steps).
    step : float
        SiMEC-1D ``delta``.
    max_steps : int
        SiMEC-1D iterations per run.
    exp_step : float
        SiMExp-1D ``delta``.
    box : tuple
        ``(h_inf, h_sup)`` of the stop-at-boundary variant.
    nst : int
        Sub-levels per sweep (the original's 100).
    exp_max_steps : int
        SiMExp-1D's cap per sub-step (the original's 10,000).

    Returns
    -------
    PaperInterval
        Levels, SiMExp paths, counters.
    """
    t0 = time.perf_counter()
    start = torch.as_tensor(x0, dtype=torch.float64).reshape(2)
    fn = as_model_function(model, start)
    lo = torch.as_tensor(box[0], dtype=torch.float64).reshape(2)
    hi = torch.as_tensor(box[1], dtype=torch.float64).reshape(2)
    stats = TraceStats()
    starts: list[Tensor] = []
    sweeps: list[int] = []
    paths: list[np.ndarray] = []
    path_outs: list[np.ndarray] = []
    finals: list[np.ndarray] = []
    final_outs: list[float] = []
    for sweep, invert in enumerate((True, False)):
        x = start.clone()
        pts: list[Tensor] = []
        outs: list[Tensor] = []
        for _ in range(nst):
            starts.append(x)
            sweeps.append(sweep)
            run = paper.simexp_1d(
                fn,
                x,
                step=exp_step,
                epsilon=epsilon / nst,
                max_steps=exp_max_steps,
                invert=invert,
                stats=stats,
            )
            pts.extend(run.points)
            outs.extend(run.outputs)
            if run.points:
                x = run.points[-1]
        paths.append(torch.stack(pts).numpy() if pts else np.zeros((0, 2)))
        path_outs.append(torch.cat(outs).numpy() if outs else np.zeros(0))
        finals.append(x.numpy().copy())
        final_outs.append(float(fn.value(x)[0]))
    level_starts = torch.stack(starts)
    both = torch.cat((level_starts, level_starts))
    inverts = [True] * len(starts) + [False] * len(starts)
    runs, simec_steps = simec_batch(
        model, both, step=step, n_steps=max_steps, invert=inverts, box=(lo, hi), variant="stop"
    )
    y_starts, _ = batched_value_and_grad(model, level_starts)
    n = len(starts)
    levels = [
        PaperLevel(
            sweep=sweeps[i],
            start=level_starts[i].numpy().copy(),
            y0=float(y_starts[i]),
            backward=runs[i],
            forward=runs[n + i],
        )
        for i in range(n)
    ]
    steps = stats.steps + simec_steps
    evals = stats.jacobian_evals + simec_steps + 2 * n
    return PaperInterval(
        levels=levels,
        paths=paths,
        path_outputs=path_outs,
        finals=finals,
        final_outputs=final_outs,
        steps=steps,
        jacobian_evals=evals,
        wall_time=time.perf_counter() - t0,
        options={
            "epsilon": epsilon,
            "step": step,
            "max_steps": max_steps,
            "exp_step": exp_step,
            "nst": nst,
            "exp_max_steps": exp_max_steps,
            "box": [lo.tolist(), hi.tolist()],
        },
    )
