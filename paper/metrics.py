"""Error measures for the reproduction of paper II: algorithm error and model error, separated.

*Algorithm error* is measured against the network itself: the output drift
``max |N(x) - N(x0)|`` along a trace, and the distance of the traced points to the network's own
level set, extracted independently by marching squares (``contourpy``, shipped with matplotlib)
on a fine grid. *Model error* is the distance to the analytic class of the function the network
was trained on (a circle, a parabola, an isotherm, the classifier's true boundary); it only
measures how well the network learned.

All functions take and return NumPy arrays (float64, points of shape ``(K, 2)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from .adapter import evaluate_grid

__all__ = [
    "AnalyticCurve",
    "Circle",
    "ContourSet",
    "Isotherm",
    "Parabola",
    "SineCurve",
    "band_area",
    "box_exits",
    "closure_gap",
    "correct_side_fraction",
    "graph_distance",
    "model_gradient",
    "point_to_polyline",
    "pv_spread",
    "subsample",
    "turns",
]

Box = tuple[tuple[float, float], tuple[float, float]]  # ((x_lo, y_lo), (x_hi, y_hi))


def subsample(points: np.ndarray, k: int = 4000) -> np.ndarray:
    """At most ``k`` rows of ``points``, evenly spaced, first and last always kept.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, d)`` points ordered along a curve.
    k : int
        Largest number of rows returned.

    Returns
    -------
    numpy.ndarray
        ``points`` itself when ``K <= k``, else ``k`` rows.
    """
    n = points.shape[0]
    if n <= k:
        return points
    idx = np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))
    return points[idx]


def _segment_distance(p: np.ndarray, a: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Distance from points ``(K, 2)`` to segments ``a + u ab`` paired row by row or broadcast."""
    ap = p - a
    denom = np.maximum((ab**2).sum(-1), 1e-300)
    u = np.clip((ap * ab).sum(-1) / denom, 0.0, 1.0)
    d = ap - u[..., None] * ab
    return np.sqrt((d**2).sum(-1))


def _brute_distance(points: np.ndarray, a: np.ndarray, ab: np.ndarray, chunk: int) -> np.ndarray:
    out = np.empty(points.shape[0])
    for s in range(0, points.shape[0], chunk):
        p = points[s : s + chunk]
        out[s : s + chunk] = _segment_distance(p[:, None, :], a[None], ab[None]).min(axis=1)
    return out


def point_to_polyline(
    points: np.ndarray, line: np.ndarray, *, closed: bool = False, chunk: int = 256
) -> np.ndarray:
    """Euclidean distance from each point to the nearest segment of a 2-D polyline.

    Exact. For long polylines only the segments whose midpoints are close enough to hold the
    nearest point are measured (midpoint distances by ``torch.cdist``).

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` query points.
    line : numpy.ndarray
        ``(M, 2)`` polyline vertices (``M >= 1``).
    closed : bool
        Also use the segment from the last vertex back to the first.
    chunk : int
        Query points handled at once by the brute-force path (memory ``chunk * M``).

    Returns
    -------
    numpy.ndarray
        ``(K,)`` distances.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    line = np.asarray(line, dtype=np.float64).reshape(-1, 2)
    if line.shape[0] == 1:
        return np.linalg.norm(points - line[0], axis=1)
    if closed:
        line = np.vstack((line, line[:1]))
    return _segments_distance(points, line[:-1], line[1:] - line[:-1], chunk)


def _segments_distance(
    points: np.ndarray, a: np.ndarray, ab: np.ndarray, chunk: int = 256
) -> np.ndarray:
    m = a.shape[0]
    if m * points.shape[0] <= 200_000 or m <= 64:
        return _brute_distance(points, a, ab, chunk)
    # A segment's nearest point is within half its length of its midpoint, so only segments
    # whose midpoint is within (nearest midpoint distance + half the longest segment) can hold
    # the nearest point: exact, and few candidates for points near the curve.
    mid = torch.from_numpy(a + 0.5 * ab)
    half = 0.5 * float(np.sqrt((ab**2).sum(-1)).max())
    out = np.full(points.shape[0], np.inf)
    pts_t = torch.from_numpy(points)
    rows_per = max(8, 8_000_000 // m)
    for s in range(0, points.shape[0], rows_per):
        dist = torch.cdist(pts_t[s : s + rows_per], mid)
        d1 = dist.min(dim=1).values
        r, c = (dist <= (d1 + half + 1e-12)[:, None]).nonzero(as_tuple=True)
        r, c = r.numpy(), c.numpy()
        dseg = _segment_distance(points[s + r], a[c], ab[c])
        np.minimum.at(out, s + r, dseg)
    return out


def graph_distance(
    points: np.ndarray, f: Callable[[np.ndarray], np.ndarray], x_min: float = -np.inf
) -> np.ndarray:
    """Distance from points to the graph ``y = f(x)`` of a smooth function (to ~1e-8 relative).

    The vertical distance ``d0 = |f(p_x) - p_y|`` bounds the distance, so the foot point's
    abscissa lies in ``[p_x - d0, p_x + d0]``; that window is sampled (401 points), then the
    best sample's neighbourhood three more times (each 200 times finer), and the nearest chord
    of the final samples is used.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` points.
    f : callable
        Vectorised ``f(x)``.
    x_min : float
        Smallest abscissa where ``f`` is defined.

    Returns
    -------
    numpy.ndarray
        ``(K,)`` distances.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    px, py = pts[:, 0], pts[:, 1]
    d0 = np.abs(f(px) - py)
    lo, hi = np.maximum(px - d0, x_min), px + d0
    n = 401
    u = np.linspace(0.0, 1.0, n)
    rows = np.arange(px.shape[0])
    best = d0
    for it in range(4):
        t = lo[:, None] + (hi - lo)[:, None] * u[None]
        ft = f(t)
        dd = np.hypot(t - px[:, None], ft - py[:, None])
        j = np.argmin(dd, axis=1)
        best = np.minimum(best, dd[rows, j])
        if it == 3:
            # the nearest chords of the finest samples (their sagitta is negligible here)
            v = np.stack((t[rows, j], ft[rows, j]), axis=1)
            for jj in (np.maximum(j - 1, 0), np.minimum(j + 1, n - 1)):
                w = np.stack((t[rows, jj], ft[rows, jj]), axis=1)
                best = np.minimum(best, _segment_distance(pts, v, w - v))
        step = (hi - lo) / (n - 1)
        lo, hi = np.maximum(t[rows, j] - 2 * step, x_min), t[rows, j] + 2 * step
    return best


def _min_over_lines(points: np.ndarray, lines: Sequence[np.ndarray]) -> np.ndarray:
    lines = [ln for ln in lines if ln.shape[0] >= 2]
    if not lines:
        return np.full(points.shape[0], np.inf)
    a = np.vstack([ln[:-1] for ln in lines])
    ab = np.vstack([ln[1:] - ln[:-1] for ln in lines])
    return _segments_distance(points, a, ab)


# --------------------------------------------------------------------------------------------
# The network's own level sets
# --------------------------------------------------------------------------------------------


@dataclass
class ContourSet:
    """A model sampled on a fine grid, for marching-squares level sets and band areas.

    Attributes
    ----------
    xs, ys : numpy.ndarray
        Grid axes.
    z : numpy.ndarray
        ``z[i, j] = N(xs[j], ys[i])``.
    box : tuple
        ``((x_lo, y_lo), (x_hi, y_hi))``.
    """

    xs: np.ndarray
    ys: np.ndarray
    z: np.ndarray
    box: Box

    @classmethod
    def from_model(cls, model: Any, box: Box, resolution: int = 1201) -> ContourSet:
        """Evaluate ``model`` (2 inputs, scalar output) on a ``resolution``-square grid.

        Parameters
        ----------
        model : callable
            The network.
        box : tuple
            ``((x_lo, y_lo), (x_hi, y_hi))``.
        resolution : int
            Grid points per axis.

        Returns
        -------
        ContourSet
            The sampled model.
        """
        xs, ys, z = evaluate_grid(model, box[0], box[1], resolution)
        return cls(xs, ys, z, box)

    @property
    def spacing(self) -> float:
        """Largest grid spacing."""
        return float(max(self.xs[1] - self.xs[0], self.ys[1] - self.ys[0]))

    def lines(self, level: float) -> list[np.ndarray]:
        """Polylines of the level set ``N = level`` (marching squares, linear interpolation).

        Parameters
        ----------
        level : float
            Output level.

        Returns
        -------
        list of numpy.ndarray
            One ``(M, 2)`` array per connected piece.
        """
        gen = self.__dict__.get("_generator")
        if gen is None:
            import contourpy

            gen = contourpy.contour_generator(self.xs, self.ys, self.z, line_type="Separate")
            self.__dict__["_generator"] = gen
        return [np.asarray(seg, dtype=np.float64) for seg in gen.lines(float(level))]

    def distance(self, points: np.ndarray, level: float) -> np.ndarray:
        """Distance from each point to the level set ``N = level`` (every piece of it).

        Parameters
        ----------
        points : numpy.ndarray
            ``(K, 2)`` points.
        level : float
            Output level.

        Returns
        -------
        numpy.ndarray
            ``(K,)`` distances (inf when the level does not occur on the grid).
        """
        return _min_over_lines(np.asarray(points).reshape(-1, 2), self.lines(level))

    def floor(
        self, model: Any, level: float, gradient: Callable[[np.ndarray], np.ndarray]
    ) -> float:
        """Resolution of the contours: ``max |N(v) - level| / |grad N(v)|`` over their vertices.

        A first-order estimate of how far the marching-squares vertices are from the true level
        set; distances to the contours below this are at the grid's resolution.

        Parameters
        ----------
        model : callable
            The network (batch of points to outputs).
        level : float
            Output level.
        gradient : callable
            ``gradient(points) -> (K, 2)`` gradients of the network.

        Returns
        -------
        float
            The estimate (nan when the level is not on the grid).
        """
        lines = self.lines(level)
        if not lines:
            return float("nan")
        verts = subsample(np.vstack(lines), 4000)
        with torch.no_grad():
            vals = model(torch.from_numpy(verts)).reshape(-1).to(torch.float64).numpy()
        g = np.linalg.norm(gradient(verts), axis=1)
        return float(np.max(np.abs(vals - level) / np.maximum(g, 1e-300)))

    def band_area(self, lo: float, hi: float, region: Box | None = None) -> float:
        """Area of ``{x in region : lo <= N(x) <= hi}`` by counting grid cells.

        Parameters
        ----------
        lo, hi : float
            Output interval.
        region : tuple, optional
            Sub-box to measure in (default: the whole grid box).

        Returns
        -------
        float
            The area (cell-count estimate, error of order the boundary length times the
            spacing).
        """
        return band_area(self.xs, self.ys, self.z, lo, hi, region)


def band_area(
    xs: np.ndarray,
    ys: np.ndarray,
    z: np.ndarray,
    lo: float,
    hi: float,
    region: Box | None = None,
) -> float:
    """Area of ``{lo <= z <= hi}`` on a regular grid (each node stands for one cell).

    Parameters
    ----------
    xs, ys : numpy.ndarray
        Grid axes.
    z : numpy.ndarray
        Values, ``z[i, j]`` at ``(xs[j], ys[i])``.
    lo, hi : float
        Interval.
    region : tuple, optional
        ``((x_lo, y_lo), (x_hi, y_hi))`` to restrict to.

    Returns
    -------
    float
        The area.
    """
    dx, dy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    mask = (z >= lo) & (z <= hi)
    if region is not None:
        (x0, y0), (x1, y1) = region
        inside_x = (xs >= x0 - 1e-12) & (xs <= x1 + 1e-12)
        inside_y = (ys >= y0 - 1e-12) & (ys <= y1 + 1e-12)
        mask = mask & inside_y[:, None] & inside_x[None, :]
    return float(mask.sum()) * dx * dy


def model_gradient(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Batched gradient of a scalar-output model, as a NumPy function.

    Parameters
    ----------
    model : callable
        Maps ``(B, 2)`` float64 tensors to ``(B, 1)`` (or ``(B,)``).

    Returns
    -------
    callable
        ``f(points (K, 2)) -> (K, 2)`` gradients.
    """

    def grad(points: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float64)).requires_grad_(True)
        with torch.enable_grad():
            y = model(x).reshape(-1).sum()
            (g,) = torch.autograd.grad(y, x)
        return g.detach().numpy()

    return grad


# --------------------------------------------------------------------------------------------
# Analytic classes (model error)
# --------------------------------------------------------------------------------------------


class AnalyticCurve(Protocol):
    """A curve known in closed form: the true class or boundary."""

    label: str

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Distance of each point ``(K, 2)`` to the curve."""
        ...

    def polyline(self, box: Box, n: int = 2000) -> np.ndarray:
        """Vertices of the curve inside (or near) ``box``, for plots."""
        ...


@dataclass(frozen=True)
class Circle:
    """The circle ``|x| = radius`` (classes of ``exp(x^2 + y^2 - 2)``)."""

    radius: float
    label: str = "circle"

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Exact distance ``| |x| - radius |`` of each point.

        Parameters
        ----------
        points : numpy.ndarray
            ``(K, 2)`` points.

        Returns
        -------
        numpy.ndarray
            ``(K,)`` distances.
        """
        return np.abs(np.linalg.norm(np.asarray(points).reshape(-1, 2), axis=1) - self.radius)

    def polyline(self, box: Box, n: int = 2000) -> np.ndarray:
        """The closed circle as ``n`` vertices (the first repeated at the end).

        Parameters
        ----------
        box : tuple
            Unused (the circle is drawn whole).
        n : int
            Vertices.

        Returns
        -------
        numpy.ndarray
            ``(n + 1, 2)`` vertices.
        """
        t = np.linspace(0.0, 2.0 * math.pi, n + 1)
        return self.radius * np.column_stack((np.cos(t), np.sin(t)))


@dataclass(frozen=True)
class Parabola:
    """The parabola ``y = c - x^2`` (classes of ``exp(x^2 + y - 2)``)."""

    c: float
    label: str = "parabola"

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Exact distance to the parabola (real roots of the normal-equation cubic).

        The foot point ``(t, c - t^2)`` of ``(p, q)`` solves ``2 t^3 + (1 - 2 (c - q)) t - p = 0``;
        every real root is tried.

        Parameters
        ----------
        points : numpy.ndarray
            ``(K, 2)`` points.

        Returns
        -------
        numpy.ndarray
            ``(K,)`` distances.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        p, q = pts[:, 0], pts[:, 1]
        k = pts.shape[0]
        # companion matrices of t^3 + a t + b with a = (1 - 2 (c - q)) / 2, b = -p / 2
        a = 0.5 * (1.0 - 2.0 * (self.c - q))
        b = -0.5 * p
        comp = np.zeros((k, 3, 3))
        comp[:, 1, 0] = 1.0
        comp[:, 2, 1] = 1.0
        comp[:, 0, 2] = -b
        comp[:, 1, 2] = -a
        roots = np.linalg.eigvals(comp)  # (K, 3) complex
        t = roots.real
        ok = np.abs(roots.imag) <= 1e-7 * (1.0 + np.abs(roots.real))
        d2 = (t - p[:, None]) ** 2 + (self.c - t**2 - q[:, None]) ** 2
        d2 = np.where(ok, d2, np.inf)
        # polish the best root with Newton steps on the cubic
        best = t[np.arange(k), np.argmin(d2, axis=1)]
        for _ in range(3):
            f = 2 * best**3 + (1 - 2 * (self.c - q)) * best - p
            df = 6 * best**2 + (1 - 2 * (self.c - q))
            best = best - f / np.where(df == 0, 1.0, df)
        d_best = np.hypot(best - p, self.c - best**2 - q)
        return np.minimum(np.sqrt(d2.min(axis=1)), d_best)

    def polyline(self, box: Box, n: int = 2000) -> np.ndarray:
        """The parabola over the box's x-range.

        Parameters
        ----------
        box : tuple
            ``((x_lo, y_lo), (x_hi, y_hi))``.
        n : int
            Vertices.

        Returns
        -------
        numpy.ndarray
            ``(n, 2)`` vertices.
        """
        x = np.linspace(box[0][0], box[1][0], n)
        return np.column_stack((x, self.c - x * x))


@dataclass(frozen=True)
class Isotherm:
    """The isotherm ``P V = R T`` in the network's normalised coordinates.

    ``v = (V - V_lo) / (V_hi - V_lo)``, ``p = (P - P_lo) / (P_hi - P_lo)``.
    """

    T: float
    V_range: tuple[float, float]
    P_range: tuple[float, float]
    R: float = 8.314
    label: str = "isotherm"

    def p_of_v(self, v: np.ndarray) -> np.ndarray:
        """Normalised pressure on the isotherm at normalised volume ``v``.

        Parameters
        ----------
        v : numpy.ndarray
            Normalised volumes.

        Returns
        -------
        numpy.ndarray
            Normalised pressures.
        """
        (v0, v1), (p0, p1) = self.V_range, self.P_range
        V = v0 + np.asarray(v, dtype=np.float64) * (v1 - v0)
        return (self.R * self.T / V - p0) / (p1 - p0)

    def polyline(self, box: Box, n: int = 2000) -> np.ndarray:
        """The isotherm over the box's v-range (where the volume is positive).

        Parameters
        ----------
        box : tuple
            ``((v_lo, p_lo), (v_hi, p_hi))``.
        n : int
            Vertices.

        Returns
        -------
        numpy.ndarray
            ``(n, 2)`` vertices.
        """
        (v0, v1) = self.V_range
        v_min = max(box[0][0], (-v0 / (v1 - v0)) + 1e-3)
        v = np.linspace(v_min, box[1][0], n)
        return np.column_stack((v, self.p_of_v(v)))

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Distance (normalised coordinates) to the isotherm (see :func:`graph_distance`).

        Parameters
        ----------
        points : numpy.ndarray
            ``(K, 2)`` normalised points.

        Returns
        -------
        numpy.ndarray
            ``(K,)`` distances.
        """
        (v0, v1) = self.V_range
        return graph_distance(points, self.p_of_v, x_min=-v0 / (v1 - v0) + 1e-9)

    def pv(self, points: np.ndarray) -> np.ndarray:
        """``P V`` in joules at normalised points.

        Parameters
        ----------
        points : numpy.ndarray
            ``(K, 2)`` normalised ``(v, p)``.

        Returns
        -------
        numpy.ndarray
            ``(K,)`` products ``P V``.
        """
        return pv_values(points, self.V_range, self.P_range)


@dataclass(frozen=True)
class SineCurve:
    """The curve ``y = amplitude * sin x`` (the classifier's true decision boundary)."""

    amplitude: float = 0.5
    label: str = "y = 0.5 sin x"

    def polyline(self, box: Box, n: int = 4000) -> np.ndarray:
        """The curve over the box's x-range.

        Parameters
        ----------
        box : tuple
            ``((x_lo, y_lo), (x_hi, y_hi))``.
        n : int
            Vertices.

        Returns
        -------
        numpy.ndarray
            ``(n, 2)`` vertices.
        """
        x = np.linspace(box[0][0], box[1][0], n)
        return np.column_stack((x, self.amplitude * np.sin(x)))

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Distance to the curve (see :func:`graph_distance`).

        Parameters
        ----------
        points : numpy.ndarray
            ``(K, 2)`` points.

        Returns
        -------
        numpy.ndarray
            ``(K,)`` distances.
        """
        return graph_distance(points, lambda x: self.amplitude * np.sin(x))

    def above(self, points: np.ndarray) -> np.ndarray:
        """True where a point lies above the curve (true label 1).

        Parameters
        ----------
        points : numpy.ndarray
            ``(K, 2)`` points.

        Returns
        -------
        numpy.ndarray
            ``(K,)`` booleans.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return pts[:, 1] > self.amplitude * np.sin(pts[:, 0])


# --------------------------------------------------------------------------------------------
# Shape measures
# --------------------------------------------------------------------------------------------


def closure_gap(points: np.ndarray, start: np.ndarray, closed: bool = False) -> float:
    """How far a trace of a closed class misses its start after going round once.

    The trace is cut where it is farthest from the start; the gap is the distance from the
    start to the polyline after that point (segments, not just vertices). A loop that the
    tracer closed itself (``closed=True``) ends with the segment back to the start: gap 0.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` points in tracing order (start included or not).
    start : numpy.ndarray
        The start point.
    closed : bool
        The tracer reported a closed loop.

    Returns
    -------
    float
        The gap; ``nan`` when the trace never comes back towards the start.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(start, dtype=np.float64).reshape(2)
    if closed:
        return 0.0
    d = np.linalg.norm(pts - s, axis=1)
    far = int(np.argmax(d))
    tail = pts[far:]
    if tail.shape[0] < 2 or d[-1] >= 0.5 * d[far]:
        return float("nan")
    return float(point_to_polyline(s[None], tail)[0])


def turns(points: np.ndarray, start_index: int, center: Any = (0.0, 0.0)) -> float:
    """How many times a curve winds around ``center``, counted from its start both ways.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` points along the curve.
    start_index : int
        Row of the start (the two branches are counted separately and added).
    center : array-like
        Centre of the winding.

    Returns
    -------
    float
        Total ``|angle swept| / (2 pi)``.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) - np.asarray(center)
    ang = np.unwrap(np.arctan2(pts[:, 1], pts[:, 0]))
    sweep = abs(ang[-1] - ang[start_index]) + abs(ang[start_index] - ang[0])
    return float(sweep / (2.0 * math.pi))


def box_exits(points: np.ndarray, box: Box, tol: float = 1e-9) -> list[tuple[float, float]]:
    """Where a polyline leaves a box: the crossing points of its segments with the faces.

    A trace that ends on a face (stopped at the boundary) counts as an exit at its end point.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` points.
    box : tuple
        ``((x_lo, y_lo), (x_hi, y_hi))``.
    tol : float
        Distance from a face that counts as on it.

    Returns
    -------
    list of tuple
        Exit points in order along the polyline (end points on a face included).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo, hi = np.asarray(box[0]), np.asarray(box[1])
    inside = np.all((pts >= lo - tol) & (pts <= hi + tol), axis=1)
    exits: list[tuple[float, float]] = []
    for end in (0, pts.shape[0] - 1):
        p = pts[end]
        if inside[end] and (np.any(np.abs(p - lo) <= tol) or np.any(np.abs(p - hi) <= tol)):
            exits.append((float(p[0]), float(p[1])))
    for k in np.nonzero(inside[:-1] != inside[1:])[0]:
        a, b = pts[k], pts[k + 1]
        if not inside[k]:
            a, b = b, a
        # largest t in [0, 1] with a + t (b - a) inside
        t = 1.0
        for dim in range(2):
            d = b[dim] - a[dim]
            if d > 0 and b[dim] > hi[dim]:
                t = min(t, (hi[dim] - a[dim]) / d)
            if d < 0 and b[dim] < lo[dim]:
                t = min(t, (lo[dim] - a[dim]) / d)
        p = a + t * (b - a)
        exits.append((float(p[0]), float(p[1])))
    return exits


def pv_values(
    points: np.ndarray, V_range: tuple[float, float], P_range: tuple[float, float]
) -> np.ndarray:
    """``P V`` (joules) at normalised ``(v, p)`` points.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` normalised points.
    V_range, P_range : tuple of float
        The normalisation ranges.

    Returns
    -------
    numpy.ndarray
        ``(K,)`` products.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    (v0, v1), (p0, p1) = V_range, P_range
    return (v0 + pts[:, 0] * (v1 - v0)) * (p0 + pts[:, 1] * (p1 - p0))


def pv_spread(
    points: np.ndarray, V_range: tuple[float, float], P_range: tuple[float, float]
) -> float:
    """Relative spread of ``P V`` along a traced isotherm: ``(max - min) / mean``.

    On an exact isotherm ``P V = R T`` is constant, so this is the model error (plus any drift)
    expressed in physical terms.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` normalised points.
    V_range, P_range : tuple of float
        The normalisation ranges.

    Returns
    -------
    float
        The relative spread.
    """
    pv = pv_values(points, V_range, P_range)
    return float((pv.max() - pv.min()) / pv.mean())


def correct_side_fraction(points: np.ndarray, outputs: np.ndarray, curve: SineCurve) -> float:
    """Fraction of points that the classifier puts on the same side as the truth.

    A point is correct when ``N(x) > 0.5`` exactly where it lies above ``y = a sin x``.

    Parameters
    ----------
    points : numpy.ndarray
        ``(K, 2)`` points.
    outputs : numpy.ndarray
        ``(K,)`` network outputs there.
    curve : SineCurve
        The true decision boundary.

    Returns
    -------
    float
        The fraction in ``[0, 1]``.
    """
    pred = np.asarray(outputs, dtype=np.float64).reshape(-1) > 0.5
    return float(np.mean(pred == curve.above(points)))
