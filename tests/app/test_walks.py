"""The walk adapter: the app's fallback walk on exact classes, and the switch to the library."""

from __future__ import annotations

import types
from typing import Any

import pytest
import torch

import fiberscope
from app_server import tiny_cnn
from fiberscope.app import walks
from fiberscope.errors import InputError, ModelError

A = torch.tensor([[1.0, 2.0, -1.0, 0.5, 0.0], [0.0, 1.0, 1.0, -2.0, 1.0]], dtype=torch.float64)


def affine(x: torch.Tensor) -> torch.Tensor:
    return x @ A.T + 0.25


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


@pytest.fixture(autouse=True)
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the app's own walk unless they install a library verb."""
    monkeypatch.delattr(fiberscope, "walk", raising=False)
    monkeypatch.delattr(fiberscope, "traverse", raising=False)


def test_walk_on_an_affine_class_stays_on_it_and_spans_the_kernel() -> None:
    x0 = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0], dtype=torch.float64)
    view = walks.walk(affine, x0, samples=30, step=0.3, chains=2, seed=1)
    assert view.engine == "app fallback" and view.samples.shape == (2, 30, 5)
    flat = view.samples.reshape(-1, 5)
    assert float((flat @ A.T - x0 @ A.T).abs().max()) <= 1e-12
    # the displacements span the 3-dimensional kernel of A, not a line
    sv = torch.linalg.svdvals(flat - x0)
    assert int((sv > 1e-6 * sv[0]).sum()) == 3
    assert view.residual <= 1e-12


def test_walk_is_reproducible_by_seed_and_chains_differ() -> None:
    x0 = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    a = walks.walk(sphere, x0, samples=10, step=0.1, chains=2, seed=7)
    b = walks.walk(sphere, x0, samples=10, step=0.1, chains=2, seed=7)
    assert torch.equal(a.samples, b.samples)
    assert not torch.allclose(a.samples[0], a.samples[1])
    radii = a.samples.reshape(-1, 3).norm(dim=1)
    assert float((radii - 1.0).abs().max()) <= 1e-10


def test_walk_stays_in_the_box_with_coordinates_on_its_faces() -> None:
    # an image-like start: many pixels exactly on the faces 0 and 1 of the box
    gen = torch.Generator().manual_seed(0)
    x0 = (torch.rand(1, 28, 28, generator=gen, dtype=torch.float64) > 0.7).to(torch.float64)
    x0[0, 10:18, 10:18] = 0.5
    net = tiny_cnn().double()
    view = walks.walk(net, x0, samples=8, step=1.0, chains=1, bounds=(0.0, 1.0), seed=0)
    assert float(view.samples.min()) >= 0.0 and float(view.samples.max()) <= 1.0
    with torch.no_grad():
        ys = net(view.samples.reshape(-1, 1, 28, 28))
        y0 = net(x0.unsqueeze(0))
    assert float((ys - y0).abs().max()) <= 1e-9
    assert float((view.samples[0, -1] - x0).norm()) > 0.5


def test_traverse_decreases_the_distance_and_stops_at_a_closest_point() -> None:
    x0 = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0], dtype=torch.float64)
    target = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    view = walks.traverse(affine, x0, target, step=0.2, max_steps=500)
    assert view.kind == "traverse" and view.samples.shape[0] == 1
    path = view.samples[0]
    dist = (path - target).norm(dim=1)
    assert bool((dist[1:] <= dist[:-1] + 1e-12).all())
    # the class is an affine plane: the closest point is the projection of the target on it
    pinv = torch.linalg.pinv(A)
    closest = target - pinv @ (A @ (target - x0))
    assert float((path[-1] - closest).norm()) <= 1e-5
    assert view.info["stop_reason"].startswith("closest point")
    assert float((path @ A.T - x0 @ A.T).abs().max()) <= 1e-12


def test_stop_cancels_between_steps() -> None:
    x0 = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    calls = iter(range(10**6))
    with pytest.raises(walks.WalkCancelled):
        walks.walk(sphere, x0, samples=1000, step=0.1, stop=lambda: next(calls) >= 5)


def test_refusals() -> None:
    x0 = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    with pytest.raises(InputError, match="samples must be a whole number from 1"):
        walks.walk(sphere, x0, samples=0, step=0.1)
    with pytest.raises(InputError, match="step must be a positive number"):
        walks.walk(sphere, x0, samples=3, step=float("nan"))
    with pytest.raises(InputError, match="the start is outside the box"):
        walks.walk(sphere, x0, samples=3, step=0.1, bounds=(0.7, 1.0))
    with pytest.raises(InputError, match="the target has shape"):
        walks.traverse(sphere, x0, torch.zeros(4), step=0.1)
    with pytest.raises(ModelError, match="its classes are points"):
        walks.walk(lambda x: torch.cat([x, x], -1), x0, samples=3, step=0.1)


class _FakeResult:
    def __init__(self, samples: torch.Tensor, outputs: torch.Tensor) -> None:
        self.samples = samples
        self.outputs = outputs

    def summary(self) -> dict[str, Any]:
        return {"kind": "walk", "residual": 0.0, "accepted": 12}


def test_the_library_walk_is_used_once_it_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one switch: fs.walk(model, x0, samples=, step=, chains=, bounds=, seed=)."""
    seen: dict[str, Any] = {}

    def fake_walk(model, x0, *, samples, step, chains=1, bounds=None, seed=None, progress=None,
                  stop=None):  # fmt: skip
        seen.update(samples=samples, step=step, chains=chains, bounds=bounds, seed=seed)
        seen["hooks"] = (progress is not None, stop is not None)
        pts = x0.expand(chains, samples, *x0.shape).clone()
        return _FakeResult(pts, sphere(pts.reshape(-1, 3)).reshape(chains, samples, 1))

    monkeypatch.setattr(fiberscope, "walk", fake_walk, raising=False)
    x0 = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    view = walks.walk(
        sphere, x0, samples=4, step=0.2, chains=3, bounds=(-1.0, 1.0), seed=5,
        progress=lambda d, t: None, stop=lambda: False,
    )  # fmt: skip
    assert seen == {
        "samples": 4, "step": 0.2, "chains": 3, "bounds": (-1.0, 1.0), "seed": 5,
        "hooks": (True, True),
    }  # fmt: skip
    assert view.engine == "fiberscope.walk" and view.samples.shape == (3, 4, 3)
    assert view.info["accepted"] == 12 and view.residual <= 1e-15
    monkeypatch.setattr(walks, "USE_LIBRARY", False)
    assert walks.walk(sphere, x0, samples=2, step=0.1).engine == "app fallback"


def test_a_library_verb_without_stop_is_cancelled_from_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake_traverse(model, x0, target, *, step, max_steps, bounds=None, progress=None):
        for k in range(max_steps):
            progress(k + 1, max_steps)
        return types.SimpleNamespace(path=x0.unsqueeze(0))

    monkeypatch.setattr(fiberscope, "traverse", fake_traverse, raising=False)
    x0 = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    target = torch.zeros(3, dtype=torch.float64)
    view = walks.traverse(sphere, x0, target, step=0.1, max_steps=3)
    assert view.engine == "fiberscope.traverse" and view.samples.shape == (1, 1, 3)
    assert view.info["distance_to_target"] == pytest.approx(1.0)
    with pytest.raises(walks.WalkCancelled):
        walks.traverse(sphere, x0, target, step=0.1, max_steps=50, stop=lambda: True)
