"""Matrix-free linearisations: ``J v``, ``J^T u`` and ``(J J^T)^{-1}`` without forming ``J``.

For models with many outputs (``m`` in the hundreds or more) and many inputs the ``m x n``
Jacobian itself is too large to form. A :class:`Linearization` keeps one autograd graph of the
model at a batch of points and offers

- ``vjp(u) = J^T u``: one backward pass;
- ``jvp(v) = J v``: the "double backward" trick on the same graph (``J v`` is the derivative
  of ``J^T u`` in ``u`` along ``v``), so no forward-mode support is needed from the model;
- ``solve(r)``: ``(J J^T) a = r`` by conjugate gradients (one ``jvp`` and one ``vjp`` per
  iteration, every member of the batch its own system);
- ``min_norm(r) = J^T (J J^T)^{-1} r`` and ``project(z) = z - min_norm(J z)``.

Memory is that of the model's graph (``O(n)`` per member plus activations) and ``O(m)`` vectors.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

_DTYPE = torch.float64


class RowsModel(Protocol):
    """What a linearisation needs of a model (a :class:`~fiberscope.geometry.ModelFunction`)."""

    jac_dtype: torch.dtype

    def forward_rows(self, x: Tensor) -> Tensor:
        """``(B, m)`` outputs of the rows of ``x``, with autograd."""
        ...


class Linearization:
    """The Jacobians of a model at a batch of points, as operators (never as matrices).

    Parameters
    ----------
    fn : RowsModel
        The model (a :class:`~fiberscope.geometry.ModelFunction`).
    xs : torch.Tensor
        ``(B, n)`` points.
    rtol : float
        Relative residual at which conjugate gradients stop.
    max_iter : int, optional
        Iteration cap of conjugate gradients (default ``min(m, 500)``).
    """

    def __init__(
        self, fn: RowsModel, xs: Tensor, *, rtol: float = 1e-12, max_iter: int | None = None
    ) -> None:
        self.fn = fn
        self.rtol = rtol
        dt = fn.jac_dtype
        self.x = xs.detach().to(dt).requires_grad_(True)
        with torch.enable_grad():
            self.y = fn.forward_rows(self.x)
            self.u = torch.zeros_like(self.y, requires_grad=True)
            (self.g,) = torch.autograd.grad(
                self.y, self.x, self.u, create_graph=True, allow_unused=True
            )
        self.m = int(self.y.shape[1])
        self.max_iter = max_iter if max_iter is not None else min(self.m, 500)
        self.iterations = 0

    @property
    def values(self) -> Tensor:
        """``(B, m)`` outputs at the points (float64)."""
        return self.y.detach().to(_DTYPE)

    def vjp(self, u: Tensor) -> Tensor:
        """``J^T u`` for ``u`` of shape ``(B, m)``: ``(B, n)``."""
        with torch.enable_grad():
            (g,) = torch.autograd.grad(
                self.y, self.x, u.to(self.y.dtype), retain_graph=True, allow_unused=True
            )
        return torch.zeros_like(self.x, dtype=_DTYPE) if g is None else g.detach().to(_DTYPE)

    def jvp(self, v: Tensor) -> Tensor:
        """``J v`` for ``v`` of shape ``(B, n)``: ``(B, m)``."""
        if self.g is None:
            return torch.zeros_like(self.y, dtype=_DTYPE).detach()
        with torch.enable_grad():
            (jv,) = torch.autograd.grad(
                self.g, self.u, v.to(self.g.dtype), retain_graph=True, allow_unused=True
            )
        return torch.zeros_like(self.y, dtype=_DTYPE).detach() if jv is None else jv.to(_DTYPE)

    def gram(self, a: Tensor, mask: Tensor | None = None) -> Tensor:
        """``J J^T a`` for ``a`` of shape ``(B, m)`` (``J`` restricted to ``mask``'s columns)."""
        g = self.vjp(a)
        return self.jvp(g if mask is None else g * mask)

    def solve(self, r: Tensor, mask: Tensor | None = None) -> Tensor:
        """``(J J^T)^{-1} r`` by conjugate gradients, member by member (``(B, m)``).

        ``mask`` (``(B, n)``, 0/1) restricts ``J`` to the free coordinates. Members whose Gram
        matrix is singular along ``r`` get NaN.
        """
        r = r.to(_DTYPE)
        a = torch.zeros_like(r)
        res = r.clone()
        p = res.clone()
        rr = (res * res).sum(-1)
        stop = (self.rtol**2) * rr
        done = rr <= stop
        for _ in range(self.max_iter):
            if bool(done.all()):
                break
            self.iterations += 1
            ap = self.gram(p, mask)
            pap = (p * ap).sum(-1)
            bad = pap <= 0
            alpha = torch.where(done | bad, 0.0, rr / torch.where(bad, 1.0, pap))
            a = a + alpha.unsqueeze(-1) * p
            res = res - alpha.unsqueeze(-1) * ap
            rr_new = (res * res).sum(-1)
            beta = torch.where(done | bad, 0.0, rr_new / torch.where(rr == 0, 1.0, rr))
            p = res + beta.unsqueeze(-1) * p
            rr = rr_new
            done = done | bad | (rr <= stop)
        nan = torch.full_like(a, float("nan"))
        return torch.where(torch.isfinite(a).all(-1, keepdim=True), a, nan)

    def min_norm(self, r: Tensor, mask: Tensor | None = None) -> Tensor:
        """Minimum-norm ``dx`` with ``J dx = r``: ``J^T (J J^T)^{-1} r`` (``(B, n)``).

        With ``mask`` only the free coordinates move (``J`` restricted to them).
        """
        dx = self.vjp(self.solve(r, mask))
        return dx if mask is None else dx * mask

    def project(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        """``P_ker J z = z - J^T (J J^T)^{-1} J z`` (``(B, n)``; ``mask``: free coordinates)."""
        if mask is not None:
            z = z * mask
        return z - self.min_norm(self.jvp(z), mask)


def placeholder(b: int, m: int, like: Tensor) -> Tensor:
    """The ``(B, m, 0)`` stand-in for Jacobians that are never formed."""
    return torch.zeros((b, m, 0), dtype=_DTYPE, device=like.device)


def is_placeholder(jac: Tensor) -> bool:
    """Whether ``jac`` is a :func:`placeholder` (matrix-free mode)."""
    return jac.ndim == 3 and jac.shape[-1] == 0
