"""Result objects: plain dataclasses holding tensors plus metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

STOP_REASONS = ("closed", "boundary", "singular", "nonfinite", "max_steps", "interrupted")


@dataclass
class TraceStats:
    """Solver statistics of one trace.

    Attributes
    ----------
    steps : int
        Accepted steps (all branches).
    rejected : int
        Rejected (halved) steps.
    newton_iterations : int
        Corrector iterations.
    jacobian_evals : int
        Evaluations of the model's Jacobian (each also gives the output).
    value_evals : int
        Evaluations of the output alone (the corrector's residual checks).
    wall_time : float
        Seconds spent in the algorithm.
    """

    steps: int = 0
    rejected: int = 0
    newton_iterations: int = 0
    jacobian_evals: int = 0
    value_evals: int = 0
    wall_time: float = 0.0

    def counters(self) -> dict[str, int]:
        """The integer counters (everything but the wall time), e.g. for a checkpoint."""
        return {k: int(v) for k, v in self.__dict__.items() if k != "wall_time"}

    def restore(self, counters: dict[str, int]) -> None:
        """Set the integer counters from :meth:`counters` output."""
        for key, value in counters.items():
            setattr(self, key, int(value))

    def as_dict(self) -> dict[str, Any]:
        """The statistics as a plain dict."""
        return dict(self.__dict__)


@dataclass
class TraceResult:
    """A traced equivalence class (one connected curve through the start).

    Attributes
    ----------
    points : torch.Tensor
        ``(K, *input_shape)`` points ordered along the curve, the start included.
    outputs : torch.Tensor
        ``(K, m)`` model outputs at the points.
    branch : torch.Tensor
        ``(K,)`` int: ``-1`` backward branch, ``0`` the start, ``+1`` forward branch.
    arclength : torch.Tensor
        ``(K,)`` signed arclength from the start along the curve (negative on the backward
        branch), increasing along ``points``.
    start_index : int
        Row of ``points`` that is the start.
    y0 : torch.Tensor
        Output at the start, ``(m,)``.
    closed : bool
        The class is a closed loop that was traced once around; ``points`` is then a closed
        polygon (the last point connects back to the first).
    stop_reasons : dict
        Why each branch stopped: ``"closed"``, ``"boundary"``, ``"singular"``,
        ``"max_steps"``, ``"nonfinite"`` (the model returns NaN/inf just ahead), or
        ``"interrupted"`` (partial result of a stopped trace).
    stop_points : dict
        Where each branch stopped (flat list of floats).
    messages : dict
        Human-readable details per branch (e.g. why a point was judged singular).
    drift : float
        ``max_k |N(x_k) - N(x0)|`` over all points and outputs.
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        Every parameter of the run (JSON-serialisable).
    stats : TraceStats
        Solver statistics.
    energy : dict
        Paper mode only: the authors' "energy" per branch.
    conditioning : torch.Tensor or None
        ``(K,)`` ``s_min / s_max`` of J (for ``m = 1``: ``|grad N|``) at each point.
    complete : bool
        False for the partial result of an interrupted trace (a branch then has the stop
        reason ``"interrupted"``).
    """

    points: Tensor
    outputs: Tensor
    branch: Tensor
    arclength: Tensor
    start_index: int
    y0: Tensor
    closed: bool
    stop_reasons: dict[str, str]
    stop_points: dict[str, list[float]]
    drift: float
    method: str
    options: dict[str, Any]
    stats: TraceStats = field(default_factory=TraceStats)
    messages: dict[str, str] = field(default_factory=dict)
    energy: dict[str, float] = field(default_factory=dict)
    conditioning: Tensor | None = None
    complete: bool = True

    @property
    def length(self) -> float:
        """Total arclength of the traced curve (including the closing segment of a loop)."""
        total = float(self.arclength[-1] - self.arclength[0])
        if self.closed and self.points.shape[0] > 1:
            flat = self.points.reshape(self.points.shape[0], -1)
            total += float(torch.linalg.vector_norm(flat[-1] - flat[0]))
        return total

    @property
    def start(self) -> Tensor:
        """The start point."""
        return self.points[self.start_index]

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict (what the CLI prints and the JSON sidecar holds)."""
        return {
            "method": self.method,
            "points": len(self),
            "closed": self.closed,
            "stop_reasons": dict(self.stop_reasons),
            "drift": self.drift,
            "length": self.length,
            "stats": self.stats.as_dict(),
        }

    def save(self, path: str | Path, *, force: bool = True) -> tuple[Path, Path]:
        """Write the points to CSV and every parameter to a JSON sidecar.

        Parameters
        ----------
        path : str or pathlib.Path
            CSV destination; the sidecar is the same path with suffix ``.json``.
        force : bool
            Overwrite existing files (default True from Python; the CLI asks for ``--force``).

        Returns
        -------
        tuple of pathlib.Path
            The CSV and JSON paths.
        """
        from ..io.results import save_trace

        return save_trace(self, path, force=force)

    def plot(self, model: Any = None, **kwargs: Any) -> Any:
        """Plot the class (2-D inputs: over a heat map of ``model``); returns the figure."""
        from ..plot.plots import plot_trace

        return plot_trace(self, model=model, **kwargs)
