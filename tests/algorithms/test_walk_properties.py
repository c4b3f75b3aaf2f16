"""Property tests (hypothesis) of ``fs.walk``: random MLPs, shapes, boxes, methods and steps.

No saved sample of the corrected or the uniform walk leaves the class (checked by evaluating
the network again, not by trusting the result) or the box; the authors' walk ("paper", which
clamps) stays in the box too, and its reported residual is the true one.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import fiberscope as fs
from fiberscope.errors import SingularPointError

ACTS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def mlps(draw):
    """A random tanh/sigmoid MLP R^n -> R^m (n = 3..6, m = 1..n-2), a start, a box around it."""
    n = draw(st.integers(3, 6))
    m = draw(st.integers(1, n - 2))
    widths = draw(st.lists(st.integers(m, 8), min_size=1, max_size=2))
    act = ACTS[draw(st.sampled_from(sorted(ACTS)))]
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    sizes = [n, *widths, m]
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        lin = nn.Linear(a, b).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen, dtype=torch.float64))
            lin.bias.copy_(0.5 * torch.randn(b, generator=gen, dtype=torch.float64))
        layers += [lin, act()]
    x0 = (torch.rand(n, generator=gen, dtype=torch.float64) - 0.5) * 1.2
    lo = x0 - 0.02 - torch.rand(n, generator=gen, dtype=torch.float64)
    hi = x0 + 0.02 + torch.rand(n, generator=gen, dtype=torch.float64)
    return nn.Sequential(*layers[:-1]).eval(), x0, (lo, hi)


@settings(max_examples=20, **SETTINGS)
@given(
    mlps(),
    st.sampled_from(["corrected", "uniform", "paper"]),
    st.sampled_from([0.05, 0.3, 1.0]),
    st.integers(1, 3),
    st.integers(0, 2**40),
)
def test_no_saved_sample_leaves_the_class_or_the_box(case, method, frac, thin, seed) -> None:
    net, x0, (lo, hi) = case
    step = frac * float((hi - lo).min())  # up to the narrowest side of the box
    try:
        res = fs.walk(
            net,
            x0,
            samples=12,
            chains=2,
            step=step,
            thin=thin,
            method=method,
            bounds=(lo, hi),
            seed=seed,
        )
    except SingularPointError:
        assume(False)
        raise
    pts, outs = res.flat()
    assert pts.shape[1:] == x0.shape and len(pts) == sum(res.counts)
    assert bool(((pts >= lo) & (pts <= hi)).all())
    with torch.no_grad():
        y = net(pts)
        y0 = net(x0)
    torch.testing.assert_close(outs, y, rtol=0, atol=1e-13)  # the outputs saved are true
    drift = float((y - y0).abs().max()) if len(pts) else 0.0
    assert res.residual == (0.0 if not len(pts) else float((outs - res.y0).abs().max()))
    if method != "paper":
        assert drift <= 1e-9, (method, drift)
        # every chain took its steps, unless it was cut off (reported, never silent)
        for count, reason in zip(res.counts, res.stop_reasons, strict=True):
            assert count == 12 or reason in ("singular", "nonfinite"), (count, reason)
