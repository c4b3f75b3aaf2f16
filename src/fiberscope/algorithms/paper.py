"""The authors' algorithms, reproduced exactly ("paper mode").

SiMEC-1D (Benfenati & Marta, paper II): at each step build the pullback metric
``g = J^T G J``, eigen-decompose it, take the eigenvector ``v`` of the *lowest* eigenvalue,
flip it if ``v . v_prev < 0``, move ``x <- x + delta v`` (``x - delta v`` when the direction is
inverted) and accumulate the energy ``delta v^T g v`` (``g`` at the old point). The start is
not recorded. Bounded variants: ``clamp`` (clamp every coordinate after every step and go on)
and ``stop`` (clamp, record the clamped point, stop).

SiMExp-1D moves ``delta`` along the eigenvector of the *largest* eigenvalue until
``|N(x) - N(x0)| >= epsilon`` or a step cap.

These are kept for reproduction and comparison; they drift off the class (Euler error) and
are not the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..geometry.jacobian import ModelFunction
from ..geometry.metric import metric_from_jacobian
from .result import TraceStats


@dataclass
class PaperRun:
    """Points recorded by one run of the authors' algorithm (start excluded)."""

    points: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    energy: float = 0.0
    reason: str = "max_steps"
    message: str = ""
    last_direction: Tensor | None = None


_EPS = float(torch.finfo(torch.float64).eps)
_TINY = float(torch.finfo(torch.float64).tiny)


def _givens(p: float, q: float) -> tuple[float, float]:
    """Givens rotation ``(c, s)`` with the sign conventions of Eigen's ``makeGivens``."""
    if q == 0.0:
        return (-1.0 if p < 0 else 1.0), 0.0
    if p == 0.0:
        return 0.0, (1.0 if q < 0 else -1.0)
    if abs(p) > abs(q):
        t = q / p
        u = math.copysign(math.sqrt(1.0 + t * t), p)
        c = 1.0 / u
        return c, -t * c
    t = p / q
    u = math.copysign(math.sqrt(1.0 + t * t), q)
    sn = -1.0 / u
    return -t * sn, sn


def eigen2x2(a: float, b: float, c: float) -> tuple[list[float], list[list[float]]]:
    """Eigen-decomposition of ``[[a, b], [b, c]]`` as the authors' solver computes it.

    The authors used Eigen's iterative ``SelfAdjointEigenSolver`` (dynamic size): scale by the
    largest entry, Wilkinson-shifted implicit QR sweeps with Givens rotations accumulated from
    the identity, deflation when ``(e / eps)^2 <= |d0| + |d1|``, eigenvalues sorted ascending.
    The *signs* of its eigenvectors decide the first SiMEC step and every SiMExp step, and
    LAPACK's ``syevd`` (``torch.linalg.eigh``) does not follow them, so paper mode emulates the
    solver operation by operation (see ``docs/paper-mode-spec.md``).

    Parameters
    ----------
    a, b, c : float
        Entries ``g00``, ``g10`` and ``g11`` of the symmetric matrix.

    Returns
    -------
    values : list of float
        Eigenvalues, ascending.
    vectors : list of list of float
        ``vectors[j]`` is the unit eigenvector of ``values[j]``.
    """
    scale = max(abs(a), abs(b), abs(c)) or 1.0
    d0, d1, e = a / scale, c / scale, b / scale
    q00, q01, q10, q11 = 1.0, 0.0, 0.0, 1.0  # Q = [[q00, q01], [q10, q11]], columns = vectors
    for _ in range(60):
        if abs(e) < _TINY or (e / _EPS) ** 2 <= abs(d0) + abs(d1):
            break
        td, mu = 0.5 * (d0 - d1), d1
        if td == 0.0:
            mu -= abs(e)
        else:
            hi, lo = max(abs(td), abs(e)), min(abs(td), abs(e))
            h = hi * math.sqrt(1.0 + (lo / hi) * (lo / hi))
            mu -= e * e / (td + (h if td > 0 else -h))
        cs, sn = _givens(d0 - mu, e)
        sdk, dk1 = sn * d0 + cs * e, sn * e + cs * d1
        d0 = cs * (cs * d0 - sn * e) - sn * (cs * e - sn * d1)
        d1, e = sn * sdk + cs * dk1, cs * sdk - sn * dk1
        q00, q01 = cs * q00 - sn * q01, sn * q00 + cs * q01
        q10, q11 = cs * q10 - sn * q11, sn * q10 + cs * q11
    if d1 < d0:
        return [d1 * scale, d0 * scale], [[q01, q11], [q00, q10]]
    return [d0 * scale, d1 * scale], [[q00, q10], [q01, q11]]


def eigenvector(g: Tensor, lowest: bool) -> Tensor:
    """Eigenvector of the lowest or highest eigenvalue of a symmetric matrix, authors' signs.

    For 2x2 matrices (every experiment of paper II) the authors' Eigen solver is emulated
    exactly (:func:`eigen2x2`); larger matrices use LAPACK (``torch.linalg.eigh``), whose
    signs may differ from the authors' Householder path.

    Parameters
    ----------
    g : torch.Tensor
        Symmetric ``(n, n)`` matrix.
    lowest : bool
        Eigenvector of the lowest (True) or highest (False) eigenvalue.

    Returns
    -------
    torch.Tensor
        Unit eigenvector ``(n,)``.
    """
    if g.shape == (2, 2):
        a, b, _, c = g.reshape(-1).tolist()
        _, vecs = eigen2x2(a, b, c)
        return torch.tensor(vecs[0] if lowest else vecs[1], dtype=g.dtype, device=g.device)
    _, vecs = torch.linalg.eigh(g)
    return vecs[:, 0] if lowest else vecs[:, -1]


@dataclass
class PaperState:
    """Everything needed to continue a SiMEC-1D run exactly (replaced after every step).

    Attributes
    ----------
    k : int
        Steps taken.
    x : torch.Tensor
        Current point (flat).
    v_prev : torch.Tensor
        Last direction (zero before the first step).
    energy : float
        Accumulated energy.
    n_points : int
        Points recorded so far.
    stats : dict
        Solver counters at the commit.
    """

    k: int
    x: Tensor
    v_prev: Tensor
    energy: float
    n_points: int
    stats: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready plain values."""
        return {
            "k": self.k,
            "x": self.x.tolist(),
            "v_prev": self.v_prev.tolist(),
            "energy": self.energy,
            "n_points": self.n_points,
            "stats": dict(self.stats),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], device: torch.device) -> PaperState:
        """Rebuild a state written by :meth:`to_dict` on ``device``.

        Parameters
        ----------
        data : dict
            Output of :meth:`to_dict`.
        device : torch.device
            Device of the problem.

        Returns
        -------
        PaperState
            The state.
        """
        return cls(
            k=int(data["k"]),
            x=torch.tensor(data["x"], dtype=torch.float64, device=device),
            v_prev=torch.tensor(data["v_prev"], dtype=torch.float64, device=device),
            energy=float(data["energy"]),
            n_points=int(data["n_points"]),
            stats={str(k): int(v) for k, v in data["stats"].items()},
        )


class SimecTracer:
    """The authors' SiMEC-1D, advanced one step at a time (see :func:`simec_1d`).

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x0 : torch.Tensor
        Flat start point (not recorded).
    step, n_steps, invert, metric, box, variant
        As in :func:`simec_1d`.
    stats : TraceStats
        Counters to update.
    state : PaperState, optional
        Continue from this state (the Jacobian at ``state.x`` is recomputed, uncounted).
    run : PaperRun, optional
        The points recorded when ``state`` was taken.
    """

    def __init__(
        self,
        fn: ModelFunction,
        x0: Tensor,
        *,
        step: float,
        n_steps: int,
        invert: bool = False,
        metric: Tensor | None = None,
        box: tuple[Tensor, Tensor] | None = None,
        variant: str | None = None,
        stats: TraceStats,
        state: PaperState | None = None,
        run: PaperRun | None = None,
    ) -> None:
        self.fn, self.step_size, self.n_steps = fn, step, n_steps
        self.sgn = -1.0 if invert else 1.0
        self.metric, self.box, self.variant = metric, box, variant
        self.stats = stats
        self.run_ = run if run is not None else PaperRun()
        self.finished = False
        if state is None:
            _, self.jac = fn.value_and_jacobian(x0.clone())
            stats.jacobian_evals += 1
            state = PaperState(
                k=0,
                x=x0.clone(),
                v_prev=torch.zeros_like(x0),
                energy=0.0,
                n_points=0,
                stats=stats.counters(),
            )
        else:
            _, self.jac = fn.value_and_jacobian(state.x)
        self.state = state

    def step(self) -> bool:
        """Take one step; returns False once the run has stopped."""
        if self.finished:
            return False
        st, run, stats, step = self.state, self.run_, self.stats, self.step_size
        if st.k >= self.n_steps:
            run.energy = st.energy
            run.last_direction = st.v_prev
            self.finished = True
            return False
        g = metric_from_jacobian(self.jac, self.metric)
        v = eigenvector(g, lowest=True)
        if float(v @ st.v_prev) < 0:
            v = -v
        energy = st.energy + step * float(v @ (g @ v))
        x = st.x + self.sgn * step * v
        stop = False
        if self.box is not None and self.variant in ("clamp", "stop"):
            lo, hi = self.box
            if self.variant == "stop" and bool(((x < lo) | (x > hi)).any()):
                stop = True
            x = torch.minimum(torch.maximum(x, lo), hi)
        stats.steps += 1
        y, jac = self.fn.value_and_jacobian(x)
        stats.jacobian_evals += 1
        if not (bool(torch.isfinite(y).all()) and bool(torch.isfinite(jac).all())):
            # the original marches on with NaN directions; stop before recording garbage
            run.reason = "nonfinite"
            run.message = (
                f"the model returns NaN or inf at step {st.k + 1} "
                f"({', '.join(f'{v:.6g}' for v in x.reshape(-1)[:6].tolist())}); stopped there"
            )
            run.energy = st.energy
            run.last_direction = st.v_prev
            self.finished = True
            return False
        run.points.append(x)
        run.outputs.append(y)
        self.jac = jac
        self.state = PaperState(
            k=st.k + 1,
            x=x,
            v_prev=v,
            energy=energy,
            n_points=len(run.points),
            stats=stats.counters(),
        )
        run.energy = energy
        if stop:
            run.reason = "boundary"
            run.message = "reached the box (stop-at-boundary variant)"
            run.last_direction = v
            self.finished = True
            return False
        return True

    def committed_run(self) -> PaperRun:
        """The run as of the last commit, marked interrupted unless it had finished."""
        if self.finished:
            return self.run_
        n = self.state.n_points
        return PaperRun(
            points=self.run_.points[:n],
            outputs=self.run_.outputs[:n],
            energy=self.state.energy,
            reason="interrupted",
            message=f"interrupted after {self.state.k} steps",
            last_direction=self.state.v_prev,
        )

    def run(
        self,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_commit: Callable[[SimecTracer], None] | None = None,
    ) -> PaperRun:
        """Step until the run stops (``should_stop`` raises KeyboardInterrupt between steps).

        Parameters
        ----------
        progress : callable, optional
            Called with the step count every 256 steps.
        should_stop : callable, optional
            Polled before every step; True raises :class:`KeyboardInterrupt`.
        on_commit : callable, optional
            Called with the tracer after every step.

        Returns
        -------
        PaperRun
            Recorded points and outputs, energy and stop reason.
        """
        while True:
            k = self.state.k
            if progress is not None and k % 256 == 0 and k and k < self.n_steps:
                progress(k)
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
            if not self.step():
                return self.run_
            if on_commit is not None:
                on_commit(self)


def simec_1d(
    fn: ModelFunction,
    x0: Tensor,
    *,
    step: float,
    n_steps: int,
    invert: bool = False,
    metric: Tensor | None = None,
    box: tuple[Tensor, Tensor] | None = None,
    variant: str | None = None,
    stats: TraceStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> PaperRun:
    """The authors' SiMEC-1D: fixed Euler steps along the null eigenvector of ``g``.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x0 : torch.Tensor
        Flat start point (not recorded).
    step : float
        The step ``delta``.
    n_steps : int
        Number of steps ``K``.
    invert : bool
        Move ``x - delta v`` instead of ``x + delta v``.
    metric : torch.Tensor, optional
        Output metric ``G`` (identity when None).
    box : tuple of torch.Tensor, optional
        ``(h_inf, h_sup)``; used by the ``clamp`` and ``stop`` variants.
    variant : {None, "clamp", "stop"}
        Unbounded, clamp-and-continue, or clamp-record-and-stop.
    stats : TraceStats, optional
        Counters to update.
    progress : callable, optional
        Called with the step count every 256 steps.

    Returns
    -------
    PaperRun
        Recorded points and outputs, energy and stop reason.
    """
    stats = stats if stats is not None else TraceStats()
    tracer = SimecTracer(
        fn,
        x0,
        step=step,
        n_steps=n_steps,
        invert=invert,
        metric=metric,
        box=box,
        variant=variant,
        stats=stats,
    )
    return tracer.run(progress)


def simexp_1d(
    fn: ModelFunction,
    x0: Tensor,
    *,
    step: float,
    epsilon: float,
    max_steps: int,
    invert: bool = False,
    metric: Tensor | None = None,
    stats: TraceStats | None = None,
) -> PaperRun:
    """The authors' SiMExp-1D: fixed steps along the top eigenvector of ``g``.

    Stops when ``max |N(x) - N(x0)| >= epsilon`` or after ``max_steps`` steps. As in the
    original, the sign reference is never updated from zero, so whether the output goes up or
    down depends on the eigen-solver's sign of the eigenvector.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x0 : torch.Tensor
        Flat start point (not recorded).
    step : float
        Step ``delta``.
    epsilon : float
        Output change at which to stop.
    max_steps : int
        Step cap.
    invert : bool
        Move ``x - delta v``.
    metric : torch.Tensor, optional
        Output metric.
    stats : TraceStats, optional
        Counters to update.

    Returns
    -------
    PaperRun
        Recorded points and outputs; ``reason`` is ``"reached"`` or ``"max_steps"``.
    """
    stats = stats if stats is not None else TraceStats()
    run = PaperRun()
    x = x0.clone()
    sgn = -1.0 if invert else 1.0
    y_start, jac = fn.value_and_jacobian(x)
    stats.jacobian_evals += 1
    for _ in range(max_steps):
        g = metric_from_jacobian(jac, metric)
        v = eigenvector(g, lowest=False)
        run.energy += step * float(v @ (g @ v))
        x = x + sgn * step * v
        stats.steps += 1
        y, jac = fn.value_and_jacobian(x)
        stats.jacobian_evals += 1
        run.points.append(x)
        run.outputs.append(y)
        if float((y - y_start).abs().max()) >= epsilon:
            run.reason = "reached"
            return run
    run.reason = "max_steps"
    return run
