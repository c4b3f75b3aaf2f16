"""What the buttons run, without a server: results, files, and the switch to the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import fiberscope
import fiberscope.io
from app_server import tiny_cnn
from fiberscope.app import views
from fiberscope.app.catalog import ModelEntry, make_entry
from fiberscope.app.tasks import Run, RunContext
from fiberscope.errors import InputError


def context(tmp_path: Path) -> RunContext:
    return RunContext(Run(id="t-1", kind="x", model="m", label="test", folder=tmp_path))


def cnn_entry() -> ModelEntry:
    return ModelEntry(
        name="cnn", source="cnn", model=tiny_cnn().double(), input_shape=(1, 28, 28),
        n_outputs=10, kind="image", bounds=(0.0, 1.0), image=(1, 28, 28),
    )  # fmt: skip


def test_band_start_falls_back_to_a_grid_point_inside_the_band() -> None:
    entry = make_entry("surface_1", name="surface_1")
    # the middle of this drag is at the bottom of the bowl, below the interval
    start, y = views.band_start(entry, 0.20, 0.21, [0.0, 0.0])
    assert 0.20 <= y <= 0.21
    assert y == pytest.approx(float(entry.evaluate(torch.tensor(start, dtype=torch.float64))[0]))
    with pytest.raises(InputError, match="no point of the box has an output in"):
        views.band_start(entry, 5.0, 6.0, None)


def test_walk_files_from_the_app_fallback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delattr(fiberscope, "walk", raising=False)
    ctx = context(tmp_path)
    x0 = torch.zeros(1, 28, 28, dtype=torch.float64)
    x0[0, 8:20, 12:16] = 0.8
    out = views.walk_work(cnn_entry(), x0, samples=3, chains=2, step=0.5)(ctx)
    assert out["engine"] == "app fallback" and out["residual"] <= 1e-9
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "walk.gif", "walk.json", "walk.npz", "walk_grid.png",
    ]  # fmt: skip
    meta = json.loads((tmp_path / "walk.json").read_text())
    assert meta["engine"] == "app fallback" and meta["chains"] == 2 and meta["samples"] == 3
    with np.load(tmp_path / "walk.npz", allow_pickle=False) as data:
        assert data["samples"].shape == (2, 3, 1, 28, 28) and data["outputs"].shape == (2, 3, 10)


def test_walk_files_from_the_library_once_it_has_walk_and_save(tmp_path: Path, monkeypatch) -> None:
    class Result:
        def __init__(self, samples: torch.Tensor) -> None:
            self.samples = samples

    def fake_walk(
        model: Any,
        x0: torch.Tensor,
        *,
        samples: int,
        step: float,
        chains: int = 1,
        bounds: Any = None,
        seed: Any = None,
        progress: Any = None,
        stop: Any = None,
    ):
        return Result(x0.expand(chains, samples, *x0.shape).clone())  # fmt: skip

    saved: list[Path] = []

    def fake_save(result: Any, path: Path, *, force: bool, extra: dict) -> None:
        assert isinstance(result, Result) and force is False and extra["start"] == "digit"
        np.savez(path, samples=result.samples.numpy())
        path.with_suffix(".json").write_text(json.dumps(extra))
        saved.append(path)

    monkeypatch.setattr(fiberscope, "walk", fake_walk, raising=False)
    monkeypatch.setattr(fiberscope.io, "save", fake_save, raising=False)
    ctx = context(tmp_path)
    x0 = torch.full((1, 28, 28), 0.5, dtype=torch.float64)
    out = views.walk_work(cnn_entry(), x0, samples=2, chains=1, start_label="digit")(ctx)
    assert out["engine"] == "fiberscope.walk" and saved == [tmp_path / "walk.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "walk.gif", "walk.json", "walk.npz", "walk_grid.png",
    ]  # fmt: skip


def test_small_vector_inputs_get_their_coordinates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delattr(fiberscope, "traverse", raising=False)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    entry = ModelEntry(
        name="nd", source="nd", model=net.double(), input_shape=(4,), n_outputs=2, kind="nd",
        bounds=None,
    )  # fmt: skip
    x0 = torch.tensor([0.1, 0.2, -0.3, 0.4], dtype=torch.float64)
    target = torch.ones(4, dtype=torch.float64)
    out = views.walk_work(entry, x0, target=target, step=0.1)(context(tmp_path))
    assert out["kind"] == "traverse" and out["x0"] == x0.tolist()
    coords = torch.tensor(out["coordinates"][0], dtype=torch.float64)
    with torch.no_grad():
        assert float((net(coords) - net(x0)).abs().max()) <= 1e-9
    dist = out["distance_to_target"][0]
    assert dist[-1] < dist[0] and out["image"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traverse.json", "traverse.npz"]
