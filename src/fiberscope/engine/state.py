"""The state of a batch of members advancing together, and its plain-data snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

#: Every reason a member can stop for.
STOP_REASONS = (
    "closed",
    "boundary",
    "singular",
    "nonfinite",
    "reached",
    "max_steps",
    "minimum",
    "interrupted",
)


@dataclass
class Members:
    """A batch of ``B`` members (branches, levels, starts, chains) advancing together.

    Tensors have a leading member dimension. ``x``, ``y``, ``jac`` and ``goal`` live on the
    problem's device; the per-member scalars ``h``, ``k`` and ``active`` live on the CPU.

    Attributes
    ----------
    x : torch.Tensor
        ``(B, n)`` current points.
    y : torch.Tensor
        ``(B, m)`` outputs at ``x``.
    jac : torch.Tensor
        ``(B, m, n)`` the Jacobian the next step starts from (at or within one correction of
        ``x``).
    goal : torch.Tensor
        ``(B, m)`` the level each member lives on (or walks toward).
    tol : torch.Tensor
        ``(B,)`` residual tolerance of each member's level.
    h : torch.Tensor
        ``(B,)`` current step (float64, CPU).
    k : torch.Tensor
        ``(B,)`` accepted steps (int64, CPU).
    rejected : torch.Tensor
        ``(B,)`` rejected (halved) steps (int64, CPU).
    active : torch.Tensor
        ``(B,)`` bool (CPU).
    vars : dict of torch.Tensor
        Policy variables, each with leading dimension ``B``.
    reasons : list of str or None
        Stop reason of each member (None while active).
    messages : list of str
        Details of each stop.
    stop_points : list of list of float or None
        Where each member stopped (flat).
    """

    x: Tensor
    y: Tensor
    jac: Tensor
    goal: Tensor
    tol: Tensor
    h: Tensor
    k: Tensor
    active: Tensor
    rejected: Tensor
    vars: dict[str, Tensor] = field(default_factory=dict)
    reasons: list[str | None] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    stop_points: list[list[float] | None] = field(default_factory=list)
    nrec: int = 0
    n_active: int = -1
    kmax: int = 0

    def __post_init__(self) -> None:
        if self.n_active < 0:
            self.n_active = int(self.active.sum())
            self.kmax = int(self.k.max()) if self.k.numel() else 0

    @classmethod
    def start(
        cls, x: Tensor, y: Tensor, jac: Tensor, goal: Tensor, h: float, tol: Tensor | float = 0.0
    ) -> Members:
        """Members at their starts, all active, with step ``h``.

        Parameters
        ----------
        x, y, jac, goal : torch.Tensor
            ``(B, n)``, ``(B, m)``, ``(B, m, n)``, ``(B, m)``.
        h : float
            Initial step.
        tol : torch.Tensor or float
            ``(B,)`` residual tolerances (or one for all).

        Returns
        -------
        Members
            The batch.
        """
        b = x.shape[0]
        tol_t = torch.as_tensor(tol, dtype=torch.float64, device=x.device)
        return cls(
            x=x.clone(),
            y=y.clone(),
            jac=jac.clone(),
            goal=goal.clone(),
            tol=tol_t.expand(b).clone() if tol_t.ndim == 0 else tol_t.clone(),
            h=torch.full((b,), float(h), dtype=torch.float64),
            k=torch.zeros(b, dtype=torch.int64),
            active=torch.ones(b, dtype=torch.bool),
            rejected=torch.zeros(b, dtype=torch.int64),
            reasons=[None] * b,
            messages=[""] * b,
            stop_points=[None] * b,
        )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def copy(self) -> Members:
        """A shallow copy whose tensors and lists can be replaced without touching this one."""
        new = object.__new__(Members)
        d = dict(self.__dict__)
        d["vars"] = dict(self.vars)
        d["reasons"] = list(self.reasons)
        d["messages"] = list(self.messages)
        d["stop_points"] = list(self.stop_points)
        d["active"] = self.active.clone()
        new.__dict__.update(d)
        return new

    def take(self, rows: Tensor) -> Members:
        """The members ``rows`` (a CPU index tensor) as a compact batch (a view for policies).

        Parameters
        ----------
        rows : torch.Tensor
            Member indices.

        Returns
        -------
        Members
            ``len(rows)`` members; stop bookkeeping is not carried over.
        """
        dev = self.x.device
        rd = rows.to(dev) if dev.type != "cpu" else rows
        new = object.__new__(Members)
        new.__dict__.update(
            x=self.x[rd],
            y=self.y[rd],
            jac=self.jac[rd],
            goal=self.goal[rd],
            tol=self.tol[rd],
            h=self.h[rows],
            k=self.k[rows],
            active=self.active[rows],
            rejected=self.rejected[rows],
            vars={key: v[rd] if v.device == dev else v[rows] for key, v in self.vars.items()},
            reasons=[],
            messages=[],
            stop_points=[],
            nrec=0,
            n_active=int(rows.numel()),
            kmax=0,
        )
        return new

    def stop(self, i: int, reason: str, message: str, point: Tensor | None = None) -> None:
        """Stop member ``i`` for ``reason`` (one of :data:`STOP_REASONS`).

        Parameters
        ----------
        i : int
            Member index.
        reason : str
            Why.
        message : str
            Details for people.
        point : torch.Tensor, optional
            Where it stopped (default: its current point).
        """
        assert reason in STOP_REASONS, reason
        if self.reasons[i] is None and bool(self.active[i]):
            self.n_active -= 1
        self.active[i] = False
        self.reasons[i] = reason
        self.messages[i] = message
        where = self.x[i] if point is None else point
        self.stop_points[i] = where.reshape(-1).tolist()

    # ------------------------------------------------------------------ snapshots
    def export(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Tensors and JSON-ready facts that rebuild these members exactly.

        Returns
        -------
        tensors : dict of torch.Tensor
            CPU tensors by name.
        meta : dict
            Reasons, messages, stop points.
        """
        tensors = {
            "x": self.x,
            "y": self.y,
            "jac": self.jac,
            "goal": self.goal,
            "tol": self.tol,
            "h": self.h,
            "k": self.k,
            "active": self.active,
            "rejected": self.rejected,
            **{f"var.{k}": v for k, v in self.vars.items()},
        }
        meta = {
            "nrec": self.nrec,
            "reasons": list(self.reasons),
            "messages": list(self.messages),
            "stop_points": list(self.stop_points),
        }
        return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, meta

    @classmethod
    def restore(
        cls, tensors: dict[str, Tensor], meta: dict[str, Any], device: torch.device
    ) -> Members:
        """Rebuild members written by :meth:`export`.

        Parameters
        ----------
        tensors : dict of torch.Tensor
            As exported.
        meta : dict
            As exported.
        device : torch.device
            The problem's device.

        Returns
        -------
        Members
            The batch.
        """
        return cls(
            x=tensors["x"].to(device),
            y=tensors["y"].to(device),
            jac=tensors["jac"].to(device),
            goal=tensors["goal"].to(device),
            tol=tensors["tol"].to(device),
            h=tensors["h"].clone(),
            k=tensors["k"].clone(),
            active=tensors["active"].clone(),
            rejected=tensors["rejected"].clone(),
            vars={
                k[4:]: (v.to(device) if v.dtype.is_floating_point else v.clone())
                for k, v in tensors.items()
                if k.startswith("var.")
            },
            reasons=list(meta["reasons"]),
            messages=[str(m) for m in meta["messages"]],
            stop_points=list(meta["stop_points"]),
            nrec=int(meta.get("nrec", 0)),
        )


@dataclass
class Snapshot:
    """A resumable picture of a run: plain tensors plus JSON-ready facts.

    A verb's run is a sequence of engine phases (e.g. preimage: walk to the levels, then trace
    them). The snapshot holds the finished phases' records and the live phase's members and
    recorder, as of the last committed step, so continuing from it repeats the uninterrupted
    run bit for bit.

    Attributes
    ----------
    verb : str
        ``"trace"``, ``"explore"``, ``"preimage"``, ...
    options : dict
        The run's options (JSON-ready); a resume must use the same.
    y0 : list of float
        Output at the start (guards against resuming with another model).
    phase : int
        Index of the live phase.
    tensors : dict of torch.Tensor
        Every tensor of the state, by dotted name.
    meta : dict
        Everything else (JSON-ready).
    stats : dict
        Solver counters at the snapshot.
    """

    verb: str
    options: dict[str, Any]
    y0: list[float]
    phase: int
    tensors: dict[str, Tensor]
    meta: dict[str, Any]
    stats: dict[str, int]

    @property
    def steps(self) -> int:
        """Accepted steps so far."""
        return int(self.stats.get("steps", 0))
