"""The one step controller: per-member steps, halved on rejection, grown after easy steps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

_EPS = float(torch.finfo(torch.float64).eps)
_TINY = float(torch.finfo(torch.float64).tiny)


def smallest_move(x_scale: float) -> float:
    """The smallest step that still moves a point of size ``x_scale`` in float64.

    Parameters
    ----------
    x_scale : float
        ``max |x|`` of the point.

    Returns
    -------
    float
        ``16 eps max(1, x_scale)``: below this a step is lost in rounding.
    """
    return 16.0 * _EPS * max(1.0, float(x_scale))


@dataclass(frozen=True)
class StepControl:
    """How steps adapt.

    Attributes
    ----------
    step : float
        Largest step (the user's ``step``).
    max_steps : int
        Accepted steps per member.
    adaptive : bool
        Halve rejected steps and grow easy ones (False: fixed steps, as in the authors'
        algorithms and for samplers, whose proposals must not adapt).
    shrink, grow : float
        Factors applied on rejection and after easy steps.
    min_ratio : float
        Steps below ``min_ratio * step`` mean the class cannot be followed.
    """

    step: float
    max_steps: int
    adaptive: bool = True
    shrink: float = 0.5
    grow: float = 1.5
    min_ratio: float = 1e-9

    def floor(self, x_scale: Tensor) -> Tensor:
        """Smallest usable step per member (never zero, never below float spacing).

        Parameters
        ----------
        x_scale : torch.Tensor
            ``(k,)`` ``max |x|`` of each member.

        Returns
        -------
        torch.Tensor
            ``(k,)``.
        """
        rel = max(self.step * self.min_ratio, _TINY)
        return torch.clamp(16.0 * _EPS * torch.clamp(x_scale, min=1.0), min=rel)

    def grown(self, h: Tensor) -> Tensor:
        """Steps after an easy accepted step (capped by ``step``)."""
        return torch.clamp(h * self.grow, max=self.step)


def check_step_moves(step: float, x_scale: float) -> str | None:
    """Why ``step`` cannot move a point of size ``x_scale``, or None when it can.

    Parameters
    ----------
    step : float
        The step.
    x_scale : float
        ``max |x0|``.

    Returns
    -------
    str or None
        A one-line reason.
    """
    need = smallest_move(x_scale)
    if not math.isfinite(step) or step < need:
        return (
            f"step {step:g} is below the float64 spacing of the start (a point of size "
            f"{x_scale:g} cannot move by less than about {need:.3g}); give a step of at least "
            f"{need:.3g}"
        )
    return None
