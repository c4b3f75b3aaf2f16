"""Figures of the paper-II reproduction (``python -m paper.reproduce``), in the paper's style.

Each panel shows the network's heat map, the analytic ground truth (red, dashed), the class or
band traced by the authors' algorithm (orange) and by fiberscope's corrected one (white), and
the start (red dot). Built on ``matplotlib.figure.Figure`` (no pyplot state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .adapter import evaluate_grid
from .metrics import SineCurve

if TYPE_CHECKING:
    from .runner import ExperimentResult, NetworkEntry, Reproduction

__all__ = ["draw_panel", "experiment_figure", "overview_figure"]

PAPER_COLOR = "#ff7f0e"
CORRECTED_COLOR = "white"
TRUTH_COLOR = "#d62728"


def _thin(points: np.ndarray, k: int = 6000) -> np.ndarray:
    if points.shape[0] <= k:
        return points
    idx = np.unique(np.round(np.linspace(0, points.shape[0] - 1, k)).astype(np.int64))
    return points[idx]


def _sci(x: float) -> str:
    return f"{x:.1e}"


def _draw_content(
    ax: Any, ex: ExperimentResult, net: NetworkEntry, window: Any, resolution: int, inset: bool
) -> tuple[Any, list[Any]]:
    """Heat map, truth, both methods and the start inside ``window``; returns image, handles."""
    spec = ex.spec
    (x_lo, y_lo), (x_hi, y_hi) = window
    xs, ys, z = evaluate_grid(net.model, (x_lo, y_lo), (x_hi, y_hi), resolution)
    im = ax.imshow(
        z,
        origin="lower",
        extent=(x_lo, x_hi, y_lo, y_hi),
        cmap="viridis",
        aspect="auto",
        interpolation="bilinear",
    )
    runs = [r for r in ex.runs if r.network == net.label]
    handles: list[Any] = []
    thin = 1500 if inset else 6000
    if spec.kind == "curve":
        truth = spec.truth_through(net.x0, net.scale)
        line = truth.polyline(window, 4000)
        ax.plot(line[:, 0], line[:, 1], color=TRUTH_COLOR, lw=2.2, ls="--")
        handles.append(Line2D([], [], color=TRUTH_COLOR, lw=2, ls="--", label="analytic class"))
    else:
        bt = spec.band_truth(spec.paper.epsilon or 0.0, net.scale)
        curves = list(bt) if bt is not None else []
        if spec.classifier:
            curves = [SineCurve(0.5)]
        for c in curves:
            line = c.polyline(window, 4000)
            ax.plot(line[:, 0], line[:, 1], color=TRUTH_COLOR, lw=2.0, ls="--")
        if curves:
            label = "true boundary y = 0.5 sin x" if spec.classifier else "analytic band"
            handles.append(Line2D([], [], color=TRUTH_COLOR, lw=2, ls="--", label=label))
    # curves: the corrected class (thick) underneath the authors' (thin) on top; intervals:
    # the authors' dense levels underneath the corrected ones
    first = "corrected" if spec.kind == "curve" else "paper"
    for run in sorted(runs, key=lambda r: r.method != first):
        paper = run.method == "paper"
        color = PAPER_COLOR if paper else CORRECTED_COLOR
        if spec.kind == "curve":
            pts = _thin(run.curves[0].points, thin)
            if run.curves[0].closed:
                pts = np.vstack((pts, pts[:1]))
            ax.plot(pts[:, 0], pts[:, 1], color=color, lw=1.1 if paper else 2.2)
            label = f"{run.method}: drift {_sci(run.metrics['drift'])}"
        else:
            for c in run.curves:
                pts = _thin(c.points, 600 if inset else 2000)
                ax.plot(pts[:, 0], pts[:, 1], color=color, lw=0.35 if paper else 0.8, alpha=0.6)
            for path in run.paths:
                if path.shape[0]:
                    pth = _thin(path, thin)
                    ax.plot(pth[:, 0], pth[:, 1], color="magenta" if paper else "cyan", lw=1.2)
            m = run.metrics
            label = f"{run.method}: {m['levels']} levels, {100 * m['coverage']:.0f} % of interval"
        handles.append(Line2D([], [], color=color, lw=2, label=label))
    (bx0, by0), (bx1, by1) = spec.box
    if bx0 > x_lo or by0 > y_lo or bx1 < x_hi or by1 < y_hi:
        ax.add_patch(
            Rectangle((bx0, by0), bx1 - bx0, by1 - by0, fill=False, ec="0.85", lw=0.8, ls=":")
        )
    ax.plot([net.x0[0]], [net.x0[1]], "o", color="red", ms=5, mec="white", mew=0.8)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    return im, handles


def draw_panel(
    ax: Any,
    ex: ExperimentResult,
    net: NetworkEntry,
    *,
    resolution: int = 220,
    colorbar: bool = True,
    legend: bool = True,
) -> None:
    """Draw one network's panel of an experiment into ``ax`` (with the zoom inset, if any).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    ex : ExperimentResult
        The experiment.
    net : NetworkEntry
        Which network.
    resolution : int
        Heat-map grid points per axis.
    colorbar : bool
        Add a colour bar.
    legend : bool
        Add a legend.
    """
    spec = ex.spec
    im, handles = _draw_content(ax, ex, net, spec.view, resolution, inset=False)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="N(x)")
    if spec.kind == "curve" or spec.number == 4:
        ax.set_aspect("equal", adjustable="box")
    xl, yl = ("v (normalised V)", "p (normalised P)") if spec.thermo else ("x", "y")
    ax.set_xlabel(xl, fontsize=8)
    ax.set_ylabel(yl, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{net.label} network", fontsize=9)
    if spec.inset is not None:
        sub = ax.inset_axes([0.58, 0.58, 0.4, 0.4])
        _draw_content(sub, ex, net, spec.inset, max(60, resolution // 2), inset=True)
        sub.tick_params(labelsize=5)
        ax.indicate_inset_zoom(sub, edgecolor="white", alpha=0.9)
    if legend:
        ax.legend(handles=handles, loc="lower left", fontsize=6.5, framealpha=0.85)


def experiment_figure(ex: ExperimentResult) -> Figure:
    """One figure per experiment: a panel per network, side by side.

    Parameters
    ----------
    ex : ExperimentResult
        The experiment.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    n = len(ex.networks)
    fig = Figure(figsize=(4.6 * n + 0.4, 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, net in zip(axes, ex.networks, strict=True):
        draw_panel(ax, ex, net)
    fig.suptitle(f"Experiment {ex.spec.number}: {ex.spec.title}", fontsize=10)
    return fig


def overview_figure(rep: Reproduction) -> Figure:
    """All experiments on the paper's own networks in one figure (two rows of three).

    Parameters
    ----------
    rep : Reproduction
        The results.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    k = len(rep.experiments)
    cols = min(3, max(k, 1))
    rows = (k + cols - 1) // cols
    fig = Figure(figsize=(4.3 * cols, 4.0 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax, ex in zip(axes, rep.experiments, strict=False):
        draw_panel(ax, ex, ex.networks[0], resolution=160, colorbar=False)
        ax.set_title(f"{ex.spec.number}. {ex.spec.title} ({ex.networks[0].label})", fontsize=8)
    for ax in axes[k:]:
        ax.set_visible(False)
    fig.suptitle(
        "Paper II reproduced: authors' algorithm (orange) vs corrected (white), "
        "analytic truth (red dashed)",
        fontsize=10,
    )
    return fig
