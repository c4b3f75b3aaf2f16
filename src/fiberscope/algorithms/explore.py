"""``fiberscope.explore``: move from a point across classes, to an exact output level.

The corrected method follows the curve along which the output changes fastest and reaches the
requested output *exactly*. With a target output ``y*`` it continues the homotopy
``N(x) = y0 + lam (y* - y0)`` from ``lam = 0`` to ``lam = 1``: each step predicts along the
minimum-norm direction ``J^+ (y* - y0)`` (for one output: the gradient, signed up or down) and
corrects with Gauss-Newton back to the level ``y0 + lam (y* - y0)``. Every point therefore lies
on a level to the tracing tolerance, the path is the gradient line (perpendicular to the
classes it crosses) up to the discretisation, and the last point is on the target level to
``tol``. For one output this is the normalised gradient flow; for several outputs it moves the
output along the straight segment from ``y0`` to ``y*`` with the least input motion. With
``epsilon`` and several outputs it follows the top eigenvector of the pullback metric
``J^T G J`` until ``||N(x) - N(x0)||_G = epsilon`` exactly.

The paper method is the authors' SiMExp-1D (fixed steps along the top eigenvector until the
output has changed by ``epsilon``), with their sign behaviour.
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

from ..errors import InputError, ModelError, SingularPointError, TargetNotReachedError
from ..geometry.jacobian import ModelFunction, OutputMap
from ..geometry.metric import metric_from_jacobian
from ..outputs import describe_output, resolve_output
from . import paper
from .corrected import newton_to_level
from .problem import EPS, Problem, check_positive, prepare
from .result import TraceStats

METHODS = ("corrected", "paper")
DIRECTIONS = ("up", "down")
PAPER_DIRECTIONS = ("forward", "backward", "up", "down")
REASONS = ("reached", "boundary", "singular", "max_steps")


@dataclass(frozen=True)
class WalkOptions:
    """Options of the corrected walk across classes.

    Attributes
    ----------
    step : float
        Largest step (input units).
    max_steps : int
        Accepted steps.
    tol : float
        Residual tolerance of every point on its level (max-abs).
    max_angle : float
        Largest turn of the direction in one step (radians).
    sing_tol : float
        The walk stops as singular when the smallest singular value of J falls below
        ``sing_tol`` times its value at the start (for one output: the gradient vanishes).
    max_newton : int
        Corrector iterations per step.
    """

    step: float
    max_steps: int
    tol: float = 1e-12
    max_angle: float = 0.3
    sing_tol: float = 1e-8
    max_newton: int = 8


@dataclass
class Walk:
    """Points of one walk (the start excluded) and why it stopped."""

    points: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    reason: str = "max_steps"
    message: str = ""
    stop_point: Tensor | None = None
    stop_output: Tensor | None = None
    jac: Tensor | None = None


def _fmt(x: Tensor | list[float]) -> str:
    vals = (x.reshape(-1).tolist() if isinstance(x, Tensor) else list(x))[:6]
    more = ", ..." if len(vals) == 6 else ""
    return "(" + ", ".join(f"{v:.6g}" for v in vals) + more + ")"


def _fmt_y(y: Tensor) -> str:
    vals = y.reshape(-1).tolist()
    if len(vals) == 1:
        return f"{vals[0]:.10g}"
    return "(" + ", ".join(f"{v:.6g}" for v in vals[:6]) + (", ..." if len(vals) > 6 else "") + ")"


def min_norm_direction(jac: Tensor, dy: Tensor) -> tuple[Tensor, float, float]:
    """Minimum-norm ``dx`` with ``J dx = dy``, and the extreme singular values of ``J``.

    Parameters
    ----------
    jac : torch.Tensor
        Jacobian ``(m, n)`` with ``m <= n``.
    dy : torch.Tensor
        Output change ``(m,)``.

    Returns
    -------
    dx : torch.Tensor
        ``J^+ dy``, shape ``(n,)`` (NaN when J is singular).
    s_min, s_max : float
        Smallest and largest singular values of J (for one output both are ``|grad N|``).
    """
    if jac.shape[0] == 1:
        g = jac[0]
        gg = float(g @ g)
        s = math.sqrt(gg)
        if gg == 0.0:
            return torch.full_like(g, math.nan), 0.0, 0.0
        return g * (dy[0] / gg), s, s
    s = torch.linalg.svdvals(jac)
    s_min, s_max = float(s[-1]), float(s[0])
    if s_min == 0.0:
        return torch.full((jac.shape[1],), math.nan, dtype=jac.dtype, device=jac.device), 0.0, s_max
    dx = jac.T @ torch.linalg.solve(jac @ jac.T, dy)
    return dx, s_min, s_max


def _first_exit(x_in: Tensor, x_out: Tensor, box: tuple[Tensor, Tensor]) -> Tensor:
    """Point where the chord ``x_in -> x_out`` first meets the box boundary (on a face)."""
    lo, hi = box
    d = x_out - x_in
    best = 1.0
    face, value = -1, 0.0
    for i in torch.nonzero((x_out < lo) | (x_out > hi)).reshape(-1).tolist():
        bound = float(lo[i] if x_out[i] < lo[i] else hi[i])
        di = float(d[i])
        s = 0.0 if di == 0 else (bound - float(x_in[i])) / di
        if s < best:
            best, face, value = s, i, bound
    z = x_in + max(0.0, min(1.0, best)) * d
    if face >= 0:
        z[face] = value
    return torch.minimum(torch.maximum(z, lo), hi)


def _outside(x: Tensor, box: tuple[Tensor, Tensor] | None) -> bool:
    if box is None:
        return False
    return bool(((x < box[0]) | (x > box[1])).any())


def walk_to_target(
    fn: ModelFunction,
    x: Tensor,
    y: Tensor,
    jac: Tensor,
    target: Tensor,
    opts: WalkOptions,
    stats: TraceStats,
    *,
    box: tuple[Tensor, Tensor] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Walk:
    """Walk from ``x`` (output ``y``, Jacobian ``jac``) to the output ``target`` exactly.

    Continues the homotopy ``N(x) = y + lam (target - y)``: predictor along the unit
    minimum-norm direction ``J^+ (target - y)`` (second order, from the turn of the last step),
    Gauss-Newton corrector (:func:`~fiberscope.algorithms.corrected.newton_to_level`) onto the
    intermediate level, adaptive step below ``opts.step``. The last step aims at ``lam = 1``
    exactly, so the last point satisfies ``max |N(x) - target| <= tol``.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x, y, jac : torch.Tensor
        Flat start, its output ``(m,)`` and Jacobian ``(m, n)``.
    target : torch.Tensor
        Target output ``(m,)``.
    opts : WalkOptions
        Step, tolerances and caps.
    stats : TraceStats
        Counters to update.
    box : tuple of torch.Tensor, optional
        ``(lo, hi)``: the walk stops where it leaves the box.
    progress : callable, optional
        Called with the number of accepted steps every 64 steps.

    Returns
    -------
    Walk
        Points after the start; ``reason`` is ``"reached"``, ``"boundary"``, ``"singular"`` or
        ``"max_steps"``; ``stop_point``/``stop_output`` is the last point (on the box face when
        the walk left the box).
    """
    tol = max(opts.tol, 64 * EPS * max(1.0, float(target.abs().max()), float(y.abs().max())))
    out = Walk(stop_point=x, stop_output=y, jac=jac)
    y_start = y
    dy = target - y_start
    if float(dy.abs().max()) <= tol:
        out.reason = "reached"
        out.message = "the start is already on the target level"
        return out
    d, s_min, s_max = min_norm_direction(jac, dy)
    speed = float(torch.linalg.vector_norm(d))
    if not math.isfinite(speed) or speed == 0.0:
        out.reason = "singular"
        out.message = f"the Jacobian is singular at {_fmt(x)} (s_min={s_min:.3g})"
        return out
    s_ref = s_min
    u = d / speed
    lam = 0.0
    h = opts.step
    h_min = opts.step * 1e-9
    cos_max = math.cos(opts.max_angle)
    cos_grow = math.cos(opts.max_angle / 3)
    curv: Tensor | None = None
    for k in range(opts.max_steps):
        if progress is not None and k and k % 64 == 0:
            progress(k)
        while True:
            rem = 1.0 - lam
            h_try = min(h, speed * rem)
            final = h >= speed * rem
            if final:
                dlam, goal = rem, target
            else:
                dlam = h_try / speed
                goal = y_start + (lam + dlam) * dy
            xp = x + h_try * u if curv is None else x + h_try * u + (0.5 * h_try * h_try) * curv
            res = newton_to_level(fn, xp, goal, tol, opts.max_newton, stats)
            accepted = False
            if res is not None:
                xc, yc, jc, iters = res
                dc, s_min_c, s_max_c = min_norm_direction(jc, dy)
                speed_c = float(torch.linalg.vector_norm(dc))
                if math.isfinite(speed_c) and speed_c > 0.0:
                    uc = dc / speed_c
                    cos = float(uc @ u)
                    moved = float(torch.linalg.vector_norm(xc - xp))
                    accepted = cos >= cos_max and moved <= max(h_try, 64 * EPS)
            if accepted:
                break
            stats.rejected += 1
            h = 0.5 * h_try
            if h < h_min:
                out.reason = "singular"
                out.message = (
                    f"the step fell below {h_min:.3g} near {_fmt(x)} with output {_fmt_y(y)} "
                    f"(s_min={s_min:.3g}): the output has a local extremum or saddle there"
                )
                return out
        stats.steps += 1
        if box is not None and _outside(xc, box):
            xe = _first_exit(x, xc, box)
            ye = fn.value(xe)
            stats.jacobian_evals += 1
            if float(torch.linalg.vector_norm(xe - x)) > 0:
                out.points.append(xe)
                out.outputs.append(ye)
            out.reason = "boundary"
            out.stop_point, out.stop_output = xe, ye
            out.message = f"left the box at {_fmt(xe)} with output {_fmt_y(ye)}"
            return out
        out.points.append(xc)
        out.outputs.append(yc)
        curv = (uc - u) / max(float(torch.linalg.vector_norm(xc - x)), 1e-300)
        x, y, u, speed = xc, yc, uc, speed_c
        s_min, s_max = s_min_c, s_max_c
        out.stop_point, out.stop_output, out.jac = xc, yc, jc
        if final:
            out.reason = "reached"
            out.message = f"reached the target after {k + 1} steps"
            return out
        lam += dlam
        if s_min < opts.sing_tol * s_ref or (fn.m > 1 and s_min < opts.sing_tol * s_max):
            out.reason = "singular"
            out.message = (
                f"the Jacobian lost rank at {_fmt(x)} with output {_fmt_y(y)} "
                f"(s_min={s_min:.3g}, s_max={s_max:.3g})"
            )
            return out
        if iters <= 2 and cos >= cos_grow and h < opts.step:
            h = min(opts.step, 1.5 * h)
    out.message = f"stopped after max_steps={opts.max_steps} steps at output {_fmt_y(y)}"
    return out


def _metric_root(metric: Tensor | None, m: int, like: Tensor) -> Tensor:
    """``R`` with ``R^T R = G`` (identity when ``G`` is None)."""
    if metric is None:
        return torch.eye(m, dtype=like.dtype, device=like.device)
    return torch.linalg.cholesky(metric).T


def _top_direction(jac: Tensor, root: Tensor) -> tuple[Tensor, float]:
    """Unit top eigenvector of ``J^T G J`` (from the SVD of ``R J``) and its eigenvalue."""
    _, s, vh = torch.linalg.svd(root @ jac, full_matrices=False)
    return vh[0], float(s[0]) ** 2


def walk_top_eigen(
    fn: ModelFunction,
    x: Tensor,
    y: Tensor,
    jac: Tensor,
    epsilon: float,
    up: bool,
    metric: Tensor | None,
    opts: WalkOptions,
    stats: TraceStats,
    *,
    box: tuple[Tensor, Tensor] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Walk:
    """Follow the top eigenvector of ``J^T G J`` until ``||N(x) - y||_G = epsilon`` exactly.

    Heun steps with sign continuity and an adaptive step (the direction may turn at most
    ``opts.max_angle`` per step); the crossing of the ``epsilon`` sphere is solved on the last
    chord by a safeguarded Newton iteration to ``opts.tol``.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x, y, jac : torch.Tensor
        Flat start, its output and Jacobian.
    epsilon : float
        Output distance (in the metric ``G``) to reach.
    up : bool
        Initial sign: the first output increases (True) or decreases along the first step.
    metric : torch.Tensor or None
        Output metric ``G``.
    opts : WalkOptions
        Step and caps.
    stats : TraceStats
        Counters to update.
    box : tuple of torch.Tensor, optional
        The walk stops where it leaves the box.
    progress : callable, optional
        Called with the number of accepted steps every 64 steps.

    Returns
    -------
    Walk
        As for :func:`walk_to_target`.
    """
    root = _metric_root(metric, fn.m, jac)
    y0 = y
    tol = max(opts.tol, 64 * EPS * max(1.0, float(y.abs().max())))

    def dist(yv: Tensor) -> float:
        return float(torch.linalg.vector_norm(root @ (yv - y0)))

    out = Walk(stop_point=x, stop_output=y, jac=jac)
    v, lam_top = _top_direction(jac, root)
    if lam_top == 0.0:
        out.reason = "singular"
        out.message = f"the Jacobian vanishes at {_fmt(x)}"
        return out
    jv = jac @ v
    ref = int(torch.argmax(jv.abs()))
    if (float(jv[0]) if float(jv[0]) != 0.0 else float(jv[ref])) * (1 if up else -1) < 0:
        v = -v
    h = opts.step
    h_min = opts.step * 1e-9
    cos_max = math.cos(opts.max_angle)
    cos_grow = math.cos(opts.max_angle / 3)
    s_ref = lam_top
    for k in range(opts.max_steps):
        if progress is not None and k and k % 64 == 0:
            progress(k)
        while True:
            xp = x + h * v
            _, jp = fn.value_and_jacobian(xp)
            stats.jacobian_evals += 1
            v2, _ = _top_direction(jp, root)
            if float(v2 @ v) < 0:
                v2 = -v2
            cos = float(v2 @ v)
            if cos >= cos_max:
                break
            stats.rejected += 1
            h *= 0.5
            if h < h_min:
                out.reason = "singular"
                out.message = f"the top eigenvector turns too fast near {_fmt(x)}"
                return out
        xn = x + 0.5 * h * (v + v2)
        yn, jn = fn.value_and_jacobian(xn)
        stats.jacobian_evals += 1
        stats.steps += 1
        if box is not None and _outside(xn, box):
            xe = _first_exit(x, xn, box)
            ye = fn.value(xe)
            if dist(ye) < epsilon:
                out.points.append(xe)
                out.outputs.append(ye)
                out.reason = "boundary"
                out.stop_point, out.stop_output = xe, ye
                out.message = f"left the box at {_fmt(xe)} with output {_fmt_y(ye)}"
                return out
            xn, yn = xe, ye
            _, jn = fn.value_and_jacobian(xn)
        if dist(yn) >= epsilon:
            xs, ys, js = _solve_sphere(fn, x, xn, y0, root, epsilon, tol, stats)
            out.points.append(xs)
            out.outputs.append(ys)
            out.reason = "reached"
            out.stop_point, out.stop_output, out.jac = xs, ys, js
            out.message = f"reached ||N(x) - N(x0)|| = {epsilon:g} after {k + 1} steps"
            return out
        out.points.append(xn)
        out.outputs.append(yn)
        out.stop_point, out.stop_output, out.jac = xn, yn, jn
        vn, lam_n = _top_direction(jn, root)
        if float(vn @ v) < 0:
            vn = -vn
        x, y, v = xn, yn, vn
        if lam_n < opts.sing_tol**2 * s_ref:
            out.reason = "singular"
            out.message = f"the Jacobian vanishes at {_fmt(x)}"
            return out
        if cos >= cos_grow and h < opts.step:
            h = min(opts.step, 1.5 * h)
    out.message = f"stopped after max_steps={opts.max_steps} steps at output {_fmt_y(y)}"
    return out


def _solve_sphere(
    fn: ModelFunction,
    xa: Tensor,
    xb: Tensor,
    y0: Tensor,
    root: Tensor,
    epsilon: float,
    tol: float,
    stats: TraceStats,
) -> tuple[Tensor, Tensor, Tensor]:
    """Point on the chord ``xa -> xb`` where ``||N - y0||_G = epsilon`` (safeguarded Newton)."""
    d = xb - xa
    lo, hi = 0.0, 1.0
    tau = 1.0
    best: tuple[Tensor, Tensor, Tensor] | None = None
    for _ in range(100):
        xt = xa + tau * d
        yt, jt = fn.value_and_jacobian(xt)
        stats.jacobian_evals += 1
        r = root @ (yt - y0)
        nr = float(torch.linalg.vector_norm(r))
        f = nr - epsilon
        best = (xt, yt, jt)
        if abs(f) <= tol:
            break
        if f > 0:
            hi = tau
        else:
            lo = tau
        df = float(r @ (root @ (jt @ d))) / max(nr, 1e-300)
        nxt = tau - f / df if df != 0.0 else math.nan
        tau = nxt if math.isfinite(nxt) and lo < nxt < hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-15:
            break
    assert best is not None
    return best


@dataclass
class ExploreResult:
    """A walk from a start across classes (the gradient line, or the authors' SiMExp-1D).

    Attributes
    ----------
    points : torch.Tensor
        ``(K, *input_shape)`` points along the path, the start first.
    outputs : torch.Tensor
        ``(K, m)`` outputs at the points.
    arclength : torch.Tensor
        ``(K,)`` arclength from the start (polyline through the points).
    y0 : torch.Tensor
        Output at the start ``(m,)``.
    target : torch.Tensor or None
        The requested output ``(m,)`` (``y0 +- epsilon`` for one output with ``epsilon``);
        None for several outputs with ``epsilon``.
    epsilon : float or None
        The requested output change, when given.
    reached : bool
        The target (or the ``epsilon`` change) was reached.
    stop_reason : str
        ``"reached"``, ``"boundary"``, ``"singular"`` or ``"max_steps"``.
    stop_point : list of float
        The last point (flat).
    message : str
        Human-readable detail.
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        Every parameter (JSON-ready).
    stats : TraceStats
        Solver statistics.
    energy : float or None
        Paper mode: the authors' energy ``sum delta v^T g v``.
    """

    points: Tensor
    outputs: Tensor
    arclength: Tensor
    y0: Tensor
    target: Tensor | None
    epsilon: float | None
    reached: bool
    stop_reason: str
    stop_point: list[float]
    message: str
    method: str
    options: dict[str, Any]
    stats: TraceStats = field(default_factory=TraceStats)
    energy: float | None = None

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def start(self) -> Tensor:
        """The start point."""
        return self.points[0]

    @property
    def end(self) -> Tensor:
        """The last point of the path."""
        return self.points[-1]

    @property
    def end_output(self) -> Tensor:
        """The output at the last point ``(m,)``."""
        return self.outputs[-1]

    @property
    def length(self) -> float:
        """Arclength of the path (sum of its segments)."""
        return float(self.arclength[-1])

    @property
    def distance(self) -> float:
        """Straight-line distance from the start to the last point."""
        d = (self.end - self.start).reshape(-1)
        return float(torch.linalg.vector_norm(d))

    @property
    def residual(self) -> float:
        """``max |N(end) - target|`` (NaN without a target)."""
        if self.target is None:
            return math.nan
        return float((self.end_output - self.target).abs().max())

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "method": self.method,
            "points": len(self),
            "reached": self.reached,
            "stop_reason": self.stop_reason,
            "y0": self.y0.tolist(),
            "target": None if self.target is None else self.target.tolist(),
            "end_output": self.end_output.tolist(),
            "residual": self.residual,
            "length": self.length,
            "distance": self.distance,
            "end": self.end.reshape(-1).tolist(),
            "stats": self.stats.as_dict(),
        }

    def save(self, path: str | Path, *, force: bool = True) -> tuple[Path, Path]:
        """Write the path to CSV and every parameter to a JSON sidecar.

        Parameters
        ----------
        path : str or pathlib.Path
            CSV destination (the sidecar is the same name with ``.json``).
        force : bool
            Overwrite existing files.

        Returns
        -------
        tuple of pathlib.Path
            The CSV and JSON paths.
        """
        from ..io.results import save_explore

        return save_explore(self, path, force=force)

    def plot(self, model: Any = None, **kwargs: Any) -> Any:
        """Plot the path (2-D inputs: over a heat map of ``model``); returns the figure."""
        from ..plot.plots import plot_explore

        return plot_explore(self, model=model, **kwargs)


def parse_target(target: Any, m: int, device: torch.device) -> Tensor:
    """Validate a target output: a number (one output) or ``m`` numbers.

    Parameters
    ----------
    target : float or sequence of float or torch.Tensor
        The requested output.
    m : int
        Output dimension of the model (after the output map).
    device : torch.device
        Where the target should live.

    Returns
    -------
    torch.Tensor
        ``(m,)`` float64.
    """
    try:
        t = torch.as_tensor(target, dtype=torch.float64).reshape(-1).to(device)
    except Exception:
        raise InputError(
            f"the target must be a number or a list of numbers, got {target!r}"
        ) from None
    if t.numel() != m:
        if t.numel() == 1:
            raise InputError(
                f"a single target level needs a scalar output, but the model has {m} outputs; "
                "choose one with an output map (e.g. output=OutputComponent(3) or ClassMargin(); "
                "CLI: --output) "
                f"or give a target with {m} values"
            )
        raise InputError(f"the target has {t.numel()} values but the model has {m} outputs")
    if not bool(torch.isfinite(t).all()):
        raise InputError("the target must be finite")
    return t


def check_start_gradient(problem: Problem, what: str = "explore") -> tuple[float, float]:
    """Refuse a start where the Jacobian has no full row rank (no direction to move in).

    Parameters
    ----------
    problem : Problem
        The validated problem.
    what : str
        The command, for the message.

    Returns
    -------
    tuple of float
        Smallest and largest singular values of J at the start.

    Raises
    ------
    SingularPointError
        If ``s_min(J) <= 1e-12 s_max(J)``.
    """
    s = torch.linalg.svdvals(problem.J0)
    s_min, s_max = float(s[-1]), float(s[0])
    if s_max == 0.0 or s_min <= 1e-12 * s_max or s_min <= 1e-300:
        raise SingularPointError(
            f"the output does not change to first order at the start (s_min={s_min:.3g}, "
            f"s_max={s_max:.3g}): {what} has no direction to move in; start at a nearby point"
        )
    return s_min, s_max


def _require_m_le_n(n: int, m: int) -> str | None:
    if m <= n:
        return None
    return (
        f"the model maps R^{n} -> R^{m}: with more outputs than inputs a walk cannot reach "
        "arbitrary output levels; pick fewer outputs with an output map"
    )


def _assemble(
    problem: Problem,
    walk_points: list[Tensor],
    walk_outputs: list[Tensor],
) -> tuple[Tensor, Tensor, Tensor]:
    pts = torch.stack([problem.x0, *walk_points])
    outs = torch.stack([problem.y0, *walk_outputs]).reshape(len(pts), -1)
    seg = torch.linalg.vector_norm(pts[1:] - pts[:-1], dim=1)
    arc = torch.cat((seg.new_zeros(1), torch.cumsum(seg, 0)))
    return problem.unflatten(pts), outs, arc


def explore(
    model: Callable[..., Any] | ModelFunction,
    x0: Any,
    *,
    target: Any = None,
    epsilon: float | None = None,
    direction: str | None = None,
    step: float = 0.01,
    max_steps: int = 10_000,
    bounds: Any = None,
    method: str = "corrected",
    metric: Any = None,
    tol: float = 1e-12,
    output: OutputMap | None = None,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    progress: Callable[[int, int], None] | None = None,
) -> ExploreResult:
    """Move from ``x0`` across classes, along the direction in which the output changes fastest.

    Answers "what is the smallest move along the gradient that changes the output to y?".

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network.
    x0 : tensor or array-like
        Start point (any shape; points come back in the same shape).
    target : float or sequence of float, optional
        Output level to reach exactly (``m`` values for ``m`` outputs). Whether the walk goes
        up or down follows from it. Give either ``target`` or ``epsilon``.
    epsilon : float, optional
        Output change to reach: the target is ``N(x0) +- epsilon`` for one output; for several
        outputs the walk follows the top eigenvector of ``J^T G J`` until
        ``||N(x) - N(x0)||_G = epsilon``. Paper mode: the authors' stop criterion
        ``|N(x) - N(x0)| >= epsilon``.
    direction : {"up", "down", "forward", "backward"}, optional
        With ``epsilon``: ``"up"`` (default) or ``"down"`` (several outputs: the first output
        increases or decreases along the first step). Paper mode also takes the authors'
        ``"forward"`` (``x + delta v``, the default) and ``"backward"`` (``x - delta v``);
        ``"up"``/``"down"`` there choose the sign of the *first* step only: later steps use
        the eigen-solver's sign, as in the original.
    step : float
        Corrected: the largest step. Paper: the fixed step ``delta``.
    max_steps : int
        Step cap.
    bounds : tuple, optional
        Box ``(lo, hi)`` containing ``x0``; the corrected walk stops where it leaves it
        (paper mode, like the original, ignores it).
    method : {"corrected", "paper"}
        Exact walk (default) or the authors' SiMExp-1D.
    metric : array-like, optional
        SPD output metric ``G`` (identity by default).
    tol : float
        Residual tolerance of every point on its level (corrected).
    output : callable, optional
        Output map (which outputs count; e.g. :class:`~fiberscope.ClassMargin`).
    max_angle : float
        Corrected: largest turn of the direction per step (radians).
    sing_tol : float
        Corrected: relative drop of the smallest singular value of J that counts as singular.
    progress : callable, optional
        ``progress(done, total)`` now and then.

    Returns
    -------
    ExploreResult
        The path, the output along it, its length, the end point.

    Raises
    ------
    InputError
        Bad start, bounds, target or options (e.g. a scalar target for a vector output).
    SingularPointError
        The output does not change to first order at the start.
    TargetNotReachedError
        The walk left the box, met a local extremum of the output or ran out of steps before
        reaching the target; the error names the closest output reached and where, and carries
        the partial result as ``.result``.

    Examples
    --------
    >>> import fiberscope as fs
    >>> net = fs.load_model("surface_1")
    >>> res = fs.explore(net, [0.25, 0.25], target=0.16, step=0.01)
    >>> res.reached, res.residual < 1e-12
    (True, True)
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if (target is None) == (epsilon is None):
        raise InputError("give exactly one of target= (an output level) or epsilon= (a change)")
    if epsilon is not None:
        epsilon = check_positive(epsilon, "epsilon")
    allowed = PAPER_DIRECTIONS if method == "paper" else DIRECTIONS
    if direction is not None and direction not in allowed:
        raise InputError(f"unknown direction {direction!r}; use one of {', '.join(allowed)}")
    if direction is not None and target is not None and method == "corrected":
        raise InputError(
            "direction= goes with epsilon=; with target= the direction follows from it"
        )
    step = check_positive(step, "step")
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    max_angle = check_positive(max_angle, "max_angle")
    sing_tol = check_positive(sing_tol, "sing_tol")
    output = resolve_output(output)
    problem = prepare(
        model, x0, bounds=bounds, metric=metric, output=output, require_m=_require_m_le_n
    )
    tgt = parse_target(target, problem.m, problem.x0.device) if target is not None else None
    check_start_gradient(problem)
    options: dict[str, Any] = {
        "method": method,
        "target": None if tgt is None else tgt.tolist(),
        "epsilon": epsilon,
        "direction": direction,
        "step": step,
        "max_steps": max_steps,
        "bounds": None
        if problem.box is None
        else [problem.box[0].tolist(), problem.box[1].tolist()],
        "tol": tol,
        "metric": None if problem.metric is None else problem.metric.tolist(),
        "output": describe_output(output),
        "max_angle": max_angle,
        "sing_tol": sing_tol,
        "x0": problem.x0.tolist(),
        "input_shape": list(problem.fn.input_shape),
    }
    stats = TraceStats()
    t_start = time.perf_counter()

    def tick(k: int) -> None:
        if progress is not None:
            progress(k, max_steps)

    if method == "paper":
        res = _explore_paper(problem, tgt, epsilon, direction, step, max_steps, stats, options)
    else:
        opts = WalkOptions(
            step=step, max_steps=max_steps, tol=tol, max_angle=max_angle, sing_tol=sing_tol
        )
        want_up = direction != "down"
        if tgt is None and problem.m == 1:
            assert epsilon is not None
            tgt = problem.y0 + (epsilon if want_up else -epsilon)
            options["target"] = tgt.tolist()
        if tgt is not None:
            walk = walk_to_target(
                problem.fn,
                problem.x0,
                problem.y0,
                problem.J0,
                tgt,
                opts,
                stats,
                box=problem.box,
                progress=tick,
            )
        else:
            assert epsilon is not None
            walk = walk_top_eigen(
                problem.fn,
                problem.x0,
                problem.y0,
                problem.J0,
                epsilon,
                want_up,
                problem.metric,
                opts,
                stats,
                box=problem.box,
                progress=tick,
            )
        pts, outs, arc = _assemble(problem, walk.points, walk.outputs)
        stop = walk.stop_point if walk.stop_point is not None else problem.x0
        res = ExploreResult(
            points=pts,
            outputs=outs,
            arclength=arc,
            y0=problem.y0,
            target=tgt,
            epsilon=epsilon,
            reached=walk.reason == "reached",
            stop_reason=walk.reason,
            stop_point=stop.tolist(),
            message=walk.message,
            method=method,
            options=options,
            stats=stats,
        )
    stats.wall_time = time.perf_counter() - t_start
    if progress is not None:
        progress(max_steps, max_steps)
    if not res.reached:
        raise_not_reached(res, tgt, epsilon)
    return res


def raise_not_reached(res: ExploreResult, tgt: Tensor | None, epsilon: float | None) -> None:
    """Raise :class:`TargetNotReachedError` for an unfinished walk, naming the closest output.

    Parameters
    ----------
    res : ExploreResult
        The partial walk (attached to the error as ``.result``).
    tgt : torch.Tensor or None
        The target output; None for an ``epsilon`` walk with several outputs.
    epsilon : float or None
        The requested output change (when there is no target).

    Raises
    ------
    TargetNotReachedError
        Always; the message names the closest output reached, where, and why the walk stopped.
    """
    y0 = res.y0
    if tgt is not None:
        gap = (res.outputs - tgt).abs().max(dim=1).values
        what = f"the target level {_fmt_y(tgt)}"
    else:
        gap = -torch.linalg.vector_norm(res.outputs - y0, dim=1)
        what = f"an output change of {epsilon:g}"
    i = int(torch.argmin(gap))
    best_y = res.outputs[i]
    best_x = res.points[i].reshape(-1)
    where = {
        "boundary": "inside the box",
        "singular": "from the start (the output has a local extremum or saddle on the way)",
        "max_steps": f"within max_steps={res.options.get('max_steps')}",
    }.get(res.stop_reason, "")
    hint = {
        "boundary": "; widen the bounds or choose a level closer to N(x0)",
        "singular": "; choose a level closer to N(x0)",
        "max_steps": "; raise max_steps or the step",
    }.get(res.stop_reason, "")
    raise TargetNotReachedError(
        f"cannot reach {what} {where}: the closest output reached is {_fmt_y(best_y)} at "
        f"{_fmt(best_x)}{hint}",
        closest_output=best_y.tolist(),
        closest_point=best_x.tolist(),
        reason=res.stop_reason,
        result=res,
    )


def _explore_paper(
    problem: Problem,
    tgt: Tensor | None,
    epsilon: float | None,
    direction: str | None,
    step: float,
    max_steps: int,
    stats: TraceStats,
    options: dict[str, Any],
) -> ExploreResult:
    if epsilon is None:
        assert tgt is not None
        epsilon = float((tgt - problem.y0).abs().max())
        if epsilon == 0.0:
            raise InputError("the target equals N(x0); nothing to explore")
    direction = direction or "forward"
    invert = paper_invert_for(problem, direction)
    run = paper.simexp_1d(
        problem.fn,
        problem.x0,
        step=step,
        epsilon=epsilon,
        max_steps=max_steps,
        invert=invert,
        metric=problem.metric,
        stats=stats,
    )
    pts, outs, arc = _assemble(problem, run.points, run.outputs)
    options["epsilon"] = epsilon
    options["invert"] = invert
    return ExploreResult(
        points=pts,
        outputs=outs,
        arclength=arc,
        y0=problem.y0,
        target=tgt,
        epsilon=epsilon,
        reached=run.reason == "reached",
        stop_reason=run.reason,
        stop_point=(run.points[-1] if run.points else problem.x0).tolist(),
        message="output changed by epsilon" if run.reason == "reached" else run.message,
        method="paper",
        options=options,
        stats=stats,
        energy=run.energy,
    )


def paper_invert_for(problem: Problem, direction: str) -> bool:
    """The authors' ``invert`` flag for a direction (up/down: the sign of the first step).

    Parameters
    ----------
    problem : Problem
        The validated problem (start, Jacobian, metric).
    direction : {"forward", "backward", "up", "down"}
        Authors' flag, or the wanted sign of the first output change.

    Returns
    -------
    bool
        True to move ``x - delta v``.
    """
    if direction in ("forward", "backward"):
        return direction == "backward"
    g = metric_from_jacobian(problem.J0, problem.metric)
    v = paper.eigenvector(g, lowest=False)  # the very vector the first SiMExp step uses
    rises = float((problem.J0 @ v)[0]) > 0
    return rises != (direction == "up")


def require_scalar(problem: Problem, what: str) -> None:
    """Refuse a vector-output model for a scalar-only command (one-line fix in the message).

    Parameters
    ----------
    problem : Problem
        The validated problem.
    what : str
        The command, for the message.

    Raises
    ------
    ModelError
        If the model (after its output map) has more than one output.
    """
    if problem.m != 1:
        raise ModelError(
            f"{what} needs one scalar output, but the model has {problem.m} outputs; choose one "
            "with an output map (e.g. output=OutputComponent(k), LogitDifference(i, j) or "
            "ClassMargin(); CLI: --output)"
        )
