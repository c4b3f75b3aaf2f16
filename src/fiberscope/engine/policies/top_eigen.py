"""Policy ``"top_eigen"``: follow the top eigenvector of ``J^T G J`` until ``||N - y0||_G = eps``.

For several outputs with an output *change* ``epsilon`` instead of a target level: Heun steps
along the top eigenvector of the pullback metric (from the SVD of ``R J``, ``R^T R = G``; never
an ``n x n`` matrix) with sign continuity; a step is taken when the direction at its end turned
less than ``max_angle``. The crossing of the ``epsilon`` sphere is solved on the last chord by a
safeguarded Newton iteration; a step that leaves the box ends the walk where its chord leaves.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...geometry.jacobian import ModelFunction
from ..box import chord_exit, outside
from ..corrector import Correction
from ..policy import Advance, Context, Policy, Proposal, Stop, Verdict, register
from ..state import Members
from ..stats import Stats
from .tangent import fmt_point
from .target import fmt_output


def metric_root(metric: Tensor | None, m: int, like: Tensor) -> Tensor:
    """``R`` with ``R^T R = G`` (identity when ``G`` is None)."""
    if metric is None:
        return torch.eye(m, dtype=like.dtype, device=like.device)
    return torch.linalg.cholesky(metric).T


def top_directions(jac: Tensor, root: Tensor) -> tuple[Tensor, Tensor]:
    """Unit top eigenvectors of ``J^T G J`` (``(k, n)``) and their eigenvalues (``(k,)``)."""
    _, s, vh = torch.linalg.svd(torch.matmul(root, jac), full_matrices=False)
    return vh[:, 0, :], s[:, 0] ** 2


def solve_sphere(
    fn: ModelFunction,
    xa: Tensor,
    xb: Tensor,
    y0: Tensor,
    root: Tensor,
    epsilon: float,
    tol: float,
    stats: Stats,
) -> tuple[Tensor, Tensor, Tensor]:
    """Point on the chord ``xa -> xb`` where ``||N - y0||_G = epsilon`` (safeguarded Newton).

    Parameters
    ----------
    fn : ModelFunction
        The model.
    xa, xb : torch.Tensor
        ``(n,)`` chord ends (inside and outside the sphere).
    y0 : torch.Tensor
        ``(m,)`` centre.
    root : torch.Tensor
        ``(m, m)`` metric root.
    epsilon : float
        Radius.
    tol : float
        Tolerance on the radius.
    stats : Stats
        Counters to update.

    Returns
    -------
    tuple of torch.Tensor
        The point, its output and Jacobian.
    """
    d = xb - xa
    lo, hi = 0.0, 1.0
    tau = 1.0
    best: tuple[Tensor, Tensor, Tensor] | None = None
    for _ in range(100):
        xt = xa + tau * d
        yt, jt = fn.value_and_jacobian(xt)
        stats.jacobian_evals += 1
        r = root @ (yt - y0)
        nr = float(torch.linalg.vector_norm(r))
        f = nr - epsilon
        best = (xt, yt, jt)
        if abs(f) <= tol:
            break
        if f > 0:
            hi = tau
        else:
            lo = tau
        df = float(r @ (root @ (jt @ d))) / max(nr, 1e-300)
        nxt = tau - f / df if df != 0.0 else math.nan
        tau = nxt if math.isfinite(nxt) and lo < nxt < hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-15:
            break
    assert best is not None
    return best


class TopEigen(Policy):
    """Heun walk along the top eigenvector (see the module docstring).

    Parameters
    ----------
    epsilon : float
        Output distance (in the metric ``G``) to reach.
    max_angle : float
        Largest turn of the direction per step (radians).
    sing_tol : float
        Stops where the top eigenvalue falls below ``sing_tol**2`` times its start value.
    """

    name = "top_eigen"
    corrects = False
    adaptive = True
    box_mode = "none"

    def __init__(self, *, epsilon: float, max_angle: float = 0.3, sing_tol: float = 1e-8):
        self.epsilon = float(epsilon)
        self.cos_max = math.cos(max_angle)
        self.cos_grow = math.cos(max_angle / 3)
        self.sing_tol = sing_tol

    @staticmethod
    def init(mem: Members, up: bool, metric: Tensor | None) -> Tensor:
        """Set the first direction (signed so the first output goes up or down).

        Parameters
        ----------
        mem : Members
            Fresh members.
        up : bool
            Whether the first output should increase along the first step.
        metric : torch.Tensor or None
            Output metric.

        Returns
        -------
        torch.Tensor
            ``(B,)`` top eigenvalues at the starts (0 means the Jacobian vanishes).
        """
        root = metric_root(metric, mem.y.shape[1], mem.y)
        v, lam = top_directions(mem.jac, root)
        jv = torch.matmul(mem.jac, v.unsqueeze(-1)).squeeze(-1)
        ref = torch.argmax(jv.abs(), dim=-1)
        first = jv[:, 0]
        pick = torch.where(first != 0, first, jv.gather(1, ref.unsqueeze(-1)).squeeze(-1))
        want = 1.0 if up else -1.0
        v = torch.where((pick * want < 0).unsqueeze(-1), -v, v)
        mem.vars.update(v=v, s_ref=lam.clone())
        return lam

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """Heun: direction at ``x + h v`` (one Jacobian), then the average direction."""
        root = metric_root(ctx.metric, ctx.fn.m, sub.y)
        v = sub.vars["v"]
        h = sub.h
        hd = h.to(v.device).unsqueeze(-1)
        xp = sub.x + hd * v
        _, jp = ctx.fn.values_and_jacobians(xp)
        ctx.stats.jacobian_evals += int(xp.shape[0])
        v2, _ = top_directions(jp, root)
        v2 = torch.where(((v2 * v).sum(-1) < 0).unsqueeze(-1), -v2, v2)
        cos = (v2 * v).sum(-1)
        xn = sub.x + 0.5 * hd * (v + v2)
        return Proposal(x=xn, goal=sub.goal, jac=None, h=h, info={"cos": cos})

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Taken when the direction turned less than ``max_angle``."""
        cos = prop.info["cos"]
        accept = (cos >= self.cos_max).cpu() & cor.ok.cpu()
        return Verdict(accept=accept, easy=(cos >= self.cos_grow).cpu())

    def at_floor(self, ctx: Context, sub: Members, j: int, x_try: Tensor) -> tuple[str, str]:
        """The top eigenvector turns too fast."""
        return "singular", f"the top eigenvector turns too fast near {fmt_point(sub.x[j])}"

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Stop on the sphere (exactly) or at the box; otherwise move on."""
        fn, stats = ctx.fn, ctx.stats
        root = metric_root(ctx.metric, fn.m, sub.y)
        xs, ys, js = cor.x.clone(), cor.y.clone(), cor.jac.clone()
        stops: list[Stop] = []
        for j in range(sub.x.shape[0]):
            x, y0 = sub.x[j], sub.goal[j]
            xn, yn, jn = xs[j], ys[j], js[j]
            if ctx.box is not None and bool(outside(xn.unsqueeze(0), ctx.box)[0]):
                xe = chord_exit(x, xn, ctx.box)
                ye, je = fn.value_and_jacobian(xe)
                stats.jacobian_evals += 1
                if float(torch.linalg.vector_norm(root @ (ye - y0))) < self.epsilon:
                    xs[j], ys[j], js[j] = xe, ye, je
                    stops.append(
                        Stop(
                            j,
                            "boundary",
                            f"left the box at {fmt_point(xe)} with output {fmt_output(ye)}",
                            xe,
                        )
                    )
                    continue
                xn, yn, jn = xe, ye, je
            if float(torch.linalg.vector_norm(root @ (yn - y0))) >= self.epsilon:
                tol = float(sub.tol[j])
                xn, yn, jn = solve_sphere(fn, x, xn, y0, root, self.epsilon, tol, stats)
                stops.append(
                    Stop(
                        j,
                        "reached",
                        f"reached ||N(x) - N(x0)|| = {self.epsilon:g} after "
                        f"{int(sub.k[j]) + 1} steps",
                        xn,
                    )
                )
            xs[j], ys[j], js[j] = xn, yn, jn
        vn, lam = top_directions(js, root)
        v = sub.vars["v"]
        vn = torch.where(((vn * v).sum(-1) < 0).unsqueeze(-1), -vn, vn)
        stopped = {s.index for s in stops}
        weak = (lam < self.sing_tol**2 * sub.vars["s_ref"]).cpu()
        for j in weak.nonzero().squeeze(-1).tolist():
            if j not in stopped:
                stops.append(Stop(j, "singular", f"the Jacobian vanishes at {fmt_point(xs[j])}"))
        return Advance(
            x=xs,
            y=ys,
            jac=js,
            vars={"v": vn},
            record=None,
            rec_x=xs,
            rec_y=ys,
            stops=stops,
        )


register("top_eigen", TopEigen)
