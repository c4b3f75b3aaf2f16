"""Evaluate a model on a regular 2-D grid (heat maps, reference level sets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError, ModelError
from .jacobian import OutputMap


def evaluate_grid(
    model: Callable[..., Any],
    lo: Sequence[float],
    hi: Sequence[float],
    resolution: int = 200,
    *,
    output: OutputMap | None = None,
    component: int = 0,
    chunk: int = 65536,
) -> tuple[Tensor, Tensor, Tensor]:
    """Values of one output of a 2-input model on a ``resolution x resolution`` grid.

    Parameters
    ----------
    model : callable or torch.nn.Module
        A model taking a batch ``(B, 2)`` and returning ``(B, ...)``.
    lo, hi : sequence of float
        Corners of the box.
    resolution : int
        Points per axis.
    output : callable, optional
        Output map applied per sample.
    component : int
        Which (flattened) output to return.
    chunk : int
        Batch size for the evaluation.

    Returns
    -------
    xs, ys, z : torch.Tensor
        Axis coordinates ``(R,)``, ``(R,)`` and values ``(R, R)`` with ``z[i, j]`` at
        ``(xs[j], ys[i])`` (image convention), float64 on the CPU.
    """
    if len(lo) != 2 or len(hi) != 2:
        raise InputError("grid evaluation needs a 2-D box")
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution, dtype=torch.float64)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=1)
    device = torch.device("cpu")
    if isinstance(model, torch.nn.Module):
        p = next(iter(model.parameters()), None)
        if p is not None:
            device = p.device
    values = []
    with torch.no_grad():
        for start in range(0, pts.shape[0], chunk):
            batch = pts[start : start + chunk].to(device)
            try:
                out = model(batch)
                if output is not None:
                    out = torch.vmap(output)(out)
            except Exception as exc:
                raise ModelError(f"the model failed on a batch of grid points: {exc}") from None
            values.append(out.reshape(batch.shape[0], -1)[:, component].to("cpu", torch.float64))
    z = torch.cat(values).reshape(resolution, resolution)
    return xs, ys, z
