"""What the buttons run, without a server: the library's results, their numbers and files."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import fiberscope as fs
from app_server import tiny_cnn
from fiberscope.app import images, views
from fiberscope.app.catalog import ModelEntry, make_entry
from fiberscope.app.tasks import NOTHING_KEPT, Run, RunCancelled, RunContext
from fiberscope.errors import InputError
from fiberscope.io import load_walk

A = torch.tensor([[1.0, 2.0, -1.0, 0.5, 0.0], [0.0, 1.0, 1.0, -2.0, 1.0]], dtype=torch.float64)
#: A smooth image model whose classes are affine: tanh of 10 random pixel sums.
PIX = torch.randn(10, 784, generator=torch.Generator().manual_seed(0), dtype=torch.float64) / 28


def affine(x: torch.Tensor) -> torch.Tensor:
    return x @ A.T + 0.25


def pixel_sums(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x.reshape(*x.shape[:-3], 784) @ PIX.T)


def context(tmp_path: Path) -> RunContext:
    return RunContext(Run(id="t-1", kind="x", model="m", label="test", folder=tmp_path))


def nd_entry(model: Any = affine, n: int = 5, m: int = 2) -> ModelEntry:
    return ModelEntry(
        name="nd", source="nd", model=model, input_shape=(n,), n_outputs=m, kind="nd",
        bounds=None,
    )  # fmt: skip


def image_entry(model: Any) -> ModelEntry:
    return ModelEntry(
        name="img", source="img", model=model, input_shape=(1, 28, 28), n_outputs=10,
        kind="image", bounds=(0.0, 1.0), image=(1, 28, 28),
    )  # fmt: skip


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_band_start_falls_back_to_a_grid_point_inside_the_band() -> None:
    entry = make_entry("surface_1", name="surface_1")
    # the middle of this drag is at the bottom of the bowl, below the interval
    start, y = views.band_start(entry, 0.20, 0.21, [0.0, 0.0])
    assert 0.20 <= y <= 0.21
    assert y == pytest.approx(float(entry.evaluate(torch.tensor(start, dtype=torch.float64))[0]))
    with pytest.raises(InputError, match="no point of the box has an output in"):
        views.band_start(entry, 5.0, 6.0, None)


def test_a_walk_is_fs_walk_with_its_own_numbers_and_files(tmp_path: Path) -> None:
    x0 = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0], dtype=torch.float64)
    ctx = context(tmp_path)
    out = views.walk_work(nd_entry(), x0, samples=12, chains=2, step=0.3, seed=4)(ctx)
    # the same call to the library gives the same samples and numbers: the app adds nothing
    ref = fs.walk(affine, x0, samples=12, chains=2, step=0.3, seed=4)
    assert out["kind"] == "walk" and out["method"] == "corrected" and out["complete"] is True
    assert out["counts"] == ref.counts == [12, 12]
    assert torch.equal(torch.tensor(out["coordinates"], dtype=torch.float64), ref.samples)
    numbers = out["numbers"]
    assert numbers["residual"] == ref.residual == out["residual"] and ref.residual <= 1e-12
    for key in ("acceptance", "accepted", "rejections", "rank_changes", "path_length"):
        assert numbers[key] == json.loads(json.dumps(ref.summary()[key])), key
    assert numbers["seeds"] == [str(v) for v in ref.seeds]  # exact in the page (63-bit)
    assert numbers["stop_reasons"] == ["max_steps", "max_steps"]
    # the samples are on the class and span its 3-dimensional kernel
    flat = ref.samples.reshape(-1, 5)
    assert float((flat @ A.T - x0 @ A.T).abs().max()) <= 1e-12
    sv = torch.linalg.svdvals(flat - x0)
    assert int((sv > 1e-6 * sv[0]).sum()) == 3
    assert out["distance_from_start"][1][5] == pytest.approx(float((ref.samples[1, 5] - x0).norm()))
    # the files are the library's (fiberscope.io.save), and the result is kept for the frames
    assert files(tmp_path) == ["walk.csv", "walk.json", "walk.npz"]
    back = load_walk(tmp_path / "walk.npz")
    assert torch.equal(back.samples, ref.samples) and back.counts == ref.counts
    meta = json.loads((tmp_path / "walk.json").read_text())
    assert meta["kind"] == "walk" and meta["model"] == "nd" and meta["app"] == "fiberscope app"
    assert isinstance(ctx._run.data["result"], fs.WalkResult)


def test_the_page_can_ask_for_the_uniform_sampler(tmp_path: Path) -> None:
    x0 = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0], dtype=torch.float64)
    out = views.walk_work(nd_entry(), x0, samples=6, step=0.3, method="uniform")(context(tmp_path))
    assert out["method"] == "uniform"
    assert set(out["numbers"]["rejections"]) == {"projection", "metropolis", "reverse", "box"}
    with pytest.raises(InputError, match="unknown walk method 'paper'; the page offers corrected"):
        views.walk_work(nd_entry(), x0, method="paper")


def test_a_traversal_is_fs_traverse_and_ends_at_the_closest_point(tmp_path: Path) -> None:
    x0 = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0], dtype=torch.float64)
    target = torch.ones(5, dtype=torch.float64)
    out = views.walk_work(nd_entry(), x0, target=target, step=0.2, max_steps=200)(context(tmp_path))
    assert out["kind"] == "traverse" and out["chains"] == 1 and out["x0"] == x0.tolist()
    dist = out["distance_to_target"][0]
    assert all(b <= a + 1e-12 for a, b in zip(dist, dist[1:], strict=False))
    # the class is an affine plane: the closest point is the target's projection on it
    closest = target - torch.linalg.pinv(A) @ (A @ (target - x0))
    end = torch.tensor(out["coordinates"][0][-1], dtype=torch.float64)
    assert float((end - closest).norm()) <= 1e-6
    numbers = out["numbers"]
    assert numbers["stop_reason"] == "minimum" and numbers["kkt"] <= 1e-6
    assert numbers["end_distance"] == pytest.approx(dist[-1]) and out["message"]
    assert files(tmp_path) == ["traverse.csv", "traverse.json", "traverse.npz"]
    meta = json.loads((tmp_path / "traverse.json").read_text())
    assert meta["kind"] == "traverse" and meta["stop_reason"] == "minimum"


def stopping(ctx: RunContext, after: int) -> RunContext:
    """``ctx`` whose stop flag goes up at its ``after``-th poll (as Cancel would)."""
    polls = iter(range(10**9))
    ctx.stop = lambda: next(polls) >= after  # type: ignore[method-assign]
    return ctx


def test_cancel_keeps_the_partial_walk_and_says_so(tmp_path: Path) -> None:
    x0 = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0], dtype=torch.float64)
    ctx = stopping(context(tmp_path), 8)
    work = views.walk_work(nd_entry(), x0, samples=500, chains=2, step=0.3)
    with pytest.raises(RunCancelled) as err:
        work(ctx)
    partial = err.value.result
    assert partial is not None and partial["complete"] is False
    kept = sum(partial["counts"])
    assert 0 < kept < 1000
    assert err.value.message.startswith(f"cancelled: {kept} of 1000 samples kept")
    assert partial["residual"] <= 1e-12
    assert json.loads((tmp_path / "walk.json").read_text())["complete"] is False
    assert load_walk(tmp_path / "walk.npz").complete is False


def test_cancel_before_the_first_step_keeps_nothing(tmp_path: Path) -> None:
    x0 = torch.tensor([0.3, -0.2, 0.1, 0.4, 0.0], dtype=torch.float64)
    ctx = stopping(context(tmp_path), 0)
    with pytest.raises(RunCancelled) as err:
        views.walk_work(nd_entry(), x0, target=torch.ones(5), step=0.2)(ctx)
    assert err.value.result is None and err.value.message == NOTHING_KEPT
    assert files(tmp_path) == []


def test_image_walks_get_a_grid_a_gif_and_frames(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    start = images.digit(6)  # a 3, with most pixels on the faces 0 and 1 of the box
    out = views.walk_work(image_entry(pixel_sums), start, samples=3, chains=2, step=1.0)(ctx)
    assert out["counts"] == [3, 3] and out["residual"] <= 1e-12 and "coordinates" not in out
    assert files(tmp_path) == ["walk.gif", "walk.json", "walk.npz", "walk_grid.png"]
    res = ctx._run.data["result"]
    assert float(res.samples.min()) >= 0.0 and float(res.samples.max()) <= 1.0
    assert min(out["distance_from_start"][0][-1], out["distance_from_start"][1][-1]) > 0.1
    assert Image.open(tmp_path / "walk.gif").n_frames == 3
    entry = image_entry(pixel_sums)
    png = views.frame(entry, res, 1, 2, False)
    expected = images.to_uint8(res.samples[1, 2], (1, 28, 28), 0.0, 1.0)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), expected)
    start_png = views.frame(entry, res, 0, None, False)
    assert start_png == images.digit_png(6)
    with pytest.raises(InputError, match="no sample 3 in chain 1: the chains have 3, 3 samples"):
        views.frame(entry, res, 1, 3, False)


def test_chains_that_stopped_early_hold_their_last_sample_in_the_gif(tmp_path: Path) -> None:
    samples = torch.full((2, 3, 1, 28, 28), math.nan, dtype=torch.float64)
    samples[0] = torch.linspace(0.1, 0.3, 3, dtype=torch.float64).reshape(3, 1, 1, 1)
    samples[1, 0] = 0.7
    res = fs.WalkResult(
        samples=samples, outputs=torch.zeros(2, 3, 1, dtype=torch.float64), counts=[3, 1],
        x0=torch.full((1, 28, 28), 0.5, dtype=torch.float64), y0=torch.zeros(1), residual=0.0,
        accepted=[3, 1], rejections={"step": [0, 0]}, path_length=[1.0, 0.1],
        rank_changes=[0, 0], seeds=[1, 2], stop_reasons=["max_steps", "singular"],
        method="corrected", options={}, complete=False,
    )  # fmt: skip
    ctx = context(tmp_path)
    out = views.publish(image_entry(pixel_sums), res, ctx, {"model": "m"})
    assert out["counts"] == [3, 1] and len(out["outputs"][1]) == 1
    gif = Image.open(tmp_path / "walk.gif")
    gif.seek(2)
    last = np.asarray(gif.convert("L"))
    # chain 2 (right) shows its only sample, 0.7 -> 178, in the last frame
    assert abs(int(last[last.shape[0] // 2, 3 * last.shape[1] // 4]) - 178) <= 2


def test_small_vector_inputs_get_their_coordinates(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    x0 = torch.tensor([0.1, 0.2, -0.3, 0.4], dtype=torch.float64)
    target = torch.ones(4, dtype=torch.float64)
    out = views.walk_work(nd_entry(net.double(), 4, 2), x0, target=target, step=0.1)(
        context(tmp_path)
    )
    assert out["kind"] == "traverse" and out["x0"] == x0.tolist()
    coords = torch.tensor(out["coordinates"][0], dtype=torch.float64)
    with torch.no_grad():
        assert float((net(coords) - net(x0)).abs().max()) <= 1e-9
    dist = out["distance_to_target"][0]
    assert dist[-1] < dist[0] and out["image"] is None


# ----------------------------------------------------------- starts on the box faces
# A digit has ~570 pixels at 0: the engine holds the faces a step pushes against (this failed
# before: steps rejected down to ~1e-6, fs.traverse stopped at once as a 'minimum').
def test_a_walk_from_a_test_digit_leaves_the_start(tmp_path: Path) -> None:
    entry = image_entry(tiny_cnn().double())
    out = views.walk_work(entry, images.digit(6), samples=1, chains=1)(context(tmp_path))
    assert out["distance_from_start"][0][-1] > 0.1


def test_a_traversal_from_a_test_digit_gets_closer_to_the_target(tmp_path: Path) -> None:
    entry = image_entry(tiny_cnn().double())
    work = views.walk_work(entry, images.digit(6), target=images.digit(16), max_steps=4)
    dist = work(context(tmp_path))["distance_to_target"][0]
    assert dist[-1] < dist[0] - 0.5


class Polls:
    """A ``stop=`` flag that never fires and counts its polls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return False


def on_class(entry: ModelEntry, points: Any, level: float) -> float:
    """Largest ``|N(p) - level|`` over ``points``."""
    return max(
        abs(float(entry.evaluate(torch.tensor(p, dtype=torch.float64))[0]) - level) for p in points
    )


def test_cancel_keeps_the_partial_trace_and_says_so(tmp_path: Path) -> None:
    entry = make_entry("surface_1", name="surface_1")
    ctx = stopping(context(tmp_path), 6)
    with pytest.raises(RunCancelled) as err:
        views.point_work(entry, [0.25, 0.25], step=0.05)(ctx)
    partial = err.value.result
    assert partial is not None and partial["trace"]["complete"] is False
    n = partial["trace"]["n_points"]
    assert 1 < n and "interrupted" in partial["trace"]["stop_reasons"].values()
    assert err.value.message.startswith(f"cancelled: {n} points kept; the partial trace")
    assert on_class(entry, partial["trace"]["points"], partial["y0"]) <= 1e-9
    assert sorted(ctx._run.files) == ["trace.csv", "trace.json"]
    assert json.loads((tmp_path / "trace.json").read_text())["complete"] is False


def test_cancel_keeps_the_partial_band_and_says_so(tmp_path: Path) -> None:
    entry = make_entry("surface_1", name="surface_1")
    kw: dict[str, Any] = {"a": 0.142, "b": 0.152, "levels": 4, "step": 0.05, "resolution": 40}
    (tmp_path / "full").mkdir()
    (tmp_path / "part").mkdir()
    polls, ctx = Polls(), context(tmp_path / "full")
    ctx.stop = polls  # type: ignore[method-assign]
    full = views.preimage_work(entry, **kw)(ctx)
    assert full["complete"] is True
    ctx = stopping(context(tmp_path / "part"), polls.calls - 5)  # while tracing the levels
    with pytest.raises(RunCancelled) as err:
        views.preimage_work(entry, **kw)(ctx)
    partial = err.value.result
    assert partial is not None and partial["complete"] is False and "region" not in partial
    assert len(partial["traces"]) == len(full["traces"]) == 4
    assert err.value.message.startswith("cancelled: 4 levels kept, each partly traced")
    for t, level in zip(partial["traces"], partial["levels"], strict=True):
        assert t["complete"] is False
        assert on_class(entry, t["points"], level) <= 1e-9
    assert sorted(ctx._run.files) == ["preimage.csv", "preimage.json"]
    assert json.loads((tmp_path / "part" / "preimage.json").read_text())["complete"] is False


def test_cancel_keeps_the_partial_boundary_walk_and_says_so(tmp_path: Path) -> None:
    entry = make_entry("binary", name="binary")
    x0 = [0.5, 0.9]
    lo, hi = entry.bounds
    polls = Polls()  # the class's own trace, as the click traces it
    fs.trace(
        entry.model, x0, step=0.02, max_steps=20_000, bounds=(lo, hi), output=entry.output,
        stop=polls,
    )  # fmt: skip
    ctx = stopping(context(tmp_path), polls.calls + 1 + 4)  # a few steps toward it
    with pytest.raises(RunCancelled) as err:
        views.point_work(entry, x0, step=0.02, threshold=0.5)(ctx)
    partial = err.value.result
    assert partial is not None and partial["trace"]["complete"] is True
    walked = partial["boundary"]
    assert walked["complete"] is False and walked["boundary_index"] is None
    steps = len(walked["path"]) - 1
    assert walked["closest_point"] is None and 2 <= steps <= 4
    assert err.value.message.startswith(
        f"cancelled during the walk to the boundary ({steps} steps kept)"
    )
    assert on_class(entry, partial["trace"]["points"], partial["y0"]) <= 1e-9
    assert sorted(ctx._run.files) == [
        "boundary_walk.csv", "boundary_walk.json", "trace.csv", "trace.json",
    ]  # fmt: skip
    assert json.loads((tmp_path / "boundary_walk.json").read_text())["complete"] is False
    assert json.loads((tmp_path / "trace.json").read_text())["complete"] is True
