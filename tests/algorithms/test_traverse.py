"""fs.traverse and the box-constrained classifier walk, against analytic answers."""

from __future__ import annotations

import math

import pytest
import torch

import fiberscope as fs
from fiberscope.errors import InputError


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


def test_traverse_reaches_the_nearest_point_of_a_sphere() -> None:
    res = fs.traverse(sphere, [1.0, 0.0, 0.0], [0.0, 3.0, 4.0], step=0.3)
    assert res.stop_reason == "minimum"
    want = torch.tensor([0.0, 0.6, 0.8], dtype=torch.float64)  # target / |target|
    assert float((res.end - want).abs().max()) < 1e-6
    assert res.end_distance == pytest.approx(4.0, abs=1e-9)
    assert res.residual <= 1e-9 and res.kkt < 1e-6
    d = res.distance
    assert bool((d[1:] <= d[:-1]).all())  # the distance only decreases


def test_traverse_stays_in_the_box_and_on_the_class() -> None:
    res = fs.traverse(sphere, [0.5, 0.5, 0.5], [1.0, 1.0, -1.0], step=0.2, bounds=(0.0, 1.0))
    assert res.residual <= 1e-9
    assert float(res.points.min()) >= 0.0 and float(res.points.max()) <= 1.0
    # the class inside the box: |x| = sqrt(0.75) with x >= 0; nearest to (1, 1, -1) is on z = 0
    end = res.end
    assert float(end[2]) == 0.0
    assert float(end[0]) == pytest.approx(math.sqrt(0.375), abs=1e-6)


def test_traverse_refuses_a_target_of_another_shape() -> None:
    with pytest.raises(InputError, match="the target has shape"):
        fs.traverse(sphere, [1.0, 0.0, 0.0], [0.0, 1.0], step=0.1)


def test_boundary_walk_in_a_box_finds_the_nearest_boundary_point() -> None:
    w = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    score = lambda x: (x * w).sum(-1, keepdim=True) - 1.0  # noqa: E731 - flips at 0
    x0 = torch.tensor([0.2, 0.1, 0.3, 0.4], dtype=torch.float64)
    res = fs.boundary_walk(score, x0, threshold=0.0, bounds=(0.0, 1.0), box="constrain")
    # the projection of x0 onto the hyperplane lies inside the box: it is the answer
    want = x0 - ((x0 @ w - 1.0) / (w @ w)) * w
    assert float((res.closest_point - want).abs().max()) < 1e-8
    assert res.closest_distance == pytest.approx(float((want - x0).norm()), abs=1e-9)
    assert abs(float(score(res.closest_point))) <= 1e-9
    assert res.decision_start != res.decision_flip


def test_matrix_free_walk_stays_on_the_class_without_forming_jacobians() -> None:
    torch.manual_seed(0)
    w1 = torch.randn(40, 80, dtype=torch.float64) / 80**0.5
    w2 = torch.randn(30, 40, dtype=torch.float64) / 40**0.5
    model = lambda x: torch.tanh(x @ w1.T) @ w2.T  # noqa: E731
    x0 = torch.rand(80, dtype=torch.float64)
    for method in ("corrected", "uniform"):
        res = fs.walk(model, x0, samples=4, step=0.05, seed=1, method=method, matrix_free=True)
        assert res.options["matrix_free"] is True
        assert res.residual <= 1e-9
        assert sum(res.counts) == 4
