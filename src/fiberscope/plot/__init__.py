"""Figures of results (matplotlib), for any input dimension and any model dtype."""

from .images import confusion_figure, image_grid, save_gif
from .plots import (
    overlay_curve,
    plot,
    plot_boundary_walk,
    plot_explore,
    plot_preimage,
    plot_samples,
    plot_trace,
    plot_walk,
    save_figure,
)

__all__ = [
    "confusion_figure",
    "image_grid",
    "save_gif",
    "overlay_curve",
    "plot",
    "plot_boundary_walk",
    "plot_explore",
    "plot_preimage",
    "plot_samples",
    "plot_trace",
    "plot_walk",
    "save_figure",
]
