"""Batched linear algebra of Jacobians without n x n matrices.

Everything here works on a batch of Jacobians ``J`` of shape ``(B, m, n)`` with ``m < n`` and
only ever forms the ``m x m`` Gram matrices ``J J^T``: the minimum-norm solution of
``J dx = r``, the projection onto ``ker J``, the extreme singular values, and the oriented
tangent of a 1-D class. Costs are ``O(B m^2 n)``; nothing of size ``n^2`` is created.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

_ROT90 = torch.tensor([-1.0, 1.0], dtype=torch.float64)


@dataclass(frozen=True)
class Gram:
    """The factorised Gram matrices ``J J^T`` of a batch of Jacobians.

    Attributes
    ----------
    jac : torch.Tensor
        ``(B, m, n)``.
    chol : torch.Tensor or None
        Cholesky factors ``(B, m, m)`` (None for ``m = 1``).
    gg : torch.Tensor or None
        ``|grad|^2`` per member ``(B,)`` for ``m = 1``.
    ok : torch.Tensor
        ``(B,)`` bool: the Gram matrix is positive definite (J has full row rank).
    """

    jac: Tensor
    chol: Tensor | None
    gg: Tensor | None
    ok: Tensor


def gram(jac: Tensor, free: Tensor | None = None) -> Gram:
    """Factorise ``J J^T`` for a batch of Jacobians ``(B, m, n)``.

    Parameters
    ----------
    jac : torch.Tensor
        Jacobians, ``(B, m, n)``.
    free : torch.Tensor, optional
        ``(B, n)`` bool: only these coordinates may move (the others are held, e.g. at a
        box face); their columns of ``J`` are zeroed.

    Returns
    -------
    Gram
        The factorisation (members whose ``J`` is rank deficient have ``ok = False``).
    """
    if free is not None:
        jac = jac * free.unsqueeze(-2).to(jac.dtype)
    if jac.shape[1] == 1:
        gg = (jac[:, 0, :] * jac[:, 0, :]).sum(-1)
        return Gram(jac=jac, chol=None, gg=gg, ok=gg > 0)
    g = torch.matmul(jac, jac.transpose(-1, -2))
    chol, info = torch.linalg.cholesky_ex(g)
    return Gram(jac=jac, chol=chol, gg=None, ok=info == 0)


def min_norm(gr: Gram, r: Tensor) -> Tensor:
    """Minimum-norm ``dx`` with ``J dx = r``: ``J^T (J J^T)^{-1} r``, batched.

    Parameters
    ----------
    gr : Gram
        Factorised Gram matrices of ``J`` (``(B, m, n)``).
    r : torch.Tensor
        Right-hand sides ``(B, m)``.

    Returns
    -------
    torch.Tensor
        ``(B, n)`` (NaN for members whose Gram matrix is singular).
    """
    jac = gr.jac
    if gr.gg is not None:
        coef = r[:, 0] / gr.gg
        return jac[:, 0, :] * coef.unsqueeze(-1)
    assert gr.chol is not None
    a = torch.cholesky_solve(r.unsqueeze(-1), gr.chol)
    out = torch.matmul(jac.transpose(-1, -2), a).squeeze(-1)
    if not bool(gr.ok.all()):
        out = torch.where(gr.ok.unsqueeze(-1), out, torch.full_like(out, float("nan")))
    return out


def pinv_min_norm(jac: Tensor, r: Tensor, rtol: float = 1e-10) -> tuple[Tensor, Tensor]:
    """Minimum-norm least-squares ``J^+ r`` for possibly rank-deficient ``J``, batched.

    Uses the eigen-decomposition of the ``m x m`` Gram matrix; eigenvalues below
    ``rtol**2 * max`` count as zero (a zero Jacobian gives ``dx = 0``).

    Parameters
    ----------
    jac : torch.Tensor
        ``(B, m, n)``.
    r : torch.Tensor
        ``(B, m)``.
    rtol : float
        Relative threshold on the singular values.

    Returns
    -------
    dx : torch.Tensor
        ``(B, n)``.
    rank : torch.Tensor
        ``(B,)`` numerical rank of each ``J``.
    """
    g = torch.matmul(jac, jac.transpose(-1, -2))
    ev, q = torch.linalg.eigh(g)
    top = ev[:, -1:].clamp_min(0.0)
    keep = ev > (rtol * rtol) * top
    keep = keep & (ev > 0)
    inv = torch.where(keep, 1.0 / torch.where(keep, ev, torch.ones_like(ev)), 0.0)
    a = torch.matmul(
        q, (inv * torch.matmul(q.transpose(-1, -2), r.unsqueeze(-1)).squeeze(-1)).unsqueeze(-1)
    )
    return torch.matmul(jac.transpose(-1, -2), a).squeeze(-1), keep.sum(-1)


def project_kernel(gr: Gram, v: Tensor) -> Tensor:
    """Orthogonal projection of ``v`` onto ``ker J``: ``v - J^T (J J^T)^{-1} J v``.

    Parameters
    ----------
    gr : Gram
        Factorised Gram matrices of ``J`` (``(B, m, n)``).
    v : torch.Tensor
        Vectors ``(B, n)``.

    Returns
    -------
    torch.Tensor
        ``(B, n)``.
    """
    jv = torch.matmul(gr.jac, v.unsqueeze(-1)).squeeze(-1)
    return v - min_norm(gr, jv)


def singular_extremes(jac: Tensor) -> tuple[Tensor, Tensor]:
    """Smallest and largest singular values of each Jacobian (``m x m`` work only).

    Parameters
    ----------
    jac : torch.Tensor
        ``(B, m, n)`` with ``m <= n``.

    Returns
    -------
    s_min, s_max : torch.Tensor
        ``(B,)`` each (for ``m = 1`` both are ``|grad|``).
    """
    if jac.shape[1] == 1:
        s = torch.linalg.vector_norm(jac[:, 0, :], dim=-1)
        return s, s
    g = torch.matmul(jac, jac.transpose(-1, -2))
    ev = torch.linalg.eigvalsh(g).clamp_min(0.0).sqrt()
    return ev[:, 0], ev[:, -1]


def oriented_tangents(jac: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Unit tangents of 1-D classes, signed so that ``det([J; t]) > 0``, batched.

    Parameters
    ----------
    jac : torch.Tensor
        ``(B, n - 1, n)``.

    Returns
    -------
    t : torch.Tensor
        ``(B, n)`` unit tangents (zero where J vanishes).
    s_min, s_max : torch.Tensor
        ``(B,)`` extreme singular values of J.
    """
    b, m, n = jac.shape
    if n == 2 and m == 1:  # the gradient turned by +90 degrees (NaN where it vanishes)
        g = jac[:, 0, :]
        norm = torch.linalg.vector_norm(g, dim=-1)
        t = g.flip(-1) * _ROT90.to(g) / norm.unsqueeze(-1)
        return t, norm, norm
    _, s, vh = torch.linalg.svd(jac, full_matrices=True)
    t = vh[:, -1, :]
    sign = torch.sign(torch.linalg.det(torch.cat((jac, t.unsqueeze(1)), dim=1)))
    t = t * torch.where(sign < 0, -1.0, 1.0).to(t.dtype).unsqueeze(-1)
    return t, s[:, -1], s[:, 0]
