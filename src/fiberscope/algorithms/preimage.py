"""``fiberscope.preimage``: the family of classes that fills the preimage of an output interval.

Corrected method (default): ``K`` target levels spaced evenly over ``[a, b]`` (both ends
included); each is reached *exactly* from ``x0`` by the gradient walk of
:func:`fiberscope.explore` (down to ``a`` and up to ``b``, one level after the other) and traced
with the corrected tracer (closed levels once, open ones to the box). For 2-D inputs the
region is measured as well: the band ``a <= N <= b`` on a grid of the network's own values,
restricted to the connected component(s) that the traced levels touch, its area, a polygon
from the traced extreme levels where they bound it, and the distance from the traced extreme
levels to the network's own contours at ``a`` and ``b``.

Paper method: the authors' driver (their ``main.cpp``). From ``x0``, ``nst`` times: trace the
current level both ways with stop-at-boundary SiMEC-1D, then SiMExp-1D with ``epsilon / nst``
to the next level; twice, with the SiMExp direction flag inverted (``true``) and not
(``false``). Its known flaws are reproduced: every sub-step overshoots, the last level reached
is never traced, closed levels are traced round and round.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..geometry.grid import evaluate_grid
from ..geometry.jacobian import ModelFunction, OutputMap
from ..outputs import describe_output, resolve_output
from . import paper
from .explore import (
    ExploreResult,
    WalkOptions,
    _assemble,
    check_start_gradient,
    paper_invert_for,
    raise_not_reached,
    walk_to_target,
)
from .problem import EPS, Problem, check_positive, one_dimensional_classes, prepare
from .result import TraceResult, TraceStats
from .trace import trace

METHODS = ("corrected", "paper")


@dataclass
class BandRegion:
    """The band ``low <= N <= high`` inside a 2-D box, measured on a grid and by polygon.

    Attributes
    ----------
    xs, ys : numpy.ndarray
        Grid axes ``(R,)``.
    values : numpy.ndarray
        ``(R, R)`` network values, ``values[i, j]`` at ``(xs[j], ys[i])``.
    mask : numpy.ndarray
        ``(R, R)`` bool: grid nodes in the band *and* in a connected component that a traced
        level touches (the region reachable from the start).
    band_mask : numpy.ndarray
        ``(R, R)`` bool: every grid node with ``low <= N <= high``.
    low, high : float
        Output range of the band.
    area : float
        Area of ``mask`` (trapezoid weights on the grid nodes).
    band_area : float
        Area of ``band_mask`` (all components inside the box).
    polygon : list of numpy.ndarray or None
        Rings ``(P, 2)`` bounding the region from the traced extreme levels: ``[outer,
        inner]`` for two nested closed levels, one ring stitched with the box boundary for
        two open levels; None when the extreme levels do not bound a simple region.
    polygon_area : float or None
        Area enclosed by ``polygon`` (outer minus inner).
    boundary_distance : dict
        For the lowest and highest traced levels: ``max`` and ``mean`` distance of their
        points to the network's own contour (marching squares on this grid) at the requested
        interval's ends: ``{"low": {...}, "high": {...}}``.
    resolution : int
        Grid points per axis.
    """

    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    band_mask: np.ndarray
    low: float
    high: float
    area: float
    band_area: float
    polygon: list[np.ndarray] | None
    polygon_area: float | None
    boundary_distance: dict[str, dict[str, float]]
    resolution: int

    def summary(self) -> dict[str, Any]:
        """Areas and distances as a plain dict."""
        return {
            "low": self.low,
            "high": self.high,
            "area": self.area,
            "band_area": self.band_area,
            "polygon_area": self.polygon_area,
            "boundary_distance": self.boundary_distance,
            "resolution": self.resolution,
        }


@dataclass
class PreimageResult:
    """A family of traced classes filling the preimage of an output interval.

    Attributes
    ----------
    interval : torch.Tensor
        ``(2, m)``: the requested ends ``a`` and ``b``.
    y0 : torch.Tensor
        Output at the start ``(m,)``.
    levels : torch.Tensor
        ``(L, m)`` output of each traced level (corrected: the targets, reached exactly;
        paper: the output at each level's start).
    traces : list of TraceResult
        One trace per level, in the order of ``levels``.
    starts : torch.Tensor
        ``(L, *input_shape)`` where each level was entered.
    path : torch.Tensor
        ``(P, *input_shape)`` the exploration path across the levels, ordered from the lowest
        output to the highest (corrected: the gradient line through ``x0``; paper: the SiMExp
        steps of both sweeps).
    path_outputs : torch.Tensor
        ``(P, m)`` outputs along ``path``.
    region : BandRegion or None
        The band and its area (2-D inputs only).
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        Every parameter (JSON-ready).
    stats : TraceStats
        Statistics of the walks and traces together.
    unreached : list of dict
        Corrected with ``partial=True``: requested levels that could not be reached, with
        the reason.
    sweeps : list of int
        Paper mode: the sweep (0 or 1) of each level.
    final_points : torch.Tensor or None
        Paper mode: where each sweep ended (the last level reached, never traced).
    final_outputs : torch.Tensor or None
        Paper mode: outputs at ``final_points``.
    """

    interval: Tensor
    y0: Tensor
    levels: Tensor
    traces: list[TraceResult]
    starts: Tensor
    path: Tensor
    path_outputs: Tensor
    region: BandRegion | None
    method: str
    options: dict[str, Any]
    stats: TraceStats = field(default_factory=TraceStats)
    unreached: list[dict[str, Any]] = field(default_factory=list)
    sweeps: list[int] = field(default_factory=list)
    final_points: Tensor | None = None
    final_outputs: Tensor | None = None

    def __len__(self) -> int:
        return len(self.traces)

    @property
    def covered(self) -> tuple[float, float]:
        """Lowest and highest traced level (first output)."""
        lv = self.levels[:, 0]
        return float(lv.min()), float(lv.max())

    @property
    def drift(self) -> float:
        """Largest ``|N(x) - level|`` over every traced point."""
        return max((t.drift for t in self.traces), default=0.0)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        out: dict[str, Any] = {
            "kind": "preimage",
            "method": self.method,
            "interval": self.interval.tolist(),
            "y0": self.y0.tolist(),
            "levels": self.levels.tolist(),
            "covered": list(self.covered),
            "closed": [t.closed for t in self.traces],
            "stop_reasons": [t.stop_reasons for t in self.traces],
            "points": [len(t) for t in self.traces],
            "drift": self.drift,
            "unreached": self.unreached,
            "stats": self.stats.as_dict(),
        }
        if self.region is not None:
            out["region"] = self.region.summary()
        if self.final_outputs is not None:
            out["final_outputs"] = self.final_outputs.tolist()
            out["sweeps"] = self.sweeps
        return out

    def save(self, path: str | Path, *, force: bool = True) -> tuple[Path, Path]:
        """Write every traced point to CSV (with its level) and the rest to a JSON sidecar.

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
        from ..io.results import save_preimage

        return save_preimage(self, path, force=force)

    def plot(self, model: Any = None, **kwargs: Any) -> Any:
        """Plot the levels coloured by output, the band shaded and the path (2-D inputs)."""
        from ..plot.plots import plot_preimage

        return plot_preimage(self, model=model, **kwargs)


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
    from skimage import measure

    hx = (xs[-1] - xs[0]) / (len(xs) - 1)
    hy = (ys[-1] - ys[0]) / (len(ys) - 1)
    out = []
    for c in measure.find_contours(values, level):
        out.append(np.column_stack((xs[0] + c[:, 1] * hx, ys[0] + c[:, 0] * hy)))
    return out


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
    model : callable
        The network (takes a batch ``(B, 2)``).
    output : callable, optional
        Output map.
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
    xs_t, ys_t, z_t = evaluate_grid(model, lo.tolist(), hi.tolist(), resolution, output=output)
    xs, ys, z = xs_t.numpy(), ys_t.numpy(), z_t.numpy()
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


def preimage(
    model: Callable[..., Any] | ModelFunction,
    x0: Any,
    interval: Any,
    *,
    levels: int = 11,
    bounds: Any,
    step: float = 0.01,
    max_steps: int = 10_000,
    method: str = "corrected",
    tol: float = 1e-12,
    output: OutputMap | None = None,
    metric: Any = None,
    partial: bool = False,
    region: bool = True,
    resolution: int = 400,
    nst: int = 100,
    exp_step: float | None = None,
    exp_max_steps: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
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
        Steps per trace branch (paper: SiMEC-1D's number of iterations per direction).
    method : {"corrected", "paper"}
        fiberscope's exact levels or the authors' driver.
    tol : float
        Residual tolerance of every point on its level.
    output : callable, optional
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
    progress : callable, optional
        ``progress(done, total)`` per level.

    Returns
    -------
    PreimageResult
        The traced levels, the exploration path and (2-D) the region with its area.

    Raises
    ------
    InputError
        No bounds, an empty interval or one that does not contain ``N(x0)``, bad options.
    ModelError
        The classes are not curves (``m != n - 1``), e.g. a vector output without an output
        map for a 2-D input.
    TargetNotReachedError
        A level cannot be reached inside the box (unless ``partial``).
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    step = check_positive(step, "step")
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
    output = resolve_output(output)
    problem = prepare(
        model, x0, bounds=bounds, metric=metric, output=output, require_m=one_dimensional_classes
    )
    a, b = parse_interval(interval, problem, tol)
    check_start_gradient(problem, "preimage")
    assert problem.box is not None
    options: dict[str, Any] = {
        "method": method,
        "interval": [a.tolist(), b.tolist()],
        "step": step,
        "max_steps": max_steps,
        "bounds": [problem.box[0].tolist(), problem.box[1].tolist()],
        "tol": tol,
        "output": describe_output(output),
        "metric": None if problem.metric is None else problem.metric.tolist(),
        "x0": problem.x0.tolist(),
        "input_shape": list(problem.fn.input_shape),
        "resolution": resolution,
    }
    t_start = time.perf_counter()
    stats = TraceStats()
    if method == "corrected":
        levels = check_positive(levels, "levels", integer=True)
        if levels < 2:
            raise InputError(f"levels must be at least 2 (both ends of the interval), got {levels}")
        options.update(levels=levels, partial=partial)
        res = _corrected(
            problem, a, b, levels, step, max_steps, tol, partial, stats, options, progress
        )
    else:
        if problem.m != 1:
            raise InputError("the authors' preimage driver (method='paper') needs a scalar output")
        nst = check_positive(nst, "nst", integer=True)
        exp_step = check_positive(exp_step if exp_step is not None else step / 100, "exp_step")
        exp_max_steps = check_positive(exp_max_steps, "exp_max_steps", integer=True)
        options.update(nst=nst, exp_step=exp_step, exp_max_steps=exp_max_steps)
        res = _paper(
            problem, a, b, nst, step, max_steps, exp_step, exp_max_steps, stats, options, progress
        )
    if region and problem.n == 2 and res.traces:
        lv = res.levels[:, 0].tolist()
        low, high = (float(a[0]), float(b[0])) if method == "corrected" else (min(lv), max(lv))
        res.region = band_region(
            model,
            output,
            problem.box,
            low,
            high,
            res.traces,
            lv,
            requested=(float(a[0]), float(b[0])),
            resolution=resolution,
        )
    stats.wall_time = time.perf_counter() - t_start
    return res


def _merge(stats: TraceStats, other: TraceStats) -> None:
    stats.steps += other.steps
    stats.rejected += other.rejected
    stats.newton_iterations += other.newton_iterations
    stats.jacobian_evals += other.jacobian_evals


def _corrected(
    problem: Problem,
    a: Tensor,
    b: Tensor,
    k_levels: int,
    step: float,
    max_steps: int,
    tol: float,
    partial: bool,
    stats: TraceStats,
    options: dict[str, Any],
    progress: Callable[[int, int], None] | None,
) -> PreimageResult:
    fn = problem.fn
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
    unreached: list[dict[str, Any]] = []
    opts = WalkOptions(step=step, max_steps=max_steps, tol=tol)
    paths: dict[str, list[tuple[Tensor, Tensor]]] = {"down": [], "up": []}
    for name, order in (("down", below), ("up", above)):
        x, y, jac = problem.x0, problem.y0, problem.J0
        for i, k in enumerate(order):
            walk = walk_to_target(fn, x, y, jac, targets[k], opts, stats, box=problem.box)
            paths[name].extend(zip(walk.points, walk.outputs, strict=True))
            if walk.reason != "reached":
                pts = [p for p, _ in paths[name]]
                outs = [o for _, o in paths[name]]
                p_all, o_all, arc = _assemble(problem, pts, outs)
                partial_res = ExploreResult(
                    points=p_all,
                    outputs=o_all,
                    arclength=arc,
                    y0=problem.y0,
                    target=targets[k],
                    epsilon=None,
                    reached=False,
                    stop_reason=walk.reason,
                    stop_point=p_all[-1].reshape(-1).tolist(),
                    message=walk.message,
                    method="corrected",
                    options={**options, "max_steps": max_steps},
                    stats=stats,
                )
                if not partial:
                    raise_not_reached(partial_res, targets[k], None)
                for kk in order[i:]:
                    unreached.append(
                        {
                            "level": targets[kk].tolist(),
                            "reason": walk.reason,
                            "message": walk.message,
                        }
                    )
                break
            assert walk.stop_point is not None and walk.stop_output is not None
            x, y, jac = walk.stop_point, walk.stop_output, walk.jac
            starts[k] = x
    order = sorted(starts)
    traces: list[TraceResult] = []
    for i, k in enumerate(order):
        tr = trace(
            fn,
            problem.unflatten(starts[k].unsqueeze(0))[0],
            step=step,
            max_steps=max_steps,
            bounds=(problem.box[0], problem.box[1]) if problem.box is not None else None,
            tol=tol,
        )
        _merge(stats, tr.stats)
        traces.append(tr)
        if progress is not None:
            progress(i + 1, len(order))
    down = [(p, o) for p, o in reversed(paths["down"])]
    path_pts = [p for p, _ in down] + [problem.x0] + [p for p, _ in paths["up"]]
    path_outs = [o for _, o in down] + [problem.y0] + [o for _, o in paths["up"]]
    return PreimageResult(
        interval=torch.stack((a, b)),
        y0=problem.y0,
        levels=torch.stack([targets[k] for k in order]).reshape(len(order), -1),
        traces=traces,
        starts=problem.unflatten(torch.stack([starts[k] for k in order])),
        path=problem.unflatten(torch.stack(path_pts)),
        path_outputs=torch.stack(path_outs).reshape(len(path_pts), -1),
        region=None,
        method="corrected",
        options=options,
        stats=stats,
        unreached=unreached,
    )


def _paper(
    problem: Problem,
    a: Tensor,
    b: Tensor,
    nst: int,
    step: float,
    max_steps: int,
    exp_step: float,
    exp_max_steps: int,
    stats: TraceStats,
    options: dict[str, Any],
    progress: Callable[[int, int], None] | None,
) -> PreimageResult:
    fn = problem.fn
    y0 = float(problem.y0[0])
    eps_up, eps_down = float(b[0]) - y0, y0 - float(a[0])
    invert_up = paper_invert_for(problem, "up")
    box = (problem.box[0], problem.box[1]) if problem.box is not None else None
    traces: list[TraceResult] = []
    levels: list[Tensor] = []
    starts: list[Tensor] = []
    sweeps: list[int] = []
    finals: list[Tensor] = []
    final_outs: list[Tensor] = []
    sweep_paths: list[tuple[list[Tensor], list[Tensor]]] = []
    eps_used = []
    total = 2 * nst
    done = 0
    # The authors' order: the SiMExp flag inverted (true) first, then not (false).
    for sweep, invert in enumerate((True, False)):
        eps = eps_up if invert == invert_up else eps_down
        eps_used.append(eps)
        x = problem.x0
        pts: list[Tensor] = []
        outs: list[Tensor] = []
        for _ in range(nst):
            tr = trace(
                fn,
                problem.unflatten(x.unsqueeze(0))[0],
                step=step,
                max_steps=max_steps,
                bounds=box,
                method="paper",
                paper_box="stop",
                metric=problem.metric,
            )
            _merge(stats, tr.stats)
            traces.append(tr)
            levels.append(tr.y0)
            starts.append(x)
            sweeps.append(sweep)
            if eps > 0:
                run = paper.simexp_1d(
                    fn,
                    x,
                    step=exp_step,
                    epsilon=eps / nst,
                    max_steps=exp_max_steps,
                    invert=invert,
                    metric=problem.metric,
                    stats=stats,
                )
                pts.extend(run.points)
                outs.extend(run.outputs)
                x = run.points[-1]
            done += 1
            if progress is not None:
                progress(done, total)
        finals.append(x)
        final_outs.append(fn.value(x))
        sweep_paths.append((pts, outs))
    options["epsilon_per_sweep"] = eps_used
    options["invert_per_sweep"] = [True, False]
    # Path ordered from low to high output: the sweep that went down, reversed, then the other.
    ends = [float(fo[0]) for fo in final_outs]
    low_sweep = 0 if ends[0] <= ends[1] else 1
    lp, lo_ = sweep_paths[low_sweep]
    hp, ho = sweep_paths[1 - low_sweep]
    path_pts = [*reversed(lp), problem.x0, *hp]
    path_outs = [*reversed(lo_), problem.y0, *ho]
    return PreimageResult(
        interval=torch.stack((a, b)),
        y0=problem.y0,
        levels=torch.stack(levels).reshape(len(levels), -1),
        traces=traces,
        starts=problem.unflatten(torch.stack(starts)),
        path=problem.unflatten(torch.stack(path_pts)),
        path_outputs=torch.stack(path_outs).reshape(len(path_pts), -1),
        region=None,
        method="paper",
        options=options,
        stats=stats,
        sweeps=sweeps,
        final_points=problem.unflatten(torch.stack(finals)),
        final_outputs=torch.stack(final_outs).reshape(2, -1),
    )
