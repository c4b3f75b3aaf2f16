"""explore(): exact output levels along the gradient line, perpendicular to the classes it
crosses; vector outputs; the authors' SiMExp-1D against an independent NumPy version; errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import fiberscope as fs
from analytic_models import Parabolic, Radial
from fiberscope.errors import InputError, ModelError, SingularPointError, TargetNotReachedError
from fiberscope.models import bundled_networks
from numpy_simexp import load_layers, simexp

BOX = ([-1.0, -1.0], [1.0, 1.0])


def _gradients(model, pts: torch.Tensor) -> torch.Tensor:
    return torch.stack([fs.geometry.jacobian(model, p)[0] for p in pts])


def _crossing_sines(model, res) -> np.ndarray:
    """|sin| of the angle between each path segment and the gradient at its midpoint."""
    pts = res.points.reshape(len(res), -1)
    seg = pts[1:] - pts[:-1]
    mids = 0.5 * (pts[1:] + pts[:-1])
    g = _gradients(model, mids)
    cos = (seg * g).sum(1) / (seg.norm(dim=1) * g.norm(dim=1))
    return torch.sqrt(torch.clamp(1 - cos**2, min=0)).numpy()


@pytest.mark.parametrize("target", [0.2, 0.145])
def test_reaches_target_exactly_and_crosses_classes_at_right_angles(net1, target) -> None:
    res = fs.explore(net1, [0.25, 0.25], target=target, step=0.01, bounds=BOX)
    assert res.reached and res.stop_reason == "reached"
    with torch.no_grad():
        out = float(net1(res.end.unsqueeze(0)))
    assert abs(out - target) <= 1e-12 and res.residual <= 1e-12
    # every point lies on its own level: the outputs move monotonically to the target
    y = res.outputs[:, 0]
    d = torch.diff(y) * (1 if target > res.y0[0] else -1)
    assert bool((d > 0).all())
    # the path is perpendicular to the level sets it crosses
    assert _crossing_sines(net1, res).max() < 1e-3
    # arclength is the polyline length; the end is the last point
    assert res.length >= res.distance > 0
    assert torch.allclose(
        res.arclength[-1], torch.linalg.vector_norm(res.points[1:] - res.points[:-1], dim=1).sum()
    )


def test_radial_model_walks_straight_out_to_the_exact_circle() -> None:
    r_target = 0.6
    t = math.exp(r_target**2 - 2)
    res = fs.explore(Radial(), [0.25, 0.25], target=t, step=0.05)
    expect = torch.tensor([r_target, r_target], dtype=torch.float64) / math.sqrt(2)
    assert torch.allclose(res.end, expect, atol=1e-10)
    assert abs(res.length - (r_target - math.sqrt(0.125))) < 1e-9
    # the gradient line of a radial function is a ray: every point on the diagonal
    assert float((res.points[:, 0] - res.points[:, 1]).abs().max()) < 1e-12


def test_curved_gradient_line_of_the_parabolic_model_converges_to_the_exact_one() -> None:
    # N = exp(x^2 + y - 2): grad N ~ (2x, 1), so the gradient line is x = x0 exp(2 (y - y0))
    from scipy.optimize import brentq

    x0, y0 = 0.25, 0.25
    t = math.exp(0.8**2 + 0.3 - 2)
    ye = brentq(lambda y: (x0 * math.exp(2 * (y - y0))) ** 2 + y - 2 - math.log(t), y0, 2.0)
    exact = np.array([x0 * math.exp(2 * (ye - y0)), ye])
    errors = []
    for step in (0.02, 0.01):
        res = fs.explore(Parabolic(), [x0, y0], target=t, step=step)
        assert res.residual <= 1e-12
        errors.append(float(np.linalg.norm(res.end.numpy() - exact)))
        assert _crossing_sines(Parabolic(), res).max() < 0.02
    assert errors[1] < 1e-4
    assert 3.0 < errors[0] / errors[1] < 5.0  # second order in the step


def test_epsilon_with_up_and_down(net1) -> None:
    y0 = float(net1(torch.tensor([[0.25, 0.25]], dtype=torch.float64)).detach())
    up = fs.explore(net1, [0.25, 0.25], epsilon=0.01, direction="up", step=0.01)
    down = fs.explore(net1, [0.25, 0.25], epsilon=0.01, direction="down", step=0.01)
    assert abs(float(up.end_output[0]) - (y0 + 0.01)) < 1e-12
    assert abs(float(down.end_output[0]) - (y0 - 0.01)) < 1e-12
    # up moves away from the centre (N grows with the radius), down towards it
    assert up.end.norm() > up.start.norm() > down.end.norm()


def test_vector_target_on_affine_map_is_the_min_norm_straight_line() -> None:
    a = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)

    def affine(x: torch.Tensor) -> torch.Tensor:
        return x @ a.T + 1.0

    x0 = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    y0 = affine(x0)
    target = y0 + torch.tensor([0.7, -0.4], dtype=torch.float64)
    res = fs.explore(affine, x0, target=target.tolist(), step=0.05)
    expect = x0 + torch.linalg.pinv(a) @ (target - y0)
    assert torch.allclose(res.end, expect, atol=1e-12)
    assert abs(res.length - float((expect - x0).norm())) < 1e-12


def test_vector_target_on_a_network_is_reached(net1) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    x0 = torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64)
    with torch.no_grad():
        target = net(x0) + torch.tensor([0.05, -0.03], dtype=torch.float64)
    res = fs.explore(net, x0, target=target, step=0.02)
    with torch.no_grad():
        assert float((net(res.end) - target).abs().max()) <= 1e-12
    # the output moves along the straight segment from y0 to the target
    rel = (res.outputs - res.outputs[0]) / (target - res.outputs[0])
    assert float((rel[:, 0] - rel[:, 1]).abs().max()) < 1e-9


def test_epsilon_with_several_outputs_follows_the_top_eigenvector() -> None:
    a = torch.tensor([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)

    def linear(x: torch.Tensor) -> torch.Tensor:
        return x @ a.T

    x0 = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    res = fs.explore(linear, x0, epsilon=0.3, direction="down", step=0.01)
    # top eigenvector of A^T A is e0 (eigenvalue 9); "down": the first output decreases
    expect = x0 - torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(res.end, expect, atol=1e-12)
    assert abs(float((res.end_output - res.y0).norm()) - 0.3) < 1e-12
    # with an output metric G the eigen-problem is J^T G J: weight the second output up
    g = torch.diag(torch.tensor([1.0, 100.0], dtype=torch.float64))
    res = fs.explore(linear, x0, epsilon=0.3, direction="up", step=0.01, metric=g)
    d = res.end - x0
    assert abs(float(d[1]) - 0.03) < 1e-12 and float(d[[0, 2]].abs().max()) < 1e-12


def test_target_outside_the_box_reports_closest_level_and_where(net1) -> None:
    with pytest.raises(TargetNotReachedError, match="closest output reached is 0.84") as info:
        fs.explore(net1, [0.25, 0.25], target=0.9, step=0.02, bounds=BOX)
    err = info.value
    assert err.reason == "boundary"
    assert max(abs(v) for v in err.closest_point) == pytest.approx(1.0)
    partial = err.result
    assert isinstance(partial, fs.ExploreResult) and not partial.reached
    assert float(partial.outputs[:, 0].max()) == pytest.approx(err.closest_output[0])
    assert "\n" not in str(err)


def test_target_below_the_minimum_stops_at_the_extremum() -> None:
    with pytest.raises(TargetNotReachedError, match="local extremum") as info:
        fs.explore(Radial(), [0.25, 0.25], target=0.1, step=0.02)
    assert info.value.reason == "singular"
    # the walk went down the radial line to (near) the minimum at the origin
    assert np.linalg.norm(info.value.closest_point) < 1e-3
    assert info.value.closest_output[0] == pytest.approx(math.exp(-2), abs=1e-6)


def test_paper_mode_matches_an_independent_numpy_simexp() -> None:
    path = bundled_networks()["surface_1"]
    net = fs.load_model("surface_1")
    layers = load_layers(path)
    x0 = np.array([0.25, 0.25])
    for invert, direction in ((False, "forward"), (True, "backward")):
        ref = np.array(simexp(layers, x0, 1e-3, 0.004, 10_000, invert))
        res = fs.explore(
            net, x0.tolist(), epsilon=0.004, method="paper", step=1e-3, direction=direction
        )
        pts = res.points.numpy()
        assert pts.shape == (len(ref) + 1, 2)
        np.testing.assert_allclose(pts[1:], ref, rtol=0, atol=1e-12)
        assert res.reached and res.method == "paper"
        # the stop criterion overshoots: |N - N(x0)| >= epsilon, by less than one step's change
        change = abs(float(res.end_output[0] - res.y0[0]))
        assert 0.004 <= change < 0.004 + 1e-3 * float(fs.geometry.jacobian(net, res.end).norm())
    assert res.energy is not None and res.energy > 0


def test_paper_mode_up_down_chooses_the_first_step() -> None:
    net = fs.load_model("surface_1")
    for direction, sign in (("up", 1), ("down", -1)):
        res = fs.explore(
            net, [0.25, 0.25], epsilon=0.002, method="paper", step=1e-3, direction=direction
        )
        assert sign * float(res.outputs[1, 0] - res.outputs[0, 0]) > 0


def test_singular_start_is_refused() -> None:
    with pytest.raises(SingularPointError, match="does not change to first order"):
        fs.explore(Radial(), [0.0, 0.0], target=0.5)


def test_scalar_target_on_vector_output_needs_an_output_map() -> None:
    def two(x: torch.Tensor) -> torch.Tensor:
        return torch.stack((x[..., 0] * x[..., 1], x[..., 0] + 2 * x[..., 2]), -1)

    with pytest.raises(InputError, match="output map"):
        fs.explore(two, [0.1, 0.2, 0.3], target=0.5)
    res = fs.explore(two, [0.1, 0.2, 0.3], target=0.5, output=fs.outputs.OutputComponent(1))
    assert abs(float(res.end_output[0]) - 0.5) < 1e-12
    res = fs.explore(two, [0.1, 0.2, 0.3], target=0.5, output="y[1]")
    assert abs(float(res.end_output[0]) - 0.5) < 1e-12


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, InputError, "exactly one of target"),
        ({"target": 0.2, "epsilon": 0.1}, InputError, "exactly one of target"),
        ({"epsilon": -0.1}, InputError, "epsilon must be a positive"),
        ({"epsilon": 0.1, "direction": "sideways"}, InputError, "unknown direction"),
        ({"target": 0.2, "direction": "up"}, InputError, "direction= goes with epsilon"),
        ({"target": float("nan")}, InputError, "target must be finite"),
        ({"target": [0.1, 0.2]}, InputError, "2 values but the model has 1"),
        ({"target": 0.2, "method": "rk4"}, InputError, "unknown method"),
        ({"target": 0.2, "step": 0}, InputError, "step must be a positive"),
    ],
)
def test_bad_arguments(net1, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        fs.explore(net1, [0.25, 0.25], **kwargs)


def test_more_outputs_than_inputs_is_refused() -> None:
    with pytest.raises(ModelError, match="more outputs than inputs"):
        fs.explore(lambda x: torch.cat([x, x]), [0.1, 0.2], target=[0, 0, 0, 0])


def test_image_shaped_inputs_keep_their_shape() -> None:
    x0 = torch.tensor([[0.1, 0.2], [0.3, -0.1]], dtype=torch.float64)
    res = fs.explore(lambda x: (x**2).sum().reshape(1), x0, target=0.5, step=0.05)
    assert res.points.shape[1:] == (2, 2) and torch.equal(res.start, x0)
    # the gradient of |x|^2 is radial: the end is x0 scaled to |x|^2 = 0.5
    assert torch.allclose(res.end, x0 * math.sqrt(0.5 / float((x0**2).sum())), atol=1e-12)


def test_save_and_plot(net1, tmp_path) -> None:
    res = fs.explore(net1, [0.25, 0.25], target=0.16, step=0.01, bounds=BOX)
    csv_path, json_path = fs.io.save(res, tmp_path / "e.csv")
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "x0,x1,y0,arclength" and len(rows) == len(res) + 1
    meta = json.loads(json_path.read_text())
    assert meta["kind"] == "explore" and meta["reached"] is True
    assert meta["residual"] <= 1e-12 and meta["parameters"]["target"] == [0.16]
    fig = fs.plot.plot(res, model=net1)
    assert fig.axes
    three = fs.explore(lambda x: (x**2).sum(-1, keepdim=True), [0.1, 0.2, 0.3], target=0.5)
    assert fs.plot.plot(three).axes
