"""Analytic models whose classes are known exactly (test oracles)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Radial(nn.Module):
    """exp(x^2 + y^2 - 2): classes are circles centred at 0 (the paper's surface 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp((x**2).sum(-1, keepdim=True) - 2.0)


class Parabolic(nn.Module):
    """exp(x^2 + y - 2): classes are parabolas y = c - x^2 (the paper's surface 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x[..., :1] ** 2 + x[..., 1:2] - 2.0)


class Product(nn.Module):
    """x * y: classes are hyperbolas."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :1] * x[..., 1:2]


def point_to_polyline(points: np.ndarray, line: np.ndarray, closed: bool = False) -> np.ndarray:
    """Distance from each point to the nearest segment of a polyline (2-D)."""
    if closed:
        line = np.vstack((line, line[:1]))
    a, b = line[:-1], line[1:]
    ab = b - a
    ap = points[:, None, :] - a[None, :, :]
    denom = np.maximum((ab**2).sum(-1), 1e-300)
    u = np.clip((ap * ab[None]).sum(-1) / denom[None], 0.0, 1.0)
    d = ap - u[..., None] * ab[None]
    return np.sqrt((d**2).sum(-1)).min(axis=1)
