"""Jacobians in float32/bfloat16, float32 models, and CUDA (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fiberscope as fs


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)
    ).eval()  # a float32 model, as PyTorch makes them


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_low_precision_jacobians_keep_float64_residuals(dtype: str) -> None:
    net = fs.load_model("surface_1")
    res = fs.trace(net, [0.25, 0.25], step=0.05, dtype=dtype)
    assert res.closed and res.drift <= 1e-9
    assert res.options["dtype"] == dtype
    model = _small_cnn()
    x0 = torch.rand(1, 8, 8)
    walk = fs.walk(model, x0, samples=5, step=0.05, seed=0, dtype=dtype, bounds=(0, 1))
    assert walk.residual <= 1e-9


def test_a_float32_model_is_evaluated_in_float64() -> None:
    model = _small_cnn()
    assert next(model.parameters()).dtype == torch.float32
    x0 = torch.rand(1, 8, 8)
    res = fs.walk(model, x0, samples=5, step=0.05, seed=0)
    with torch.no_grad():  # an independent float64 evaluation of the same weights
        ref = model.double()(res.samples[0].reshape(5, 1, 8, 8))
        y0 = model(x0.double().unsqueeze(0))
    assert float((ref - y0).abs().max()) <= 1e-9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_trace_and_walk_follow_the_inputs_device() -> None:
    net = fs.load_model("surface_1")
    cpu = fs.trace(net, [0.25, 0.25], step=0.05)
    gpu = fs.trace(net, torch.tensor([0.25, 0.25], device="cuda"), step=0.05)
    assert gpu.points.device.type == "cuda" and gpu.closed
    assert torch.allclose(gpu.points.cpu(), cpu.points, atol=1e-10)
    model = _small_cnn().cuda()
    walk = fs.walk(model, torch.rand(1, 8, 8, device="cuda"), samples=5, step=0.05, seed=0)
    assert walk.samples.device.type == "cuda" and walk.residual <= 1e-9
