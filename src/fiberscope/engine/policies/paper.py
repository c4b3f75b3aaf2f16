"""The authors' algorithms as policies ("paper mode"): SiMEC-1D and SiMExp-1D, exactly.

SiMEC-1D (Benfenati & Marta, paper II): at each step build the pullback metric
``g = J^T G J``, eigen-decompose it, take the eigenvector ``v`` of the *lowest* eigenvalue,
flip it if ``v . v_prev < 0``, move ``x <- x + delta v`` (``x - delta v`` when the direction is
inverted) and accumulate the energy ``delta v^T g v`` (``g`` at the old point). The start is
not recorded. Bounded variants (the engine's box modes): ``clamp`` (clamp every coordinate
after every step and go on) and ``stop`` (clamp, record the clamped point, stop).

SiMExp-1D moves ``delta`` along the eigenvector of the *largest* eigenvalue until
``|N(x) - N(x_leg)| >= epsilon``; as in the original the sign reference is never updated, so
the direction of every step is the eigen-solver's. A member may walk several legs in a row
(the authors' preimage driver: one leg per sub-level), each ending where its output changed
by its ``epsilon``.

These are kept for reproduction and comparison; they drift off the class (Euler error) and
are not the default.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...geometry.metric import metric_from_jacobian
from ..corrector import Correction
from ..policy import Advance, Context, Policy, Proposal, Stop, Verdict, register
from ..state import Members
from .tangent import fmt_point

_EPS = float(torch.finfo(torch.float64).eps)
_TINY = float(torch.finfo(torch.float64).tiny)


def _givens(p: float, q: float) -> tuple[float, float]:
    """Givens rotation ``(c, s)`` with the sign conventions of Eigen's ``makeGivens``."""
    if q == 0.0:
        return (-1.0 if p < 0 else 1.0), 0.0
    if p == 0.0:
        return 0.0, (1.0 if q < 0 else -1.0)
    if abs(p) > abs(q):
        t = q / p
        u = math.copysign(math.sqrt(1.0 + t * t), p)
        c = 1.0 / u
        return c, -t * c
    t = p / q
    u = math.copysign(math.sqrt(1.0 + t * t), q)
    sn = -1.0 / u
    return -t * sn, sn


def eigen2x2(a: float, b: float, c: float) -> tuple[list[float], list[list[float]]]:
    """Eigen-decomposition of ``[[a, b], [b, c]]`` as the authors' solver computes it.

    The authors used Eigen's iterative ``SelfAdjointEigenSolver`` (dynamic size): scale by the
    largest entry, Wilkinson-shifted implicit QR sweeps with Givens rotations accumulated from
    the identity, deflation when ``(e / eps)^2 <= |d0| + |d1|``, eigenvalues sorted ascending.
    The *signs* of its eigenvectors decide the first SiMEC step and every SiMExp step, and
    LAPACK's ``syevd`` (``torch.linalg.eigh``) does not follow them, so paper mode emulates the
    solver operation by operation (see ``docs/paper-mode-spec.md``).

    Parameters
    ----------
    a, b, c : float
        Entries ``g00``, ``g10`` and ``g11`` of the symmetric matrix.

    Returns
    -------
    values : list of float
        Eigenvalues, ascending.
    vectors : list of list of float
        ``vectors[j]`` is the unit eigenvector of ``values[j]``.
    """
    scale = max(abs(a), abs(b), abs(c)) or 1.0
    d0, d1, e = a / scale, c / scale, b / scale
    q00, q01, q10, q11 = 1.0, 0.0, 0.0, 1.0  # Q = [[q00, q01], [q10, q11]], columns = vectors
    for _ in range(60):
        if abs(e) < _TINY or (e / _EPS) ** 2 <= abs(d0) + abs(d1):
            break
        td, mu = 0.5 * (d0 - d1), d1
        if td == 0.0:
            mu -= abs(e)
        else:
            hi, lo = max(abs(td), abs(e)), min(abs(td), abs(e))
            h = hi * math.sqrt(1.0 + (lo / hi) * (lo / hi))
            mu -= e * e / (td + (h if td > 0 else -h))
        cs, sn = _givens(d0 - mu, e)
        sdk, dk1 = sn * d0 + cs * e, sn * e + cs * d1
        d0 = cs * (cs * d0 - sn * e) - sn * (cs * e - sn * d1)
        d1, e = sn * sdk + cs * dk1, cs * sdk - sn * dk1
        q00, q01 = cs * q00 - sn * q01, sn * q00 + cs * q01
        q10, q11 = cs * q10 - sn * q11, sn * q10 + cs * q11
    if d1 < d0:
        return [d1 * scale, d0 * scale], [[q01, q11], [q00, q10]]
    return [d0 * scale, d1 * scale], [[q00, q10], [q01, q11]]


def eigenvector(g: Tensor, lowest: bool) -> Tensor:
    """Eigenvector of the lowest or highest eigenvalue of a symmetric matrix, authors' signs.

    For 2x2 matrices (every experiment of paper II) the authors' Eigen solver is emulated
    exactly (:func:`eigen2x2`); larger matrices use LAPACK (``torch.linalg.eigh``), whose
    signs may differ from the authors' Householder path.

    Parameters
    ----------
    g : torch.Tensor
        Symmetric ``(n, n)`` matrix.
    lowest : bool
        Eigenvector of the lowest (True) or highest (False) eigenvalue.

    Returns
    -------
    torch.Tensor
        Unit eigenvector ``(n,)``.
    """
    if g.shape == (2, 2):
        a, b, _, c = g.reshape(-1).tolist()
        _, vecs = eigen2x2(a, b, c)
        return torch.tensor(vecs[0] if lowest else vecs[1], dtype=g.dtype, device=g.device)
    _, vecs = torch.linalg.eigh(g)
    return vecs[:, 0] if lowest else vecs[:, -1]


def _directions(jac: Tensor, metric: Tensor | None, lowest: bool) -> tuple[Tensor, Tensor]:
    """Authors' eigenvectors (lowest or highest) of ``J^T G J`` per member, and ``g``."""
    out, gs = [], []
    for j in jac:
        g = metric_from_jacobian(j, metric)
        out.append(eigenvector(g, lowest=lowest))
        gs.append(g)
    return torch.stack(out), torch.stack(gs)


class Simec(Policy):
    """The authors' SiMEC-1D: fixed Euler steps along the null eigenvector of ``g``.

    Parameters
    ----------
    box : {None, "clamp", "stop"}
        The authors' bounded variants (used when the run has a box).
    """

    name = "simec"
    corrects = False
    adaptive = False

    def __init__(self, *, box: str | None = None) -> None:
        self.box_mode = {None: "none", "clamp": "clamp", "stop": "stop_clamp"}[box]

    @staticmethod
    def init(mem: Members, sign: Tensor) -> None:
        """Set ``v_prev = 0``, the energy and the direction sign of fresh members.

        Parameters
        ----------
        mem : Members
            Fresh members.
        sign : torch.Tensor
            ``(B,)`` ``+1`` (``x + delta v``) or ``-1`` (``x - delta v``).
        """
        b = mem.x.shape[0]
        dev = mem.x.device
        mem.vars.update(
            v_prev=torch.zeros_like(mem.x),
            energy=torch.zeros(b, dtype=torch.float64, device=dev),
            sign=sign.to(torch.float64).to(dev),
        )

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """``x + sign delta v`` with the authors' eigenvector and sign continuity."""
        if sub.jac.shape[1:] == (1, 2):
            return self._propose_2x2(ctx, sub)
        v, g = _directions(sub.jac, ctx.metric, lowest=True)
        flip = (v * sub.vars["v_prev"]).sum(-1) < 0
        v = torch.where(flip.unsqueeze(-1), -v, v)
        h = sub.h
        hd = h.to(v.device)
        gv = torch.matmul(g, v.unsqueeze(-1)).squeeze(-1)
        energy = sub.vars["energy"] + hd * (v * gv).sum(-1)
        x = sub.x + (sub.vars["sign"] * hd).unsqueeze(-1) * v
        return Proposal(x=x, goal=sub.goal, jac=None, h=h, info={"v": v, "energy": energy})

    def _propose_2x2(self, ctx: Context, sub: Members) -> Proposal:
        """The same step for ``2 x 2`` metrics, in Python floats (every experiment of paper II).

        The arithmetic is the one of the general path operation for operation (``g = J^T G J``
        entry by entry, the emulated Eigen solver, the sign test, the energy), without the
        overhead of tiny tensors.
        """
        dev = sub.x.device
        gm = 1.0 if ctx.metric is None else float(ctx.metric.reshape(-1)[0])
        rows = sub.jac.reshape(-1, 2).tolist()
        prev = sub.vars["v_prev"].tolist()
        hs = sub.h.tolist()
        signs = sub.vars["sign"].tolist()
        energies = sub.vars["energy"].tolist()
        vs, es, dxs = [], [], []
        for (j0, j1), (p0, p1), h, sg, e in zip(rows, prev, hs, signs, energies, strict=True):
            gj0, gj1 = gm * j0, gm * j1
            a, b, c = j0 * gj0, j0 * gj1, j1 * gj1
            _, vecs = eigen2x2(a, b, c)
            v0, v1 = vecs[0]
            if v0 * p0 + v1 * p1 < 0:
                v0, v1 = -v0, -v1
            gv0, gv1 = a * v0 + b * v1, b * v0 + c * v1
            es.append(e + h * (v0 * gv0 + v1 * gv1))
            vs.append((v0, v1))
            sh = sg * h
            dxs.append((sh * v0, sh * v1))
        v = torch.tensor(vs, dtype=torch.float64, device=dev)
        energy = torch.tensor(es, dtype=torch.float64, device=dev)
        x = sub.x + torch.tensor(dxs, dtype=torch.float64, device=dev)
        return Proposal(x=x, goal=sub.goal, jac=None, h=sub.h, info={"v": v, "energy": energy})

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Every finite step is taken."""
        ok = cor.ok.cpu()
        return Verdict(accept=ok, easy=ok)

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Record the new point; stop members whose model returned NaN or inf."""
        ok = verdict.accept
        if bool(ok.all()):
            return Advance(
                x=cor.x,
                y=cor.y,
                jac=cor.jac,
                vars={"v_prev": prop.info["v"], "energy": prop.info["energy"]},
                record=None,
                rec_x=cor.x,
                rec_y=cor.y,
                extra={"energy": prop.info["energy"]},
            )
        okd = ok.to(sub.x.device).unsqueeze(-1)
        stops = [
            Stop(
                j,
                "nonfinite",
                f"the model returns NaN or inf at step {int(sub.k[j]) + 1} "
                f"({fmt_point(prop.x[j])}); stopped there",
                sub.x[j],
            )
            for j in (~ok).nonzero().squeeze(-1).tolist()
        ]
        x = torch.where(okd, cor.x, sub.x)
        y = torch.where(okd, cor.y, sub.y)
        jac = torch.where(okd.unsqueeze(-1), cor.jac, sub.jac)
        v_prev = torch.where(okd, prop.info["v"], sub.vars["v_prev"])
        energy = torch.where(ok.to(x.device), prop.info["energy"], sub.vars["energy"])
        return Advance(
            x=x,
            y=y,
            jac=jac,
            vars={"v_prev": v_prev, "energy": energy},
            record=ok,
            rec_x=cor.x,
            rec_y=cor.y,
            extra={"energy": energy},
            stops=stops,
        )


class Simexp(Policy):
    """The authors' SiMExp-1D: fixed steps along the top eigenvector of ``g``, in legs.

    Each member walks ``legs`` legs; a leg ends (its last point recorded with ``leg_end``)
    when ``max |N(x) - N(x_leg)| >= epsilon``. Members stop with ``"reached"`` after their
    last leg.
    """

    name = "simexp"
    corrects = False
    adaptive = False
    box_mode = "none"

    @staticmethod
    def init(mem: Members, sign: Tensor, epsilon: Tensor, legs: Tensor) -> None:
        """Set the leg bookkeeping of fresh members.

        Parameters
        ----------
        mem : Members
            Fresh members.
        sign : torch.Tensor
            ``(B,)`` ``+1`` or ``-1`` (the authors' ``invert`` flag).
        epsilon : torch.Tensor
            ``(B,)`` output change of each leg.
        legs : torch.Tensor
            ``(B,)`` number of legs.
        """
        b = mem.x.shape[0]
        dev = mem.x.device
        mem.vars.update(
            energy=torch.zeros(b, dtype=torch.float64, device=dev),
            sign=sign.to(torch.float64).to(dev),
            y_leg=mem.y.clone(),
            epsilon=epsilon.to(torch.float64).to(dev),
            leg=torch.zeros(b, dtype=torch.int64, device=dev),
            legs=legs.to(torch.int64).to(dev),
        )

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """``x + sign delta v`` along the authors' top eigenvector (no sign continuity)."""
        v, g = _directions(sub.jac, ctx.metric, lowest=False)
        h = sub.h
        hd = h.to(v.device)
        gv = torch.matmul(g, v.unsqueeze(-1)).squeeze(-1)
        energy = sub.vars["energy"] + hd * (v * gv).sum(-1)
        x = sub.x + (sub.vars["sign"] * hd).unsqueeze(-1) * v
        return Proposal(x=x, goal=sub.goal, jac=None, h=h, info={"energy": energy})

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Every step is taken."""
        ones = torch.ones(sub.x.shape[0], dtype=torch.bool)
        return Verdict(accept=ones, easy=ones)

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Record the point; end the leg when the output changed by ``epsilon``."""
        v = sub.vars
        change = (cor.y - v["y_leg"]).abs().amax(dim=-1)
        done = change >= v["epsilon"]
        leg = v["leg"] + done.to(torch.int64)
        finished = done & (leg >= v["legs"])
        y_leg = torch.where(done.unsqueeze(-1), cor.y, v["y_leg"])
        stops = [
            Stop(j, "reached", "output changed by epsilon", cor.x[j])
            for j in finished.cpu().nonzero().squeeze(-1).tolist()
        ]
        return Advance(
            x=cor.x,
            y=cor.y,
            jac=cor.jac,
            vars={"energy": prop.info["energy"], "leg": leg, "y_leg": y_leg},
            record=None,
            rec_x=cor.x,
            rec_y=cor.y,
            extra={"energy": prop.info["energy"], "leg_end": done},
            stops=stops,
        )


register("simec", Simec)
register("simexp", Simexp)
