"""Kernels and metrics: the 2-D closed form, orthonormality, orientation, SPD checks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fiberscope as fs
from fiberscope.errors import InputError


@pytest.mark.parametrize("name", ["surface_1", "surface_2", "thermodynamics", "binary"])
def test_tangent_is_rotated_gradient_in_2d(name: str) -> None:
    net = fs.load_model(name)
    gen = torch.Generator().manual_seed(1)
    for x in torch.rand(20, 2, generator=gen, dtype=torch.float64) * 1.6 - 0.8:
        grad = torch.autograd.functional.jacobian(lambda z: net(z)[0], x)
        t, s_min, s_max = fs.geometry.oriented_tangent(fs.geometry.jacobian(net, x))
        expected = torch.stack((-grad[1], grad[0])) / grad.norm()
        torch.testing.assert_close(t, expected, rtol=1e-12, atol=1e-14)
        assert s_min == pytest.approx(float(grad.norm()), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_kernel_basis_orthonormal_and_oriented(n: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    jac = torch.randn(n - 1, n, generator=gen, dtype=torch.float64)
    info = fs.geometry.kernel_basis(jac)
    assert info.rank == n - 1 and info.basis.shape == (n, 1)
    assert float((jac @ info.basis).abs().max()) < 1e-12
    t, _, _ = fs.geometry.oriented_tangent(jac)
    assert float(torch.linalg.det(torch.cat((jac, t[None])))) > 0
    torch.testing.assert_close(t.abs(), info.basis[:, 0].abs())


def test_kernel_basis_rank_drop() -> None:
    jac = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]], dtype=torch.float64)
    info = fs.geometry.kernel_basis(jac)
    assert info.rank == 1 and info.basis.shape == (3, 2)
    assert info.condition < 1e-12


def test_pullback_metric_and_its_kernel(net1) -> None:
    x = torch.tensor([0.25, 0.25], dtype=torch.float64)
    g = fs.geometry.pullback_metric(net1, x)
    jac = fs.geometry.jacobian(net1, x)
    torch.testing.assert_close(g, jac.T @ jac)
    t, _, _ = fs.geometry.oriented_tangent(jac)
    assert float((g @ t).abs().max()) < 1e-15
    g2 = fs.geometry.pullback_metric(net1, x, metric=[[4.0]])
    torch.testing.assert_close(g2, 4 * g)


@pytest.mark.parametrize(
    "metric, message",
    [
        ([[1.0, 0.0]], "must be 1x1"),
        ([[-1.0]], "positive definite"),
        ([[float("nan")]], "NaN"),
    ],
)
def test_bad_output_metric(net1, metric, message) -> None:
    with pytest.raises(InputError, match=message):
        fs.geometry.pullback_metric(net1, [0.25, 0.25], metric=metric)
