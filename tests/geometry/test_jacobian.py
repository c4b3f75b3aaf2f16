"""Jacobians: closed-form MLP path, torch.func path and autograd/finite differences agree."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fiberscope as fs
from fiberscope.errors import ModelError
from fiberscope.geometry.jacobian import ModelFunction

ACTS = [nn.Sigmoid(), nn.Tanh(), nn.SiLU(), nn.Softplus(), nn.ReLU(), nn.Identity()]


def _mlp(act: nn.Module, n: int = 3, m: int = 2, softmax: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(n, 7), act, nn.Linear(7, m)]
    if softmax:
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers).double()


def _fd_jacobian(f, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    cols = []
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e[i] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return torch.stack(cols, dim=1)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("softmax", [False, True])
def test_mlp_closed_form_matches_autograd_and_fd(act: nn.Module, softmax: bool) -> None:
    net = _mlp(act, softmax=softmax)
    x = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    fn = ModelFunction(net, x)
    assert fn._mlp is not None  # the closed form is used
    y, jac = fn.value_and_jacobian(x)
    ref = torch.autograd.functional.jacobian(lambda z: net(z), x)
    torch.testing.assert_close(y, net(x).detach(), rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(jac, ref, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(
        jac, _fd_jacobian(lambda z: net(z).detach(), x), atol=1e-7, rtol=1e-6
    )


def test_torch_func_path_matches_closed_form() -> None:
    net = _mlp(nn.Sigmoid())
    x = torch.tensor([0.1, 0.2, -0.4], dtype=torch.float64)
    fast = ModelFunction(net, x)
    slow = ModelFunction(net, x)
    slow._mlp = None
    torch.testing.assert_close(fast.value_and_jacobian(x)[1], slow.value_and_jacobian(x)[1])


def test_forward_mode_chosen_for_wide_outputs() -> None:
    a = torch.randn(5, 2, dtype=torch.float64)
    x = torch.tensor([0.3, 0.7], dtype=torch.float64)
    jac = fs.geometry.jacobian(lambda z: torch.sin(z @ a.T), x)
    ref = torch.cos(a @ x).unsqueeze(1) * a
    torch.testing.assert_close(jac, ref)


def test_float32_module_is_evaluated_in_float64() -> None:
    net = _mlp(nn.Tanh()).float()
    x = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    y, jac = fs.geometry.value_and_jacobian(net, x)
    assert y.dtype == torch.float64 and jac.dtype == torch.float64
    ref = torch.autograd.functional.jacobian(net.double(), x)
    torch.testing.assert_close(jac, ref, rtol=1e-12, atol=1e-13)


def test_unbatched_callable_and_image_shape() -> None:
    x = torch.arange(6, dtype=torch.float64).reshape(2, 3) / 10
    jac = fs.geometry.jacobian(lambda z: z[0] * z[1], x)  # unbatched only: indexes the rows
    assert jac.shape == (3, 2, 3)
    torch.testing.assert_close(jac[1, 0, 1], x[1, 1])


def test_bad_models_raise_one_line_errors() -> None:
    x = torch.tensor([0.1, 0.2], dtype=torch.float64)

    def boom(z):
        raise RuntimeError("kaboom\nwith two lines")

    with pytest.raises(ModelError, match="raised RuntimeError: kaboom with two lines"):
        ModelFunction(boom, x)
    with pytest.raises(ModelError, match="not a torch.Tensor"):
        ModelFunction(lambda z: [1.0], x)
    with pytest.raises(ModelError, match="NaN or inf"):
        ModelFunction(lambda z: z.sum(-1) * float("nan"), x)
    with pytest.raises(ModelError, match="callable"):
        ModelFunction(42, x)  # type: ignore[arg-type]


def test_non_differentiable_model_is_refused() -> None:
    x = torch.tensor([0.1, 0.2], dtype=torch.float64)
    fn = ModelFunction(lambda z: torch.tensor([float(z.sum())], dtype=torch.float64), x)
    with pytest.raises(ModelError, match="differentiabl"):
        fn.value_and_jacobian(x)


@pytest.mark.parametrize("act", ACTS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("n, m", [(3, 2), (2, 5), (6, 1)])
@pytest.mark.parametrize("tail, softmax", [(False, False), (True, False), (False, True)])
def test_closed_form_from_either_end_single_and_batched(
    act: nn.Module, n: int, m: int, tail: bool, softmax: bool
) -> None:
    """The product of the layer Jacobians is taken from the output side when m <= n and
    from the input side otherwise; both, one point or a batch, equal autograd's."""
    torch.manual_seed(1)
    layers: list[nn.Module] = [nn.Linear(n, 7), act, nn.Linear(7, 4), nn.Sigmoid(), nn.Linear(4, m)]
    if tail:  # an activation last: the product from the output side starts with it
        layers.append(nn.Tanh())
    if softmax:
        layers.append(nn.Softmax(dim=-1))
    net = nn.Sequential(*layers).double()
    xs = torch.randn(4, n, dtype=torch.float64)
    fn = ModelFunction(net, xs[0])
    assert fn._mlp is not None
    ref = torch.stack([torch.autograd.functional.jacobian(net, x) for x in xs])
    ys, jacs = fn.values_and_jacobians(xs)
    torch.testing.assert_close(ys, net(xs).detach(), rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(jacs, ref, rtol=1e-12, atol=1e-13)
    y1, j1 = fn.value_and_jacobian(xs[2])
    torch.testing.assert_close(j1, ref[2], rtol=1e-12, atol=1e-13)
