"""Policy ``"tangent"``: follow a 1-D class along its oriented tangent (corrected tracing).

Each step predicts along the unit tangent of ``ker J`` (signed so that ``det[J; t] > 0``, times
the member's direction ``+1``/``-1``), with a second-order term from the tangent's turn on the
last step, and is corrected back to the level. A step is accepted when the corrector
converged, the tangent turned less than ``max_angle`` and the corrected point lies within one
step of the prediction. A branch stops when it closes a loop (back at its start after leaving
it; the closing point is not recorded), when the Jacobian loses rank, or at the box (exactly,
on a face and on the class).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...geometry.linalg import oriented_tangents
from ..corrector import Correction
from ..policy import Advance, Context, Policy, Proposal, Stop, Verdict, register
from ..state import Members

_EPS = float(torch.finfo(torch.float64).eps)


def fmt_point(x: Tensor) -> str:
    """``(a, b, ...)`` with at most six coordinates, for messages."""
    vals = x.reshape(-1)[:6].tolist()
    more = ", ..." if x.numel() > 6 else ""
    return "(" + ", ".join(f"{v:.6g}" for v in vals) + more + ")"


def conditioning(s_min: Tensor, s_max: Tensor, m: int) -> Tensor:
    """``|grad N|`` for one output, ``s_min / s_max`` of J otherwise."""
    if m == 1:
        return s_min
    return torch.where(s_max > 0, s_min / torch.where(s_max > 0, s_max, 1.0), 0.0)


class Tangent(Policy):
    """Corrected continuation of 1-D classes (see the module docstring).

    Parameters
    ----------
    max_angle : float
        Largest tangent turn per step (radians).
    sing_tol : float
        Singular when ``s_min < sing_tol * s_max`` or ``s_min < sing_tol * s_min(start)``.
    max_newton : int
        Corrector iterations per step.
    """

    name = "tangent"
    corrects = True
    adaptive = True
    box_mode = "exit_on_class"

    def __init__(self, *, max_angle: float = 0.3, sing_tol: float = 1e-8, max_newton: int = 8):
        self.cos_max = math.cos(max_angle)
        self.cos_grow = math.cos(max_angle / 3)
        self.sing_tol = sing_tol
        self.max_newton = max_newton

    @staticmethod
    def init(mem: Members, sign: Tensor) -> None:
        """Set the policy variables of fresh members.

        Parameters
        ----------
        mem : Members
            Members at their starts (``jac`` at the start).
        sign : torch.Tensor
            ``(B,)`` ``+1`` (forward) or ``-1`` (backward).
        """
        t, s_min, s_max = oriented_tangents(mem.jac)
        sg = sign.to(t.dtype).to(t.device)
        t = t * sg.unsqueeze(-1)
        b = t.shape[0]
        mem.vars.update(
            t=t,
            t0=t.clone(),
            x0=mem.x.clone(),
            curv=torch.zeros_like(t),
            sign=sg,
            s_min=s_min,
            s_max=s_max,
            s_ref=s_min.clone(),
            left=torch.zeros(b, dtype=torch.bool, device=t.device),
        )

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """Second-order prediction along the tangent."""
        v = sub.vars
        h = sub.h
        hd = (h.to(sub.x.device) if sub.x.device.type != "cpu" else h).unsqueeze(-1)
        # x + h t + h^2/2 curv (curv is zero before the first step)
        xp = sub.x + hd * (v["t"] + (0.5 * hd) * v["curv"])
        return Proposal(x=xp, goal=sub.goal, jac=None, h=h)

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Converged, turned less than ``max_angle``, within one step of the prediction."""
        tc, s_min, s_max = oriented_tangents(cor.jac)
        tc = tc * sub.vars["sign"].unsqueeze(-1)
        cos = (tc * sub.vars["t"]).sum(-1)  # NaN where J vanished: never accepted
        moved = torch.linalg.vector_norm(cor.x - prop.x, dim=-1)
        info = {"t": tc, "s_min": s_min, "s_max": s_max}
        if cos.shape[0] == 1:  # one member: the same tests on Python floats
            c, mv = torch.cat((cos, moved)).tolist()
            acc = bool(cor.ok[0]) and c >= self.cos_max and mv <= float(prop.h[0])
            easy1 = int(cor.iters[0]) <= 2 and c >= self.cos_grow
            return Verdict(accept=torch.tensor([acc]), easy=torch.tensor([easy1]), info=info)
        hd = prop.h.to(cos.device)
        accept = cor.ok & (cos >= self.cos_max) & (moved <= hd)
        easy = (cor.iters <= 2) & (cos >= self.cos_grow)
        return Verdict(accept=accept.cpu(), easy=easy.cpu(), info=info)

    def at_floor(self, ctx: Context, sub: Members, j: int, x_try: Tensor) -> tuple[str, str]:
        """Non-finite outputs just ahead, or a singular point (crossing, cusp)."""
        ahead = ctx.fn.value(x_try)
        ctx.stats.value_evals += 1
        x = sub.x[j]
        if not bool(torch.isfinite(ahead).all()):
            return "nonfinite", (
                f"the model returns NaN or inf just ahead of {fmt_point(x)} (at "
                f"{fmt_point(x_try)}); the class cannot be followed into that region"
            )
        s_min = float(sub.vars["s_min"][j])
        return "singular", (
            f"the step fell below its floor without staying on the class near {fmt_point(x)} "
            f"(s_min={s_min:.3g}): a singular point, a crossing or a cusp"
        )

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Closure test, curvature update, singular test."""
        v = sub.vars
        x, xc = sub.x, cor.x
        x0, t0 = v["x0"], v["t0"]
        if x.shape[0] == 1 and x.device.type == "cpu":
            return self._advance_one(ctx, sub, prop, cor, verdict)
        hd = prop.h.to(x.device)
        left = v["left"]
        seg = xc - x
        rel = x - x0
        a = (rel * t0).sum(-1)
        b = a + (seg * t0).sum(-1)
        closed = left & (a < 0.0) & (b >= 0.0)
        tc, s_min, s_max = verdict.info["t"], verdict.info["s_min"], verdict.info["s_max"]
        singular = (s_min < self.sing_tol * s_max) | (s_min < self.sing_tol * v["s_ref"])
        events = bool((closed | singular).any())
        if events and bool(closed.any()):
            segsq = torch.clamp((seg * seg).sum(-1), min=1e-300)
            u = torch.clamp(-(rel * seg).sum(-1) / segsq, 0.0, 1.0)
            dist = torch.linalg.vector_norm(rel + u.unsqueeze(-1) * seg, dim=-1)
            closed = closed & (dist <= 2.0 * hd)
        left_new = left | (torch.linalg.vector_norm(rel + seg, dim=-1) > 4.0 * hd)
        step_len = torch.linalg.vector_norm(seg, dim=-1)
        curv = (tc - v["t"]) / step_len.unsqueeze(-1)
        stops: list[Stop] = []
        record = None
        if events:
            closed_c, singular_c = closed.cpu(), singular.cpu()
            for j in closed_c.nonzero().squeeze(-1).tolist():
                stops.append(
                    Stop(j, "closed", f"returned to the start after {int(sub.k[j])} steps", x0[j])
                )
            for j in (singular_c & ~closed_c).nonzero().squeeze(-1).tolist():
                stops.append(
                    Stop(
                        j,
                        "singular",
                        f"the Jacobian lost rank at {fmt_point(xc[j])} "
                        f"(s_min={float(s_min[j]):.3g}, s_max={float(s_max[j]):.3g})",
                        xc[j],
                    )
                )
            record = ~closed_c
        new_vars = {
            "t": tc,
            "curv": curv,
            "s_min": s_min,
            "s_max": s_max,
            "left": left_new,
        }
        return Advance(
            x=xc,
            y=cor.y,
            jac=cor.jac,
            vars=new_vars,
            record=record,
            rec_x=xc,
            rec_y=cor.y,
            extra={"cond": conditioning(s_min, s_max, ctx.fn.m)},
            stops=stops,
        )

    def _advance_one(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """:meth:`advance` for one member: the same tests on Python floats."""
        v = sub.vars
        x, xc, x0, t0 = sub.x, cor.x, v["x0"], v["t0"]
        tc, s_min, s_max = verdict.info["t"], verdict.info["s_min"], verdict.info["s_max"]
        seg = xc - x
        rel = x - x0
        step_len = torch.linalg.vector_norm(seg, dim=-1)
        a, dseg, far, smin, smax, sref, length = torch.cat(
            (
                (rel * t0).sum(-1),
                (seg * t0).sum(-1),
                torch.linalg.vector_norm(rel + seg, dim=-1),
                s_min,
                s_max,
                v["s_ref"],
                step_len,
            )
        ).tolist()
        h = float(prop.h[0])
        left = bool(v["left"][0])
        closed = left and a < 0.0 <= a + dseg
        if closed:
            segsq = max(length * length, 1e-300)
            u = min(1.0, max(0.0, -float((rel * seg).sum()) / segsq))
            closed = float(torch.linalg.vector_norm(rel + u * seg)) <= 2.0 * h
        singular = smin < self.sing_tol * smax or smin < self.sing_tol * sref
        stops: list[Stop] = []
        if closed:
            stops.append(
                Stop(0, "closed", f"returned to the start after {int(sub.k[0])} steps", x0[0])
            )
        elif singular:
            stops.append(
                Stop(
                    0,
                    "singular",
                    f"the Jacobian lost rank at {fmt_point(xc[0])} (s_min={smin:.3g}, "
                    f"s_max={smax:.3g})",
                    xc[0],
                )
            )
        new_vars = {
            "t": tc,
            "curv": (tc - v["t"]) / step_len.unsqueeze(-1),
            "s_min": s_min,
            "s_max": s_max,
            "left": torch.tensor([left or far > 4.0 * h]),
        }
        return Advance(
            x=xc,
            y=cor.y,
            jac=cor.jac,
            vars=new_vars,
            record=torch.tensor([False]) if closed else None,
            rec_x=xc,
            rec_y=cor.y,
            extra={"cond": conditioning(s_min, s_max, ctx.fn.m)},
            stops=stops,
        )

    def exit_extra(self, ctx: Context, sub: Members, j: int, xe: Tensor) -> dict[str, Tensor]:
        """The conditioning recorded with an exit point (that of the last point inside)."""
        c = conditioning(sub.vars["s_min"][j : j + 1], sub.vars["s_max"][j : j + 1], ctx.fn.m)
        return {"cond": c}


register("tangent", Tangent)
