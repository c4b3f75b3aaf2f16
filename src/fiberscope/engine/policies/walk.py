"""Walks on classes of any dimension: a corrected random walk, a uniform sampler, the authors'.

``"walk"`` (corrected): each step draws a Gaussian direction, projects it onto ``ker J`` (with
the coordinates held on box faces removed), steps ``h`` along it and corrects back to the class
with the engine's corrector; coordinates that leave the box are put on their face and become
constraints for that step (a second correction), so every point is on the class *and* in the
box. The step adapts; the numerical rank of ``J`` is tracked at every point and its changes
(a ReLU unit switching, a dead region) are counted and recorded, never stepped over silently.

``"uniform"``: the manifold Metropolis-Hastings random walk of Zappa, Holmes-Cerfon & Goodman
("Monte Carlo on manifolds", 2018). A Gaussian tangent proposal ``v = P_x z`` (scale ``step``),
a projection back to the class along the normal space of ``x`` (the corrector with the chord
Jacobian fixed at ``J(x)``), the Metropolis-Hastings test with the reverse tangent proposal
``v' = P_y (x - y)``, and the reverse-projection check (``y + v'`` must project back to
``x``): together they make the chain reversible for the surface measure of the class inside the
box, or for ``exp(log_density)`` times it. A rejected proposal keeps the chain where it is (and
counts why: projection failed, Metropolis-Hastings, reverse check, box).

``"paper_nd"``: the authors' n-D walk (paper III), no corrector: the ``n x n`` metric
``g = J^T J`` (formed in float32 as in their code), ``eigh``, a random "null" eigenvector by
their index rule, a step of ``+-delta/2`` by the index's parity, clamping to the box and their
pseudolength. It costs ``O(n^3)`` per step and drifts off the class.

Random numbers are counter-based: member ``i`` at its ``k``-th iteration draws from a
generator seeded with a hash of ``(seed_i, k)``, so a chain gives the same samples in a batch
or alone, in one process or on a cluster, and after a resume.
"""

from __future__ import annotations

import struct

import torch
from torch import Tensor

from ...errors import InputError
from ...geometry.linalg import pinv_min_norm
from ...geometry.matfree import is_placeholder, placeholder
from ..box import held_coordinates, hold_faces, onto_faces
from ..corrector import Correction, correct
from ..policy import Advance, Context, Policy, Proposal, Stop, Verdict, register
from ..state import Members
from .tangent import fmt_point

_MASK64 = (1 << 64) - 1
#: Largest input size of the authors' walk (its n x n eigen-decomposition).
PAPER_ND_MAX_N = 4096


def splitmix64(x: int) -> int:
    """One round of SplitMix64 (a well-mixed 64-bit hash of an integer)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def chain_seed(seed: int, index: int) -> int:
    """The seed of chain ``index`` of a run seeded with ``seed`` (63-bit)."""
    return splitmix64(splitmix64(int(seed) & _MASK64) ^ int(index)) & ((1 << 63) - 1)


class Noise:
    """Counter-based random numbers: member seeds plus iteration counters."""

    def __init__(self) -> None:
        self.gen = torch.Generator(device="cpu")

    def _seed(self, seed: int, k: int) -> None:
        self.gen.manual_seed(splitmix64(seed ^ splitmix64(k)) & ((1 << 63) - 1))

    def normal(self, seeds: Tensor, ks: Tensor, n: int, like: Tensor) -> Tensor:
        """``(B, n)`` standard normals, row ``i`` from ``(seeds[i], ks[i])``."""
        rows = []
        for s, k in zip(seeds.tolist(), ks.tolist(), strict=True):
            self._seed(int(s), 2 * int(k) & _MASK64)
            rows.append(torch.randn(n, generator=self.gen, dtype=torch.float64))
        return torch.stack(rows).to(like.device)

    def uniform(self, seeds: Tensor, ks: Tensor) -> Tensor:
        """``(B,)`` uniforms in ``[0, 1)``, independent of :meth:`normal`."""
        out = []
        for s, k in zip(seeds.tolist(), ks.tolist(), strict=True):
            self._seed(int(s), 2 * int(k) + 1)
            out.append(float(torch.rand(1, generator=self.gen, dtype=torch.float64)))
        return torch.tensor(out, dtype=torch.float64)

    def integers(self, seeds: Tensor, ks: Tensor, high: int) -> list[int]:
        """One integer in ``[0, high)`` per row."""
        out = []
        for s, k in zip(seeds.tolist(), ks.tolist(), strict=True):
            self._seed(int(s), 2 * int(k))
            out.append(int(torch.randint(high, (1,), generator=self.gen)))
        return out


def step_key(k: Tensor, h: Tensor) -> Tensor:
    """A counter for ``(step number, step size)``: a retried (halved) step draws anew."""
    bits = [struct.unpack("<q", struct.pack("<d", float(v)))[0] for v in h.tolist()]
    keys = [
        splitmix64(int(a) * 0x10001 ^ (b & _MASK64)) >> 2
        for a, b in zip(k.tolist(), bits, strict=True)
    ]
    return torch.tensor(keys, dtype=torch.int64)


def project_tangent(jac: Tensor, v: Tensor, free: Tensor | None = None) -> Tensor:
    """``P_ker J v`` (least squares, safe for rank-deficient or zero ``J``), batched.

    Parameters
    ----------
    jac : torch.Tensor
        ``(B, m, n)``.
    v : torch.Tensor
        ``(B, n)``.
    free : torch.Tensor, optional
        ``(B, n)`` bool: held coordinates are removed first (zero in the result).

    Returns
    -------
    torch.Tensor
        ``(B, n)``.
    """
    if free is not None:
        f = free.to(v.dtype)
        v = v * f
        jac = jac * f.unsqueeze(-2)
    jv = torch.matmul(jac, v.unsqueeze(-1)).squeeze(-1)
    dx, _ = pinv_min_norm(jac, jv)
    return v - dx


def numerical_rank(jac: Tensor, rtol: float = 1e-8) -> Tensor:
    """``(B,)`` numerical rank of each Jacobian (``m x m`` work only).

    For many outputs (``m > 64``) a successful Cholesky factorisation of ``J J^T`` counts as
    full rank ``m`` (cheaper than the eigenvalues), a failed one as ``m - 1``.
    """
    if jac.shape[1] > 64:
        g = torch.matmul(jac, jac.transpose(-1, -2))
        info = torch.linalg.cholesky_ex(g).info
        return torch.where(info == 0, jac.shape[1], jac.shape[1] - 1).to(torch.int64)
    g = torch.matmul(jac, jac.transpose(-1, -2))
    ev = torch.linalg.eigvalsh(g).clamp_min(0.0)
    top = ev[:, -1:]
    return ((ev > (rtol * rtol) * top) & (ev > 0)).sum(-1)


def _in_box(x: Tensor, box: tuple[Tensor, Tensor] | None) -> Tensor:
    if box is None:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    return ((x >= box[0]) & (x <= box[1])).all(dim=-1)


class RandomWalk(Policy):
    """The corrected random walk (see the module docstring).

    Parameters
    ----------
    thin : int
        Record every ``thin``-th accepted point.
    max_newton : int
        Corrector iterations per step.
    """

    name = "walk"
    corrects = True
    adaptive = True
    box_mode = "none"

    def __init__(self, *, thin: int = 1, max_newton: int = 12) -> None:
        self.thin = int(thin)
        self.max_newton = max_newton
        self.noise = Noise()

    @staticmethod
    def init(mem: Members, seeds: Tensor) -> None:
        """Set the seeds and counters of fresh chains.

        Parameters
        ----------
        mem : Members
            Chains at their starts.
        seeds : torch.Tensor
            ``(B,)`` int64 chain seeds.
        """
        b = mem.x.shape[0]
        dev = mem.x.device
        rank = (
            torch.full((b,), mem.y.shape[1], dtype=torch.int64)
            if is_placeholder(mem.jac)
            else numerical_rank(mem.jac)
        )
        mem.vars.update(
            seed=seeds.to(torch.int64),
            rank=rank.to(dev),
            rank_changes=torch.zeros(b, dtype=torch.int64, device=dev),
            length=torch.zeros(b, dtype=torch.float64, device=dev),
        )

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """A Gaussian direction projected onto ``ker J``, unit length, times ``h``."""
        v = sub.vars
        z = self.noise.normal(v["seed"], step_key(sub.k, sub.h), sub.x.shape[1], sub.x)
        if is_placeholder(sub.jac):  # matrix-free: project through a linearisation at x
            lin = ctx.fn.linearize(sub.x)
            ctx.stats.value_evals += int(sub.x.shape[0])

            def along(free: Tensor | None) -> Tensor:
                return lin.project(z, None if free is None else free.to(z.dtype))
        else:

            def along(free: Tensor | None) -> Tensor:
                return project_tangent(sub.jac, z, free)

        if ctx.box is None:
            d = along(None)
        else:
            # coordinates on a box face that the direction pushes outward stay on it (pixels
            # at 0), also those that the projection turns outward
            d, _ = hold_faces(sub.x, ctx.box, along, held_coordinates(sub.x, z, ctx.box))
        nd = torch.linalg.vector_norm(d, dim=-1)
        u = d / torch.clamp(nd, min=1e-300).unsqueeze(-1)
        h = sub.h
        xp = sub.x + h.to(sub.x.device).unsqueeze(-1) * u
        return Proposal(x=xp, goal=sub.goal, jac=None, h=h, info={"dnorm": nd})

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Converged, in the box (faces become constraints), within one step of the guess."""
        x, y, jac, ok = cor.x, cor.y, cor.jac, cor.ok
        if ctx.box is not None:
            x, y, jac, ok = onto_faces(
                ctx.fn,
                x,
                y,
                jac,
                ok,
                sub.goal,
                sub.tol,
                ctx.box,
                ctx.stats,
                self.max_newton,
                matrix_free=ctx.matrix_free,
            )
        moved = torch.linalg.vector_norm(x - prop.x, dim=-1)
        hd = prop.h.to(x.device)
        step = torch.linalg.vector_norm(x - sub.x, dim=-1)
        accept = ok & (moved <= hd) & (prop.info["dnorm"] > 0) & (step > 0)
        easy = (cor.iters <= 2).cpu() & accept.cpu()
        # the corrector's Jacobian is at the predicted point: evaluate it where we land
        return Verdict(
            accept=accept.cpu(), easy=easy, info={"x": x, "y": y, "jac": jac, "step": step}
        )

    def at_floor(self, ctx: Context, sub: Members, j: int, x_try: Tensor) -> tuple[str, str]:
        """No step stays on the class here: a singular point or an isolated piece."""
        return "singular", (
            f"the walk cannot leave {fmt_point(sub.x[j])}: no step, however small, stays on "
            "the class (a singular point, or a piece of the class cut off by the box)"
        )

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Move; track the rank; record every ``thin``-th point."""
        # the corrector's Jacobian (at the prediction, one correction away) serves the next
        # direction, as the tangent policy's does: one Jacobian per step
        x, yj, jac = verdict.info["x"], verdict.info["y"], verdict.info["jac"]
        rank = sub.vars["rank"] if is_placeholder(jac) else numerical_rank(jac)
        changed = rank != sub.vars["rank"]
        k_next = sub.k + 1
        record = (k_next % self.thin) == 0
        return Advance(
            x=x,
            y=yj,
            jac=jac,
            vars={
                "rank": rank,
                "rank_changes": sub.vars["rank_changes"] + changed.to(torch.int64),
                "length": sub.vars["length"] + verdict.info["step"],
            },
            record=record,
            rec_x=x,
            rec_y=yj,
            extra={"rank": rank, "accepted": torch.ones_like(changed)},
        )


class Uniform(Policy):
    """The manifold Metropolis-Hastings sampler (see the module docstring).

    Parameters
    ----------
    step : float
        Proposal scale ``sigma`` (input units).
    thin : int
        Record every ``thin``-th iteration.
    log_density : callable, optional
        ``log_density(x) -> (B,)`` on flat points: the target is ``exp(log_density)`` times
        the surface measure of the class (uniform by default).
    reverse_tol : float
        The reverse projection must land within ``reverse_tol * max(1, |x|)`` of ``x``.
    max_newton : int
        Iterations of the projections (chord Newton with the normal space held fixed converges
        linearly, so it gets more than the other policies; each costs one output evaluation).
    reverse, metropolis : bool
        The reverse check and the acceptance test (both on by default; switching one off gives
        a chain with the wrong stationary measure, for tests).
    """

    name = "uniform"
    corrects = True
    adaptive = False
    box_mode = "none"

    def __init__(
        self,
        *,
        step: float,
        thin: int = 1,
        log_density: object = None,
        reverse_tol: float = 1e-8,
        max_newton: int = 60,
        reverse: bool = True,
        metropolis: bool = True,
    ) -> None:
        self.sigma = float(step)
        self.thin = int(thin)
        self.log_density = log_density
        self.reverse_tol = reverse_tol
        self.max_newton = max_newton
        self.reverse = reverse
        self.metropolis = metropolis
        self.noise = Noise()

    @staticmethod
    def init(mem: Members, seeds: Tensor) -> None:
        """Set the seeds and the rejection counters of fresh chains.

        Parameters
        ----------
        mem : Members
            Chains at their starts.
        seeds : torch.Tensor
            ``(B,)`` int64 chain seeds.
        """
        b = mem.x.shape[0]
        z = torch.zeros(b, dtype=torch.int64)
        mem.vars.update(
            seed=seeds.to(torch.int64),
            accepted=z.clone(),
            rej_projection=z.clone(),
            rej_metropolis=z.clone(),
            rej_reverse=z.clone(),
            rej_box=z.clone(),
            length=torch.zeros(b, dtype=torch.float64, device=mem.x.device),
        )

    def _logf(self, x: Tensor) -> Tensor:
        if self.log_density is None:
            return torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        out = self.log_density(x)  # type: ignore[operator]
        out = torch.as_tensor(out, dtype=torch.float64, device=x.device).reshape(-1)
        if out.numel() != x.shape[0]:
            raise InputError(
                f"log_density returned {out.numel()} values for {x.shape[0]} points; it must "
                "return one log-density per point"
            )
        return out

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """``x + P_x z`` with ``z ~ N(0, sigma^2 I)``; projected along the normals of ``x``."""
        v = sub.vars
        z = self.noise.normal(v["seed"], sub.k, sub.x.shape[1], sub.x) * self.sigma
        if is_placeholder(sub.jac):  # matrix-free: the normal space of x as an operator
            lin = ctx.fn.linearize(sub.x)
            ctx.stats.value_evals += int(sub.x.shape[0])
            t = lin.project(z)
            return Proposal(x=sub.x + t, goal=sub.goal, jac=lin, h=sub.h, info={"v": t})
        t = project_tangent(sub.jac, z)
        return Proposal(x=sub.x + t, goal=sub.goal, jac=sub.jac, h=sub.h, info={"v": t})

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Projection, box, Metropolis-Hastings and reverse check."""
        b = sub.x.shape[0]
        x, yp = sub.x, cor.x
        proj_ok = cor.ok
        inbox = _in_box(yp, ctx.box) if ctx.box is not None else torch.ones_like(proj_ok)
        reason = torch.zeros(b, dtype=torch.int64)  # 0 accepted, 1 proj, 2 box, 3 MH, 4 rev
        reason[~proj_ok.cpu()] = 1
        reason[(proj_ok & ~inbox).cpu()] = 2
        cand = (proj_ok & inbox).cpu()
        y_out, jac_y = cor.y, sub.jac
        if bool(cand.any()):
            rows = cand.nonzero().squeeze(-1)
            rd = rows.to(x.device)
            yc = yp[rd]
            mfree = is_placeholder(sub.jac)
            if mfree:
                lin_y = ctx.fn.linearize(yc)
                y_val, jy = lin_y.values, placeholder(yc.shape[0], sub.y.shape[1], yc)
                v_rev = lin_y.project(x[rd] - yc)
            else:
                y_val, jy = ctx.fn.values_and_jacobians(yc)
                v_rev = project_tangent(jy, x[rd] - yc)
            ctx.stats.jacobian_evals += int(rows.numel())
            v = prop.info["v"][rd]
            log_ratio = (
                self._logf(yc)
                - self._logf(x[rd])
                - ((v_rev * v_rev).sum(-1) - (v * v).sum(-1)) / (2 * self.sigma**2)
            )
            u = self.noise.uniform(sub.vars["seed"][rows], sub.k[rows]).to(x.device)
            mh = torch.log(torch.clamp(u, min=1e-300)) < log_ratio
            if not self.metropolis:
                mh = torch.ones_like(mh)
            rev_ok = torch.ones_like(mh)
            if self.reverse and bool(mh.any()):
                r2 = mh.nonzero().squeeze(-1)
                chord = ctx.fn.linearize(yc[r2]) if mfree else jy[r2]
                back = correct(
                    ctx.fn,
                    yc[r2] + v_rev[r2],
                    sub.goal[rd][r2],
                    sub.tol[rd][r2],
                    max_iter=self.max_newton,
                    jac=chord,
                    stats=ctx.stats,
                )
                scale = torch.clamp(x[rd][r2].abs().amax(dim=-1), min=1.0)
                dist = torch.linalg.vector_norm(back.x - x[rd][r2], dim=-1)
                rev_ok = rev_ok.clone()
                rev_ok[r2] = back.ok & (dist <= self.reverse_tol * scale)
            rr = reason[rows]
            rr[(~mh).cpu()] = 3
            rr[(mh & ~rev_ok).cpu()] = 4
            reason[rows] = rr
            y_out = cor.y.clone()
            y_out[rd] = y_val
            jac_y = sub.jac.clone()
            jac_y[rd] = jy
        accept = reason == 0
        return Verdict(
            accept=accept, easy=accept, info={"reason": reason, "y": y_out, "jac": jac_y}
        )

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Move or stay; count the reason; record every ``thin``-th iteration."""
        acc = verdict.accept
        ad = acc.to(sub.x.device)
        reason = verdict.info["reason"]
        x = torch.where(ad.unsqueeze(-1), cor.x, sub.x)
        y = torch.where(ad.unsqueeze(-1), verdict.info["y"], sub.y)
        jac = torch.where(ad.unsqueeze(-1).unsqueeze(-1), verdict.info["jac"], sub.jac)
        v = sub.vars
        step = torch.where(ad, torch.linalg.vector_norm(cor.x - sub.x, dim=-1), 0.0)
        k_next = sub.k + 1
        return Advance(
            x=x,
            y=y,
            jac=jac,
            vars={
                "accepted": v["accepted"] + acc.to(torch.int64),
                "rej_projection": v["rej_projection"] + (reason == 1).to(torch.int64),
                "rej_box": v["rej_box"] + (reason == 2).to(torch.int64),
                "rej_metropolis": v["rej_metropolis"] + (reason == 3).to(torch.int64),
                "rej_reverse": v["rej_reverse"] + (reason == 4).to(torch.int64),
                "length": v["length"] + step,
            },
            record=(k_next % self.thin) == 0,
            rec_x=x,
            rec_y=y,
            extra={"accepted": ad},
        )


class PaperWalk(Policy):
    """The authors' n-D walk of paper III (see the module docstring).

    Parameters
    ----------
    null : {"index", "threshold"}
        Their two rules for "null" eigenvectors: a uniform index among the ``n - rank``
        smallest (MNIST; ``rank`` = the number of outputs), or the eigenvalues below
        ``threshold`` (their CCPP rule).
    threshold : float
        Eigenvalue threshold of the ``"threshold"`` rule.
    thin : int
        Record every ``thin``-th step.
    """

    name = "paper_nd"
    corrects = False
    adaptive = False
    box_mode = "clamp"

    def __init__(self, *, null: str = "index", threshold: float = 1e-5, thin: int = 1):
        if null not in ("index", "threshold"):
            raise InputError(f"unknown null rule {null!r}; use 'index' or 'threshold'")
        self.null = null
        self.threshold = threshold
        self.thin = int(thin)
        self.noise = Noise()

    @staticmethod
    def init(mem: Members, seeds: Tensor) -> None:
        """Set the seeds and the pseudolength of fresh chains.

        Parameters
        ----------
        mem : Members
            Chains at their starts.
        seeds : torch.Tensor
            ``(B,)`` int64 chain seeds.
        """
        b = mem.x.shape[0]
        mem.vars.update(
            seed=seeds.to(torch.int64),
            pseudolength=torch.zeros(b, dtype=torch.float64, device=mem.x.device),
            length=torch.zeros(b, dtype=torch.float64, device=mem.x.device),
        )

    def propose(self, ctx: Context, sub: Members) -> Proposal:
        """Their step: a random null eigenvector of ``g``, ``+-delta/2`` by index parity."""
        n = sub.x.shape[1]
        m = sub.jac.shape[1]
        steps = []
        lams = []
        for j in range(sub.x.shape[0]):
            jf = sub.jac[j].to(torch.float32)
            g = (jf.T @ jf).to(torch.float64)
            ev, vecs = torch.linalg.eigh(g)
            if self.null == "index":
                high = max(1, n - m)
                idx = self.noise.integers(sub.vars["seed"][j : j + 1], sub.k[j : j + 1], high)[0]
            else:
                count = int((ev < self.threshold).sum())
                if count == 0:
                    count = 1
                idx = self.noise.integers(sub.vars["seed"][j : j + 1], sub.k[j : j + 1], count)[0]
            direction = (idx % 2) - 0.5
            steps.append(direction * float(sub.h[j]) * vecs[:, idx])
            lams.append(abs(float(ev[idx])) * float(sub.h[j]))
        dx = torch.stack(steps)
        return Proposal(
            x=sub.x + dx,
            goal=sub.goal,
            jac=None,
            h=sub.h,
            info={"pl": torch.tensor(lams, dtype=torch.float64, device=sub.x.device)},
        )

    def judge(self, ctx: Context, sub: Members, prop: Proposal, cor: Correction) -> Verdict:
        """Every finite step is taken."""
        ok = cor.ok.cpu()
        return Verdict(accept=ok, easy=ok)

    def advance(
        self, ctx: Context, sub: Members, prop: Proposal, cor: Correction, verdict: Verdict
    ) -> Advance:
        """Move (clamped by the engine), add to the pseudolength, record every ``thin``."""
        ok = verdict.accept
        okd = ok.to(sub.x.device)
        x = torch.where(okd.unsqueeze(-1), cor.x, sub.x)
        stops = [
            Stop(j, "nonfinite", f"the model returns NaN or inf at {fmt_point(prop.x[j])}")
            for j in (~ok).nonzero().squeeze(-1).tolist()
        ]
        k_next = sub.k + 1
        return Advance(
            x=x,
            y=torch.where(okd.unsqueeze(-1), cor.y, sub.y),
            jac=torch.where(okd.unsqueeze(-1).unsqueeze(-1), cor.jac, sub.jac),
            vars={
                "pseudolength": sub.vars["pseudolength"] + prop.info["pl"],
                "length": sub.vars["length"] + torch.linalg.vector_norm(x - sub.x, dim=-1),
            },
            record=((k_next % self.thin) == 0) & ok,
            rec_x=x,
            rec_y=cor.y,
            extra={},
            stops=stops,
        )


def check_paper_nd_size(n: int) -> None:
    """Refuse the authors' walk above :data:`PAPER_ND_MAX_N` inputs (its ``n x n`` eigh)."""
    if n > PAPER_ND_MAX_N:
        raise InputError(
            f"the authors' walk (method='paper') eigen-decomposes an n x n matrix every step; "
            f"with n = {n} inputs that is {n * n * 8 / 2**30:.1f} GiB and O(n^3) work, above "
            f"its limit of n = {PAPER_ND_MAX_N}: use method='corrected' or 'uniform'"
        )


register("walk", RandomWalk)
register("uniform", Uniform)
register("paper_nd", PaperWalk)
