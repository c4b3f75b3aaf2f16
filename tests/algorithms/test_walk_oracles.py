"""Oracles for ``fs.walk`` (issue 9 §5): classes whose measure or shape is known exactly.

Each test would fail on a wrong sampler. The distribution tests take the last sample of many
independent chains (independent draws, so the Kolmogorov-Smirnov test applies as such) after a
burn-in long enough for the chain to forget its start, or start every chain at an exact draw
of the target (then a correct sampler stays exact at every step, and a wrong one drifts away).
Seeds are fixed: every p-value is reproducible, and the thresholds leave a wide margin.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy import stats

import fiberscope as fs
from fiberscope.engine.policies.walk import Uniform

WALK = importlib.import_module("fiberscope.algorithms.walk")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Hundreds of tiny chains: one thread is faster (and steadier on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def wrong_uniform(monkeypatch: pytest.MonkeyPatch, **flags: bool) -> None:
    """Make ``fs.walk(method="uniform")`` run a deliberately wrong variant of its policy.

    The policy is built by :func:`fiberscope.algorithms.walk.walk` exactly as usual (same
    session, engine, seeds), only with ``reverse=False`` (no reverse-projection check) or
    ``metropolis=False`` (every projected proposal accepted).
    """

    class Variant(Uniform):
        def __init__(self, **kw: object) -> None:
            super().__init__(**{**kw, **flags})  # type: ignore[arg-type]

    monkeypatch.setattr(WALK, "Uniform", Variant)


def last_samples(res: fs.WalkResult) -> np.ndarray:
    """The last sample of every chain, flat: ``(chains, n)``."""
    assert all(c == res.samples.shape[1] for c in res.counts)
    return res.samples[:, -1].reshape(res.chains, -1).numpy()


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


# ---------------------------------------------------------------- the sphere, several n
@pytest.mark.parametrize("n", [3, 5, 10])
def test_uniform_samples_the_sphere_uniformly(n: int) -> None:
    """x1/r of the uniform measure on S^(n-1): (x1/r + 1)/2 ~ Beta((n-1)/2, (n-1)/2)."""
    x0 = [1.0] + [0.0] * (n - 1)  # the pole: x1 starts as far from its law as it can
    res = fs.walk(
        sphere,
        x0,
        samples=1,
        chains=200,
        step=0.7 / math.sqrt(n),
        thin=60,
        seed=n,
        method="uniform",
    )
    assert res.residual <= 1e-9
    # on the sphere only failed projections are rejected (the Metropolis-Hastings ratio is 1):
    # the bound only says the step is large enough that some moves fail
    assert 0.3 < res.acceptance < 0.99
    x = last_samples(res)
    u = (x[:, 0] / np.linalg.norm(x, axis=1) + 1) / 2
    law = stats.beta((n - 1) / 2, (n - 1) / 2)
    p = stats.kstest(u, law.cdf).pvalue
    print(f"sphere n={n}: KS p = {p:.3g}")
    assert p > 1e-3
    # the same test has power: chains stopped after a few steps have not left the pole
    short = fs.walk(
        sphere,
        x0,
        samples=1,
        chains=200,
        step=0.7 / math.sqrt(n),
        thin=3,
        seed=n,
        method="uniform",
    )
    xs = last_samples(short)
    assert stats.kstest((xs[:, 0] / np.linalg.norm(xs, axis=1) + 1) / 2, law.cdf).pvalue < 1e-6


# ---------------------------------------------------------------- wrong variants
# On the sphere both wrong variants are exact: by symmetry |v'| = |v| (the Metropolis-Hastings
# ratio is 1) and the reverse projection always returns to x. The standard case where the
# reverse check matters is a surface of varying curvature: an ellipse (a 1-D ellipsoid) with
# sharp ends, where some projected moves into the ends cannot be reversed.
ELLIPSE = (1.0, 0.3)


def ellipse(x: torch.Tensor) -> torch.Tensor:
    a, b = ELLIPSE
    return ((x[..., 0] / a) ** 2 + (x[..., 1] / b) ** 2).unsqueeze(-1)


def ellipse_draws(k: int, seed: int) -> np.ndarray:
    """Exact draws of the arclength measure of the ellipse (rejection on the angle)."""
    a, b = ELLIPSE
    rng = np.random.default_rng(seed)
    out = np.zeros((0, 2))
    while len(out) < k:
        t = rng.uniform(0, 2 * np.pi, 4 * k)
        speed = np.sqrt(a * a * np.sin(t) ** 2 + b * b * np.cos(t) ** 2)
        t = t[rng.uniform(size=t.size) < speed / max(a, b)]
        out = np.vstack([out, np.stack([a * np.cos(t), b * np.sin(t)], 1)])
    return out[:k]


def ellipse_abs_x_cdf(u: np.ndarray) -> np.ndarray:
    """CDF of |x|/a under the arclength measure (numerical quadrature of the speed)."""
    a, b = ELLIPSE
    t = np.linspace(0.0, np.pi / 2, 20001)
    speed = np.sqrt(a * a * np.sin(t) ** 2 + b * b * np.cos(t) ** 2)
    c = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(t))])
    c /= c[-1]
    return 1.0 - np.interp(np.arccos(np.clip(u, -1.0, 1.0)), t, c)


def _ellipse_ks(chains: int, seed: int) -> tuple[float, float]:
    starts = ellipse_draws(chains, seed)
    res = fs.walk(
        ellipse,
        torch.tensor(starts),
        samples=1,
        step=1.2,  # moves longer than the ends' width: where dropping the reverse check shows
        thin=50,
        seed=seed,
        method="uniform",
        batched=True,
    )
    x = np.stack([r.samples[0, -1].numpy() for r in res])
    moved = float(np.linalg.norm(x - starts, axis=1).mean())
    return stats.kstest(np.abs(x[:, 0]) / ELLIPSE[0], ellipse_abs_x_cdf).pvalue, moved


def test_uniform_keeps_the_ellipse_measure_and_no_reverse_check_breaks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p_start = stats.kstest(np.abs(ellipse_draws(500, 1)[:, 0]), ellipse_abs_x_cdf).pvalue
    p_right, moved = _ellipse_ks(500, 1)
    wrong_uniform(monkeypatch, reverse=False)
    p_wrong, moved_wrong = _ellipse_ks(500, 1)
    print(
        f"ellipse: starts p = {p_start:.3g}, uniform p = {p_right:.3g}, "
        f"no reverse check p = {p_wrong:.3g}"
    )
    assert p_start > 1e-3 and p_right > 1e-3
    assert moved > 0.3 and moved_wrong > 0.3  # both chains travel: half the ellipse's width
    assert p_wrong < 1e-5


def vmf_x1_cdf(t: np.ndarray, beta: float) -> np.ndarray:
    """CDF of x1 for the density exp(beta x1) on S^2 (x1 has density prop. to exp(beta t))."""
    return (np.exp(beta * t) - np.exp(-beta)) / (np.exp(beta) - np.exp(-beta))


def vmf_draws(k: int, beta: float, seed: int) -> np.ndarray:
    """Exact draws of exp(beta x1) on S^2 (x1 by inversion, the rest uniform on a circle)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=k)
    w = 1 + np.log(u + (1 - u) * np.exp(-2 * beta)) / beta
    phi = rng.uniform(0, 2 * np.pi, k)
    s = np.sqrt(1 - w * w)
    return np.stack([w, s * np.cos(phi), s * np.sin(phi)], 1)


def test_uniform_follows_a_log_density_and_no_acceptance_step_ignores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    beta = 2.0
    starts = vmf_draws(200, beta, 1)

    def run() -> tuple[float, float]:
        res = fs.walk(
            sphere,
            torch.tensor(starts),
            samples=1,
            step=0.5,
            thin=20,
            seed=1,
            method="uniform",
            log_density=lambda x: beta * x[:, 0],
            batched=True,
        )
        x = np.stack([r.samples[0, -1].numpy() for r in res])
        moved = float(np.linalg.norm(x - starts, axis=1).mean())
        return stats.kstest(x[:, 0], lambda t: vmf_x1_cdf(t, beta)).pvalue, moved

    p_start = stats.kstest(starts[:, 0], lambda t: vmf_x1_cdf(t, beta)).pvalue
    p_right, moved = run()
    wrong_uniform(monkeypatch, metropolis=False)
    p_wrong, _ = run()
    print(
        f"exp(2 x1) on S^2: starts p = {p_start:.3g}, uniform p = {p_right:.3g}, "
        f"no Metropolis-Hastings step p = {p_wrong:.3g}"
    )
    assert p_start > 1e-3 and p_right > 1e-3
    assert moved > 0.5
    assert p_wrong < 1e-6


# ---------------------------------------------------------------- the torus
R_BIG, R_SMALL = 1.0, 0.5


def torus(x: torch.Tensor) -> torch.Tensor:
    rho = torch.sqrt(x[..., 0] ** 2 + x[..., 1] ** 2)
    return ((rho - R_BIG) ** 2 + x[..., 2] ** 2).unsqueeze(-1)


def test_uniform_on_the_torus_has_the_area_density_of_the_angle() -> None:
    """The poloidal angle of the area measure has density (R + r cos t) / (2 pi R)."""
    res = fs.walk(
        torus,
        [R_BIG + R_SMALL, 0.0, 0.0],
        samples=1,
        chains=300,
        step=0.3,
        thin=60,
        seed=2,
        method="uniform",
    )
    x = last_samples(res)
    assert np.abs(torus(torch.tensor(x)).numpy() - R_SMALL**2).max() <= 1e-9
    theta = np.arctan2(x[:, 2], np.hypot(x[:, 0], x[:, 1]) - R_BIG)

    def cdf(t: np.ndarray) -> np.ndarray:
        return (R_BIG * (t + np.pi) + R_SMALL * np.sin(t)) / (2 * np.pi * R_BIG)

    p = stats.kstest(theta, cdf).pvalue
    # the outer half of the tube (cos t > 0) holds 1/2 + r/(pi R) = 0.659 of the area; a
    # sampler blind to the area element (uniform angle) would put half the samples there
    outer = float((np.cos(theta) > 0).mean())
    print(f"torus: KS p = {p:.3g}, outer share {outer:.3f} (area: 0.659, flat angle: 0.5)")
    assert p > 1e-3
    assert abs(outer - (0.5 + R_SMALL / (np.pi * R_BIG))) < 0.08


# ---------------------------------------------------------------- linear maps
@pytest.mark.parametrize("method", ["corrected", "uniform"])
@pytest.mark.parametrize(("n", "m", "seed"), [(5, 2, 0), (6, 3, 1), (8, 2, 2), (7, 3, 3)])
def test_linear_classes_are_exact_and_fully_spanned(n: int, m: int, seed: int, method) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(m, n, generator=gen, dtype=torch.float64)
    x0 = torch.randn(n, generator=gen, dtype=torch.float64)
    res = fs.walk(lambda x: x @ a.T, x0, samples=40, chains=2, step=0.5, seed=seed, method=method)
    pts, _ = res.flat()
    assert len(pts) == 80
    assert (pts @ a.T - a @ x0).abs().max() <= 1e-12
    centred = (pts - pts.mean(0)).numpy()
    assert np.linalg.matrix_rank(centred, tol=1e-8 * np.abs(centred).max()) == n - m


# ---------------------------------------------------------------- a 1-D class: walk = trace
def test_a_one_dimensional_walk_stays_on_the_traced_curve(net1) -> None:
    tr = fs.trace(net1, [0.25, 0.25], step=0.005)
    assert tr.closed
    curve = tr.points.numpy()
    a, b = curve, np.roll(curve, -1, axis=0)  # the closed polyline's segments
    for method in ("corrected", "uniform"):
        res = fs.walk(net1, [0.25, 0.25], samples=60, chains=2, step=0.1, seed=4, method=method)
        pts = res.flat()[0].numpy()
        d = b - a
        t = np.clip(((pts[:, None] - a) * d).sum(-1) / (d * d).sum(-1), 0.0, 1.0)
        dist = np.linalg.norm(pts[:, None] - (a + t[..., None] * d), axis=-1).min(1)
        # chords of a 0.005 step on a curve of radius ~0.35 are within 1e-5 of the curve
        assert dist.max() < 2e-5, (method, dist.max())
        spread = np.linalg.norm(pts - pts.mean(0), axis=1).max()
        assert spread > 0.1  # the walk went somewhere along the curve


# ---------------------------------------------------------------- batching
@pytest.mark.parametrize("method", ["corrected", "uniform"])
def test_chains_together_equal_chains_alone(monkeypatch: pytest.MonkeyPatch, method) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)
    ).double()
    x0 = [0.1, -0.2, 0.3, 0.05]
    kw = dict(samples=15, step=0.3, seed=11, method=method, bounds=(-1.0, 1.0))
    together = fs.walk(net, x0, chains=4, **kw)
    real_seed = WALK.chain_seed
    for c in range(4):
        monkeypatch.setattr(WALK, "chain_seed", lambda seed, _i, c=c: real_seed(seed, c))
        alone = fs.walk(net, x0, chains=1, **kw)
        assert alone.seeds == [together.seeds[c]]
        assert alone.counts[0] == together.counts[c]
        k = alone.counts[0]
        torch.testing.assert_close(
            alone.samples[0, :k], together.samples[c, :k], rtol=0, atol=1e-12
        )
        assert alone.path_length[0] == pytest.approx(together.path_length[c], abs=1e-12)
        assert {r: v[0] for r, v in alone.rejections.items()} == {
            r: v[c] for r, v in together.rejections.items()
        }
