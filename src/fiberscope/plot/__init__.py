"""Front-end plots (matplotlib)."""

from .plots import plot_trace, save_figure

__all__ = ["plot_trace", "save_figure"]
