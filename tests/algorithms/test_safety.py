"""Inputs that used to hang, lie or crash (issue 13): each ends in a clear error now."""

from __future__ import annotations

import sys

import pytest
import torch

import fiberscope as fs
from fiberscope.errors import InputError, ModelError


def test_a_step_that_cannot_move_the_point_is_refused() -> None:
    far = lambda x: ((x / 1e9) ** 2).sum(-1, keepdim=True)  # noqa: E731 - finite everywhere
    with pytest.raises(InputError, match="below the float64 spacing of the start"):
        fs.trace(far, [3e8, 4e8], step=1e-8)
    with pytest.raises(InputError, match="below the float64 spacing"):
        fs.trace(fs.load_model("surface_1"), [0.25, 0.25], step=5e-324, max_steps=2)


def test_meta_and_sparse_starts_are_refused() -> None:
    net = fs.load_model("surface_1")
    with pytest.raises(InputError, match="meta device"):
        fs.trace(net, torch.empty(2, device="meta"))
    with pytest.raises(InputError, match="sparse tensor"):
        fs.trace(net, torch.tensor([0.25, 0.25]).to_sparse())


def test_output_size_changing_mid_run_is_an_error() -> None:
    def growing(x: torch.Tensor) -> torch.Tensor:
        y = torch.exp((x**2).sum(-1, keepdim=True) - 2.0)
        return torch.cat([y, y], -1) if float(x.detach().reshape(-1)[0]) > 0.3 else y

    with pytest.raises(ModelError, match="output size changed during the run"):
        fs.trace(growing, [0.25, 0.25], step=0.05)


def test_sys_exit_inside_the_model_is_an_error() -> None:
    def quitter(x: torch.Tensor) -> torch.Tensor:
        if float(x.detach().reshape(-1)[0]) < 0:
            sys.exit(0)
        return torch.exp((x**2).sum(-1, keepdim=True) - 2.0)

    with pytest.raises(ModelError, match=r"called sys\.exit\(0\)"):
        fs.trace(quitter, [0.25, 0.25], step=0.05)


class _Boom(BaseException):
    """What a user's code may raise: not an Exception, so not caught as one."""


def test_a_base_exception_inside_the_model_is_an_error() -> None:
    def boom(x: torch.Tensor) -> torch.Tensor:
        if float(x.detach().reshape(-1)[0]) > 0.26:
            raise _Boom("boom")
        return torch.exp((x**2).sum(-1, keepdim=True) - 2.0)

    with pytest.raises(ModelError, match=r"^the model raised _Boom: boom while being evaluated"):
        fs.trace(boom, [0.25, 0.25], step=0.05)


@pytest.mark.parametrize(
    "call",
    [
        lambda net: fs.preimage(net, [0.2, 0.2], (0.142, 0.152), bounds=(-1, 1), levels=10**9),
        lambda net: fs.preimage(net, [0.2, 0.2], (0.142, 0.152), bounds=(-1, 1), resolution=10**6),
        lambda net: fs.sample_class(net, [0.25, 0.25], 10**9),
        lambda net: fs.walk(net, [0.25, 0.25], samples=10**9, output="sum"),
    ],
    ids=["levels", "resolution", "samples", "walk"],
)
def test_runs_larger_than_memory_are_refused_before_allocating(call, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("FIBERSCOPE_MEMORY_BUDGET", str(2**30))
    with pytest.raises(InputError, match="of memory, more than the 1.0 GiB a run may use"):
        call(fs.load_model("surface_1"))
