"""Piecewise-linear networks: the walk on the paper's ReLU and leaky tests (paper III, 7.1).

The networks and starts are the authors' (``relu_2d``, ``relu_3d``, ``leaky_2d``,
``leaky_3d``; their leaky unit has the negative slope -0.01, so it is V-shaped). Their classes
are known exactly: planes and lines of the pre-activation, or the closed dead region of a ReLU.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fiberscope as fs
from fiberscope.errors import SingularPointError

METHODS = ["corrected", "uniform"]


def unit(weights: list[float], act: nn.Module) -> nn.Module:
    """One neuron ``act(w . x)`` in float64."""
    lin = nn.Linear(len(weights), 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([weights], dtype=torch.float64))
    return nn.Sequential(lin, act).eval()


def relu_2d() -> nn.Module:
    return unit([1.0, -1.0], nn.ReLU())


def relu_3d() -> nn.Module:
    return unit([1.0, -1.0, 1.0], nn.ReLU())


def leaky_2d() -> nn.Module:
    return unit([1.0, -1.0], nn.LeakyReLU(negative_slope=-0.01))


def leaky_3d() -> nn.Module:
    return unit([1.0, -1.0, 1.0], nn.LeakyReLU(negative_slope=-0.01))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("make", "x0", "plane"),
    [
        (relu_3d, [1.85, 1.3, 1.5], 2.05),  # x - y + z = 2.05
        (leaky_2d, [1.85, 1.3], 0.55),  # x - y = 0.55
        (leaky_2d, [-1.85, 1.3], -3.15),  # the other arm of the V: x - y = -3.15
        (leaky_3d, [1.85, 1.3, -1.5], -0.95),  # x - y + z = -0.95
    ],
    ids=["relu_3d", "leaky_2d", "leaky_2d-negative", "leaky_3d"],
)
def test_samples_lie_on_the_analytic_plane(make, x0, plane, method) -> None:
    net = make()
    res = fs.walk(net, x0, samples=80, chains=2, step=0.3, seed=7, method=method)
    pts = res.flat()[0]
    w = net[0].weight.detach().reshape(-1)
    assert len(pts) == 160
    assert float((pts @ w - plane).abs().max()) <= 1e-12
    assert res.residual <= 1e-12
    assert sum(res.rank_changes) == 0  # one linear piece: J never changes rank
    # and the walk covers the plane, not a curve in it
    centred = pts - pts.mean(0)
    assert int(torch.linalg.matrix_rank(centred, rtol=1e-6)) == len(x0) - 1


def test_a_dead_start_needs_allow_singular() -> None:
    with pytest.raises(SingularPointError, match="rank 0 < 1.*allow_singular=True"):
        fs.walk(relu_2d(), [-1.85, 1.3], samples=10, seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_a_walk_from_the_dead_region_stays_in_it(method) -> None:
    """relu_2d from (-1.85, 1.3): the class of 0 is the closed half-plane x <= y."""
    res = fs.walk(
        relu_2d(),
        [-1.85, 1.3],
        samples=100,
        chains=3,
        step=0.5,
        seed=1,
        method=method,
        allow_singular=True,
    )
    pts = res.flat()[0]
    gap = pts[:, 0] - pts[:, 1]
    assert len(pts) == 300
    assert float(gap.max()) <= 1e-12  # never into x > y, where the output is positive
    assert res.residual <= 1e-12
    # the class is 2-D: the walk spreads in both directions
    assert int(torch.linalg.matrix_rank(pts - pts.mean(0), rtol=1e-6)) == 2


def test_rank_changes_are_counted_where_the_walk_meets_x_equal_y() -> None:
    res = fs.walk(
        relu_2d(), [-1.85, 1.3], samples=100, chains=3, step=0.5, seed=1, allow_singular=True
    )
    reached = []
    for c in range(res.chains):
        pts = res.samples[c, : res.counts[c]]
        reached.append(bool(((pts[:, 0] - pts[:, 1]).abs() <= 1e-12).any()))
    assert any(reached)  # some chain walked to the edge of the dead region
    for c, hit in enumerate(reached):
        assert (res.rank_changes[c] > 0) == hit, (c, res.rank_changes)


@pytest.mark.parametrize("x0", [[0.5, 0.0, 0.2], [-0.5, 0.0, 0.2]])
def test_the_corrected_walk_crosses_activation_regions_on_the_class(x0) -> None:
    """N = ReLU(x - y) + z: the class is a plane bent along x = y; both pieces are visited."""
    net = lambda x: (torch.relu(x[..., 0] - x[..., 1]) + x[..., 2]).unsqueeze(-1)  # noqa: E731
    res = fs.walk(net, x0, samples=200, chains=2, step=0.3, seed=1)
    pts = res.flat()[0]
    level = float(net(torch.tensor(x0, dtype=torch.float64)))
    on = pts[:, 2] + torch.relu(pts[:, 0] - pts[:, 1]) - level
    assert float(on.abs().max()) <= 1e-12
    assert int((pts[:, 0] > pts[:, 1] + 1e-9).sum()) > 10
    assert int((pts[:, 0] < pts[:, 1] - 1e-9).sum()) > 10
