"""Box handling: where a walk leaves the box (exactly), clamping, and the outside test."""

from __future__ import annotations

import torch
from torch import Tensor

from ..geometry.jacobian import ModelFunction
from .stats import Stats

Box = tuple[Tensor, Tensor]


def outside(x: Tensor, box: Box | None) -> Tensor:
    """``(k,)`` bool: which points lie outside the box.

    Parameters
    ----------
    x : torch.Tensor
        ``(k, n)`` points.
    box : tuple of torch.Tensor or None
        ``(lo, hi)`` flat.

    Returns
    -------
    torch.Tensor
        All False without a box.
    """
    if box is None:
        return torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    lo, hi = box
    return ((x < lo) | (x > hi)).any(dim=-1)


def clamp(x: Tensor, box: Box) -> Tensor:
    """Clamp every coordinate into the box (the authors' variants).

    Parameters
    ----------
    x : torch.Tensor
        ``(k, n)``.
    box : tuple of torch.Tensor
        ``(lo, hi)``.

    Returns
    -------
    torch.Tensor
        ``(k, n)``.
    """
    return torch.minimum(torch.maximum(x, box[0]), box[1])


def chord_exit(x_in: Tensor, x_out: Tensor, box: Box) -> Tensor:
    """Point where the chord ``x_in -> x_out`` first meets the box boundary (on a face).

    Parameters
    ----------
    x_in, x_out : torch.Tensor
        ``(n,)`` a point inside and one outside.
    box : tuple of torch.Tensor
        ``(lo, hi)``.

    Returns
    -------
    torch.Tensor
        ``(n,)`` on the boundary.
    """
    lo, hi = box
    d = x_out - x_in
    best = 1.0
    face, value = -1, 0.0
    for i in torch.nonzero((x_out < lo) | (x_out > hi)).reshape(-1).tolist():
        bound = float(lo[i] if x_out[i] < lo[i] else hi[i])
        di = float(d[i])
        s = 0.0 if di == 0 else (bound - float(x_in[i])) / di
        if s < best:
            best, face, value = s, i, bound
    z = x_in + max(0.0, min(1.0, best)) * d
    if face >= 0:
        z[face] = value
    return clamp(z.unsqueeze(0), box)[0]


def exit_on_class(
    fn: ModelFunction,
    x_in: Tensor,
    x_out: Tensor,
    goal: Tensor,
    box: Box,
    tol: float,
    stats: Stats,
) -> tuple[Tensor, Tensor] | None:
    """Point where a 1-D class leaves the box: on a box face *and* on the level ``N = goal``.

    The face is the first one the chord ``x_in -> x_out`` crosses. On that face one coordinate
    is fixed and Newton solves ``N(x) = goal`` for the others (``n - 1`` unknowns, ``m = n - 1``
    equations). Returns ``(x, y)`` or None if the solve fails (class tangent to the face).

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x_in, x_out : torch.Tensor
        ``(n,)`` the last point inside and the first outside.
    goal : torch.Tensor
        ``(m,)`` the level.
    box : tuple of torch.Tensor
        ``(lo, hi)``.
    tol : float
        Residual tolerance.
    stats : Stats
        Counters to update.

    Returns
    -------
    tuple of torch.Tensor or None
        The exit point and its output.
    """
    lo, hi = box
    x_a = x_in
    for _ in range(x_in.numel()):
        d = x_out - x_a
        best_s, face, value = 2.0, -1, 0.0
        for i in torch.nonzero((x_out < lo) | (x_out > hi)).reshape(-1).tolist():
            bound = lo[i] if x_out[i] < lo[i] else hi[i]
            di = float(d[i])
            s = 0.0 if di == 0 else float((bound - x_a[i]) / di)
            if s < best_s:
                best_s, face, value = s, i, float(bound)
        if face < 0:
            return None
        z = x_a + max(0.0, min(1.0, best_s)) * d
        z[face] = value
        free = [j for j in range(z.numel()) if j != face]
        solved = None
        for _it in range(30):
            y, jac = fn.value_and_jacobian(z)
            stats.jacobian_evals += 1
            r = y - goal
            if float(r.abs().max()) <= tol:
                solved = (z, y)
                break
            jf = jac[:, free]
            try:
                dz = torch.linalg.lstsq(jf, r.unsqueeze(1)).solution.reshape(-1)
            except RuntimeError:
                return None
            if not bool(torch.isfinite(dz).all()):
                return None
            z = z.clone()
            z[free] = z[free] - dz
        if solved is None:
            return None
        z, y = solved
        slack = 1e-12 * (1.0 + float((hi - lo).abs().max()))
        if not bool(((z < lo - slack) | (z > hi + slack)).any()):
            return clamp(z.unsqueeze(0), box)[0], y
        # The exit on this face lies outside another face: the class leaves through that one.
        x_out = z
    return None
