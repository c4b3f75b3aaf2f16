"""Classifier walks: to the decision boundary and past it; output maps; the paper's binary
classifier against its own decision boundary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from skimage import measure
from torch import nn

import fiberscope as fs
from analytic_models import point_to_polyline
from fiberscope.errors import InputError, ModelError, TargetNotReachedError
from fiberscope.geometry.grid import evaluate_grid

W = torch.tensor([3.0, -4.0], dtype=torch.float64)


def logistic(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x @ W + 0.5).unsqueeze(-1)


def test_linear_classifier_distance_is_exact() -> None:
    x0 = torch.tensor([0.3, 0.1], dtype=torch.float64)
    res = fs.boundary_walk(logistic, x0, threshold=0.5, step=0.05)
    z0 = float(x0 @ W + 0.5)
    dist = abs(z0) / float(W.norm())
    expect = x0 - z0 * W / float(W @ W)
    assert res.decision_start == 1 and res.decision_flip == 0 and res.side == 1
    assert abs(res.boundary_output - 0.5) < 1e-12
    assert torch.allclose(res.boundary_point, expect, atol=1e-12)
    assert abs(res.boundary_length - dist) < 1e-12 and abs(res.closest_distance - dist) < 1e-12
    assert res.closest_kkt < 1e-10 and res.closest_converged
    # past it: by default as far on the other side as x0 was on its side
    assert abs(res.flip_output - (1 - float(logistic(x0)))) < 1e-12
    assert abs(float(res.flip_point @ W + 0.5) + z0) < 1e-10


def test_paper_binary_classifier_from_its_boundary_start(binary_net) -> None:
    x0 = [0.0, -0.01499]
    res = fs.boundary_walk(
        binary_net, x0, threshold=0.5, beyond=0.1, bounds=([-3.14, -1.0], [3.14, 1.5])
    )
    assert res.y0 == pytest.approx(0.504, abs=1e-3)
    assert res.decision_start == 1 and res.decision_flip == 0
    assert abs(res.boundary_output - 0.5) < 1e-12
    assert abs(res.flip_output - 0.4) < 1e-12
    assert res.closest_distance <= res.boundary_distance + 1e-15 <= res.boundary_length + 1e-15
    assert res.closest_kkt < 1e-8
    # against the network's own boundary: marching squares on a fine grid around x0
    half = 3e-4
    lo, hi = [x0[0] - half, x0[1] - half], [x0[0] + half, x0[1] + half]
    xs, ys, z = evaluate_grid(binary_net, lo, hi, 301)
    h = 2 * half / 300
    curves = [
        np.column_stack((lo[0] + c[:, 1] * h, lo[1] + c[:, 0] * h))
        for c in measure.find_contours(z.numpy(), 0.5)
    ]
    own = min(point_to_polyline(np.array([x0]), c)[0] for c in curves)
    assert abs(res.closest_distance - own) / own < 1e-3


def test_class_margin_of_a_three_class_model() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 3)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]]))
        net[0].bias.zero_()
    x0 = torch.tensor([0.6, 0.1], dtype=torch.float64)  # class 0, runner-up class 1
    res = fs.boundary_walk(net, x0, output=fs.outputs.ClassMargin(), step=0.05)
    assert res.decision_start == 0 and res.decision_flip == 1
    assert res.options["output"] == "margin 0"
    w = net[0].weight.detach()
    d = w[0] - w[1]
    dist = float(x0 @ d) / float(d.norm())
    assert abs(res.closest_distance - dist) < 1e-12
    # a logit difference through the string form gives the same boundary (threshold 0)
    res2 = fs.boundary_walk(net, x0, output="logit-diff 0 1", step=0.05)
    assert abs(res2.closest_distance - dist) < 1e-12 and res2.decision_flip == 1


def test_vector_classifier_needs_an_output_map_and_threshold() -> None:
    net = nn.Sequential(nn.Linear(2, 3)).double()
    with pytest.raises(ModelError, match="output map"):
        fs.boundary_walk(net, [0.1, 0.2], threshold=0.0)
    with pytest.raises(InputError, match="give threshold"):
        fs.boundary_walk(logistic, [0.3, 0.1])
    with pytest.raises(InputError, match="on the decision boundary"):
        fs.boundary_walk(logistic, [0.1, 0.2], threshold=0.5)  # 3*0.1 - 4*0.2 + 0.5 = 0
    with pytest.raises(TargetNotReachedError, match="closest output reached"):
        fs.boundary_walk(logistic, [0.3, 0.1], threshold=0.5, bounds=([0.2, 0.0], [0.4, 0.2]))
    with pytest.raises(InputError, match="out of range"):
        fs.boundary_walk(net, [0.1, 0.2], output=fs.outputs.OutputComponent(5), threshold=0.0)


def test_output_maps() -> None:
    y = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    assert fs.outputs.OutputComponent(1)(y).tolist() == [3.0]
    assert fs.outputs.OutputComponent(-1)(y).tolist() == [2.0]
    assert fs.outputs.LogitDifference(1, 2)(y).tolist() == [1.0]
    assert fs.outputs.LogitDifference(1, 2).decision(y) == 1
    p = torch.softmax(y, 0)
    assert torch.allclose(fs.outputs.Softmax()(y), p)
    assert torch.allclose(fs.outputs.ClassProbability(2)(y), p[2:])
    margin = fs.outputs.ClassMargin().bind(y)
    assert margin.cls == 1 and margin(y).tolist() == [1.0] and margin.threshold == 0.0
    assert fs.outputs.ClassMargin(0)(y).tolist() == [-2.0]
    assert fs.outputs.ClassMargin(1, log=True)(p).item() == pytest.approx(1.0)
    assert fs.outputs.BinaryScore().decision(torch.tensor([0.7])) == 1
    with pytest.raises(InputError):
        fs.outputs.LogitDifference(1, 1)
    with pytest.raises(InputError):
        fs.outputs.OutputComponent(1.5)  # type: ignore[arg-type]
    # they work under torch.func and vmap (Jacobians and heat maps)
    j = torch.func.jacrev(fs.outputs.ClassMargin(1))(y)
    assert j.tolist() == [[0.0, 1.0, -1.0]]
    assert torch.vmap(fs.outputs.LogitDifference(0, 2))(torch.stack([y, y])).shape == (2, 1)


def test_save_and_plot(tmp_path) -> None:
    res = fs.boundary_walk(logistic, [0.3, 0.1], threshold=0.5, step=0.05)
    csv_path, json_path = fs.io.save(res, tmp_path / "w.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "x0,x1,y0,arclength,phase"
    phases = [int(line.split(",")[-1]) for line in lines[1:]]
    assert phases[: res.boundary_index + 1] == [0] * (res.boundary_index + 1)
    assert set(phases[res.boundary_index + 1 :]) == {1}
    meta = json.loads(json_path.read_text())
    assert meta["kind"] == "boundary_walk" and meta["decision_flip"] == 0
    assert math.isclose(meta["closest_distance"], res.closest_distance)
    assert len(fs.plot.plot(res, model=logistic).axes) >= 2
