"""Direction policies: what a step proposes, when it is accepted, and what happens after.

A policy is a small object with the methods below; the run loop (:mod:`.loop`) calls them and
owns everything else (correction, step control, the box, recording, progress, interruption
and checkpoints). Policies are registered by name (:func:`register`, :func:`policy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import InputError
from ..geometry.jacobian import ModelFunction
from .box import Box
from .corrector import Correction
from .state import Members
from .stats import Stats


@dataclass
class Context:
    """What every step of a run needs besides the members.

    Attributes
    ----------
    fn : ModelFunction
        The model.
    box : tuple of torch.Tensor or None
        Flat ``(lo, hi)``.
    stats : Stats
        Counters.
    metric : torch.Tensor or None
        Output metric ``G`` (``m x m``).
    matrix_free : bool
        Never form Jacobians (conjugate gradients on ``J J^T``; see
        :mod:`fiberscope.geometry.matfree`); members then hold ``(B, m, 0)`` placeholders.
    """

    fn: ModelFunction
    box: Box | None
    stats: Stats
    metric: Tensor | None = None
    matrix_free: bool = False


@dataclass
class Proposal:
    """The predicted points of the active members (``k`` of them).

    Attributes
    ----------
    x : torch.Tensor
        ``(k, n)`` predicted points.
    goal : torch.Tensor
        ``(k, m)`` the level to correct to.
    jac : torch.Tensor, Linearization or None
        ``(k, m, n)`` fixed chord Jacobians (or a matrix-free linearisation; None: evaluated
        at ``x``).
    h : torch.Tensor
        ``(k,)`` the step actually tried (CPU).
    info : dict
        Policy-private values for :meth:`Policy.judge` and :meth:`Policy.advance`.
    """

    x: Tensor
    goal: Tensor
    jac: Any
    h: Tensor
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """Which proposals are accepted.

    Attributes
    ----------
    accept : torch.Tensor
        ``(k,)`` bool (CPU).
    easy : torch.Tensor
        ``(k,)`` bool (CPU): accepted steps after which the step may grow.
    info : dict
        Policy-private values for :meth:`Policy.advance`.
    """

    accept: Tensor
    easy: Tensor
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stop:
    """A member that stops after this step.

    Attributes
    ----------
    index : int
        Row in the policy's batch ``sub``.
    reason : str
        Stop reason.
    message : str
        Details.
    point : torch.Tensor or None
        Where it stopped (default: the recorded point, else the current one).
    """

    index: int
    reason: str
    message: str
    point: Tensor | None = None


@dataclass
class Advance:
    """What the accepted members do: where they move, what is recorded, who stops.

    Attributes
    ----------
    x, y, jac : torch.Tensor
        ``(k, n)``, ``(k, m)``, ``(k, m, n)``: the new state of each member.
    vars : dict of torch.Tensor
        New policy variables, ``(k, ...)`` each.
    record : torch.Tensor or None
        ``(k,)`` bool: rows to record (None: every row).
    rec_x, rec_y : torch.Tensor
        ``(k, n)``, ``(k, m)``: the rows (usually ``x``/``y``).
    extra : dict of torch.Tensor
        ``(k, ...)`` per-row extras to record.
    stops : list of Stop
        Members that stop (after recording).
    goal : torch.Tensor or None
        ``(k, m)`` new levels (a member that moves on to its next level).
    """

    x: Tensor
    y: Tensor
    jac: Tensor
    vars: dict[str, Tensor]
    record: Tensor | None
    rec_x: Tensor
    rec_y: Tensor
    extra: dict[str, Tensor] = field(default_factory=dict)
    stops: list[Stop] = field(default_factory=list)
    goal: Tensor | None = None


class Policy:
    """Base class of direction policies (see the module docstring).

    Attributes
    ----------
    name : str
        Registry name.
    corrects : bool
        Project every proposal back to its level with the corrector (False: only evaluate).
    adaptive : bool
        Halve rejected steps and retry (False: a rejected proposal is a step where the member
        stays, as for fixed-step and Metropolis-Hastings walks).
    box_mode : str
        ``"exit_on_class"`` (stop exactly where the class leaves the box), ``"exit_on_chord"``
        (stop where the step's chord leaves it), ``"clamp"`` (clamp proposals, go on: the
        authors' variant), ``"stop_clamp"`` (clamp, record and stop: the authors' other
        variant) or ``"none"`` (the policy handles the box itself).
    max_newton : int
        Corrector iterations per step.
    """

    name: ClassVar[str] = "policy"
    corrects: bool = True
    adaptive: bool = True
    box_mode: str = "none"
    max_newton: int = 8

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """Predicted points for the members of ``sub`` (the active ones, compacted)."""
        raise NotImplementedError

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Accept or reject each corrected proposal (default: accept where it converged)."""
        ok = cor.ok.cpu()
        return Verdict(accept=ok, easy=ok & (cor.iters.cpu() <= 2))

    def at_floor(self, ctx: Context, sub: Members, j: int, x_try: Tensor) -> tuple[str, str]:
        """Reason and message for row ``j`` of ``sub``, whose step fell below the floor."""
        return "singular", "the step became too small to stay on the class"

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """The new state of the moving members ``sub`` (non-adaptive policies: every member)."""
        raise NotImplementedError


_REGISTRY: dict[str, Callable[..., Policy]] = {}


def register(name: str, factory: Callable[..., Policy]) -> None:
    """Register a policy factory under ``name``.

    Parameters
    ----------
    name : str
        Registry name.
    factory : callable
        Builds the policy from keyword options.
    """
    _REGISTRY[name] = factory


def policy(name: str, **options: Any) -> Policy:
    """Build the registered policy ``name`` with ``options``.

    Parameters
    ----------
    name : str
        Registry name (see :func:`policies`).
    **options
        The policy's options.

    Returns
    -------
    Policy
        The policy.
    """
    if name not in _REGISTRY:
        raise InputError(f"unknown policy {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**options)


def policies() -> list[str]:
    """Names of the registered policies."""
    return sorted(_REGISTRY)


def subset(t: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx`` of ``t`` (``idx`` on the CPU, moved to ``t``'s device)."""
    return t[idx.to(t.device)] if t.device != idx.device else t[idx]


def torch_bool(values: list[bool]) -> Tensor:
    """A CPU bool tensor."""
    return torch.tensor(values, dtype=torch.bool)
