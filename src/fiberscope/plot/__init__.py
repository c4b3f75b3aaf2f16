"""Figures of results (matplotlib): ``fiberscope.plot.plot(result, model=...)``."""

from .dispatch import plot
from .plots import (
    plot_boundary_walk,
    plot_explore,
    plot_preimage,
    plot_samples,
    plot_trace,
    save_figure,
)

__all__ = [
    "plot",
    "plot_boundary_walk",
    "plot_explore",
    "plot_preimage",
    "plot_samples",
    "plot_trace",
    "save_figure",
]
