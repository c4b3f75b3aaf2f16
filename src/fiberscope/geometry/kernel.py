"""Null spaces of Jacobians: the directions in which the output does not change.

The kernel is computed from the m x n Jacobian itself (SVD), never by eigen-decomposing the
n x n pullback metric, which would square the condition number and cost O(n^3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class KernelInfo:
    """An orthonormal basis of ``ker J`` and the singular values used to judge the rank.

    Attributes
    ----------
    basis : torch.Tensor
        Shape ``(n, n - rank)``; orthonormal columns spanning the kernel.
    singular_values : torch.Tensor
        The ``min(m, n)`` singular values of J, descending.
    rank : int
        Numerical rank: singular values above ``rtol * s_max`` (and above ``atol``).
    """

    basis: Tensor
    singular_values: Tensor
    rank: int

    @property
    def condition(self) -> float:
        """Ratio ``s_min / s_max`` of the singular values (0 when J vanishes)."""
        s = self.singular_values
        if s.numel() == 0 or float(s[0]) == 0.0:
            return 0.0
        return float(s[-1] / s[0])


def kernel_basis(jac: Tensor, *, rtol: float = 1e-10, atol: float = 0.0) -> KernelInfo:
    """Orthonormal basis of the kernel of a Jacobian, from its SVD.

    Parameters
    ----------
    jac : torch.Tensor
        Jacobian of shape ``(m, n)`` or ``(m, *input_shape)`` (trailing dims are flattened).
    rtol : float
        Singular values below ``rtol * s_max`` count as zero.
    atol : float
        Singular values below ``atol`` count as zero.

    Returns
    -------
    KernelInfo
        Basis ``(n, n - rank)``, singular values and rank.
    """
    j = jac.reshape(jac.shape[0], -1)
    _, s, vh = torch.linalg.svd(j, full_matrices=True)
    smax = float(s[0]) if s.numel() else 0.0
    thresh = max(rtol * smax, atol)
    rank = int((s > thresh).sum()) if smax > 0 else 0
    return KernelInfo(basis=vh[rank:].T.contiguous(), singular_values=s, rank=rank)


def oriented_tangent(jac: Tensor) -> tuple[Tensor, float, float]:
    """Unit tangent of a 1-D class, with an orientation that does not flip along the curve.

    For ``J`` of shape ``(n - 1, n)`` the tangent ``t`` spans ``ker J`` and is signed so that
    ``det([J; t]) > 0``. In 2-D that is the gradient rotated by +90 degrees,
    ``t = R90 grad N / |grad N|``: the class is followed counter-clockwise around
    increasing outputs. Because ``det([J; t])`` never vanishes at a regular point, the sign is
    a continuous function of the point: no flips, and no need to compare with the last step.

    Parameters
    ----------
    jac : torch.Tensor
        Jacobian ``(n - 1, n)``.

    Returns
    -------
    t : torch.Tensor
        Unit tangent, shape ``(n,)``.
    s_min, s_max : float
        Smallest and largest singular value of J (used to judge regularity).
    """
    m, n = jac.shape
    if n == 2 and m == 1:
        a, b = jac[0, 0], jac[0, 1]
        norm = torch.hypot(a, b)
        nf = float(norm)
        if nf == 0.0:
            return torch.zeros(2, dtype=jac.dtype, device=jac.device), 0.0, 0.0
        return torch.stack((-b, a)) / norm, nf, nf
    _, s, vh = torch.linalg.svd(jac, full_matrices=True)
    t = vh[-1]
    sign = torch.sign(torch.linalg.det(torch.cat((jac, t.unsqueeze(0)), dim=0)))
    if float(sign) < 0:
        t = -t
    return t, float(s[-1]), float(s[0])
