"""Solver counters shared by every walk."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass
class Stats:
    """Solver statistics of one run (all members together).

    Attributes
    ----------
    steps : int
        Accepted steps.
    rejected : int
        Rejected steps (halved and retried, or, for samplers, proposals not taken).
    newton_iterations : int
        Corrector iterations (one per member per iteration).
    jacobian_evals : int
        Evaluations of a Jacobian (each also gives the output), one per member.
    value_evals : int
        Evaluations of the outputs alone, one per member.
    wall_time : float
        Seconds spent.
    """

    steps: int = 0
    rejected: int = 0
    newton_iterations: int = 0
    jacobian_evals: int = 0
    value_evals: int = 0
    wall_time: float = 0.0

    def counters(self) -> dict[str, int]:
        """The integer counters (everything but the wall time)."""
        return {f.name: int(getattr(self, f.name)) for f in fields(self) if f.name != "wall_time"}

    def restore(self, counters: dict[str, int]) -> None:
        """Set the integer counters from :meth:`counters` output.

        Parameters
        ----------
        counters : dict
            Counter values by name.
        """
        names = {f.name for f in fields(self)}
        for key, value in counters.items():
            if key in names and key != "wall_time":
                setattr(self, key, int(value))

    def merge(self, other: Stats) -> None:
        """Add another run's counters and wall time to these.

        Parameters
        ----------
        other : Stats
            The other statistics.
        """
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        """The statistics as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
