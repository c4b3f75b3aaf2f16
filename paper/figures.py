"""Figures of the paper-II reproduction (``python -m paper.reproduce``).

Style: the network's values as a light grey heat map (a colour bar gives the scale), so that
every coloured element stands out; every line carries a thin white halo, so it stays visible
on any background; colours from the Okabe-Ito palette (safe for colour-blind readers), each
with its own legend entry, legends placed *below* the axes where they hide nothing.

- Curve experiments (1-3): one panel per network, the authors' trace (vermillion) drawn over
  the corrected one (blue), the analytic class (black dashed), the start (yellow dot), and a
  zoom inset where the two differ.
- Interval experiments (4-6): per network one panel per method side by side (the authors'
  200 dense levels would hide the corrected 21 in one panel), each with its exploration path
  (the authors' SiMExp steps in purple, fiberscope's gradient path in green) and the analytic
  band or boundary.

Built on ``matplotlib.figure.Figure`` (no pyplot state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import patheffects
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .adapter import evaluate_grid
from .metrics import SineCurve

if TYPE_CHECKING:
    from .results import ExperimentResult, MethodResult, NetworkEntry, Reproduction

__all__ = ["COLORS", "draw_panel", "experiment_figure", "overview_figure"]

#: Okabe-Ito colours of the figure elements.
COLORS = {
    "paper": "#D55E00",  # vermillion: the authors' algorithm
    "corrected": "#0072B2",  # blue: fiberscope's corrected method
    "truth": "black",  # analytic class / band / boundary (dashed)
    "paper_path": "#CC79A7",  # reddish purple: the authors' SiMExp path
    "corrected_path": "#009E73",  # bluish green: fiberscope's gradient path
    "start": "#F0E442",  # yellow dot with a black edge
    "box": "0.35",  # dotted: the data box, where it lies inside the view
}
METHOD_NAMES = {"paper": "authors' algorithm", "corrected": "corrected (fiberscope)"}
LABELS = {"paper": "authors' algorithm (paper mode)", "corrected": "corrected (fiberscope)"}

#: White to mid grey: the heat map stays in the background.
HEAT_CMAP = LinearSegmentedColormap.from_list("paper_heat", ["#ffffff", "#8c8c8c"])

TICK_SIZE = 8
INSET_TICK_SIZE = 7
LEGEND_SIZE = 7.5


def _halo(lw: float) -> list[Any]:
    return [patheffects.withStroke(linewidth=lw + 1.6, foreground="white")]


def _thin(points: np.ndarray, k: int = 6000) -> np.ndarray:
    if points.shape[0] <= k:
        return points
    idx = np.unique(np.round(np.linspace(0, points.shape[0] - 1, k)).astype(np.int64))
    return points[idx]


def _sci(x: float) -> str:
    return f"{x:.1e}"


def _line(ax: Any, pts: np.ndarray, color: str, lw: float, *, halo: bool = True, **kw: Any) -> None:
    ax.plot(
        pts[:, 0],
        pts[:, 1],
        color=color,
        lw=lw,
        path_effects=_halo(lw) if halo else None,
        solid_capstyle="round",
        **kw,
    )


def _truth_curves(ex: ExperimentResult, net: NetworkEntry) -> tuple[list[Any], str]:
    spec = ex.spec
    if spec.kind == "curve":
        return [spec.truth_through(net.x0, net.scale)], "analytic class through x0"
    if spec.classifier:
        return [SineCurve(0.5)], "true boundary y = 0.5 sin x"
    bt = spec.band_truth(spec.paper.epsilon or 0.0, net.scale)
    return (list(bt) if bt is not None else []), "analytic band (its two edges)"


def _heat(ax: Any, net: NetworkEntry, window: Any, resolution: int) -> Any:
    (x_lo, y_lo), (x_hi, y_hi) = window
    _, _, z = evaluate_grid(net.model, (x_lo, y_lo), (x_hi, y_hi), resolution)
    return ax.imshow(
        z,
        origin="lower",
        extent=(x_lo, x_hi, y_lo, y_hi),
        cmap=HEAT_CMAP,
        aspect="auto",
        interpolation="bilinear",
    )


def _run_text(run: MethodResult, kind: str) -> str:
    m = run.metrics
    if kind == "curve":
        return f"drift {_sci(m['drift'])}"
    return (
        f"{m['levels']} levels, drift {_sci(m['drift'])}, {100 * m['coverage']:.0f} % of interval"
    )


PATH_LABELS = {
    "paper": "authors' SiMExp path between levels",
    "corrected": "corrected gradient path between levels",
}


def _rank(label: str) -> int:
    order = [
        LABELS["paper"],
        LABELS["corrected"],
        PATH_LABELS["paper"],
        PATH_LABELS["corrected"],
        "data box",
        "start x0",
    ]
    return order.index(label) + 1 if label in order else 0


def _dedupe(handles: Sequence[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for h in handles:
        seen.setdefault(h.get_label(), h)
    return sorted(seen.values(), key=lambda h: _rank(h.get_label()))


def _figure_legend(fig: Figure, handles: Sequence[Any], ncol: int) -> None:
    fig.legend(
        handles=_dedupe(handles),
        loc="outside lower center",
        ncol=ncol,
        fontsize=LEGEND_SIZE + 1,
        frameon=False,
        handlelength=2.6,
        columnspacing=1.6,
    )


def _draw_content(
    ax: Any,
    ex: ExperimentResult,
    net: NetworkEntry,
    window: Any,
    resolution: int,
    *,
    methods: Sequence[str],
    inset: bool,
    compact: bool = False,
) -> tuple[Any, list[Any]]:
    """Heat map, truth, the chosen methods and the start inside ``window``.

    Returns the image and the legend handles.
    """
    spec = ex.spec
    (x_lo, y_lo), (x_hi, y_hi) = window
    im = _heat(ax, net, window, resolution)
    handles: list[Any] = []
    curves, truth_label = _truth_curves(ex, net)
    for c in curves:
        line = c.polyline(window, 4000)
        ax.plot(line[:, 0], line[:, 1], color=COLORS["truth"], lw=1.3, ls=(0, (5, 3)), zorder=4)
    if curves:
        handles.append(
            Line2D([], [], color=COLORS["truth"], lw=1.3, ls=(0, (5, 3)), label=truth_label)
        )
    runs = {r.method: r for r in ex.runs if r.network == net.label}
    thin = 1500 if inset else 6000
    if spec.kind == "curve":
        # the corrected class (thick) underneath, the authors' trace (thin) on top
        # (the thin line has no halo, which would cover the thick one where they coincide)
        for method, lw in (("corrected", 3.2), ("paper", 1.2)):
            if method not in methods or method not in runs:
                continue
            run = runs[method]
            pts = _thin(run.curves[0].points, thin)
            if run.curves[0].closed:
                pts = np.vstack((pts, pts[:1]))
            paper = method == "paper"
            _line(ax, pts, COLORS[method], lw, halo=not paper, zorder=5 if paper else 3)
            handles.append(Line2D([], [], color=COLORS[method], lw=lw, label=LABELS[method]))
    else:
        overlay = len(methods) > 1
        for method in ("paper", "corrected"):
            if method not in methods or method not in runs:
                continue
            run = runs[method]
            paper = method == "paper"
            many = len(run.curves) > 50
            if paper and many:
                lw, alpha = (0.5, 0.7) if overlay else (0.45, 0.9)
            else:
                lw, alpha = (0.6, 1.0) if overlay or compact else (1.0, 1.0)
            # overlaid on the authors' dense levels the corrected ones are thin, without halo,
            # so that the authors' band stays visible between them
            halo = False
            for c in run.curves:
                pts = _thin(c.points, 600 if inset else 2000)
                _line(ax, pts, COLORS[method], lw, halo=halo, alpha=alpha, zorder=3 if paper else 4)
            handles.append(Line2D([], [], color=COLORS[method], lw=1.5, label=LABELS[method]))
            key = "paper_path" if paper else "corrected_path"
            drawn = False
            # overlaid, both paths run along the same gradient line: the authors' one wide
            # underneath, fiberscope's narrow on top; above the start marker, which can be
            # larger than a thin band's whole path
            path_lw, path_halo = (3.2, True) if overlay and paper else (1.6, not overlay)
            for path in run.paths:
                if path.shape[0]:
                    _line(
                        ax,
                        _thin(path, thin),
                        COLORS[key],
                        path_lw,
                        halo=path_halo,
                        zorder=8 if paper else 9,
                    )
                    drawn = True
            if drawn:
                handles.append(Line2D([], [], color=COLORS[key], lw=1.6, label=PATH_LABELS[method]))
    (bx0, by0), (bx1, by1) = spec.box
    if bx0 > x_lo or by0 > y_lo or bx1 < x_hi or by1 < y_hi:
        ax.add_patch(
            Rectangle(
                (bx0, by0), bx1 - bx0, by1 - by0, fill=False, ec=COLORS["box"], lw=0.9, ls=":"
            )
        )
        if not inset:
            handles.append(Line2D([], [], color=COLORS["box"], lw=0.9, ls=":", label="data box"))
    ax.plot(
        [net.x0[0]],
        [net.x0[1]],
        "o",
        color=COLORS["start"],
        ms=6 if not inset else 7,
        mec="black",
        mew=1.0,
        zorder=7,
    )
    handles.append(
        Line2D(
            [], [], ls="", marker="o", color=COLORS["start"], mec="black", ms=6, label="start x0"
        )
    )
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    return im, handles


def draw_panel(
    ax: Any,
    ex: ExperimentResult,
    net: NetworkEntry,
    *,
    methods: Sequence[str] = ("paper", "corrected"),
    resolution: int = 300,
    inset: bool = True,
    title: str | None = None,
    compact: bool = False,
) -> tuple[Any, list[Any]]:
    """Draw one network's panel of an experiment into ``ax`` (with the zoom inset, if any).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    ex : ExperimentResult
        The experiment.
    net : NetworkEntry
        Which network.
    methods : sequence of {"paper", "corrected"}
        Which methods to draw.
    resolution : int
        Heat-map grid points per axis.
    inset : bool
        Draw the experiment's zoom inset (if it has one).
    title : str, optional
        Panel title (default: the network and the methods' headline numbers).
    compact : bool
        Thinner lines for small panels.

    Returns
    -------
    image : matplotlib.image.AxesImage
        The heat map (for a colour bar).
    handles : list
        Legend handles of what was drawn.
    """
    spec = ex.spec
    im, handles = _draw_content(
        ax, ex, net, spec.view, resolution, methods=methods, inset=False, compact=compact
    )
    if spec.kind == "curve" or spec.number == 4:
        ax.set_aspect("equal", adjustable="box")
    xl, yl = ("v (normalised V)", "p (normalised P)") if spec.thermo else ("x", "y")
    ax.set_xlabel(xl, fontsize=TICK_SIZE + 1)
    ax.set_ylabel(yl, fontsize=TICK_SIZE + 1)
    ax.tick_params(labelsize=TICK_SIZE)
    if title is None:
        runs = {r.method: r for r in ex.runs if r.network == net.label}
        lines = [f"{net.label} network"]
        for method in methods:
            if method in runs:
                short = "authors" if method == "paper" else "corrected"
                lines.append(f"{short}: {_run_text(runs[method], spec.kind)}")
        title = "\n".join(lines)
    ax.set_title(title, fontsize=9.5)
    if inset and spec.inset is not None:
        sub = ax.inset_axes([0.56, 0.56, 0.42, 0.42], zorder=10)
        _draw_content(
            sub, ex, net, spec.inset, max(80, resolution // 2), methods=methods, inset=True
        )
        sub.tick_params(labelsize=INSET_TICK_SIZE, length=2, pad=1.5)
        sub.xaxis.set_major_locator(MaxNLocator(3))
        sub.yaxis.set_major_locator(MaxNLocator(3))
        for side in sub.spines.values():
            side.set_edgecolor("black")
            side.set_linewidth(1.0)
        ax.indicate_inset_zoom(sub, edgecolor="black", alpha=0.8)
    return im, handles


def _colorbar(fig: Figure, im: Any, axes: Any) -> None:
    cb = fig.colorbar(im, ax=axes, fraction=0.046, pad=0.03, shrink=0.9)
    cb.set_label("N(x)", fontsize=TICK_SIZE + 1)
    cb.ax.tick_params(labelsize=TICK_SIZE)


def experiment_figure(ex: ExperimentResult) -> Figure:
    """One figure per experiment.

    Curve experiments: a panel per network, both methods in it. Interval experiments: a row per
    network with one panel per method (the authors' driver, then the corrected method).

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
    handles: list[Any] = []
    if ex.spec.kind == "curve":
        fig = Figure(figsize=(4.6 * n + 0.6, 5.3), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, n))
        for ax, net in zip(axes, ex.networks, strict=True):
            im, h = draw_panel(ax, ex, net)
            _colorbar(fig, im, ax)
            handles += h
        _figure_legend(fig, handles, ncol=3 if n < 3 else 6)
    else:
        fig = Figure(figsize=(9.6, 4.6 * n + 1.0), layout="constrained")
        grid = np.asarray(fig.subplots(n, 2)).reshape(n, 2)
        for row, net in zip(grid, ex.networks, strict=True):
            for ax, method in zip(row, ("paper", "corrected"), strict=True):
                im, h = draw_panel(ax, ex, net, methods=(method,))
                handles += h
            _colorbar(fig, im, list(row))
        _figure_legend(fig, handles, ncol=3)
    fig.suptitle(f"Experiment {ex.spec.number}: {ex.spec.title}", fontsize=12)
    return fig


def overview_figure(rep: Reproduction) -> Figure:
    """All experiments on the paper's own networks in one figure (two rows of three).

    Both methods are drawn in each panel (interval experiments: the authors' levels thin and
    translucent underneath the corrected ones); one legend for the whole figure.

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
    fig = Figure(figsize=(4.3 * cols, 4.0 * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    handles: list[Any] = []
    for ax, ex in zip(axes, rep.experiments, strict=False):
        _, h = draw_panel(
            ax,
            ex,
            ex.networks[0],
            resolution=200,
            compact=True,
            title=f"{ex.spec.number}. {ex.spec.title}",
        )
        handles += [x for x in h if _rank(x.get_label()) > 0]
        ax.title.set_fontsize(9)
    for ax in axes[k:]:
        ax.set_visible(False)
    handles.insert(
        0, Line2D([], [], color=COLORS["truth"], lw=1.3, ls=(0, (5, 3)), label="analytic truth")
    )
    _figure_legend(fig, handles, ncol=4)
    fig.suptitle(
        "Paper II reproduced on the authors' networks (heat map: the network's output)",
        fontsize=12,
    )
    return fig
