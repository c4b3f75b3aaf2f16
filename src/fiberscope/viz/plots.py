"""Figures. Built on ``matplotlib.figure.Figure`` (no pyplot state): they display in notebooks
and save from scripts without a display."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ..geometry.grid import evaluate_grid
from ..io.atomic import atomic_write, check_writable

if TYPE_CHECKING:
    from ..algorithms.result import TraceResult


def _box_for(result: TraceResult, pad: float = 0.15) -> tuple[list[float], list[float]]:
    bounds = result.options.get("bounds")
    if bounds:
        return list(bounds[0]), list(bounds[1])
    pts = result.points.reshape(len(result), -1)
    lo, hi = pts.min(0).values, pts.max(0).values
    span = torch.clamp(hi - lo, min=1e-3)
    return (lo - pad * span).tolist(), (hi + pad * span).tolist()


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
        if ax is None:
            fig = Figure(figsize=(6.2, 5.2), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        lo, hi = _box_for(result)
        if model is not None:
            xs, ys, z = evaluate_grid(model, lo, hi, resolution)
            xs, ys, z = xs.numpy(), ys.numpy(), z.numpy()
            im = ax.pcolormesh(xs, ys, z, shading="auto", cmap="viridis")
            fig.colorbar(im, ax=ax, label="N(x)")
            ax.contour(xs, ys, z, levels=[float(result.y0[0])], colors="black",
                       linewidths=0.8, linestyles="--")
        xy = pts
        if result.closed:
            xy = np.concatenate((pts, pts[:1]))
        ax.plot(xy[:, 0], xy[:, 1], color=color, lw=1.8,
                label=label or f"class ({result.method})")
        s = pts[result.start_index]
        ax.plot([s[0]], [s[1]], "o", color="red", ms=6, label="start")
        for name, reason in result.stop_reasons.items():
            if reason in ("boundary", "singular"):
                p = result.stop_points[name]
                ax.plot([p[0]], [p[1]], "s", color="orange", ms=6)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(title or _default_title(result), fontsize=9)
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
