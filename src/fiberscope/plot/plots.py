"""Figures of results. Built on ``matplotlib.figure.Figure`` (no pyplot state): they display in
notebooks and save from scripts without a display.

Every element is drawn in two tones of very different lightness (a coloured line with a
white or black halo, markers with a contrasting edge), so it is visible on any background:
white paper, a dark or a bright heat map; legend entries show the same two tones. Inputs with
two coordinates are drawn over a heat map of the model, three in 3-D, and more as pairwise
projections of the first four coordinates (labelled as such).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import patheffects
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ..geometry.grid import evaluate_grid
from ..io.atomic import atomic_write, check_writable
from .images import confusion_figure, image_grid, image_shape

if TYPE_CHECKING:
    from ..algorithms.results import (
        BoundaryWalkResult,
        ExploreResult,
        PreimageResult,
        SampleResult,
        TraceResult,
        WalkResult,
    )

#: Colour of a traced class.
CLASS_COLOR = "#d62728"
#: Colour of paths across classes.
PATH_COLOR = "#111111"
_BAND = "#a8dcd4"


# ---------------------------------------------------------------- two-tone styles
def luminance(color: Any) -> float:
    """Relative luminance (0 black .. 1 white) of a matplotlib colour."""
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_color(color: Any) -> str:
    """White for dark colours, black for light ones."""
    return "white" if luminance(color) < 0.5 else "black"


def line_style(color: Any, lw: float = 1.8, ls: str = "-") -> dict[str, Any]:
    """Keyword arguments of a line with a halo in the contrasting tone."""
    return {
        "color": color,
        "lw": lw,
        "ls": ls,
        "path_effects": [
            patheffects.withStroke(linewidth=lw + 2.4, foreground=contrast_color(color)),
        ],
    }


def marker_style(marker: str, face: Any, ms: float = 7.0) -> dict[str, Any]:
    """Keyword arguments of a marker with an edge in the contrasting tone."""
    return {
        "marker": marker,
        "ls": "none",
        "mfc": face,
        "mec": contrast_color(face),
        "mew": 1.1,
        "ms": ms,
    }


START = marker_style("o", "white", 7.5)
END = marker_style("*", "gold", 12.0)
STOP = marker_style("s", "gold", 6.5)


def _halo_contours(cs: Any, color: str = "black") -> None:
    cs.set_path_effects([patheffects.withStroke(linewidth=2.6, foreground=contrast_color(color))])


# ---------------------------------------------------------------- n-D figures
@dataclass
class _Layer:
    """Points to draw in a 3-D or projected figure."""

    points: np.ndarray
    style: dict[str, Any]
    label: str | None = None


@dataclass
class _Scene:
    layers: list[_Layer] = field(default_factory=list)

    def line(self, pts: np.ndarray, color: Any, label: str | None = None, **kw: Any) -> None:
        self.layers.append(_Layer(pts, line_style(color, **kw), label))

    def mark(self, pts: np.ndarray, style: dict[str, Any], label: str | None = None) -> None:
        self.layers.append(_Layer(np.atleast_2d(pts), style, label))


def _draw_scene(scene: _Scene, n: int, title: str, colorbar: Any = None) -> Figure:
    """3-D axes for n = 3; pairwise projections of the first four coordinates otherwise."""
    if n == 3:
        import mpl_toolkits.mplot3d  # noqa: F401  (registers the 3-D projection)

        fig = Figure(figsize=(7.0, 6.0), layout="constrained")
        ax = fig.add_subplot(projection="3d")
        for layer in scene.layers:
            p = layer.points
            ax.plot(p[:, 0], p[:, 1], p[:, 2], label=layer.label, **layer.style)
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
        ax.set_zlabel("x2")
        ax.legend(loc="upper left", fontsize=7, framealpha=0.85)
        ax.set_title(title, fontsize=9)
        if colorbar is not None:
            fig.colorbar(colorbar[0], ax=ax, label=colorbar[1], shrink=0.7)
        return fig
    k = min(n, 4)
    pairs: list[tuple[int | None, int]] = list(combinations(range(k), 2)) if k >= 2 else [(None, 0)]
    cols = min(3, len(pairs))
    rows = (len(pairs) + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols + 0.6, 3.4 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for a, (i, j) in zip(axes, pairs, strict=False):
        for layer in scene.layers:
            p = layer.points
            xs = np.arange(p.shape[0]) if i is None else p[:, i]
            a.plot(xs, p[:, j], label=layer.label, **layer.style)
        a.set_xlabel("point index" if i is None else f"x{i}")
        a.set_ylabel(f"x{j}")
    for a in axes[len(pairs) :]:
        a.set_visible(False)
    axes[0].legend(loc="best", fontsize=7, framealpha=0.85)
    if colorbar is not None:
        fig.colorbar(colorbar[0], ax=list(axes[: len(pairs)]), label=colorbar[1], shrink=0.8)
    what = (
        f"projections on pairs of x0..x{k - 1} ({n} input coordinates)"
        if n > 2
        else "the single input coordinate"
    )
    fig.suptitle(f"{title}\n{what}", fontsize=9)
    return fig


# ---------------------------------------------------------------- 2-D helpers
def _flat(t: Any, n: int | None = None) -> np.ndarray:
    a = t.detach().cpu().double().numpy() if hasattr(t, "detach") else np.asarray(t, float)
    return a.reshape(a.shape[0], -1) if n is None else a.reshape(-1, n)


def _points_box(
    points: np.ndarray, bounds: Any, pad: float = 0.15
) -> tuple[list[float], list[float]]:
    if bounds:
        return [float(v) for v in bounds[0]], [float(v) for v in bounds[1]]
    lo, hi = points.min(0), points.max(0)
    span = np.maximum(hi - lo, 1e-3)
    return (lo - pad * span).tolist(), (hi + pad * span).tolist()


def _new_axes(ax: Any, size: tuple[float, float] = (6.4, 5.2)) -> tuple[Figure, Any]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _heat(
    fig: Figure,
    ax: Any,
    model: Any,
    lo: list[float],
    hi: list[float],
    resolution: int,
    output: Any = None,
    cmap: str = "viridis",
    alpha: float = 1.0,
    label: str = "N(x)",
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if model is None:
        return None
    xs, ys, z = evaluate_grid(model, lo, hi, resolution, output=output)
    xs, ys, z = xs.numpy(), ys.numpy(), z.numpy()
    im = ax.pcolormesh(xs, ys, z, shading="auto", cmap=cmap, alpha=alpha)
    fig.colorbar(im, ax=ax, label=label if output is None else "selected output", shrink=0.85)
    return xs, ys, z


def _level_lines(ax: Any, grid: Any, levels: Sequence[float], label: str | None) -> None:
    xs, ys, z = grid
    lv = sorted(set(levels))
    if len(lv) > 1 and lv[0] >= lv[-1]:
        return
    cs = ax.contour(xs, ys, z, levels=lv, colors="black", linewidths=0.9, linestyles="--")
    _halo_contours(cs)
    if label:
        ax.plot([], [], label=label, **line_style("black", 0.9, "--"))


def _finish_2d(ax: Any, lo: list[float], hi: list[float], title: str) -> None:
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    ax.set_title(title, fontsize=9)


def overlay_curve(
    ax: Any, points: Any, *, color: Any = "black", lw: float = 1.2, ls: str = "-", label: str = ""
) -> None:
    """Draw another curve (e.g. a paper-mode trace) on a 2-D figure, visible on any background.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes.
    points : array-like or torch.Tensor
        ``(K, 2)`` points.
    color : colour
        Line colour (the halo takes the contrasting tone).
    lw : float
        Line width.
    ls : str
        Line style.
    label : str
        Legend label.
    """
    p = _flat(points, 2)
    ax.plot(p[:, 0], p[:, 1], label=label or None, **line_style(color, lw, ls))


# ---------------------------------------------------------------- traces
def _default_title(result: TraceResult) -> str:
    reasons = ", ".join(f"{k}: {v}" for k, v in result.stop_reasons.items())
    return (
        f"{result.method}: {len(result)} points, length {result.length:.4g}, "
        f"drift {result.drift:.2e} ({reasons})"
    )


def plot_trace(
    result: TraceResult,
    model: Any = None,
    *,
    ax: Any = None,
    resolution: int = 200,
    title: str | None = None,
    label: str | None = None,
    color: Any = CLASS_COLOR,
    output: Any = None,
) -> Figure:
    """Plot a traced class.

    Two input coordinates: the class over a heat map of the model (when ``model`` is given),
    its level dashed, the start and the stop points marked. Three: the class in 3-D. More:
    pairwise projections of the first four coordinates.

    Parameters
    ----------
    result : TraceResult
        The trace.
    model : callable, optional
        The network, for the heat map (2-D inputs); any dtype and device.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes instead of a new figure (2-D inputs only).
    resolution : int
        Heat-map grid points per axis.
    title : str, optional
        Figure title.
    label : str, optional
        Legend label of the class.
    color : colour
        Colour of the class curve (drawn with a halo of the contrasting tone).
    output : callable, optional
        Output map for the heat map (the selection the class was traced with).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    pts = _flat(result.points)
    n = pts.shape[1]
    xy = np.concatenate((pts, pts[:1])) if result.closed else pts
    stops = [
        np.asarray(result.stop_points[name], float).reshape(-1)
        for name, reason in result.stop_reasons.items()
        if reason in ("boundary", "singular") and result.stop_points.get(name) is not None
    ]
    cls_label = label or f"class ({result.method})"
    if n != 2:
        scene = _Scene()
        scene.line(xy, color, cls_label)
        scene.mark(pts[result.start_index], START, "start")
        if stops:
            scene.mark(np.vstack(stops), STOP, "stop (box or singular)")
        return _draw_scene(scene, n, title or _default_title(result))
    fig, ax = _new_axes(ax, (6.2, 5.2))
    lo, hi = _points_box(pts, result.options.get("bounds"))
    grid = _heat(fig, ax, model, lo, hi, resolution, output)
    if grid is not None:
        _level_lines(ax, grid, [float(result.y0.reshape(-1)[0])], "level of x0 (model grid)")
    ax.plot(xy[:, 0], xy[:, 1], label=cls_label, **line_style(color, 1.8))
    s = pts[result.start_index]
    ax.plot([s[0]], [s[1]], label="start", **START)
    if stops:
        p = np.vstack(stops)
        ax.plot(p[:, 0], p[:, 1], label="stop (box or singular)", **STOP)
    _finish_2d(ax, lo, hi, title or _default_title(result))
    return fig


# ---------------------------------------------------------------- walks across classes
def plot_explore(
    result: ExploreResult,
    model: Any = None,
    *,
    ax: Any = None,
    resolution: int = 200,
    output: Any = None,
    title: str | None = None,
    zoom: bool = False,
) -> Figure:
    """Plot an exploration path across classes.

    2-D inputs: the path over a heat map of the model with the start's and the end's levels
    dashed; 3-D inputs in 3-D; more as pairwise projections.

    Parameters
    ----------
    result : ExploreResult
        The path.
    model : callable, optional
        The network (heat map and level lines).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (2-D inputs).
    resolution : int
        Heat-map grid points per axis.
    output : callable, optional
        Output map for the heat map.
    title : str, optional
        Title.
    zoom : bool
        Frame the path instead of the whole box.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    pts = _flat(result.points)
    n = pts.shape[1]
    default = (
        f"explore ({result.method}): N {float(result.y0.reshape(-1)[0]):.6g} -> "
        f"{float(result.end_output.reshape(-1)[0]):.6g}, length {result.length:.4g}, "
        f"{result.stop_reason}"
    )
    label = f"path ({result.method})"
    if n != 2:
        scene = _Scene()
        scene.line(pts, PATH_COLOR, label)
        scene.mark(pts[0], START, "start")
        scene.mark(pts[-1], END, "end")
        return _draw_scene(scene, n, title or default)
    fig, ax = _new_axes(ax)
    lo, hi = _points_box(pts, None if zoom else result.options.get("bounds"))
    grid = _heat(fig, ax, model, lo, hi, resolution, output)
    if grid is not None:
        _level_lines(
            ax,
            grid,
            [float(result.y0.reshape(-1)[0]), float(result.end_output.reshape(-1)[0])],
            "levels of the start and the end",
        )
    ax.plot(pts[:, 0], pts[:, 1], label=label, **line_style(PATH_COLOR, 1.4))
    ax.plot([pts[0, 0]], [pts[0, 1]], label="start", **START)
    ax.plot([pts[-1, 0]], [pts[-1, 1]], label="end", **END)
    _finish_2d(ax, lo, hi, title or default)
    return fig


def plot_preimage(
    result: PreimageResult,
    model: Any = None,
    *,
    ax: Any = None,
    resolution: int = 200,
    output: Any = None,
    title: str | None = None,
    cmap: str = "plasma",
) -> Figure:
    """Plot a preimage: the band shaded, every traced level coloured by its output, the path.

    Parameters
    ----------
    result : PreimageResult
        The preimage.
    model : callable, optional
        The network (a grey heat map underneath, 2-D inputs).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (2-D inputs).
    resolution : int
        Heat-map grid points per axis.
    output : callable, optional
        Output map for the heat map.
    title : str, optional
        Title.
    cmap : str
        Colour map of the levels.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    path = _flat(result.path)
    n = path.shape[1]
    lv = result.levels[:, 0].cpu().numpy()
    norm = Normalize(
        vmin=float(lv.min()), vmax=float(lv.max()) if lv.max() > lv.min() else lv.min() + 1
    )
    cm = colormaps[cmap]
    reg = result.region
    a, b = float(result.interval[0, 0]), float(result.interval[1, 0])
    default = f"preimage of [{a:.6g}, {b:.6g}] ({result.method}): {len(result)} levels" + (
        f", area {reg.area:.5g}" if reg is not None else ""
    )
    lw = 1.0 if result.method == "paper" else 1.4
    x0 = result.options.get("x0")
    levels = []
    for k, tr in enumerate(result.traces):
        p = _flat(tr.points)
        levels.append((np.vstack((p, p[:1])) if tr.closed else p, cm(norm(lv[k]))))
    if n != 2:
        scene = _Scene()
        for k, (p, c) in enumerate(levels):
            scene.line(p, c, "traced levels" if k == 0 else None, lw=lw)
        scene.line(path, PATH_COLOR, "exploration path", lw=1.4)
        if x0 is not None:
            scene.mark(np.asarray(x0, float).reshape(-1), START, "start")
        return _draw_scene(
            scene, n, title or default, (ScalarMappable(norm=norm, cmap=cm), "level N(x)")
        )
    fig, ax = _new_axes(ax, (6.8, 5.4))
    allpts = np.vstack([p for p, _ in levels] + [path])
    lo, hi = _points_box(allpts, result.options.get("bounds"))
    if model is not None:
        xs, ys, z = evaluate_grid(model, lo, hi, resolution, output=output)
        ax.pcolormesh(xs.numpy(), ys.numpy(), z.numpy(), shading="auto", cmap="Greys", alpha=0.45)
    if reg is not None:
        ax.contourf(
            reg.xs,
            reg.ys,
            reg.mask.astype(float),
            levels=[0.5, 1.5],
            colors=["#2a9d8f"],
            alpha=0.30,
        )
        ax.plot([], [], label=f"band, area {reg.area:.5g}", **line_style(_BAND, 5.0))
    for k, (p, c) in enumerate(levels):
        ax.plot(p[:, 0], p[:, 1], label="traced levels" if k == 0 else None, **line_style(c, lw))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cm), ax=ax, label="level N(x)", shrink=0.85)
    ax.plot(path[:, 0], path[:, 1], label="exploration path", **line_style(PATH_COLOR, 1.6))
    if x0 is not None:
        ax.plot([x0[0]], [x0[1]], label="start", **START)
    _finish_2d(ax, lo, hi, title or default)
    return fig


def plot_samples(
    result: SampleResult,
    model: Any = None,
    *,
    ax: Any = None,
    resolution: int = 200,
    output: Any = None,
    title: str | None = None,
) -> Figure:
    """Plot class samples on their traced class (2-D over a heat map, 3-D in 3-D).

    Parameters
    ----------
    result : SampleResult
        The samples.
    model : callable, optional
        The network.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (2-D inputs).
    resolution : int
        Heat-map grid points per axis.
    output : callable, optional
        Output map for the heat map.
    title : str, optional
        Title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    pts = _flat(result.points)
    n = pts.shape[1]
    tr = _flat(result.trace.points)
    loop = np.vstack((tr, tr[:1])) if result.closed else tr
    default = (
        f"{len(result)} samples along the class, spacing {result.spacing:.4g}, "
        f"residual {result.residual:.1e}"
    )
    samples = marker_style("o", "gold", 5.0)
    if n != 2:
        scene = _Scene()
        scene.line(loop, CLASS_COLOR, "class", lw=1.2)
        scene.mark(pts, samples, "samples")
        return _draw_scene(scene, n, title or default)
    fig, ax = _new_axes(ax)
    lo, hi = _points_box(pts, result.options.get("bounds"))
    _heat(fig, ax, model, lo, hi, resolution, output)
    ax.plot(loop[:, 0], loop[:, 1], label="class", **line_style(CLASS_COLOR, 1.2))
    ax.plot(pts[:, 0], pts[:, 1], label="samples", **samples)
    _finish_2d(ax, lo, hi, title or default)
    return fig


def plot_boundary_walk(
    result: BoundaryWalkResult,
    model: Any = None,
    *,
    ax: Any = None,
    resolution: int = 300,
    output: Any = None,
    title: str | None = None,
    zoom: bool = True,
) -> Figure:
    """Plot a decision-boundary walk: the boundary, the path across it, the closest point.

    Two panels for 2-D inputs: the whole box with the boundary, and a zoom on the path;
    3-D inputs in 3-D; more as pairwise projections.

    Parameters
    ----------
    result : BoundaryWalkResult
        The walk.
    model : callable, optional
        The classifier (heat map of the score and the boundary line).
    ax : matplotlib.axes.Axes, optional
        Draw only the zoomed panel into this axes.
    resolution : int
        Heat-map grid points per axis.
    output : callable, optional
        Output map (the score) for the heat map.
    title : str, optional
        Title.
    zoom : bool
        Add the zoomed panel.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    path = result.path
    pts = _flat(path.points)
    n = pts.shape[1]
    default = (
        f"decision {result.decision_start} -> {result.decision_flip}: boundary at distance "
        f"{result.boundary_distance:.4g} (path), closest {result.closest_distance:.4g}"
    )
    if not result.complete:
        default = "interrupted: " + default
    # a partial walk (interrupted before the boundary) has no boundary or closest point yet
    bp, cp = result.boundary_point, result.closest_point
    b = None if bp is None else bp.reshape(-1).cpu().numpy()
    c = None if cp is None else cp.reshape(-1).cpu().numpy()
    k = pts.shape[0] - 1 if result.boundary_index is None else result.boundary_index
    to_boundary, past = pts[: k + 1], pts[k:]
    boundary_pt = marker_style("s", "yellow", 6.0)
    closest_pt = marker_style("D", "cyan", 5.5)
    flipped = {**END, "ms": 11.0}
    flip_label = f"flipped (N = {result.flip_output:.3g})"
    if result.decision_flip is None and not result.complete:
        flip_label = f"where it was interrupted (N = {result.flip_output:.3g})"
    if n != 2:
        scene = _Scene()
        scene.line(to_boundary, "darkgreen", "path to the boundary", lw=1.3)
        scene.line(past, "purple", "past it", lw=1.3)
        scene.mark(pts[0], START, "start")
        if b is not None:
            scene.mark(b, boundary_pt, "boundary point")
        if c is not None:
            scene.mark(c, closest_pt, "closest boundary point")
        scene.mark(pts[-1], flipped, flip_label)
        return _draw_scene(scene, n, title or default)
    if ax is not None:
        fig, axes = ax.figure, [ax]
    else:
        fig = Figure(figsize=(11.5 if zoom else 6.4, 5.0), layout="constrained")
        axes = list(fig.subplots(1, 2)) if zoom else [fig.add_subplot()]
    frames = []
    bounds = result.options.get("bounds")
    if ax is None:
        frames.append(_points_box(pts, bounds) if bounds else _points_box(pts, None, pad=8.0))
    if zoom or ax is not None:
        span = max(float(np.abs(pts - pts[0]).max()), 1e-9)
        frames.append(
            (
                [pts[0, 0] - 1.6 * span, pts[0, 1] - 1.6 * span],
                [pts[0, 0] + 1.6 * span, pts[0, 1] + 1.6 * span],
            )
        )
    if ax is not None:
        names = [title or default]
    else:
        names = ["the decision boundary in the box", "zoom on the walk"][: len(frames)]
    from matplotlib.ticker import MaxNLocator

    for a, (lo, hi), name in zip(axes, frames, names, strict=False):
        grid = _heat(fig, a, model, lo, hi, resolution, output, cmap="coolwarm", label="score")
        if grid is not None:
            xs, ys, z = grid
            cs = a.contour(xs, ys, z, levels=[result.threshold], colors="black", linewidths=1.0)
            _halo_contours(cs)
            a.plot([], [], label=f"boundary N = {result.threshold:g}", **line_style("black", 1.0))
        a.plot(
            to_boundary[:, 0],
            to_boundary[:, 1],
            label="path to the boundary",
            **line_style("darkgreen", 1.3),
        )
        a.plot(past[:, 0], past[:, 1], label="past it", **line_style("purple", 1.3))
        if c is not None:
            a.plot([pts[0, 0], c[0]], [pts[0, 1], c[1]], **line_style("black", 1.0, ":"))
        a.plot([pts[0, 0]], [pts[0, 1]], label="start", **START)
        if b is not None:
            a.plot([b[0]], [b[1]], label="boundary point", **boundary_pt)
        if c is not None:
            a.plot([c[0]], [c[1]], label="closest boundary point", **closest_pt)
        a.plot([pts[-1, 0]], [pts[-1, 1]], label=flip_label, **flipped)
        _finish_2d(a, lo, hi, name)
        a.xaxis.set_major_locator(MaxNLocator(5))
        a.yaxis.set_major_locator(MaxNLocator(5))
    if ax is None:
        fig.suptitle(title or default, fontsize=10)
    return fig


# ---------------------------------------------------------------- walks on classes (n-D)
#: Colours of the chains of a walk (cycled); each is drawn with a contrasting edge or halo.
CHAIN_COLORS = (
    "#d62728",
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
_LEGEND_CHAINS = 6
_LINES_UP_TO = 500  # samples per chain up to which consecutive samples are joined


def _walk_title(result: WalkResult) -> str:
    return (
        f"{result.method} walk: {len(result)} samples in {result.chains} chain"
        f"{'s' if result.chains != 1 else ''}, max|N(x)-N(x0)| {result.residual:.1e}, "
        f"acceptance {result.acceptance:.2f}"
    )


def _chain_points(result: WalkResult) -> list[np.ndarray]:
    n = int(result.x0.numel())
    flat = result.samples.detach().cpu().double().numpy().reshape(result.chains, -1, n)
    return [flat[c, : result.counts[c]] for c in range(result.chains)]


def _chain_styles(k: int, total: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    color = CHAIN_COLORS[k % len(CHAIN_COLORS)]
    ms = 4.0 if total <= 2000 else 2.6
    dot = marker_style("o", color, ms)
    dot["mew"] = 0.6
    return color, dot, line_style(color, 0.7)


def _image_grid(result: WalkResult, cwh: tuple[int, int, int], title: str, k: int) -> Figure:
    """Up to ``k`` images: the start, then samples spread over every chain."""
    c, h, w = cwh
    y0 = result.y0.detach().cpu().double().numpy().reshape(-1)
    chosen: list[tuple[str, np.ndarray]] = [
        ("start x0", result.x0.detach().cpu().double().numpy().reshape(c, h, w))
    ]
    pool = [(ci, j) for ci in range(result.chains) for j in range(result.counts[ci])]
    if pool:
        take = np.unique(np.linspace(0, len(pool) - 1, min(k - 1, len(pool))).round().astype(int))
        samples = result.samples.detach().cpu().double().numpy()
        outs = result.outputs.detach().cpu().double().numpy()
        for t in take:
            ci, j = pool[int(t)]
            dev = float(np.abs(outs[ci, j] - y0).max())
            chosen.append(
                (f"chain {ci}, sample {j}\nmax|N-N(x0)| {dev:.1e}", samples[ci, j].reshape(c, h, w))
            )
    bounds = result.options.get("bounds")
    stack = np.stack([img for _, img in chosen])
    if bounds:
        lo, hi = float(np.min(bounds[0])), float(np.max(bounds[1]))
    else:
        lo, hi = float(stack.min()), float(stack.max())
    if hi <= lo:
        hi = lo + 1.0
    cols = min(4, len(chosen))
    rows = (len(chosen) + cols - 1) // cols
    fig = Figure(figsize=(2.5 * cols + 0.4, 2.55 * rows + 0.7), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    im = None
    for a, (label, img) in zip(axes, chosen, strict=False):
        if c == 1:
            im = a.imshow(img[0], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        else:
            rgb = np.clip((np.moveaxis(img, 0, -1) - lo) / (hi - lo), 0.0, 1.0)
            a.imshow(rgb, interpolation="nearest")
        a.set_title(label, fontsize=7)
        a.set_xticks([])
        a.set_yticks([])
    for a in axes[len(chosen) :]:
        a.set_visible(False)
    if im is not None:
        fig.colorbar(im, ax=list(axes[: len(chosen)]), shrink=0.6, label="pixel value")
    fig.suptitle(title, fontsize=9)
    return fig


def plot_walk(
    result: WalkResult,
    model: Any = None,
    *,
    ax: Any = None,
    resolution: int = 200,
    output: Any = None,
    title: str | None = None,
    images: int = 16,
) -> Figure:
    """Plot the samples of a walk on a class of any dimension.

    Two input coordinates: the samples of each chain (joined in order when there are few) over
    a heat map of the model with the level of ``x0`` (when ``model`` is given). Three: the same
    in 3-D. Image inputs (``(C, H, W)`` with one or three channels, or ``(H, W)``): a grid of
    the start and of samples spread over the chains, each titled with its largest output
    deviation ``max |N(x) - N(x0)|``. Anything else: pairwise projections of the first four
    coordinates. Every chain has its colour; markers have a contrasting edge and lines a
    contrasting halo, so they show on any background.

    Parameters
    ----------
    result : WalkResult
        The walk.
    model : callable, optional
        The network, for the heat map of 2-D inputs.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes (2-D inputs only).
    resolution : int
        Heat-map grid points per axis.
    output : callable, optional
        Output map for the heat map (the selection the walk held).
    title : str, optional
        Title.
    images : int
        Largest number of images in the grid (the start included).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    default = title or _walk_title(result)
    cwh = image_shape(tuple(result.x0.shape))
    if cwh is not None:
        return _image_grid(result, cwh, default, max(2, int(images)))
    chains = _chain_points(result)
    x0 = result.x0.detach().cpu().double().numpy().reshape(-1)
    n = x0.size
    total = sum(len(p) for p in chains)
    lines = max((len(p) for p in chains), default=0) <= _LINES_UP_TO
    if n != 2:
        scene = _Scene()
        for k, pts in enumerate(chains):
            if not len(pts):
                continue
            color, dot, line = _chain_styles(k, total)
            if lines and len(pts) > 1:
                scene.layers.append(_Layer(pts, line, None))
            label = f"chain {k}" if k < _LEGEND_CHAINS else None
            scene.mark(pts, dot, label)
        scene.mark(x0, START, "start x0")
        return _draw_scene(scene, n, default)
    fig, ax = _new_axes(ax, (6.4, 5.4))
    every = np.vstack([x0[None], *[p for p in chains if len(p)]])
    lo, hi = _points_box(every, result.options.get("bounds"))
    grid = _heat(fig, ax, model, lo, hi, resolution, output)
    if grid is not None and result.y0.numel() == 1:
        _level_lines(ax, grid, [float(result.y0.reshape(-1)[0])], "level of x0 (model grid)")
    for k, pts in enumerate(chains):
        if not len(pts):
            continue
        color, dot, line = _chain_styles(k, total)
        if lines and len(pts) > 1:
            ax.plot(pts[:, 0], pts[:, 1], **line)
        ax.plot(pts[:, 0], pts[:, 1], label=f"chain {k}" if k < _LEGEND_CHAINS else None, **dot)
    ax.plot([x0[0]], [x0[1]], label="start x0", **START)
    _finish_2d(ax, lo, hi, default)
    return fig


# ---------------------------------------------------------------- any result, files
def plot(result: Any, model: Any = None, **kwargs: Any) -> Figure:
    """Draw any result: a trace, an exploration, a preimage, samples, a boundary walk, a walk,
    a traversal or a confusion search (the last two on image inputs: see
    :mod:`fiberscope.plot.images`).

    Parameters
    ----------
    result : TraceResult, ExploreResult, PreimageResult, SampleResult, BoundaryWalkResult, ...
        The result (or a :class:`~fiberscope.WalkResult`).
    model : callable, optional
        The network, for heat maps of 2-D inputs.
    **kwargs
        Passed to the plot function of the result's type (``output=``, ``title=``, ...).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from ..algorithms.results import (
        BoundaryWalkResult,
        ConfusionResult,
        ExploreResult,
        PreimageResult,
        SampleResult,
        TraceResult,
        TraverseResult,
        WalkResult,
    )

    if isinstance(result, TraverseResult):
        return image_grid(result, **kwargs)
    if isinstance(result, ConfusionResult):
        return confusion_figure(result, **kwargs)
    for kind, fn in (
        (TraceResult, plot_trace),
        (ExploreResult, plot_explore),
        (PreimageResult, plot_preimage),
        (SampleResult, plot_samples),
        (BoundaryWalkResult, plot_boundary_walk),
        (WalkResult, plot_walk),
    ):
        if isinstance(result, kind):
            return fn(result, model, **kwargs)  # type: ignore[operator]
    from ..errors import InputError

    raise InputError(
        f"cannot plot a {type(result).__name__}: fiberscope.plot.plot takes the result of a "
        "fiberscope verb"
    )


_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def save_figure(fig: Figure, path: str | Path, *, force: bool = True, dpi: int = 130) -> Path:
    """Save a figure atomically (never a half-written file).

    The format follows the suffix: ``.pdf`` and ``.svg`` as such, anything else as PNG.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or pathlib.Path
        Destination.
    force : bool
        Overwrite an existing file.
    dpi : int
        Resolution.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    p = check_writable(path, force=force)
    fmt = _FORMATS.get(p.suffix.lower(), "png")
    with atomic_write(p, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=dpi)
    return p
