"""sample_class(): points on the class (same output to the tolerance), spread evenly by
arclength (not where the tracer's adaptive step put them)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import fiberscope as fs
from analytic_models import Parabolic, Radial
from fiberscope.errors import InputError, ModelError

BOX = ([-1.0, -1.0], [1.0, 1.0])


def test_circle_samples_are_on_the_circle_and_evenly_spaced() -> None:
    n = 40
    s = fs.sample_class(Radial(), [0.25, 0.25], n, step=0.05)
    r = math.sqrt(0.125)
    assert len(s) == n and s.closed
    assert float((s.points.norm(dim=1) - r).abs().max()) < 1e-10  # output residual / |grad N|
    assert s.residual <= 1e-12
    assert torch.equal(s.points[0], torch.tensor([0.25, 0.25], dtype=torch.float64))
    # n chords of the same angle, 2 pi / n
    chord = 2 * r * math.sin(math.pi / n)
    assert float((s.gaps - chord).abs().max()) / chord < 2e-3
    assert abs(s.length - 2 * math.pi * r) / (2 * math.pi * r) < 1e-3
    # they go once around: the polar angles are spread over the whole circle
    ang = torch.atan2(s.points[:, 1], s.points[:, 0])
    assert float(torch.diff(torch.sort(ang).values).max()) < 2 * 2 * math.pi / n


def test_samples_are_spread_where_the_trace_is_not(net2) -> None:
    s = fs.sample_class(net2, [0.25, 0.25], 30, step=0.05, bounds=BOX)
    raw = s.trace.points
    raw_gaps = torch.linalg.vector_norm(raw[1:] - raw[:-1], dim=1)
    assert float(raw_gaps.max() / raw_gaps.min()) > 5  # the tracer's steps vary a lot
    g = s.gaps
    assert float(g.max() / g.min()) < 1.01  # the samples do not
    assert s.residual <= 1e-12
    # an open class: both ends are the box exits of the trace
    assert torch.equal(s.points[0], raw[0]) and torch.equal(s.points[-1], raw[-1])


def test_open_parabola_length_and_spacing() -> None:
    # exp(x^2 + y - 2) = exp(0.25 - 2) at (0, 0.25): y = 0.25 - x^2 for x in [-1, 1]
    s = fs.sample_class(Parabolic(), [0.0, 0.25], 21, step=0.02, bounds=BOX)
    exact = math.sqrt(5) + math.asinh(2) / 2  # arclength of y = c - x^2 over [-1, 1]
    assert abs(s.length - exact) / exact < 1e-4
    assert abs(s.spacing - exact / 20) / (exact / 20) < 1e-4
    y = 0.25 - s.points[:, 0] ** 2
    assert float((s.points[:, 1] - y).abs().max()) < 1e-12
    # the samples are at equal arclength: check against the exact arclength function
    x = s.points[:, 0].numpy()
    sx = torch.tensor(
        [(xx * math.sqrt(1 + 4 * xx * xx) / 2 + math.asinh(2 * xx) / 4) for xx in x.tolist()],
        dtype=torch.float64,
    )
    d = torch.diff(sx).abs()
    assert float((d - exact / 20).abs().max()) / (exact / 20) < 1e-3


def test_output_map_and_errors(tmp_path) -> None:
    def two(x: torch.Tensor) -> torch.Tensor:
        return torch.stack(((x**2).sum(-1), x[..., 0]), -1)

    with pytest.raises(ModelError, match="m = n - 1"):
        fs.sample_class(two, [0.2, 0.1], 10)
    s = fs.sample_class(two, [0.2, 0.1], 10, output=fs.outputs.OutputComponent(0), step=0.05)
    assert s.closed and s.residual <= 1e-12
    with pytest.raises(InputError, match="n must be at least 2"):
        fs.sample_class(Radial(), [0.2, 0.1], 1)
    with pytest.raises(ModelError, match="n-D classes need a different command"):
        fs.sample_class(lambda x: (x**2).sum(-1, keepdim=True), [0.2, 0.1, 0.3], 5)
    csv_path, json_path = fs.io.save(s, tmp_path / "s.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "x0,x1,y0,arclength" and len(lines) == 11
    meta = json.loads(json_path.read_text())
    assert meta["kind"] == "samples" and meta["closed"] is True
    assert meta["parameters"]["output"] == "y[0]" and meta["points"] == 10
    assert fs.plot.plot(s, model=Radial()).axes
