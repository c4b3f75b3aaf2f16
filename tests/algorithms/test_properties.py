"""Property tests (hypothesis): invariants of traces over random networks, starts and boxes.

Complements ``test_trace_properties.py`` (fixed box, corrected method) with random boxes,
paper mode, exact loops, singular stops, output selections, and interrupt/resume.
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import fiberscope as fs
from fiberscope.errors import SingularPointError, TraceInterrupted

ACTS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "silu": nn.SiLU, "softplus": nn.Softplus}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def networks(draw, outputs: int | None = None, inputs: int | None = None):
    """A random MLP R^n -> R^(n-1) (or R^n -> R^outputs), its start, and a box around it."""
    n = inputs if inputs is not None else draw(st.integers(2, 4))
    m = n - 1 if outputs is None else outputs
    widths = draw(st.lists(st.integers(max(m, n - 1), 7), min_size=1, max_size=2))
    act = draw(st.sampled_from(sorted(ACTS)))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    sizes = [n, *widths, m]
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        lin = nn.Linear(a, b).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen, dtype=torch.float64))
            lin.bias.copy_(0.5 * torch.randn(b, generator=gen, dtype=torch.float64))
        layers += [lin, ACTS[act]()]
    x0 = (torch.rand(n, generator=gen, dtype=torch.float64) - 0.5) * 1.2
    lo = x0 - 0.05 - torch.rand(n, generator=gen, dtype=torch.float64)
    hi = x0 + 0.05 + torch.rand(n, generator=gen, dtype=torch.float64)
    return nn.Sequential(*layers[:-1]).eval(), x0, (lo, hi)


def _trace_or_skip(*args, **kwargs) -> fs.TraceResult:
    try:
        return fs.trace(*args, **kwargs)
    except SingularPointError:
        assume(False)
        raise


def _on_face(p: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> bool:
    return bool(torch.minimum((p - lo).abs(), (p - hi).abs()).min() <= 1e-9)


@settings(max_examples=25, **SETTINGS)
@given(networks(), st.sampled_from([0.02, 0.05, 0.1]), st.integers(5, 120))
def test_corrected_invariants_in_random_boxes(case, step, max_steps) -> None:
    net, x0, (lo, hi) = case
    res = _trace_or_skip(net, x0, step=step, max_steps=max_steps, bounds=(lo, hi))
    pts = res.points
    # drift bound, recomputed independently of the tracer
    with torch.no_grad():
        drift = float((net(pts) - res.y0).abs().max())
    assert drift <= 1e-9 and res.drift <= 1e-9
    # every point inside the box
    assert bool(((pts >= lo - 1e-12) & (pts <= hi + 1e-12)).all())
    # steps never exceed twice the cap (predictor h, corrector at most h more)
    if len(res) > 1:
        assert float((pts[1:] - pts[:-1]).norm(dim=1).max()) <= 2 * step + 1e-12
    # the reported stop reasons are true
    for name, reason in res.stop_reasons.items():
        stop = torch.tensor(res.stop_points[name], dtype=torch.float64)
        branch = res.points[res.branch == (1 if name == "forward" else -1)]
        assert reason in ("closed", "boundary", "singular", "max_steps")
        if reason == "boundary":
            assert _on_face(stop, lo, hi)
            with torch.no_grad():
                assert float((net(stop) - res.y0).abs().max()) <= 1e-9
        elif reason == "max_steps":
            assert branch.shape[0] == max_steps
        elif reason == "closed":
            assert res.closed and len(res) >= 3
            assert float((pts[-1] - pts[0]).norm()) <= 2 * step + 1e-12
        else:
            assert res.messages[name]
    assert res.complete


class Circle(nn.Module):
    """|x - c|^2: the class through x0 is the circle of radius |x0 - c| around c."""

    def __init__(self, centre: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("c", centre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.c) ** 2).sum(-1, keepdim=True)


@settings(max_examples=12, **SETTINGS)
@given(
    st.floats(-2, 2),
    st.floats(-2, 2),
    st.floats(0.2, 1.5),
    st.floats(0, 2 * math.pi),
    st.sampled_from([0.02, 0.04, 0.08]),  # 0.01 on r = 1.5 is ~940 steps a loop: slow, no news
)
def test_closed_loops_close_on_exact_circles(cx, cy, r, angle, step) -> None:
    c = torch.tensor([cx, cy], dtype=torch.float64)
    x0 = c + r * torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
    res = fs.trace(Circle(c), x0, step=step, max_steps=5000)
    assert res.closed and res.stop_reasons == {"forward": "closed"}
    radii = (res.points - c).norm(dim=1)
    assert float((radii - r).abs().max()) <= 1e-9
    # the polygon is inscribed: its length is a little under 2 pi r
    assert 2 * math.pi * r * (1 - step**2 / r**2) <= res.length <= 2 * math.pi * r + 1e-9
    assert float((res.points[-1] - res.points[0]).norm()) <= 2 * step


class Saddle(nn.Module):
    """x * y: the level 0 is the two axes, crossing at the singular origin."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :1] * x[..., 1:2]


@settings(max_examples=15, **SETTINGS)
@given(st.floats(0.2, 0.9), st.sampled_from([0.01, 0.02, 0.05]), st.booleans())
def test_singular_stops_are_at_the_crossing(a, step, on_x_axis) -> None:
    x0 = [a, 0.0] if on_x_axis else [0.0, a]
    res = fs.trace(Saddle(), x0, step=step, max_steps=2000, bounds=(-1, 1))
    reasons = res.stop_reasons
    assert sorted(reasons.values()) == ["boundary", "singular"]
    name = next(k for k, v in reasons.items() if v == "singular")
    stop = torch.tensor(res.stop_points[name], dtype=torch.float64)
    assert float(stop.norm()) <= 2 * step  # at the origin, where both axes cross
    other = next(k for k in reasons if k != name)
    assert _on_face(torch.tensor(res.stop_points[other], dtype=torch.float64), -1, 1)


@settings(max_examples=20, **SETTINGS)
@given(networks(), st.sampled_from(["clamp", "stop"]), st.integers(1, 150))
def test_paper_mode_invariants(case, variant, max_steps) -> None:
    net, x0, (lo, hi) = case
    step = 0.02
    res = fs.trace(
        net, x0, step=step, max_steps=max_steps, bounds=(lo, hi), method="paper", paper_box=variant
    )
    pts = res.points
    assert bool(((pts >= lo) & (pts <= hi)).all())
    seg = (pts[1:] - pts[:-1]).norm(dim=1)
    assert float(seg.max()) <= step * (1 + 1e-12)  # delta steps, shortened only by the clamp
    for name, reason in res.stop_reasons.items():
        branch = pts[res.branch == (1 if name == "forward" else -1)]
        if variant == "clamp":
            assert reason == "max_steps" and branch.shape[0] == max_steps
        elif reason == "boundary":
            assert _on_face(torch.tensor(res.stop_points[name], dtype=torch.float64), lo, hi)
        else:
            assert reason == "max_steps" and branch.shape[0] == max_steps
    assert min(res.energy.values()) >= -1e-12  # delta v^T g v >= 0 up to round-off


@settings(max_examples=20, **SETTINGS)
@given(networks(outputs=4, inputs=2), st.integers(0, 3), st.integers(1, 3))
def test_output_selection_keeps_the_selected_value(case, i, shift) -> None:
    net, x0, (lo, hi) = case
    j = (i + shift) % 4
    spec = f"logit-diff {i} {j}"
    res = _trace_or_skip(net, x0, step=0.05, max_steps=80, bounds=(lo, hi), output=spec)
    with torch.no_grad():
        raw = net(res.points)
    diff = raw[:, i] - raw[:, j]
    assert float((diff - diff[0]).abs().max()) <= 1e-9


@settings(max_examples=25, **SETTINGS)
@given(networks(), st.integers(0, 400), st.sampled_from(["corrected", "paper"]))
def test_interrupt_and_resume_is_exact(case, cut, method) -> None:
    net, x0, (lo, hi) = case
    kw = dict(step=0.03, max_steps=100, bounds=(lo, hi), method=method)
    ref = _trace_or_skip(net, x0, **kw)
    calls = iter(range(10**9))
    try:
        res = fs.trace(net, x0, stop=lambda: next(calls) >= cut, **kw)
    except TraceInterrupted as exc:
        partial = exc.result
        assert not partial.complete
        # what was saved is a piece of the final answer
        n = partial.points.shape[0]
        assert n <= len(ref)
        res = fs.trace(net, x0, resume=exc.snapshot, **kw)
    assert torch.equal(res.points, ref.points)
    assert torch.equal(res.outputs, ref.outputs)
    assert res.stop_reasons == ref.stop_reasons
    assert res.stats.counters() == ref.stats.counters()


class NanLeft(nn.Module):
    """Circles exp(|x|^2 - 2), but NaN for x < 0: a model with a hole in its domain."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.exp((x**2).sum(-1, keepdim=True) - 2.0)
        return torch.where(x[..., :1] < 0, torch.full_like(y, float("nan")), y)


@settings(max_examples=10, **SETTINGS)
@given(st.floats(0.1, 0.6), st.floats(-0.6, 0.6), st.sampled_from(["corrected", "paper"]))
def test_a_nan_region_stops_the_trace_honestly(a, b, method) -> None:
    res = fs.trace(NanLeft(), [a, b], step=0.01, max_steps=2000, method=method)
    assert sorted(res.stop_reasons.values()) == ["nonfinite", "nonfinite"]
    assert all("NaN or inf" in m for m in res.messages.values())
    assert bool(torch.isfinite(res.points).all()) and bool(torch.isfinite(res.outputs).all())
    assert float(res.points[:, 0].min()) >= 0.0  # nothing recorded inside the hole
    if method == "corrected":
        assert res.drift <= 1e-9
