"""Property tests: on random small MLPs every corrected trace stays on its level."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import fiberscope as fs
from fiberscope.errors import SingularPointError

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "silu": nn.SiLU, "softplus": nn.Softplus}


@st.composite
def mlps(draw):
    n = draw(st.integers(2, 4))
    widths = draw(st.lists(st.integers(n - 1, 8), min_size=1, max_size=3))  # no bottleneck
    act = draw(st.sampled_from(sorted(ACTIVATIONS)))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    sizes = [n, *widths, n - 1]
    for a, b in zip(sizes[:-1], sizes[1:], strict=False):
        lin = nn.Linear(a, b).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen, dtype=torch.float64))
            lin.bias.copy_(torch.randn(b, generator=gen, dtype=torch.float64) * 0.5)
        layers += [lin, ACTIVATIONS[act]()]
    x0 = (torch.rand(n, generator=gen, dtype=torch.float64) - 0.5) * 1.5
    return nn.Sequential(*layers[:-1]), x0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mlps(), st.sampled_from(["both", "forward", "backward"]))
def test_corrected_trace_stays_on_level(case, direction) -> None:
    net, x0 = case
    box = (-1.0, 1.0)
    try:
        res = fs.trace(net, x0, step=0.05, max_steps=150, bounds=box, direction=direction)
    except SingularPointError:
        assume(False)
    pts = res.points
    # on the level at every point, recomputed independently of the tracer
    out = net(pts).detach()
    assert float((out - res.y0).abs().max()) <= 1e-9
    assert res.drift <= 1e-9
    # inside the box
    assert float(pts.abs().max()) <= 1.0 + 1e-12
    # arclength increases along the curve, steps never exceed the cap
    seg = (pts[1:] - pts[:-1]).norm(dim=1)
    assert float(seg.max()) <= 0.05 * 1.5
    assert bool((res.arclength[1:] >= res.arclength[:-1]).all())
    # the stop reasons are true
    for name, reason in res.stop_reasons.items():
        stop = torch.tensor(res.stop_points[name], dtype=torch.float64)
        if reason == "boundary":
            assert float((stop.abs() - 1.0).abs().min()) < 1e-9
        if reason == "closed":
            assert res.closed and float((pts[-1] - pts[0]).norm()) <= 0.05 + 1e-12
    # the tangents stay in ker J: consecutive chords are nearly orthogonal to the gradient(s)
    mid = res.points[res.start_index]
    jac = fs.geometry.jacobian(net, mid)
    if len(res) > 1:
        i = min(res.start_index + 1, len(res) - 1)
        j = i - 1
        chord = pts[i] - pts[j]
        if float(chord.norm()) > 1e-6:
            assert float((jac @ chord).abs().max()) <= 0.2 * float(chord.norm()) * float(
                jac.abs().max() + 1
            )


def test_bottleneck_network_is_singular_everywhere() -> None:
    net = nn.Sequential(nn.Linear(3, 1), nn.Tanh(), nn.Linear(1, 2)).double()
    try:
        fs.trace(net, [0.1, 0.2, 0.3])
    except SingularPointError as exc:
        assert "rank below 2" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a rank-1 bottleneck must be refused")
