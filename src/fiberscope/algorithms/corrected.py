"""Predictor-corrector continuation of a 1-D class (fiberscope's default method).

Each step predicts along the unit tangent of ``ker J`` (oriented so that ``det[J; t] > 0``),
then corrects back to the level ``N(x) = y0`` with Gauss-Newton,
``x <- x - J^T (J J^T)^{-1} (N(x) - y0)``, to a residual near machine precision. The Jacobian
of the last corrector iteration is the next predictor's, so a typical step costs two
Jacobian evaluations. The step adapts to the corrector's convergence and the turning of the
tangent, never above the user's ``step``. A branch stops when it closes a loop, leaves the box
(the last point is on the box face *and* on the class), reaches a singular point, or runs out
of steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..geometry.jacobian import ModelFunction
from ..geometry.kernel import oriented_tangent
from .problem import EPS, Problem
from .result import TraceStats


@dataclass(frozen=True)
class CorrectedOptions:
    """Options of the corrected tracer (validated by :func:`fiberscope.trace`).

    Attributes
    ----------
    step : float
        Largest step (the user's ``step``).
    max_steps : int
        Accepted steps per branch.
    tol : float
        Residual tolerance ``max |N(x) - y0|`` for the corrector.
    max_angle : float
        Largest turn of the tangent in one step (radians); larger turns halve the step.
    min_step : float
        Steps below this mean the curve cannot be followed: the branch stops as singular.
    sing_tol : float
        A point is singular when ``s_min(J) < sing_tol * s_max(J)`` or ``s_min(J)`` fell below
        ``sing_tol`` times its value at the start.
    max_newton : int
        Corrector iterations per step.
    """

    step: float
    max_steps: int
    tol: float = 1e-12
    max_angle: float = 0.3
    min_step: float = 0.0
    sing_tol: float = 1e-8
    max_newton: int = 8


@dataclass
class Branch:
    """Points of one branch (the start excluded) and why it stopped."""

    points: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    conditioning: list[float] = field(default_factory=list)
    reason: str = "max_steps"
    message: str = ""
    stop_point: Tensor | None = None


def _min_norm_correction(jac: Tensor, r: Tensor) -> Tensor:
    """Minimum-norm ``dx`` with ``J dx = r`` (``J`` has full row rank)."""
    if jac.shape[0] == 1:
        g = jac[0]
        return g * (r[0] / (g @ g))
    return jac.T @ torch.linalg.solve(jac @ jac.T, r)


def newton_to_level(
    fn: ModelFunction,
    x: Tensor,
    y0: Tensor,
    tol: float,
    max_iter: int,
    stats: TraceStats,
) -> tuple[Tensor, Tensor, Tensor, int] | None:
    """Gauss-Newton projection of ``x`` onto the level ``N = y0``.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x : torch.Tensor
        Flat start of the iteration.
    y0 : torch.Tensor
        Target output.
    tol : float
        Residual tolerance (max-abs).
    max_iter : int
        Iteration cap.
    stats : TraceStats
        Counters to update.

    Returns
    -------
    tuple or None
        ``(x, y, J, iterations)`` at the converged point, or None when the iteration did not
        converge (diverged, stagnated above the tolerance, or hit a rank-deficient J).
    """
    prev = math.inf
    for it in range(max_iter + 1):
        y, jac = fn.value_and_jacobian(x)
        stats.jacobian_evals += 1
        r = y - y0
        rn = float(r.abs().max())
        if not math.isfinite(rn):
            return None
        if rn <= tol or (it > 0 and rn >= prev and rn <= 100 * tol):
            return x, y, jac, it
        if it == max_iter or (it > 0 and rn >= prev):
            return None
        prev = rn
        stats.newton_iterations += 1
        try:
            dx = _min_norm_correction(jac, r)
        except RuntimeError:
            return None
        if not bool(torch.isfinite(dx).all()):
            return None
        x = x - dx
    return None


def chord_to_level(
    fn: ModelFunction,
    x: Tensor,
    y0: Tensor,
    tol: float,
    max_iter: int,
    stats: TraceStats,
) -> tuple[Tensor, Tensor, Tensor, int] | None:
    """Chord-Newton projection of a predicted point onto the level ``N = y0``.

    The Jacobian is evaluated once, at the predicted point; the corrections reuse it and each
    iteration costs only an output evaluation. Near the level (a good predictor) the chord
    iteration contracts by a factor of order the correction itself, so one output evaluation
    usually confirms the tolerance. When it contracts slowly the Jacobian is refreshed (full
    Newton). The Jacobian returned is the last one evaluated, at most one correction away from
    the converged point; it serves as the next predictor's.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x : torch.Tensor
        Predicted point (flat).
    y0 : torch.Tensor
        Target output.
    tol : float
        Residual tolerance (max-abs).
    max_iter : int
        Correction cap.
    stats : TraceStats
        Counters to update.

    Returns
    -------
    tuple or None
        ``(x, y, J, corrections)`` or None when the iteration does not converge.
    """
    y, jac = fn.value_and_jacobian(x)
    stats.jacobian_evals += 1
    r = y - y0
    prev = float(r.abs().max())
    if not math.isfinite(prev):
        return None
    if prev <= tol:
        return x, y, jac, 0
    for it in range(1, max_iter + 1):
        stats.newton_iterations += 1
        try:
            dx = _min_norm_correction(jac, r)
        except RuntimeError:
            return None
        x = x - dx
        y = fn.value(x)
        stats.value_evals += 1
        r = y - y0
        rn = float(r.abs().max())
        if not math.isfinite(rn) or rn >= prev:
            return None
        if rn <= tol:
            return x, y, jac, it
        if rn > 0.25 * prev:  # slow contraction: refresh the Jacobian (full Newton)
            _, jac = fn.value_and_jacobian(x)
            stats.jacobian_evals += 1
        prev = rn
    return None


def _outside(x: Tensor, box: tuple[Tensor, Tensor] | None) -> bool:
    if box is None:
        return False
    lo, hi = box
    return bool(((x < lo) | (x > hi)).any())


def locate_box_exit(
    fn: ModelFunction,
    x_in: Tensor,
    x_out: Tensor,
    y0: Tensor,
    box: tuple[Tensor, Tensor],
    tol: float,
    stats: TraceStats,
) -> tuple[Tensor, Tensor] | None:
    """Point where the class leaves the box: on a box face and on the level ``N = y0``.

    The face is the first one the chord ``x_in -> x_out`` crosses. On that face one coordinate
    is fixed and Newton solves ``N(x) = y0`` for the others (``n - 1`` unknowns, ``m = n - 1``
    equations). Returns ``(x, y)`` or None if the solve fails (class tangent to the face).
    """
    lo, hi = box
    x_a = x_in
    for _ in range(x_in.numel()):
        d = x_out - x_a
        best_s, face, value = 2.0, -1, 0.0
        for i in torch.nonzero((x_out < lo) | (x_out > hi)).reshape(-1).tolist():
            bound = lo[i] if x_out[i] < lo[i] else hi[i]
            di = float(d[i])
            s = 0.0 if di == 0 else float((bound - x_a[i]) / di)
            if s < best_s:
                best_s, face, value = s, i, float(bound)
        if face < 0:
            return None
        z = x_a + max(0.0, min(1.0, best_s)) * d
        z[face] = value
        free = [j for j in range(z.numel()) if j != face]
        solved = None
        for _it in range(30):
            y, jac = fn.value_and_jacobian(z)
            stats.jacobian_evals += 1
            r = y - y0
            if float(r.abs().max()) <= tol:
                solved = (z, y)
                break
            jf = jac[:, free]
            try:
                dz = torch.linalg.lstsq(jf, r.unsqueeze(1)).solution.reshape(-1)
            except RuntimeError:
                return None
            if not bool(torch.isfinite(dz).all()):
                return None
            z = z.clone()
            z[free] = z[free] - dz
        if solved is None:
            return None
        z, y = solved
        slack = 1e-12 * (1.0 + float((hi - lo).abs().max()))
        if not bool(((z < lo - slack) | (z > hi + slack)).any()):
            return torch.minimum(torch.maximum(z, lo), hi), y
        # The exit on this face lies outside another face: the class leaves through that one.
        x_out = z
    return None


@dataclass
class BranchState:
    """Everything needed to continue a branch exactly where it stopped.

    The state is replaced as a whole after every accepted step (the commit point), so a
    snapshot taken at any moment is consistent: the branch's first ``n_points`` points belong
    to it and the next step starts from ``x`` with tangent ``t`` and step ``h``.

    Attributes
    ----------
    k : int
        Accepted steps so far (the loop counter).
    x, t : torch.Tensor
        Current point and unit tangent (flat).
    t0 : torch.Tensor
        Tangent at the start (loop-closure test).
    curv : torch.Tensor or None
        Curvature estimate of the second-order predictor (None before the first step).
    h : float
        Current step.
    s_min, s_max : float
        Extreme singular values of J at ``x``.
    s_ref : float
        ``s_min`` at the start (singularity test).
    left_start : bool
        Whether the branch has moved away from the start (loop-closure test).
    n_points : int
        Points of the branch committed so far.
    stats : dict
        Solver counters at the commit.
    """

    k: int
    x: Tensor
    t: Tensor
    t0: Tensor
    curv: Tensor | None
    h: float
    s_min: float
    s_max: float
    s_ref: float
    left_start: bool
    n_points: int
    stats: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready plain values (floats survive ``repr`` exactly)."""
        return {
            "k": self.k,
            "x": self.x.tolist(),
            "t": self.t.tolist(),
            "t0": self.t0.tolist(),
            "curv": None if self.curv is None else self.curv.tolist(),
            "h": self.h,
            "s_min": self.s_min,
            "s_max": self.s_max,
            "s_ref": self.s_ref,
            "left_start": self.left_start,
            "n_points": self.n_points,
            "stats": dict(self.stats),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], device: torch.device) -> BranchState:
        """Rebuild a state written by :meth:`to_dict` on ``device``.

        Parameters
        ----------
        data : dict
            Output of :meth:`to_dict`.
        device : torch.device
            Device of the problem.

        Returns
        -------
        BranchState
            The state.
        """

        def vec(v: Any) -> Tensor:
            return torch.tensor(v, dtype=torch.float64, device=device)

        return cls(
            k=int(data["k"]),
            x=vec(data["x"]),
            t=vec(data["t"]),
            t0=vec(data["t0"]),
            curv=None if data["curv"] is None else vec(data["curv"]),
            h=float(data["h"]),
            s_min=float(data["s_min"]),
            s_max=float(data["s_max"]),
            s_ref=float(data["s_ref"]),
            left_start=bool(data["left_start"]),
            n_points=int(data["n_points"]),
            stats={str(k): int(v) for k, v in data["stats"].items()},
        )


def stats_counters(stats: TraceStats) -> dict[str, int]:
    """The integer counters of ``stats`` (everything but the wall time)."""
    return stats.counters()


def restore_counters(stats: TraceStats, counters: dict[str, int]) -> None:
    """Set the integer counters of ``stats`` from :func:`stats_counters` output."""
    stats.restore(counters)


class BranchTracer:
    """One branch of the corrected tracer, advanced one accepted step at a time.

    Parameters
    ----------
    problem : Problem
        Validated model, start and box.
    sign : int
        ``+1`` along the oriented tangent (``det[J; t] > 0``), ``-1`` against it.
    opts : CorrectedOptions
        Step, tolerances and caps.
    stats : TraceStats
        Counters to update.
    state : BranchState, optional
        Continue from this state (from a checkpoint) instead of the start.
    branch : Branch, optional
        The points the branch had when ``state`` was taken.
    """

    def __init__(
        self,
        problem: Problem,
        sign: int,
        opts: CorrectedOptions,
        stats: TraceStats,
        *,
        state: BranchState | None = None,
        branch: Branch | None = None,
    ) -> None:
        self.problem = problem
        self.sign = sign
        self.opts = opts
        self.stats = stats
        self.tol = max(opts.tol, 64 * EPS * max(1.0, float(problem.y0.abs().max())))
        self.cos_max = math.cos(opts.max_angle)
        self.cos_grow = math.cos(opts.max_angle / 3)
        self.h_min = opts.min_step if opts.min_step > 0 else opts.step * 1e-9
        self.branch = branch if branch is not None else Branch()
        self.finished = False
        if state is None:
            t, s_min, s_max = oriented_tangent(problem.J0)
            t = t * sign
            state = BranchState(
                k=0,
                x=problem.x0,
                t=t,
                t0=t,
                curv=None,
                h=opts.step,
                s_min=s_min,
                s_max=s_max,
                s_ref=s_min,
                left_start=False,
                n_points=0,
                stats=stats_counters(stats),
            )
        self.state = state

    def step(self) -> bool:
        """Take one accepted step, or stop the branch.

        Returns
        -------
        bool
            True while the branch goes on; False once it has stopped (``branch.reason``
            says why).
        """
        if self.finished:
            return False
        fn, x0, y0, box = self.problem.fn, self.problem.x0, self.problem.y0, self.problem.box
        opts, stats, out, sign, tol = self.opts, self.stats, self.branch, self.sign, self.tol
        st = self.state
        k = st.k
        if k >= opts.max_steps:
            out.stop_point = st.x
            out.message = f"stopped after max_steps={opts.max_steps} steps"
            self.finished = True
            return False
        x, t, t0, h, curv = st.x, st.t, st.t0, st.h, st.curv
        s_min, s_max = st.s_min, st.s_max
        while True:
            # Second-order predictor: the tangent's rate of turn from the last step estimates
            # the curvature vector, so the corrector usually converges in one iteration.
            xp = x + h * t if curv is None else x + h * t + (0.5 * h * h) * curv
            res = chord_to_level(fn, xp, y0, tol, opts.max_newton, stats)
            if res is not None:
                xc, yc, jc, iters = res
                tc, s_min, s_max = oriented_tangent(jc)
                tc = tc * sign
                cos = float(tc @ t)
                moved = float(torch.linalg.vector_norm(xc - xp))
                if cos >= self.cos_max and moved <= h and s_max > 0:
                    break
            stats.rejected += 1
            h *= 0.5
            if h < self.h_min:
                out.stop_point = x
                ahead = fn.value(xp)
                stats.value_evals += 1
                if not bool(torch.isfinite(ahead).all()):
                    out.reason = "nonfinite"
                    out.message = (
                        f"the model returns NaN or inf just ahead of {_fmt(x)} (at {_fmt(xp)}); "
                        "the class cannot be followed into that region"
                    )
                else:
                    out.reason = "singular"
                    out.message = (
                        f"the step fell below {self.h_min:.3g} without staying on the class "
                        f"near {_fmt(x)} (s_min={s_min:.3g}): a singular point, a crossing or "
                        "a cusp"
                    )
                self.finished = True
                return False
        stats.steps += 1
        h_used = h
        if box is not None and _outside(xc, box):
            exit_ = locate_box_exit(fn, x, xc, y0, box, tol, stats)
            out.reason = "boundary"
            if exit_ is None:
                out.stop_point = x
                out.message = "left the box; the exit point could not be located exactly"
                self.finished = True
                return False
            xe, ye = exit_
            if float(torch.linalg.vector_norm(xe - x)) > 0:
                out.points.append(xe)
                out.outputs.append(ye)
                out.conditioning.append(_cond(s_min, s_max, fn.m))
            out.stop_point = xe
            out.message = f"left the box at {_fmt(xe)}"
            self.finished = True
            return False
        left_start = st.left_start
        if left_start:
            a = float((x - x0) @ t0)
            b = float((xc - x0) @ t0)
            if a < 0.0 <= b:
                seg = xc - x
                u = min(1.0, max(0.0, -float((x - x0) @ seg) / max(float(seg @ seg), 1e-300)))
                dist = float(torch.linalg.vector_norm(x - x0 + u * seg))
                if dist <= 2.0 * h_used:
                    out.reason = "closed"
                    out.stop_point = x0
                    out.message = f"returned to the start after {k} steps"
                    self.finished = True
                    return False
        elif float(torch.linalg.vector_norm(xc - x0)) > 4.0 * h_used:
            left_start = True
        out.points.append(xc)
        out.outputs.append(yc)
        out.conditioning.append(_cond(s_min, s_max, fn.m))
        curv = (tc - t) / float(torch.linalg.vector_norm(xc - x))
        x, t = xc, tc
        if s_min < opts.sing_tol * s_max or s_min < opts.sing_tol * st.s_ref:
            out.reason = "singular"
            out.stop_point = xc
            out.message = (
                f"the Jacobian lost rank at {_fmt(xc)} (s_min={s_min:.3g}, s_max={s_max:.3g})"
            )
            self.finished = True
            return False
        if iters <= 2 and cos >= self.cos_grow and h < opts.step:
            h = min(opts.step, 1.5 * h)
        # Commit: one assignment replaces the state, so an interruption sees either the old or
        # the new state, never a mixture.
        self.state = BranchState(
            k=k + 1,
            x=x,
            t=t,
            t0=t0,
            curv=curv,
            h=h,
            s_min=s_min,
            s_max=s_max,
            s_ref=st.s_ref,
            left_start=left_start,
            n_points=len(out.points),
            stats=stats_counters(stats),
        )
        return True

    def committed_branch(self) -> Branch:
        """The branch as of the last commit (points of an interrupted step dropped)."""
        if self.finished:
            return self.branch
        n = self.state.n_points
        br = self.branch
        return Branch(
            points=br.points[:n],
            outputs=br.outputs[:n],
            conditioning=br.conditioning[:n],
            reason="interrupted",
            message=f"interrupted after {self.state.k} steps",
            stop_point=self.state.x,
        )

    def run(
        self,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_commit: Callable[[BranchTracer], None] | None = None,
    ) -> Branch:
        """Step until the branch stops.

        Parameters
        ----------
        progress : callable, optional
            Called with the number of accepted steps every 64 steps.
        should_stop : callable, optional
            Polled before every step; when it returns True the run raises
            :class:`KeyboardInterrupt` with the state intact at the last commit.
        on_commit : callable, optional
            Called with the tracer after every accepted step (checkpoints).

        Returns
        -------
        Branch
            Accepted points (start excluded) and the stop reason.
        """
        max_steps = self.opts.max_steps
        while True:
            k = self.state.k
            if progress is not None and k % 64 == 0 and k and k < max_steps:
                progress(k)
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
            if not self.step():
                return self.branch
            if on_commit is not None:
                on_commit(self)


def trace_branch(
    problem: Problem,
    sign: int,
    opts: CorrectedOptions,
    stats: TraceStats,
    progress: Callable[[int], None] | None = None,
) -> Branch:
    """Follow the class from the start in one direction.

    Parameters
    ----------
    problem : Problem
        Validated model, start and box.
    sign : int
        ``+1`` along the oriented tangent (``det[J; t] > 0``), ``-1`` against it.
    opts : CorrectedOptions
        Step, tolerances and caps.
    stats : TraceStats
        Counters to update.
    progress : callable, optional
        Called with the number of accepted steps every 64 steps.

    Returns
    -------
    Branch
        Accepted points (start excluded) and the stop reason.
    """
    return BranchTracer(problem, sign, opts, stats).run(progress)


def _cond(s_min: float, s_max: float, m: int) -> float:
    if m == 1:
        return s_min
    return 0.0 if s_max == 0 else s_min / s_max


def _fmt(x: Tensor) -> str:
    vals = x.reshape(-1)[:6].tolist()
    more = ", ..." if x.numel() > 6 else ""
    return "(" + ", ".join(f"{v:.6g}" for v in vals) + more + ")"
