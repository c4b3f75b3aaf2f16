"""Policy ``"target"``: walk across classes to exact output levels (the gradient line).

A member continues the homotopy ``N(x) = y_s + lam (y* - y_s)`` from ``lam = 0`` to ``1``:
each step predicts along the unit minimum-norm direction ``u = J^+ (y* - y_s) / |.|`` (for one
output: the gradient, signed up or down), with a second-order term from the turn of the last
step, and is corrected back to the intermediate level. The last step of a leg aims at
``lam = 1`` exactly, so the leg ends on ``y*`` to the tolerance. A member may walk several
legs (levels) one after the other: preimage levels, or the boundary and the flipped level of a
classifier walk; each leg's last point is recorded with ``leg_end``. A member stops when its
last leg is reached, at the box (where its step's chord leaves it), or at a point where the
Jacobian loses rank (a local extremum or saddle of the output).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...geometry.linalg import gram, min_norm, singular_extremes
from ..box import held_coordinates, hold_faces, onto_faces
from ..corrector import Correction
from ..policy import Advance, Context, Policy, Proposal, Stop, Verdict, register
from ..state import Members
from .tangent import fmt_point

_EPS = float(torch.finfo(torch.float64).eps)


def fmt_output(y: Tensor) -> str:
    """An output for messages: a number, or a short vector."""
    vals = y.reshape(-1).tolist()
    if len(vals) == 1:
        return f"{vals[0]:.10g}"
    return "(" + ", ".join(f"{v:.6g}" for v in vals[:6]) + (", ..." if len(vals) > 6 else "") + ")"


def directions(
    jac: Tensor, dy: Tensor, free: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Unit minimum-norm directions ``J^+ dy / |J^+ dy|``, their speeds and ``J``'s extremes.

    Parameters
    ----------
    jac : torch.Tensor
        ``(k, m, n)``.
    dy : torch.Tensor
        ``(k, m)``.
    free : torch.Tensor, optional
        ``(k, n)`` bool: only these coordinates may move (the others are held on box faces).

    Returns
    -------
    u : torch.Tensor
        ``(k, n)`` unit directions (NaN where ``J`` is singular).
    speed : torch.Tensor
        ``(k,)`` ``|J^+ dy|`` (input distance per unit of ``lam``).
    s_min, s_max : torch.Tensor
        ``(k,)``.
    """
    if free is not None:
        jac = jac * free.unsqueeze(-2).to(jac.dtype)
    d = min_norm(gram(jac), dy)
    speed = torch.linalg.vector_norm(d, dim=-1)
    s_min, s_max = singular_extremes(jac)
    return d / speed.unsqueeze(-1), speed, s_min, s_max


class Target(Policy):
    """Exact walks to output levels (see the module docstring).

    Parameters
    ----------
    max_angle : float
        Largest turn of the direction per step (radians).
    sing_tol : float
        Singular when ``s_min`` falls below ``sing_tol`` times its value at the leg's start
        (or, for several outputs, below ``sing_tol * s_max``).
    max_newton : int
        Corrector iterations per step.
    """

    name = "target"
    corrects = True
    adaptive = True
    box_mode = "exit_on_chord"

    def __init__(
        self,
        *,
        max_angle: float = 0.3,
        sing_tol: float = 1e-8,
        max_newton: int = 8,
        constrain_box: bool = False,
    ):
        self.cos_max = math.cos(max_angle)
        self.cos_grow = math.cos(max_angle / 3)
        self.sing_tol = sing_tol
        self.max_newton = max_newton
        self.constrain_box = constrain_box
        # a box either ends the walk where a step's chord leaves it, or its faces become
        # constraints (coordinates pushed outward are held on them)
        self.box_mode = "none" if constrain_box else "exit_on_chord"

    def _free(self, ctx: Context, x: Tensor, u: Tensor, jac: Tensor, dy: Tensor) -> Tensor | None:
        """Coordinates that may move: not on a face the direction pushes against."""
        if not (self.constrain_box and ctx.box is not None):
            return None
        _, free = hold_faces(
            x,
            ctx.box,
            lambda f: directions(jac, dy, f)[0],
            held_coordinates(x, u, ctx.box),
        )
        return free

    @staticmethod
    def init(mem: Members, targets: Tensor, legs: Tensor | None = None) -> None:
        """Set the legs of fresh members.

        Parameters
        ----------
        mem : Members
            Members at their starts.
        targets : torch.Tensor
            ``(B, L, m)``: the levels each member walks to, in order.
        legs : torch.Tensor, optional
            ``(B,)`` how many of the ``L`` levels each member walks to (default all).
        """
        b = mem.x.shape[0]
        dev = mem.x.device
        dy = targets[:, 0, :] - mem.y
        u, speed, s_min, s_max = directions(mem.jac, dy)
        mem.goal = targets[:, 0, :].clone()
        if legs is None:
            legs = torch.full((b,), targets.shape[1], dtype=torch.int64)
        mem.vars.update(
            targets=targets.clone(),
            legs=legs.to(device=dev, dtype=torch.int64),
            leg=torch.zeros(b, dtype=torch.int64, device=dev),
            y_start=mem.y.clone(),
            dy=dy,
            lam=torch.zeros(b, dtype=torch.float64, device=dev),
            u=u,
            speed=speed,
            curv=torch.zeros_like(mem.x),
            s_min=s_min,
            s_max=s_max,
            s_ref=s_min.clone(),
        )

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """Predict ``h`` along ``u``, or exactly to the leg's end when that is closer."""
        v = sub.vars
        h = sub.h.to(sub.x.device)
        speed, lam = v["speed"], v["lam"]
        rem = 1.0 - lam
        reach = speed * rem
        final = h >= reach
        h_try = torch.minimum(h, reach)
        dlam = torch.where(final, rem, h_try / speed)
        target = v["targets"][torch.arange(sub.x.shape[0], device=sub.x.device), v["leg"]]
        goal = torch.where(
            final.unsqueeze(-1), target, v["y_start"] + (lam + dlam).unsqueeze(-1) * v["dy"]
        )
        hd = h_try.unsqueeze(-1)
        u = v["u"]
        curv = v["curv"]
        free = self._free(ctx, sub.x, u, sub.jac, v["dy"])
        if free is not None:  # faces the walk pushes against are held: re-aim along the rest
            u, _, _, _ = directions(sub.jac, v["dy"], free)
            curv = curv * free.to(curv.dtype)  # held coordinates stay on their faces
        # x + h u + h^2/2 curv (curv is zero at the start of every leg)
        xp = sub.x + hd * (u + (0.5 * hd) * curv)
        return Proposal(
            x=xp,
            goal=goal,
            jac=None,
            h=h_try.cpu(),
            info={"final": final, "dlam": dlam, "u": u, "free": free},
        )

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Converged, turned less than ``max_angle``, within one step of the prediction."""
        x, y, jac, ok = cor.x, cor.y, cor.jac, cor.ok
        free = None
        if self.constrain_box and ctx.box is not None:
            x, y, jac, ok = onto_faces(
                ctx.fn, x, y, jac, ok, prop.goal, sub.tol, ctx.box, ctx.stats, self.max_newton
            )
            free = self._free(ctx, x, prop.info["u"], jac, sub.vars["dy"])
        uc, speed_c, s_min, s_max = directions(jac, sub.vars["dy"], free)
        good = torch.isfinite(speed_c) & (speed_c > 0)
        cos = torch.where(good, (uc * prop.info["u"]).sum(-1), -2.0)
        moved = torch.linalg.vector_norm(x - prop.x, dim=-1)
        hd = prop.h.to(cos.device)
        accept = ok & good & (cos >= self.cos_max) & (moved <= torch.clamp(hd, min=64 * _EPS))
        easy = (cor.iters <= 2) & (cos >= self.cos_grow)
        return Verdict(
            accept=accept.cpu(),
            easy=easy.cpu(),
            info={
                "u": uc,
                "speed": speed_c,
                "s_min": s_min,
                "s_max": s_max,
                "x": x,
                "y": y,
                "jac": jac,
            },
        )

    def at_floor(self, ctx: Context, sub: Members, j: int, x_try: Tensor) -> tuple[str, str]:
        """The output has a local extremum or saddle near the member."""
        return "singular", (
            f"the step fell below its floor near {fmt_point(sub.x[j])} with output "
            f"{fmt_output(sub.y[j])} (s_min={float(sub.vars['s_min'][j]):.3g}): the output has "
            "a local extremum or saddle there"
        )

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Move on; end legs exactly on their level; stop at the last one or a rank drop."""
        v = sub.vars
        info = verdict.info
        xc, yc, jc = info["x"], info["y"], info["jac"]
        step_len = torch.clamp(torch.linalg.vector_norm(xc - sub.x, dim=-1), min=1e-300)
        curv = (info["u"] - prop.info["u"]) / step_len.unsqueeze(-1)
        final = prop.info["final"]
        lam = v["lam"] + prop.info["dlam"]
        leg = v["leg"]
        last = final & (leg + 1 >= v["legs"])
        s_min, s_max = info["s_min"], info["s_max"]
        singular = s_min < self.sing_tol * v["s_ref"]
        if ctx.fn.m > 1:
            singular = singular | (s_min < self.sing_tol * s_max)
        new_vars = {
            "u": info["u"],
            "speed": info["speed"],
            "curv": curv,
            "lam": lam,
            "s_min": s_min,
            "s_max": s_max,
        }
        goal = None
        turn = final & ~last
        if bool(turn.any()):
            # the next leg starts here: a new homotopy from this point's output
            nleg = torch.where(turn, leg + 1, leg)
            tgt = v["targets"][torch.arange(xc.shape[0], device=xc.device), nleg]
            dy = torch.where(turn.unsqueeze(-1), tgt - yc, v["dy"])
            u2, sp2, smin2, _ = directions(jc, dy)
            t1 = turn.unsqueeze(-1)
            new_vars.update(
                leg=nleg,
                dy=dy,
                y_start=torch.where(t1, yc, v["y_start"]),
                lam=torch.where(turn, torch.zeros_like(lam), lam),
                u=torch.where(t1, u2, info["u"]),
                speed=torch.where(turn, sp2, info["speed"]),
                curv=torch.where(t1, torch.zeros_like(curv), curv),
                s_ref=torch.where(turn, smin2, v["s_ref"]),
            )
            goal = torch.where(t1, tgt, sub.goal)
        stops: list[Stop] = []
        if bool(last.any()) or bool(singular.any()):
            last_c, sing_c = last.cpu(), singular.cpu()
            for j in last_c.nonzero().squeeze(-1).tolist():
                stops.append(
                    Stop(j, "reached", f"reached the target after {int(sub.k[j]) + 1} steps")
                )
            for j in (sing_c & ~final.cpu()).nonzero().squeeze(-1).tolist():
                stops.append(
                    Stop(
                        j,
                        "singular",
                        f"the Jacobian lost rank at {fmt_point(xc[j])} with output "
                        f"{fmt_output(yc[j])} (s_min={float(s_min[j]):.3g}, "
                        f"s_max={float(s_max[j]):.3g})",
                    )
                )
        return Advance(
            x=xc,
            y=yc,
            jac=jc,
            vars=new_vars,
            record=None,
            rec_x=xc,
            rec_y=yc,
            extra={"leg": leg, "leg_end": final},
            stops=stops,
            goal=goal,
        )

    def exit_extra(self, ctx: Context, sub: Members, j: int, xe: Tensor) -> dict[str, Tensor]:
        """An exit point belongs to the member's current leg and ends nothing."""
        dev = sub.x.device
        return {
            "leg": sub.vars["leg"][j : j + 1],
            "leg_end": torch.zeros(1, dtype=torch.bool, device=dev),
        }


register("target", Target)
