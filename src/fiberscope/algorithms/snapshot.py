"""Snapshots of a running trace: what a checkpoint holds and what ``resume=`` takes.

A snapshot is plain data: per branch the points so far and, for the branch in progress, the
tracer's state (:class:`~fiberscope.algorithms.corrected.BranchState` or
:class:`~fiberscope.algorithms.paper.PaperState` as a dict). Continuing from it repeats the
uninterrupted run bit for bit, because both tracers are deterministic functions of that state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass
class BranchRecord:
    """One branch of a snapshot.

    Attributes
    ----------
    name : str
        ``"forward"`` or ``"backward"``.
    sign : int
        ``+1`` or ``-1``.
    points, outputs : list of torch.Tensor
        Committed points (flat) and outputs, start excluded.
    conditioning : list of float
        Corrected method: conditioning at each point (empty for paper mode).
    finished : bool
        Whether the branch has stopped for good.
    reason, message : str
        Stop reason and details (``"interrupted"`` while in progress).
    stop_point : list of float or None
        Where the branch stopped (finished branches).
    energy : float
        Paper mode: the authors' energy so far.
    state : dict or None
        The tracer state (``to_dict()``) of a branch in progress.
    """

    name: str
    sign: int
    points: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    conditioning: list[float] = field(default_factory=list)
    finished: bool = False
    reason: str = "interrupted"
    message: str = ""
    stop_point: list[float] | None = None
    energy: float = 0.0
    state: dict[str, Any] | None = None


@dataclass
class TraceSnapshot:
    """A resumable picture of a trace.

    Attributes
    ----------
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        The run's options (JSON-ready); a resume must use the same.
    y0 : list of float
        Output at the start (guards against resuming with a different model).
    branches : list of BranchRecord
        Branches begun so far, in the order they run.
    stats : dict
        Solver counters at the snapshot.
    closed : bool
        A branch closed the loop (the trace is then finished).
    """

    method: str
    options: dict[str, Any]
    y0: list[float]
    branches: list[BranchRecord]
    stats: dict[str, int]
    closed: bool = False

    @property
    def steps(self) -> int:
        """Accepted steps so far (all branches)."""
        return int(self.stats.get("steps", 0))

    @property
    def n_points(self) -> int:
        """Points so far, the start included."""
        return 1 + sum(len(b.points) for b in self.branches)

    @property
    def finished(self) -> bool:
        """Whether every branch that will run has stopped."""
        if self.closed:
            return True
        names = {b.name for b in self.branches if b.finished}
        wanted = {
            "both": {"forward", "backward"},
            "forward": {"forward"},
            "backward": {"backward"},
        }[str(self.options.get("direction", "both"))]
        return wanted <= names
