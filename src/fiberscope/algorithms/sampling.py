"""``fiberscope.sample_class``: synthetic data spread evenly along a 1-D class.

The class is traced with the corrected tracer; then ``n`` points are placed at equal
arclength along the traced curve (not where the tracer happened to step: its adaptive step
clusters points where the class turns) and each is projected back onto the class with
Gauss-Newton, so every sample has the start's output to the tracing tolerance. A closed class
gets ``n`` points evenly around the loop (the start first); an open one ``n`` points from one
end to the other, both ends included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from ..geometry.jacobian import ModelFunction, OutputMap
from ..outputs import describe_output, resolve_output
from .corrected import newton_to_level
from .problem import EPS, check_positive, one_dimensional_classes, prepare
from .result import TraceResult, TraceStats
from .trace import trace


@dataclass
class SampleResult:
    """Points spread evenly by arclength along one class.

    Attributes
    ----------
    points : torch.Tensor
        ``(N, *input_shape)`` samples in order along the class.
    outputs : torch.Tensor
        ``(N, m)`` outputs (all equal to ``y0`` to ``tol``).
    arclength : torch.Tensor
        ``(N,)`` nominal arclength of each sample along the traced class (from its first end,
        or from the start for a closed class).
    y0 : torch.Tensor
        The class's output ``(m,)``.
    closed : bool
        The class is a loop (samples go once around it).
    length : float
        Length of the traced class.
    spacing : float
        Nominal arclength between neighbouring samples.
    trace : TraceResult
        The trace the samples were taken from.
    options : dict
        Every parameter (JSON-ready).
    stats : TraceStats
        Statistics of the trace and the projections.
    """

    points: Tensor
    outputs: Tensor
    arclength: Tensor
    y0: Tensor
    closed: bool
    length: float
    spacing: float
    trace: TraceResult
    options: dict[str, Any]
    stats: TraceStats = field(default_factory=TraceStats)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def residual(self) -> float:
        """``max |N(x) - y0|`` over the samples."""
        return float((self.outputs - self.y0).abs().max())

    @property
    def gaps(self) -> Tensor:
        """``(N-1,)`` straight-line distances between neighbouring samples (``N`` for a loop)."""
        flat = self.points.reshape(len(self), -1)
        if self.closed:
            flat = torch.cat((flat, flat[:1]))
        return torch.linalg.vector_norm(flat[1:] - flat[:-1], dim=1)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        g = self.gaps
        return {
            "kind": "samples",
            "points": len(self),
            "closed": self.closed,
            "length": self.length,
            "spacing": self.spacing,
            "gap_min": float(g.min()) if g.numel() else 0.0,
            "gap_max": float(g.max()) if g.numel() else 0.0,
            "residual": self.residual,
            "y0": self.y0.tolist(),
            "stop_reasons": dict(self.trace.stop_reasons),
            "stats": self.stats.as_dict(),
        }

    def save(self, path: str | Path, *, force: bool = True) -> tuple[Path, Path]:
        """Write the samples to CSV and every parameter to a JSON sidecar.

        Parameters
        ----------
        path : str or pathlib.Path
            CSV destination.
        force : bool
            Overwrite existing files.

        Returns
        -------
        tuple of pathlib.Path
            The CSV and JSON paths.
        """
        from ..io.results import save_samples

        return save_samples(self, path, force=force)

    def plot(self, model: Any = None, **kwargs: Any) -> Any:
        """Plot the samples on their class (2-D inputs: over a heat map)."""
        from ..plot.plots import plot_samples

        return plot_samples(self, model=model, **kwargs)


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
    model: Callable[..., Any] | ModelFunction,
    x0: Any,
    n: int = 100,
    *,
    step: float = 0.01,
    max_steps: int = 10_000,
    bounds: Any = None,
    tol: float = 1e-12,
    output: OutputMap | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SampleResult:
    """``n`` inputs that the model cannot tell from ``x0``, spread evenly along its class.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network, ``R^n -> R^(n-1)`` (after the output map).
    x0 : tensor or array-like
        Start point; its class is sampled.
    n : int
        Number of samples (at least 2).
    step : float
        Largest step of the trace (smaller steps give a more accurate arclength).
    max_steps : int
        Steps per trace branch.
    bounds : tuple, optional
        Box; open classes are sampled from one box exit to the other.
    tol : float
        Residual tolerance: every sample has ``max |N(x) - N(x0)| <= tol``.
    output : callable, optional
        Output map.
    progress : callable, optional
        ``progress(done, total)`` during the trace.

    Returns
    -------
    SampleResult
        The samples, their outputs and arclength positions, the trace.

    Raises
    ------
    InputError
        Bad options.
    ModelError
        The classes are not curves.
    SingularPointError
        The start is singular.

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
    step = check_positive(step, "step")
    tol = check_positive(tol, "tol")
    output = resolve_output(output)
    problem = prepare(model, x0, bounds=bounds, output=output, require_m=one_dimensional_classes)
    t_start = time.perf_counter()
    tr = trace(
        problem.fn,
        problem.unflatten(problem.x0.unsqueeze(0))[0],
        step=step,
        max_steps=max_steps,
        bounds=bounds,
        tol=tol,
        progress=progress,
    )
    stats = TraceStats(**{k: v for k, v in tr.stats.as_dict().items() if k != "wall_time"})
    flat = tr.points.reshape(len(tr), -1).to(torch.float64)
    if len(tr) < 2:
        raise InputError("the traced class has a single point; nothing to sample (check the box)")
    if tr.closed:
        # Start the loop at the start point: roll the backward branch behind it.
        flat = torch.roll(flat, -tr.start_index, dims=0)
    samples, pos, length = resample_polyline(flat, n, tr.closed)
    if length == 0.0:
        raise InputError("the traced class has zero length; nothing to sample")
    y0 = problem.y0
    level_tol = max(tol, 64 * EPS * max(1.0, float(y0.abs().max())))
    keep = {0} if tr.closed else {0, n - 1}
    out_pts, out_vals = [], []
    for i in range(n):
        q = samples[i]
        if i in keep:
            out_pts.append(q)
            out_vals.append(problem.fn.value(q))
            stats.jacobian_evals += 1
            continue
        res = newton_to_level(problem.fn, q, y0, level_tol, 30, stats)
        if res is None:
            raise InputError(
                f"could not project sample {i} back onto the class (near a singular point?); "
                "use a smaller step"
            )
        out_pts.append(res[0])
        out_vals.append(res[1])
    stats.wall_time = time.perf_counter() - t_start
    pts = torch.stack(out_pts)
    return SampleResult(
        points=problem.unflatten(pts),
        outputs=torch.stack(out_vals).reshape(n, -1),
        arclength=pos,
        y0=y0,
        closed=tr.closed,
        length=length,
        spacing=length / n if tr.closed else length / (n - 1),
        trace=tr,
        options={
            "n": n,
            "step": step,
            "max_steps": max_steps,
            "bounds": tr.options.get("bounds"),
            "tol": tol,
            "output": describe_output(output),
            "x0": problem.x0.tolist(),
            "input_shape": list(problem.fn.input_shape),
        },
        stats=stats,
    )
