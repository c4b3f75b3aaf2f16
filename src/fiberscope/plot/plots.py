"""Figures. Built on ``matplotlib.figure.Figure`` (no pyplot state): they display in notebooks
and save from scripts without a display."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from ..geometry.grid import evaluate_grid
from ..io.atomic import atomic_write, check_writable

if TYPE_CHECKING:
    from ..algorithms.results import TraceResult


def plot_trace(
    result: TraceResult,
    model: Any = None,
    *,
    ax: Any = None,
    resolution: int = 200,
    title: str | None = None,
    label: str | None = None,
    color: str = "white",
) -> Figure:
    """Plot a traced class.

    For 2-D inputs the class is drawn over a heat map of the model (when ``model`` is given)
    with the start and the stop points marked; otherwise each coordinate is drawn against
    arclength beside the output residual.

    Parameters
    ----------
    result : TraceResult
        The trace.
    model : callable, optional
        The network, for the heat map (2-D inputs, scalar output).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes instead of a new figure (2-D inputs only).
    resolution : int
        Heat-map grid points per axis.
    title : str, optional
        Figure title.
    label : str, optional
        Legend label of the class.
    color : str
        Colour of the class curve.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    pts = result.points.reshape(len(result), -1).cpu().numpy()
    if pts.shape[1] == 2:
        fig, ax = _new_axes(ax, (6.2, 5.2))
        lo, hi = _points_box(pts, result.options.get("bounds"))
        grid = _heat(fig, ax, model, lo, hi, resolution)
        if grid is not None:
            ax.contour(
                *grid, levels=[float(result.y0[0])], colors="black", linewidths=0.8, linestyles="--"
            )
        xy = np.concatenate((pts, pts[:1])) if result.closed else pts
        ax.plot(xy[:, 0], xy[:, 1], color=color, lw=1.8, label=label or f"class ({result.method})")
        s = pts[result.start_index]
        ax.plot([s[0]], [s[1]], "o", color="red", ms=6, label="start")
        for name, reason in result.stop_reasons.items():
            if reason in ("boundary", "singular"):
                p = result.stop_points[name]
                ax.plot([p[0]], [p[1]], "s", color="orange", ms=6)
        _finish_2d(ax, lo, hi, title or _default_title(result))
        return fig
    fig = Figure(figsize=(9, 4), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    arc = result.arclength.cpu().numpy()
    for i in range(min(pts.shape[1], 8)):
        a1.plot(arc, pts[:, i], lw=1, label=f"x{i}")
    a1.set_xlabel("arclength")
    a1.set_ylabel("coordinate")
    a1.legend(fontsize=7)
    res = (result.outputs - result.y0).abs().max(dim=1).values.cpu().clamp(min=1e-18).numpy()
    a2.semilogy(arc, res, lw=1)
    a2.set_xlabel("arclength")
    a2.set_ylabel("|N(x) - N(x0)|")
    fig.suptitle(title or _default_title(result), fontsize=9)
    return fig


def _default_title(result: TraceResult) -> str:
    reasons = ", ".join(f"{k}: {v}" for k, v in result.stop_reasons.items())
    return (
        f"{result.method}: {len(result)} points, length {result.length:.4g}, "
        f"drift {result.drift:.2e} ({reasons})"
    )


def save_figure(fig: Figure, path: str | Path, *, force: bool = True, dpi: int = 130) -> Path:
    """Save a figure atomically as PNG (never a half-written file).

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
    with atomic_write(p, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return p


# ---------------------------------------------------------------- walks across classes
if TYPE_CHECKING:
    from ..algorithms.results import BoundaryWalkResult, ExploreResult, PreimageResult, SampleResult


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if model is None:
        return None
    xs, ys, z = evaluate_grid(model, lo, hi, resolution, output=output)
    xs, ys, z = xs.numpy(), ys.numpy(), z.numpy()
    im = ax.pcolormesh(xs, ys, z, shading="auto", cmap=cmap, alpha=alpha)
    fig.colorbar(im, ax=ax, label="N(x)", shrink=0.85)
    return xs, ys, z


def _finish_2d(ax: Any, lo: list[float], hi: list[float], title: str) -> None:
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    ax.set_title(title, fontsize=9)


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
    dashed; otherwise the output and each coordinate against arclength.

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
    pts = result.points.reshape(len(result), -1).cpu().numpy()
    default = (
        f"explore ({result.method}): N {float(result.y0[0]):.6g} -> "
        f"{float(result.end_output[0]):.6g}, length {result.length:.4g}, {result.stop_reason}"
    )
    if pts.shape[1] != 2:
        fig = Figure(figsize=(9, 4), layout="constrained")
        a1, a2 = fig.subplots(1, 2)
        arc = result.arclength.cpu().numpy()
        a1.plot(arc, result.outputs.cpu().numpy(), lw=1.2)
        a1.set_xlabel("arclength")
        a1.set_ylabel("output")
        for i in range(min(pts.shape[1], 8)):
            a2.plot(arc, pts[:, i], lw=1, label=f"x{i}")
        a2.set_xlabel("arclength")
        a2.legend(fontsize=7)
        fig.suptitle(title or default, fontsize=9)
        return fig
    fig, ax = _new_axes(ax)
    lo, hi = _points_box(pts, None if zoom else result.options.get("bounds"))
    grid = _heat(fig, ax, model, lo, hi, resolution, output)
    if grid is not None:
        xs, ys, z = grid
        lv = sorted({float(result.y0[0]), float(result.end_output[0])})
        if lv[0] < lv[-1] or len(lv) == 1:
            ax.contour(xs, ys, z, levels=lv, colors="black", linewidths=0.8, linestyles="--")
    ax.plot(pts[:, 0], pts[:, 1], color="white", lw=2.0, label=f"path ({result.method})")
    ax.plot(pts[:, 0], pts[:, 1], color="black", lw=0.6)
    ax.plot([pts[0, 0]], [pts[0, 1]], "o", color="red", ms=6, label="start")
    ax.plot([pts[-1, 0]], [pts[-1, 1]], "*", color="orange", ms=11, label="end")
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
        The network (a grey heat map underneath).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes.
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

    fig, ax = _new_axes(ax, (6.8, 5.4))
    bounds = result.options.get("bounds")
    allpts = np.vstack([t.points.reshape(len(t), -1).cpu().numpy() for t in result.traces])
    lo, hi = _points_box(allpts[:, :2], bounds if allpts.shape[1] == 2 else None)
    if allpts.shape[1] == 2 and model is not None:
        xs, ys, z = evaluate_grid(model, lo, hi, resolution, output=output)
        ax.pcolormesh(xs.numpy(), ys.numpy(), z.numpy(), shading="auto", cmap="Greys", alpha=0.45)
    reg = result.region
    if reg is not None:
        ax.contourf(
            reg.xs,
            reg.ys,
            reg.mask.astype(float),
            levels=[0.5, 1.5],
            colors=["#2a9d8f"],
            alpha=0.30,
        )
        ax.plot([], [], color="#2a9d8f", lw=6, alpha=0.4, label=f"band, area {reg.area:.5g}")
    lv = result.levels[:, 0].cpu().numpy()
    norm = Normalize(
        vmin=float(lv.min()), vmax=float(lv.max()) if lv.max() > lv.min() else lv.min() + 1
    )
    cm = colormaps[cmap]
    for k, tr in enumerate(result.traces):
        p = tr.points.reshape(len(tr), -1).cpu().numpy()
        if tr.closed:
            p = np.vstack((p, p[:1]))
        ax.plot(
            p[:, 0], p[:, 1], color=cm(norm(lv[k])), lw=1.0 if result.method == "paper" else 1.4
        )
    fig.colorbar(ScalarMappable(norm=norm, cmap=cm), ax=ax, label="level N(x)", shrink=0.85)
    path = result.path.reshape(result.path.shape[0], -1).cpu().numpy()
    ax.plot(path[:, 0], path[:, 1], color="black", lw=1.6, label="exploration path")
    x0 = result.options.get("x0")
    if x0 is not None:
        ax.plot([x0[0]], [x0[1]], "o", color="red", ms=6, label="start")
    a, b = float(result.interval[0, 0]), float(result.interval[1, 0])
    default = f"preimage of [{a:.6g}, {b:.6g}] ({result.method}): {len(result)} levels" + (
        f", area {reg.area:.5g}" if reg is not None else ""
    )
    if allpts.shape[1] == 2:
        _finish_2d(ax, lo, hi, title or default)
    else:
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
        ax.legend(loc="upper right", fontsize=7)
        ax.set_title(title or default, fontsize=9)
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
    """Plot class samples on their traced class (2-D inputs: over a heat map).

    Parameters
    ----------
    result : SampleResult
        The samples.
    model : callable, optional
        The network.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes.
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
    pts = result.points.reshape(len(result), -1).cpu().numpy()
    tr = result.trace.points.reshape(len(result.trace), -1).cpu().numpy()
    default = (
        f"{len(result)} samples along the class, spacing {result.spacing:.4g}, "
        f"residual {result.residual:.1e}"
    )
    if pts.shape[1] != 2:
        fig = Figure(figsize=(6, 4), layout="constrained")
        a = fig.add_subplot()
        for i in range(min(pts.shape[1], 8)):
            a.plot(result.arclength.cpu().numpy(), pts[:, i], ".", ms=3, label=f"x{i}")
        a.set_xlabel("arclength")
        a.legend(fontsize=7)
        a.set_title(title or default, fontsize=9)
        return fig
    fig, ax = _new_axes(ax)
    lo, hi = _points_box(pts, result.options.get("bounds"))
    _heat(fig, ax, model, lo, hi, resolution, output)
    loop = np.vstack((tr, tr[:1])) if result.closed else tr
    ax.plot(loop[:, 0], loop[:, 1], color="white", lw=1.0, label="class")
    ax.plot(
        pts[:, 0], pts[:, 1], "o", color="orange", mec="black", mew=0.4, ms=4.5, label="samples"
    )
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

    Two panels for 2-D inputs: the whole box with the boundary, and a zoom on the path.

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
    pts = path.points.reshape(len(path), -1).cpu().numpy()
    default = (
        f"decision {result.decision_start} -> {result.decision_flip}: boundary at distance "
        f"{result.boundary_distance:.4g} (path), closest {result.closest_distance:.4g}"
    )
    if pts.shape[1] != 2:
        fig = Figure(figsize=(6, 4), layout="constrained")
        a = fig.add_subplot()
        a.plot(path.arclength.cpu().numpy(), path.outputs[:, 0].cpu().numpy(), lw=1.2)
        a.axhline(result.threshold, color="black", ls="--", lw=0.8, label="threshold")
        a.set_xlabel("arclength")
        a.set_ylabel("score")
        a.legend(fontsize=7)
        a.set_title(title or default, fontsize=9)
        return fig
    if ax is not None:
        fig, axes = ax.figure, [ax]
    else:
        fig = Figure(figsize=(11.5 if zoom else 6.4, 5.0), layout="constrained")
        axes = list(fig.subplots(1, 2 if zoom else 1)) if zoom else [fig.add_subplot()]
    b = result.boundary_point.reshape(-1).cpu().numpy()
    c = result.closest_point.reshape(-1).cpu().numpy()
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

    for a, (lo, hi) in zip(axes, frames, strict=False):
        grid = _heat(fig, a, model, lo, hi, resolution, output, cmap="coolwarm")
        if grid is not None:
            xs, ys, z = grid
            a.contour(xs, ys, z, levels=[result.threshold], colors="black", linewidths=1.0)
            a.plot([], [], color="black", lw=1.0, label=f"boundary N = {result.threshold:g}")
        a.plot(pts[:, 0], pts[:, 1], color="white", lw=2.2)
        a.plot(
            pts[: result.boundary_index + 1, 0],
            pts[: result.boundary_index + 1, 1],
            color="darkgreen",
            lw=1.2,
            label="path to the boundary",
        )
        a.plot(
            pts[result.boundary_index :, 0],
            pts[result.boundary_index :, 1],
            color="purple",
            lw=1.2,
            label="past it",
        )
        a.plot([pts[0, 0], c[0]], [pts[0, 1], c[1]], ":", color="black", lw=1.0)
        a.plot([pts[0, 0]], [pts[0, 1]], "o", color="red", ms=6, label="start")
        a.plot([b[0]], [b[1]], "s", color="yellow", mec="black", ms=5, label="boundary point")
        a.plot([c[0]], [c[1]], "D", color="cyan", mec="black", ms=4, label="closest boundary point")
        a.plot(
            [pts[-1, 0]],
            [pts[-1, 1]],
            "*",
            color="orange",
            mec="black",
            ms=10,
            label=f"flipped (N = {result.flip_output:.3g})",
        )
        _finish_2d(a, lo, hi, names[len(names) - len(frames) + frames.index((lo, hi))])
        a.xaxis.set_major_locator(MaxNLocator(5))
        a.yaxis.set_major_locator(MaxNLocator(5))
    if ax is None:
        fig.suptitle(title or default, fontsize=10)
    return fig
