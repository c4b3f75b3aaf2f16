"""Policy ``"closest"``: move along a level toward an anchor point, to the nearest point.

A member stays on its level ``N(x) = y*`` and moves toward its anchor ``a`` (a target input,
or the start for the smallest perturbation that reaches a decision boundary): each step goes
along ``d = P_ker J (a - x)``, the part of ``a - x`` tangent to the level, by at most ``h``, and
is corrected back to the level. With ``h >= |d|`` this is the jump to the point of the tangent
plane closest to ``a`` (sequential projection, which converges fast near the minimum). A step
is accepted when the corrector converged and the distance to the anchor decreased. The member
stops at a local minimum of ``|x - a|`` on the level (``|d|`` negligible: the first-order
condition ``a - x`` normal to the level), or where ``J`` loses rank. A box either stops the
search where a step's chord leaves it, or (``constrain_box``) its faces become constraints: the
coordinates the direction pushes out of the box are held on their faces, and the minimum is
then one of the distance on the class *inside* the box.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...geometry.linalg import gram, project_kernel, singular_extremes
from ..box import hold_faces, onto_faces
from ..corrector import Correction
from ..policy import Advance, Context, Policy, Proposal, Stop, Verdict, register
from ..state import Members
from .tangent import fmt_point
from .walk import project_tangent

_EPS = float(torch.finfo(torch.float64).eps)


def tangent_part(jac: Tensor, v: Tensor) -> Tensor:
    """``P_ker J v``, batched (``(k, m, n)``, ``(k, n)``)."""
    return project_kernel(gram(jac), v)


class Closest(Policy):
    """Descend ``|x - a|`` on the level (see the module docstring).

    Parameters
    ----------
    rtol : float
        Stop when ``|P_ker J (a - x)| <= rtol * max(1, |a - x|)``.
    sing_tol : float
        Stop where ``s_min(J) < sing_tol * s_max(J)``.
    max_newton : int
        Corrector iterations per step.
    """

    name = "closest"
    corrects = True
    adaptive = True

    def __init__(
        self,
        *,
        rtol: float = 1e-10,
        sing_tol: float = 1e-10,
        max_newton: int = 20,
        constrain_box: bool = False,
    ):
        self.rtol = rtol
        self.sing_tol = sing_tol
        self.max_newton = max_newton
        self.constrain_box = constrain_box
        # a box either stops the search where it is left, or its faces become constraints
        self.box_mode = "none" if constrain_box else "exit_on_chord"

    def _direction(self, ctx: Context, x: Tensor, jac: Tensor, anchor: Tensor) -> Tensor:
        """The part of ``anchor - x`` tangent to the level (box faces held where it pushes out)."""
        want = anchor - x
        if not (self.constrain_box and ctx.box is not None):
            return tangent_part(jac, want)
        d, _ = hold_faces(x, ctx.box, lambda free: project_tangent(jac, want, free))
        return d

    @staticmethod
    def init(mem: Members, anchor: Tensor) -> None:
        """Set the anchors of fresh members.

        Parameters
        ----------
        mem : Members
            Members on their levels (``goal`` = the level).
        anchor : torch.Tensor
            ``(B, n)`` the points to approach.
        """
        d = tangent_part(mem.jac, anchor - mem.x)
        mem.vars.update(
            anchor=anchor.clone(),
            dist=torch.linalg.vector_norm(anchor - mem.x, dim=-1),
            dnorm=torch.linalg.vector_norm(d, dim=-1),
        )

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """A step along the tangent part of ``a - x``, at most ``h`` long."""
        x = sub.x
        d = self._direction(ctx, x, sub.jac, sub.vars["anchor"])
        nd = torch.linalg.vector_norm(d, dim=-1)
        h = sub.h.to(x.device)
        scale = torch.where(nd > h, h / torch.clamp(nd, min=1e-300), torch.ones_like(nd))
        h_try = torch.minimum(h, nd)
        return Proposal(x=x + scale.unsqueeze(-1) * d, goal=sub.goal, jac=None, h=h_try.cpu())

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Converged (in the box, when its faces are constraints) and closer to the anchor."""
        x, y, jac, ok = cor.x, cor.y, cor.jac, cor.ok
        if self.constrain_box and ctx.box is not None:
            x, y, jac, ok = onto_faces(
                ctx.fn, x, y, jac, ok, sub.goal, sub.tol, ctx.box, ctx.stats, self.max_newton
            )
        dist = torch.linalg.vector_norm(sub.vars["anchor"] - x, dim=-1)
        closer = dist < sub.vars["dist"]  # strictly: no oscillation around the minimum
        accept = (ok & closer & torch.isfinite(dist)).cpu()
        return Verdict(
            accept=accept,
            easy=(cor.iters <= 2).cpu() & accept,
            info={"dist": dist, "x": x, "y": y, "jac": jac},
        )

    def at_floor(self, ctx: Context, sub: Members, j: int, x_try: Tensor) -> tuple[str, str]:
        """No step gets closer: a local minimum up to rounding."""
        return "minimum", (
            f"no step along the level gets closer to the anchor near {fmt_point(sub.x[j])}: a "
            "local minimum of the distance (to rounding)"
        )

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Move; stop at a first-order minimum or a rank drop."""
        anchor = sub.vars["anchor"]
        dist = verdict.info["dist"]
        x, y, jac = verdict.info["x"], verdict.info["y"], verdict.info["jac"]
        d = self._direction(ctx, x, jac, anchor)
        dnorm = torch.linalg.vector_norm(d, dim=-1)
        s_min, s_max = singular_extremes(jac)
        done = dnorm <= self.rtol * torch.clamp(dist, min=1.0)
        moved = torch.linalg.vector_norm(x - sub.x, dim=-1)
        stuck = moved <= 16 * _EPS * torch.clamp(x.abs().amax(dim=-1), min=1.0)
        singular = s_min < self.sing_tol * s_max
        stops: list[Stop] = []
        for j in (done | stuck).cpu().nonzero().squeeze(-1).tolist():
            stops.append(
                Stop(
                    j,
                    "minimum",
                    f"a local minimum of the distance on the level at {fmt_point(x[j])} "
                    f"(distance {float(dist[j]):.6g})",
                )
            )
        stopped = {s.index for s in stops}
        for j in singular.cpu().nonzero().squeeze(-1).tolist():
            if j not in stopped:
                stops.append(Stop(j, "singular", f"the Jacobian lost rank at {fmt_point(x[j])}"))
        return Advance(
            x=x,
            y=y,
            jac=jac,
            vars={"dist": dist, "dnorm": dnorm},
            record=None,
            rec_x=x,
            rec_y=y,
            extra={"dist": dist},
            stops=stops,
        )


register("closest", Closest)
