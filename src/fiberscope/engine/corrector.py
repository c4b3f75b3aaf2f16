"""The one corrector: chord Gauss-Newton back to a level, batched, any ``m < n``.

From predicted points ``x`` it solves ``N(x) = y*`` for each member with the iteration
``x <- x - J^T (J J^T)^{-1} (N(x) - y*)`` where ``J`` is evaluated once (at the predicted point,
or given: the normal space of the step's start, as the manifold Metropolis-Hastings proposal
needs) and its ``m x m`` Gram matrix is factorised once. Every further iteration costs one
evaluation of the outputs only. When the iteration contracts slowly the Jacobian is refreshed
(full Newton) unless it was given. Members converge, fail (divergence, stagnation, a
rank-deficient ``J``, NaN) or run out of iterations independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..geometry.jacobian import ModelFunction
from ..geometry.linalg import Gram, gram, min_norm
from ..geometry.matfree import Linearization, placeholder
from .stats import Stats


@dataclass
class Correction:
    """Result of :func:`correct` for a batch of ``k`` members.

    Attributes
    ----------
    x : torch.Tensor
        ``(k, n)`` corrected points (the last iterate where ``ok`` is False).
    y : torch.Tensor
        ``(k, m)`` outputs at ``x``.
    jac : torch.Tensor
        ``(k, m, n)`` the last Jacobian evaluated (at the predicted point, or the refreshed
        one); at most one correction away from ``x``.
    iters : torch.Tensor
        ``(k,)`` corrections applied.
    ok : torch.Tensor
        ``(k,)`` bool: converged to the tolerance.
    residual : torch.Tensor
        ``(k,)`` final ``max |N(x) - y*|``.
    """

    x: Tensor
    y: Tensor
    jac: Tensor
    iters: Tensor
    ok: Tensor
    residual: Tensor


def _rmax(r: Tensor) -> Tensor:
    return r.abs().amax(dim=-1)


def correct(
    fn: ModelFunction,
    x: Tensor,
    goal: Tensor,
    tol: Tensor,
    *,
    max_iter: int = 8,
    jac: Tensor | Linearization | None = None,
    free: Tensor | None = None,
    matrix_free: bool = False,
    stats: Stats,
) -> Correction:
    """Project predicted points onto their levels with chord Gauss-Newton.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x : torch.Tensor
        ``(k, n)`` predicted points.
    goal : torch.Tensor
        ``(k, m)`` the level of each member.
    tol : torch.Tensor
        ``(k,)`` residual tolerances (max-abs).
    max_iter : int
        Correction cap.
    jac : torch.Tensor, optional
        ``(k, m, n)`` fixed chord Jacobians (the corrections then move along ``jac^T``, and
        are never refreshed); by default ``J`` is evaluated at ``x``.
    free : torch.Tensor, optional
        ``(k, n)`` bool: only these coordinates move (the others stay, e.g. on a box face
        that has become a constraint).
    matrix_free : bool
        Never form ``J``: solve with conjugate gradients on ``J J^T`` through a
        :class:`~fiberscope.geometry.matfree.Linearization` (``jac`` may be one, fixed);
        the returned ``jac`` is a ``(k, m, 0)`` placeholder.
    stats : Stats
        Counters to update.

    Returns
    -------
    Correction
        Corrected points, outputs, Jacobians, iteration counts and convergence flags.
    """
    if matrix_free or isinstance(jac, Linearization):
        return _correct_matrix_free(fn, x, goal, tol, max_iter, jac, free, stats)
    if x.shape[0] == 1 and x.device.type == "cpu":
        return _correct_one(fn, x, goal, tol, max_iter, jac, free, stats)
    k = x.shape[0]
    fixed = jac is not None
    if fixed:
        y = fn.values(x)
        stats.value_evals += k
        jc = jac
    else:
        y, jc = fn.values_and_jacobians(x)
        stats.jacobian_evals += k
    r = y - goal
    prev = _rmax(r)
    ok = prev <= tol  # False for NaN
    if bool(ok.all()):
        return Correction(x, y, jc, torch.zeros(k, dtype=torch.int64, device=x.device), ok, prev)
    alive = ~ok & torch.isfinite(prev)
    iters = torch.zeros(k, dtype=torch.int64, device=x.device)
    if not bool(alive.any()):  # non-finite outputs: nothing to correct
        return Correction(x, y, jc, iters, ok, prev)
    gr: Gram = gram(jc, free)
    everyone = bool(alive.all())
    for it in range(1, max_iter + 1):
        if everyone:  # every member still iterates: no gathers
            stats.newton_iterations += k
            stats.value_evals += k
            x = x - min_norm(gr, r)
            y = fn.values(x)
            r = y - goal
            rn = _rmax(r)
            good = rn < prev  # False for NaN
            conv = good & (rn <= tol)
            if bool(conv.all()):
                return Correction(x, y, jc, torch.full_like(iters, it), conv, rn)
            iters = torch.full_like(iters, it)
            ok = conv
            alive = good & ~conv
            slow = alive & (rn > 0.25 * prev)
            prev = rn
            everyone = bool(alive.all())
        else:
            idx = alive.nonzero().squeeze(-1)
            n_alive = int(idx.numel())
            stats.newton_iterations += n_alive
            stats.value_evals += n_alive
            sub_gram = Gram(
                jac=gr.jac[idx],
                chol=None if gr.chol is None else gr.chol[idx],
                gg=None if gr.gg is None else gr.gg[idx],
                ok=gr.ok[idx],
            )
            xi = x[idx] - min_norm(sub_gram, r[idx])
            yi = fn.values(xi)
            ri = yi - goal[idx]
            rn = _rmax(ri)
            good = rn < prev[idx]
            conv = good & (rn <= tol[idx])
            x, y, r = x.clone(), y.clone(), r.clone()
            x[idx], y[idx], r[idx] = xi, yi, ri
            iters = iters.clone()
            iters[idx] = it
            ok = ok.clone()
            ok[idx] = conv
            still = good & ~conv
            slow = torch.zeros_like(alive)
            slow[idx] = still & (rn > 0.25 * prev[idx])
            prev = prev.clone()
            prev[idx] = rn
            alive = torch.zeros_like(alive)
            alive[idx] = still
            everyone = False
        if not bool(alive.any()):
            break
        if not fixed and bool(slow.any()):  # slow contraction: refresh J (full Newton)
            sidx = slow.nonzero().squeeze(-1)
            _, jn = fn.values_and_jacobians(x[sidx])
            stats.jacobian_evals += int(sidx.numel())
            jc = jc.clone()
            jc[sidx] = jn
            gr = gram(jc, free)
    return Correction(x, y, jc, iters, ok, prev)


def _correct_one(
    fn: ModelFunction,
    x: Tensor,
    goal: Tensor,
    tol: Tensor,
    max_iter: int,
    jac: Tensor | None,
    free: Tensor | None,
    stats: Stats,
) -> Correction:
    """:func:`correct` for one member on the CPU: the same iteration, with its tests done on
    Python floats (one conversion per iteration instead of a dozen tiny tensor operations)."""
    fixed = jac is not None
    if fixed:
        y = fn.values(x)
        stats.value_evals += 1
        jc = jac
    else:
        y, jc = fn.values_and_jacobians(x)
        stats.jacobian_evals += 1
    r = y - goal
    t = float(tol[0])
    prev = float(r.abs().max())
    if prev <= t or not math.isfinite(prev):
        ok = prev <= t
        return _one(x, y, jc, 0, ok, prev)
    gr = gram(jc, free)
    for it in range(1, max_iter + 1):
        stats.newton_iterations += 1
        stats.value_evals += 1
        x = x - min_norm(gr, r)
        y = fn.values(x)
        r = y - goal
        rn = float(r.abs().max())
        if not rn < prev:  # diverged, stagnated or NaN
            return _one(x, y, jc, it, False, rn)
        if rn <= t:
            return _one(x, y, jc, it, True, rn)
        if not fixed and rn > 0.25 * prev:  # slow contraction: refresh J (full Newton)
            _, jc = fn.values_and_jacobians(x)
            stats.jacobian_evals += 1
            gr = gram(jc, free)
        prev = rn
    return _one(x, y, jc, max_iter, False, prev)


def _one(x: Tensor, y: Tensor, jc: Tensor, it: int, ok: bool, res: float) -> Correction:
    return Correction(
        x,
        y,
        jc,
        torch.tensor([it], dtype=torch.int64),
        torch.tensor([ok]),
        torch.tensor([res], dtype=torch.float64),
    )


def _correct_matrix_free(
    fn: ModelFunction,
    x: Tensor,
    goal: Tensor,
    tol: Tensor,
    max_iter: int,
    lin: Linearization | None,
    free: Tensor | None,
    stats: Stats,
) -> Correction:
    """:func:`correct` without forming ``J`` (conjugate gradients on ``J J^T``)."""
    k = x.shape[0]
    fixed = lin is not None
    mask = None if free is None else free.to(torch.float64)
    if lin is None:
        lin = fn.linearize(x)
        stats.jacobian_evals += k
        y = lin.values
    else:
        y = fn.values(x)
        stats.value_evals += k
    r = y - goal
    prev = _rmax(r)
    ok = prev <= tol
    iters = torch.zeros(k, dtype=torch.int64, device=x.device)
    alive = ~ok & torch.isfinite(prev)

    def step(res: Tensor) -> Tensor:
        # held coordinates (mask): the minimum-norm correction within the free ones
        return lin.min_norm(res, mask)

    for it in range(1, max_iter + 1):
        if not bool(alive.any()):
            break
        n_alive = int(alive.sum())
        stats.newton_iterations += n_alive
        stats.value_evals += n_alive
        res = torch.where(alive.unsqueeze(-1), r, torch.zeros_like(r))
        dx = step(res)
        xn = torch.where(alive.unsqueeze(-1), x - dx, x)
        yn = fn.values(xn)
        rn_vec = yn - goal
        rn = _rmax(rn_vec)
        good = alive & (rn < prev)
        conv = good & (rn <= tol)
        x = torch.where(good.unsqueeze(-1), xn, x)
        y = torch.where(good.unsqueeze(-1), yn, y)
        r = torch.where(good.unsqueeze(-1), rn_vec, r)
        iters = torch.where(alive, torch.full_like(iters, it), iters)
        ok = ok | conv
        slow = good & ~conv & (rn > 0.25 * prev)
        prev = torch.where(good, rn, prev)
        alive = good & ~conv
        if not fixed and bool(slow.any()):  # refresh the linearisation (full Newton)
            lin = fn.linearize(x)
            stats.jacobian_evals += int(slow.sum())
    return Correction(x, y, placeholder(k, y.shape[1], x), iters, ok, prev)


def evaluate(fn: ModelFunction, x: Tensor, stats: Stats) -> Correction:
    """Evaluate outputs and Jacobians at points without correcting (uncorrected walks).

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x : torch.Tensor
        ``(k, n)`` points.
    stats : Stats
        Counters to update.

    Returns
    -------
    Correction
        ``ok`` is True where the outputs and Jacobians are finite.
    """
    y, jc = fn.values_and_jacobians(x)
    stats.jacobian_evals += x.shape[0]
    # a NaN or inf anywhere in a member's outputs or Jacobian makes its sum non-finite
    ok = torch.isfinite(y.sum(-1) + jc.sum((1, 2)))
    zeros = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
    return Correction(x, y, jc, zeros, ok, zeros.to(y.dtype))
