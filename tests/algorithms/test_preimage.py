"""preimage(): exact levels over [a, b], the band and its area against analytic annuli and the
network's own band, the authors' driver against an independent NumPy version, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from skimage import measure

import fiberscope as fs
from analytic_models import Parabolic, Radial, point_to_polyline
from fiberscope.errors import InputError, ModelError, TargetNotReachedError
from fiberscope.geometry.grid import evaluate_grid
from fiberscope.models import bundled_networks
from numpy_simexp import load_layers, preimage_driver

BOX = ([-1.0, -1.0], [1.0, 1.0])
R_IN, R_OUT = 0.21288, 0.3369  # the paper's annulus


def _level(r: float) -> float:
    return math.exp(r * r - 2.0)


def _grid_band_area(model, a: float, b: float, resolution: int) -> float:
    """The network's own band a <= N <= b on a fine grid (trapezoid weights), independently."""
    xs, ys, z = evaluate_grid(model, BOX[0], BOX[1], resolution)
    h = 2.0 / (resolution - 1)
    w = np.ones(resolution)
    w[0] = w[-1] = 0.5
    inside = ((z >= a) & (z <= b)).numpy()
    return float((np.outer(w, w) * inside).sum() * h * h)


def test_annulus_of_the_analytic_radial_function() -> None:
    a, b = _level(R_IN), _level(R_OUT)
    res = fs.preimage(Radial(), [0.2, 0.2], (a, b), levels=5, bounds=BOX, step=0.02)
    assert len(res) == 5 and all(t.closed for t in res.traces)
    for k, tr in enumerate(res.traces):
        target = a + (b - a) * k / 4
        assert abs(float(res.levels[k, 0]) - target) < 1e-15
        radius = tr.points.norm(dim=1)
        assert float((radius - math.sqrt(math.log(target) + 2)).abs().max()) < 1e-10
    exact = math.pi * (R_OUT**2 - R_IN**2)
    reg = res.region
    assert reg is not None and reg.polygon is not None and len(reg.polygon) == 2
    assert abs(reg.polygon_area - exact) / exact < 1e-3
    assert abs(reg.area - exact) / exact < 3e-3
    # the whole band in the box is one component, the one the levels touch
    assert reg.area == pytest.approx(reg.band_area)
    assert reg.boundary_distance["low"]["max"] < 1e-4
    assert reg.boundary_distance["high"]["max"] < 1e-4
    # the exploration path runs from the inner to the outer level through x0, radially
    path = res.path
    assert abs(float(path[0].norm()) - R_IN) < 1e-9 and abs(float(path[-1].norm()) - R_OUT) < 1e-9
    assert float((path[:, 0] - path[:, 1]).abs().max()) < 1e-12
    assert bool((torch.diff(res.path_outputs[:, 0]) > 0).all())


def test_network_1_band_against_its_own_band_and_contours(net1) -> None:
    y0 = float(net1(torch.tensor([[0.2, 0.2]], dtype=torch.float64)).detach())
    a, b = y0 - 0.005, y0 + 0.005
    res = fs.preimage(net1, [0.2, 0.2], (a, b), levels=6, bounds=BOX, step=0.01)
    assert res.drift < 1e-11 and all(t.closed for t in res.traces)
    own = _grid_band_area(net1, a, b, 1001)
    reg = res.region
    assert abs(reg.polygon_area - own) / own < 1e-3
    assert abs(reg.area - own) / own < 3e-3
    # the band's inner and outer levels lie on the network's own contours (fine grid)
    xs, ys, z = evaluate_grid(net1, BOX[0], BOX[1], 1001)
    h = 2.0 / 1000
    for k, lev in ((0, a), (-1, b)):
        curves = [
            np.column_stack((-1 + c[:, 1] * h, -1 + c[:, 0] * h))
            for c in measure.find_contours(z.numpy(), lev)
        ]
        assert len(curves) == 1
        d = point_to_polyline(res.traces[k].points.numpy(), curves[0], closed=True)
        assert d.max() < 1e-5


def test_open_levels_and_the_stitched_band_polygon() -> None:
    # exp(x^2 + y - 2) = t  <=>  y = c - x^2 with c = ln t + 2: the band between c = 0.2 and
    # c = 0.5 over x in [-1, 1] lies inside the box and has area 2 * 0.3 exactly
    a, b = math.exp(0.2 - 2), math.exp(0.5 - 2)
    x0 = [0.0, 0.35]
    res = fs.preimage(Parabolic(), x0, (a, b), levels=4, bounds=BOX, step=0.02)
    assert not any(t.closed for t in res.traces)
    assert all(
        t.stop_reasons == {"forward": "boundary", "backward": "boundary"} for t in res.traces
    )
    reg = res.region
    assert reg.polygon is not None and len(reg.polygon) == 1
    assert abs(reg.polygon_area - 0.6) < 2e-4
    assert abs(reg.area - 0.6) < 5e-3


def test_paper_driver_matches_the_independent_numpy_driver(net1) -> None:
    y0 = float(net1(torch.tensor([[0.2, 0.2]], dtype=torch.float64)).detach())
    eps = 0.002
    kw = dict(n_iterations=40, delta=0.01, epsilon=eps, delta_exp=1e-3, nst=3)
    ref = preimage_driver(
        load_layers(bundled_networks()["surface_1"]),
        np.array([0.2, 0.2]),
        h_inf=np.array([-1.0, -1.0]),
        h_sup=np.array([1.0, 1.0]),
        **kw,
    )
    res = fs.preimage(
        net1,
        [0.2, 0.2],
        (y0 - eps, y0 + eps),
        bounds=BOX,
        method="paper",
        step=0.01,
        max_steps=40,
        nst=3,
        exp_step=1e-3,
        region=False,
    )
    assert len(res) == 6 and res.sweeps == [0, 0, 0, 1, 1, 1]
    for k, tr in enumerate(res.traces):
        start, back, fwd = ref[k // 3]["levels"][k % 3]
        expect = np.vstack([*reversed(back), start, *fwd])
        np.testing.assert_allclose(tr.points.numpy(), expect, rtol=0, atol=1e-11)
    for s in range(2):
        np.testing.assert_allclose(res.final_points[s].numpy(), ref[s]["final"], atol=1e-11)
    # the last level reached is never traced: the traced levels stop short of it
    lo, hi = res.covered
    finals = sorted(float(v) for v in res.final_outputs[:, 0])
    assert finals[0] < lo and hi < finals[1]
    # every SiMExp sub-step overshoots epsilon / nst
    assert finals[1] - y0 > eps and y0 - finals[0] > eps


def test_paper_mode_region_is_measured_against_the_requested_ends(net1) -> None:
    y0 = float(net1(torch.tensor([[0.2, 0.2]], dtype=torch.float64)).detach())
    res = fs.preimage(
        net1,
        [0.2, 0.2],
        (y0 - 0.002, y0 + 0.002),
        bounds=BOX,
        method="paper",
        step=0.01,
        max_steps=60,
        nst=2,
        exp_step=1e-3,
        resolution=200,
    )
    reg = res.region
    assert reg is not None and reg.polygon is None
    assert (reg.low, reg.high) == pytest.approx(res.covered)
    assert reg.boundary_distance["low"]["level"] == pytest.approx(y0 - 0.002)


def test_vector_outputs_with_levels_along_an_output_segment() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.stack((x[..., 0], x[..., 1] ** 2 + x[..., 2]), -1)

    x0 = [0.1, 0.2, 0.1]
    y0 = np.array([0.1, 0.14])
    d = np.array([0.1, -0.05])
    res = fs.preimage(
        fn,
        x0,
        ((y0 - d).tolist(), (y0 + d).tolist()),
        levels=3,
        bounds=([-1] * 3, [1] * 3),
        step=0.05,
    )
    assert len(res) == 3 and res.region is None
    for k, tr in enumerate(res.traces):
        target = y0 - d + k * d
        assert float((tr.outputs - torch.tensor(target)).abs().max()) < 1e-12
    with pytest.raises(InputError, match="does not contain N"):
        fs.preimage(fn, x0, ([0.0, 0.0], [1.0, 0.5]), bounds=([-1] * 3, [1] * 3))


def test_a_level_equal_to_the_start_output_starts_at_x0(net1) -> None:
    y0 = float(net1(torch.tensor([[0.2, 0.2]], dtype=torch.float64)).detach())
    res = fs.preimage(
        net1, [0.2, 0.2], (y0 - 0.003, y0 + 0.003), levels=3, bounds=BOX, step=0.02, region=False
    )
    assert torch.equal(res.starts[1], torch.tensor([0.2, 0.2], dtype=torch.float64))
    assert res.traces[1].points[res.traces[1].start_index].tolist() == [0.2, 0.2]


def test_unreachable_level_raises_or_is_listed_with_partial(net1) -> None:
    y0 = float(net1(torch.tensor([[0.2, 0.2]], dtype=torch.float64)).detach())
    small = ([-0.3, -0.3], [0.3, 0.3])
    with pytest.raises(TargetNotReachedError, match="closest output reached"):
        fs.preimage(net1, [0.2, 0.2], (y0 - 0.002, 0.5), levels=3, bounds=small, step=0.02)
    res = fs.preimage(
        net1,
        [0.2, 0.2],
        (y0 - 0.002, 0.5),
        levels=3,
        bounds=small,
        step=0.02,
        partial=True,
        region=False,
    )
    assert len(res) == 1 and [u["reason"] for u in res.unreached] == ["boundary", "boundary"]


@pytest.mark.parametrize(
    "interval, kwargs, error, message",
    [
        ((0.2, 0.3), {}, InputError, "does not contain N\\(x0\\)"),
        ((0.16, 0.14), {}, InputError, "empty interval"),
        ((0.14, 0.16), {"bounds": None}, InputError, "needs bounds"),
        ((0.14, 0.16), {"levels": 1}, InputError, "levels must be at least 2"),
        ((0.14, 0.16), {"method": "both"}, InputError, "unknown method"),
        ((0.14,), {}, InputError, "pair"),
        ((0.14, float("inf")), {}, InputError, "finite"),
    ],
)
def test_bad_input(net1, interval, kwargs, error, message) -> None:
    args = {"bounds": BOX, **kwargs}
    with pytest.raises(error, match=message):
        fs.preimage(net1, [0.2, 0.2], interval, **args)


def test_vector_output_in_2d_needs_an_output_map() -> None:
    def two(x: torch.Tensor) -> torch.Tensor:
        return torch.stack((x[..., 0] ** 2 + x[..., 1] ** 2, x[..., 0]), -1)

    with pytest.raises(ModelError, match="output map"):
        fs.preimage(two, [0.2, 0.2], (0.05, 0.1), bounds=BOX)
    res = fs.preimage(
        two, [0.2, 0.2], (0.05, 0.1), bounds=BOX, output="y[0]", levels=2, step=0.05, resolution=100
    )
    assert res.region is not None and res.region.polygon_area == pytest.approx(
        math.pi * 0.05, rel=2e-2
    )


def test_save_writes_points_levels_and_region(net1, tmp_path) -> None:
    y0 = float(net1(torch.tensor([[0.2, 0.2]], dtype=torch.float64)).detach())
    res = fs.preimage(
        net1, [0.2, 0.2], (y0 - 0.003, y0 + 0.003), levels=3, bounds=BOX, step=0.02, resolution=150
    )
    csv_path, json_path = fs.io.save(res, tmp_path / "p.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "x0,x1,y0,level,target,arclength,branch"
    assert len(lines) - 1 == sum(len(t) for t in res.traces)
    meta = json.loads(json_path.read_text())
    assert meta["kind"] == "preimage" and len(meta["levels"]) == 3
    assert meta["region"]["area"] == pytest.approx(res.region.area)
    assert len(meta["path"]) == res.path.shape[0]
    fig = fs.plot.plot(res, model=net1)
    assert fig.axes
