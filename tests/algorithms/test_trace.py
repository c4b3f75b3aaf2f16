"""The corrected tracer against exact classes, the network's own level sets and its promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import measure
from torch import nn

import fiberscope as fs
from analytic_models import Parabolic, Product, Radial, point_to_polyline
from fiberscope.errors import InputError, ModelError, SingularPointError
from fiberscope.geometry.grid import evaluate_grid

BOX = ([-1.0, -1.0], [1.0, 1.0])


def _residual(model, res) -> float:
    pts = res.points.reshape(len(res), -1)
    out = model(pts).detach().reshape(len(res), -1)
    return float((out - res.y0).abs().max())


def test_circle_class_of_network_1_closes(net1) -> None:
    res = fs.trace(net1, [0.25, 0.25], step=0.0125)
    assert res.closed and res.stop_reasons == {"forward": "closed"}
    assert res.drift <= 1e-9 and _residual(net1, res) <= 1e-9
    # traced once: the arclength covers the loop once, no point repeats the loop
    assert 2.0 < res.length < 2.4
    angles = torch.atan2(res.points[:, 1], res.points[:, 0])
    unwrapped = np.unwrap(angles.numpy())
    assert abs(abs(unwrapped[-1] - unwrapped[0]) - 2 * math.pi) < 0.1
    # the last point is within one step of the start
    assert float((res.points[-1] - res.points[0]).norm()) <= 0.0125 + 1e-12


def test_analytic_circle_length_and_radius() -> None:
    r0 = math.hypot(0.25, 0.25)
    res = fs.trace(Radial(), [0.25, 0.25], step=0.01)
    radii = res.points.norm(dim=1)
    assert float((radii - r0).abs().max()) < 1e-12
    assert res.closed
    assert res.length == pytest.approx(2 * math.pi * r0, rel=1e-3)


def test_paper_mode_spirals_outward_on_the_circle() -> None:
    r0 = math.hypot(0.25, 0.25)
    res = fs.trace(
        Radial(), [0.25, 0.25], step=0.0125, max_steps=200, method="paper", direction="forward"
    )
    radii = res.points.norm(dim=1)
    # Euler error: r_k^2 ~ r_0^2 + k delta^2
    expected = math.sqrt(r0**2 + 200 * 0.0125**2)
    assert float(radii[-1]) == pytest.approx(expected, rel=1e-2)
    assert not res.closed and res.drift > 1e-3


def test_box_exit_on_network_2_is_on_face_and_class(net2) -> None:
    res = fs.trace(net2, [0.25, 0.25], step=0.01, bounds=BOX)
    assert res.stop_reasons == {"forward": "boundary", "backward": "boundary"}
    for end in (res.points[0], res.points[-1]):
        assert float((end.abs() - 1.0).abs().min()) < 1e-12  # on a face
        assert float(end.abs().max()) <= 1.0
        assert float((net2(end) - res.y0).abs().max()) <= 1e-9  # and on the class
    assert res.drift <= 1e-9
    assert bool((res.arclength[1:] > res.arclength[:-1]).all())


def test_exact_parabola_class_and_exit_points() -> None:
    c = 0.25 + 0.25**2
    res = fs.trace(Parabolic(), [0.25, 0.25], step=0.02, bounds=BOX)
    x, y = res.points[:, 0], res.points[:, 1]
    assert float((y - (c - x**2)).abs().max()) < 1e-10  # output tol 1e-12 / |grad N|
    # y = c - x^2 leaves the box through the side faces x = +-1, at y = c - 1
    ends = sorted(tuple(round(v, 10) for v in res.points[i].tolist()) for i in (0, -1))
    assert ends == [(-1.0, round(c - 1, 10)), (1.0, round(c - 1, 10))]


def test_hyperbola_leaves_through_the_faces() -> None:
    res = fs.trace(Product(), [0.5, 0.4], step=0.05, bounds=BOX)
    xy = res.points[:, 0] * res.points[:, 1]
    assert float((xy - 0.2).abs().max()) < 1e-12
    ends = {tuple(round(v, 12) for v in res.points[i].tolist()) for i in (0, -1)}
    assert ends == {(1.0, 0.2), (0.2, 1.0)}


def test_affine_class_is_a_line_through_the_kernel() -> None:
    a = torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.2], dtype=torch.float64)
    x0 = torch.tensor([0.2, 0.1, -0.3], dtype=torch.float64)
    res = fs.trace(lambda x: x @ a.T + b, x0, step=0.1, bounds=(-1.0, 1.0))
    k = torch.linalg.cross(a[0], a[1])
    k = k / k.norm()
    d = res.points - x0
    assert float(torch.linalg.cross(d, k.expand_as(d)).norm(dim=1).max()) < 1e-12
    assert set(res.stop_reasons.values()) == {"boundary"}


@pytest.mark.parametrize("level_start", [(0.25, 0.25), (0.5, -0.3), (-0.6, 0.1)])
def test_network_1_against_its_own_contours(net1, level_start) -> None:
    res = fs.trace(net1, list(level_start), step=0.01, bounds=BOX)
    _compare_with_contours(net1, res, BOX)


@pytest.mark.parametrize("level_start", [(0.25, 0.25), (0.0, -0.5)])
def test_network_2_against_its_own_contours(net2, level_start) -> None:
    res = fs.trace(net2, list(level_start), step=0.01, bounds=BOX)
    _compare_with_contours(net2, res, BOX)


def _compare_with_contours(net, res, box, resolution: int = 801) -> None:
    xs, ys, z = evaluate_grid(net, box[0], box[1], resolution)
    level = float(res.y0[0])
    contours = measure.find_contours(z.numpy(), level)
    h = float(xs[1] - xs[0])
    x_lo, y_lo = float(xs[0]), float(ys[0])
    curves = [np.column_stack((x_lo + c[:, 1] * h, y_lo + c[:, 0] * h)) for c in contours]
    traced = res.points.numpy()
    # the contour component through the start
    start = traced[res.start_index]
    best = min(curves, key=lambda c: np.min(np.linalg.norm(c - start, axis=1)))
    # Hausdorff distance between the two polylines (points to segments, both ways)
    d1 = float(point_to_polyline(traced, best).max())
    d2 = float(point_to_polyline(best, traced, closed=res.closed).max())
    assert max(d1, d2) < 1e-4, (d1, d2)


def test_direction_and_orientation(net1) -> None:
    x0 = torch.tensor([0.25, 0.25], dtype=torch.float64)
    fwd = fs.trace(net1, x0, step=0.01, direction="forward", max_steps=5)
    back = fs.trace(net1, x0, step=0.01, direction="backward", max_steps=5)
    grad = fs.geometry.jacobian(net1, x0)[0]
    t = torch.stack((-grad[1], grad[0]))
    assert float((fwd.points[1] - x0) @ t) > 0  # forward = gradient turned +90 degrees
    assert float((back.points[-2] - x0) @ t) < 0
    assert fwd.stop_reasons == {"forward": "max_steps"}
    assert back.start_index == 5 and fwd.start_index == 0
    both = fs.trace(net1, x0, step=0.01, max_steps=5)
    torch.testing.assert_close(both.points[:6], back.points)
    torch.testing.assert_close(both.points[5:], fwd.points)
    assert both.branch.tolist() == [-1] * 5 + [0] + [1] * 5


def test_image_shaped_inputs_keep_their_shape() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(4, 3).double()

    def model(x: torch.Tensor) -> torch.Tensor:  # (B, 2, 2) -> (B, 3)
        return torch.tanh(lin(x.flatten(1)))

    x0 = torch.full((2, 2), 0.1, dtype=torch.float64)
    res = fs.trace(model, x0, step=0.05, max_steps=20)
    assert res.points.shape[1:] == (2, 2)
    torch.testing.assert_close(res.points[res.start_index], x0)
    assert res.drift <= 1e-9


def test_singular_start_is_refused() -> None:
    with pytest.raises(SingularPointError, match="singular point"):
        fs.trace(Radial(), [0.0, 0.0])


def test_trace_stops_at_a_singular_point() -> None:
    # x^2 - y^2 = 0 is a pair of crossing lines; the origin is a saddle.
    res = fs.trace(
        lambda x: x[..., :1] ** 2 - x[..., 1:] ** 2,
        [0.5, 0.5],
        step=0.05,
        direction="backward",
        max_steps=200,
    )
    assert res.stop_reasons["backward"] == "singular"
    stop = torch.tensor(res.stop_points["backward"])
    assert float(stop.norm()) < 0.05


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"x0": [0.1, 0.2, 0.3]}, InputError, "3 coordinates but the model takes 2"),
        ({"x0": [0.1, float("inf")]}, InputError, "non-finite"),
        ({"bounds": ([0.3, 0.3], [1, 1])}, InputError, "outside the bounds"),
        ({"bounds": ([0, 0], [1])}, InputError, "1 values but the input has 2"),
        ({"step": 0}, InputError, "step must be a positive"),
        ({"max_steps": 0}, InputError, "max_steps must be a positive integer"),
        ({"method": "rk4"}, InputError, "unknown method"),
        ({"direction": "up"}, InputError, "unknown direction"),
        ({"step": 5.0, "bounds": BOX}, InputError, "larger than the box"),
    ],
)
def test_bad_arguments(net1, kwargs, error, message) -> None:
    args = {"x0": [0.25, 0.25], **kwargs}
    x0 = args.pop("x0")
    with pytest.raises(error, match=message):
        fs.trace(net1, x0, **args)


def test_wrong_output_dimension_mentions_nd_classes() -> None:
    with pytest.raises(ModelError, match="m = n - 1.*2-dimensional"):
        fs.trace(lambda x: x.sum(-1, keepdim=True), [0.1, 0.2, 0.3])
    with pytest.raises(ModelError, match="m = n - 1"):
        fs.trace(lambda x: x, [0.1, 0.2])
