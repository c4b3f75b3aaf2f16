"""Grid evaluation for heat maps and band regions: any dtype of the model (issue 8 item 1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fiberscope.errors import ModelError
from fiberscope.geometry.grid import evaluate_grid

BOX = ([-1.0, -1.0], [1.0, 1.0])


def _mlp(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_modules_are_evaluated_with_float64_weights(dtype: torch.dtype) -> None:
    """A float32 module used to fail with 'mat1 and mat2 must have the same dtype'."""
    net = _mlp(dtype)
    xs, ys, z = evaluate_grid(net, *BOX, 21)
    assert z.dtype == torch.float64 and z.shape == (21, 21)
    # the same function the geometry follows: the module's weights in float64
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    ref = net.double()(torch.stack((gx.reshape(-1), gy.reshape(-1)), 1)).reshape(21, 21)
    assert torch.equal(z, ref.detach())


def test_module_that_insists_on_its_own_dtype() -> None:
    class Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x.to(torch.float32) * torch.ones(2, dtype=torch.float32))

    z = evaluate_grid(Fixed(), *BOX, 9)[2]
    assert torch.isfinite(z).all()


def test_plain_callable_that_needs_float32() -> None:
    w = torch.tensor([[1.0], [2.0]], dtype=torch.float32)

    def f(x: torch.Tensor) -> torch.Tensor:
        return x @ w  # refuses float64 input

    xs, ys, z = evaluate_grid(f, *BOX, 5)
    assert torch.allclose(z[0], xs + 2 * ys[0], atol=1e-6)


def test_batch_of_one_only_is_evaluated_point_by_point() -> None:
    def one(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != 1:
            raise RuntimeError("expected batch size 1")
        return (x**2).sum(-1, keepdim=True)

    xs, ys, z = evaluate_grid(one, *BOX, 7)
    assert torch.allclose(z[3], xs**2 + ys[3] ** 2)


def test_a_model_that_always_fails_is_one_error() -> None:
    def boom(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("nope")

    with pytest.raises(ModelError, match="failed on a batch of grid points: RuntimeError: nope"):
        evaluate_grid(boom, *BOX, 5)
