"""Box handling: where a walk leaves the box (exactly), clamping, and the outside test."""

from __future__ import annotations

from collections.abc import Callable

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


def held_coordinates(x: Tensor, d: Tensor, box: Box, rtol: float = 1e-12) -> Tensor:
    """``(k, n)`` bool: coordinates on a box face that the direction ``d`` pushes outward.

    Parameters
    ----------
    x : torch.Tensor
        ``(k, n)`` points in the box.
    d : torch.Tensor
        ``(k, n)`` intended directions.
    box : tuple of torch.Tensor
        ``(lo, hi)``.
    rtol : float
        How close to a face counts as on it (relative to the box width).

    Returns
    -------
    torch.Tensor
        True where the coordinate must be held on its face.
    """
    lo, hi = box
    slack = rtol * torch.clamp(hi - lo, max=1e300)
    at_lo = x <= lo + slack
    at_hi = x >= hi - slack
    return (at_lo & (d < 0)) | (at_hi & (d > 0))


def hold_faces(
    x: Tensor,
    box: Box,
    direction: Callable[[Tensor | None], Tensor],
    held: Tensor | None = None,
    max_rounds: int = 64,
) -> tuple[Tensor, Tensor | None]:
    """A direction that pushes no coordinate on a box face outward (a growing active set).

    Holding the face coordinates that a direction pushes outward and recomputing it on the
    others (a projection, a minimum-norm step) can turn other face coordinates outward; they
    are held too, until none is (at most ``max_rounds`` times; the held set only grows).

    Parameters
    ----------
    x : torch.Tensor
        ``(k, n)`` points in the box.
    box : tuple of torch.Tensor
        ``(lo, hi)``.
    direction : callable
        ``direction(free)`` -> ``(k, n)``; ``free`` is a ``(k, n)`` bool mask of the
        coordinates that may move, or None for all of them.
    held : torch.Tensor, optional
        ``(k, n)`` bool: coordinates held from the start (e.g. those a random draw pushes out).
    max_rounds : int
        Largest number of recomputations.

    Returns
    -------
    d : torch.Tensor
        ``(k, n)`` the direction.
    free : torch.Tensor or None
        ``(k, n)`` the coordinates it moves, or None when none is held.
    """
    if held is not None and not bool(held.any()):
        held = None
    d = direction(None if held is None else ~held)
    for _ in range(max_rounds):
        out = held_coordinates(x, d, box)
        if held is not None:
            out = out & ~held
        if not bool(out.any()):
            break
        held = out if held is None else held | out
        d = direction(~held)
    return d, (None if held is None else ~held)


def onto_faces(
    fn: ModelFunction,
    x: Tensor,
    y: Tensor,
    jac: Tensor,
    ok: Tensor,
    goal: Tensor,
    tol: Tensor,
    box: Box,
    stats: Stats,
    max_iter: int = 12,
    matrix_free: bool = False,
    max_rounds: int = 8,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Bring corrected points that left the box back: faces become constraints.

    Coordinates outside the box are put on their faces and held there while the corrector
    solves ``N(x) = goal`` for the free ones (one more correction). Members that were inside
    are returned unchanged; members that cannot be brought back are marked not ``ok``.

    Parameters
    ----------
    fn : ModelFunction
        The model.
    x, y, jac, ok : torch.Tensor
        The corrector's result ``(k, n)``, ``(k, m)``, ``(k, m, n)``, ``(k,)``.
    goal, tol : torch.Tensor
        ``(k, m)`` levels and ``(k,)`` tolerances.
    box : tuple of torch.Tensor
        ``(lo, hi)``.
    stats : Stats
        Counters.
    max_iter : int
        Corrector iterations.
    matrix_free : bool
        Solve without forming Jacobians.
    max_rounds : int
        Corrections at most: coordinates a correction pushes out are held for the next.

    Returns
    -------
    tuple of torch.Tensor
        ``x, y, jac, ok`` with every ``ok`` member on its level and in the box.
    """
    from .corrector import correct

    lo, hi = box
    out = outside(x, box)
    fix = out & ok
    if not bool(fix.any()):
        return x, y, jac, ok & ~out
    rows = fix.nonzero().squeeze(-1)
    xr = torch.minimum(torch.maximum(x[rows], lo), hi)
    free = (xr > lo) & (xr < hi)
    # the correction of the free coordinates can push others out (pixels just off a face):
    # those are put on their faces and held too, and the correction repeated (a few rounds)
    for _ in range(max_rounds):
        c2 = correct(
            fn,
            xr,
            goal[rows],
            tol[rows],
            max_iter=max_iter,
            free=free,
            matrix_free=matrix_free,
            stats=stats,
        )
        again = c2.ok & outside(c2.x, box)
        if not bool(again.any()):
            break
        xr = torch.where(again.unsqueeze(-1), clamp(c2.x, box), xr)
        free = torch.where(again.unsqueeze(-1), free & (xr > lo) & (xr < hi), free)
    good = c2.ok & ~outside(c2.x, box)
    x, y, jac, ok = x.clone(), y.clone(), jac.clone(), (ok & ~out).clone()
    x[rows], y[rows], jac[rows] = c2.x, c2.y, c2.jac
    ok[rows] = good
    return x, y, jac, ok
