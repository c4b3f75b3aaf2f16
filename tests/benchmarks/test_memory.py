"""No tensor of n^2 elements: the geometry works on m x n Jacobians and m x m Gram matrices.

Issue 9 asks it for a 3 x 224 x 224 convolutional model with 10 outputs (n = 150,528: one
float64 n x n matrix would take 181 GB); the peak memory of such a step is printed by
``benchmarks/nd_step.py`` (its G5 table, a ResNet-18).

A ``TorchDispatchMode`` records the number of elements of every tensor every aten operation
returns (forward and backward passes included) during whole ``fs.walk`` / ``fs.trace`` calls
(validation, the start's Jacobian, the steps). A positive control shows the recorder sees the
n x n metric the authors' walk forms.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import fiberscope as fs

N = 4096  # 1 x 64 x 64 images / 4096-vectors


class LargestOutput(TorchDispatchMode):
    """Remembers the largest ``numel`` of any tensor an operation returns, and which op."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.op = ""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.numel() > self.largest:
                self.largest = t.numel()
                self.op = str(func)
        return out


def _mlp(n: int, m: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n, 16), nn.Tanh(), nn.Linear(16, m)).double()


class _Conv(nn.Module):
    """1 x 64 x 64 -> 4 (not an nn.Sequential: differentiated by autograd)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 5, stride=2)
        self.fc = nn.Linear(4 * 30 * 30, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


class _Conv224(nn.Module):
    """3 x 224 x 224 -> 10: two strided convolutions, pooling and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 7, stride=4, padding=3)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(8 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.conv2(torch.tanh(self.conv1(x))))
        return self.fc(self.pool(h).flatten(1))


def _start(shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.2 + 0.6 * torch.rand(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(
    "model, x0",
    [
        (_mlp(N, 4), _start((N,))),  # closed-form MLP Jacobian
        (_Conv().double(), _start((1, 64, 64))),  # autograd, batched output gradients
    ],
    ids=["mlp", "conv"],
)
def test_corrected_walk_creates_no_n_squared_tensor(model, x0):
    rec = LargestOutput()
    with rec:
        res = fs.walk(model, x0, samples=2, step=0.05, seed=0, bounds=(0.0, 1.0))
    assert res.counts == [2] and res.residual < 1e-9
    assert rec.largest < N * N, f"{rec.op} returned {rec.largest} elements (n^2 = {N * N})"
    # and in fact nothing beyond a few m x n Jacobians
    assert rec.largest <= 8 * N * 4, (rec.op, rec.largest)


def test_imagenet_sized_conv_walk_creates_no_n_squared_tensor():
    # issue 9: a 3 x 224 x 224 convolutional model with 10 outputs, float32 (the common case;
    # the geometry runs in float64), walked inside the pixel box
    n, m = 3 * 224 * 224, 10
    model = _Conv224()
    x0 = _start((3, 224, 224))
    rec = LargestOutput()
    with rec:
        res = fs.walk(model, x0, samples=1, step=0.05, seed=0, bounds=(0.0, 1.0))
    assert res.counts == [1] and res.residual < 1e-9
    assert res.samples.shape == (1, 1, 3, 224, 224)
    assert rec.largest < n * n, f"{rec.op} returned {rec.largest} elements (n^2 = {n * n})"
    # O(n m): nothing beyond a few m x n Jacobians (measured: 2 n m, a stack of two)
    assert rec.largest <= 4 * n * m, (rec.op, rec.largest)


def test_trace_creates_nothing_beyond_n_by_n():
    # a 1-D class needs m = n - 1 outputs, so J itself holds n(n - 1) elements: the bound is
    # that nothing exceeds one n x n (no n x n per member, no n^3)
    n = 512
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(n, n - 1), nn.Tanh()).double()
    x0 = _start((n,)) * 0.1
    rec = LargestOutput()
    with rec:
        res = fs.trace(model, x0, step=0.01, max_steps=2, direction="forward")
    assert res.stats.steps == 2
    assert rec.largest <= n * n, f"{rec.op} returned {rec.largest} elements (n^2 = {n * n})"


def test_the_recorder_sees_the_authors_n_by_n_metric():
    # positive control: method="paper" forms g = J^T J (n x n) every step
    n = 256
    rec = LargestOutput()
    with rec:
        fs.walk(_mlp(n, 2), _start((n,)), samples=1, step=0.05, seed=0, method="paper")
    assert rec.largest >= n * n
