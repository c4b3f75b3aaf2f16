"""A batch of starts gives what its members give one at a time (every verb)."""

from __future__ import annotations

import pytest
import torch

import fiberscope as fs

BOX = ([-1.0, -1.0], [1.0, 1.0])
STARTS = [[0.25, 0.25], [0.6, 0.1], [-0.3, 0.45]]


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["corrected", "paper"])
def test_trace_batch_equals_members(method: str) -> None:
    net = fs.load_model("surface_1")
    kw = {"step": 0.05, "bounds": BOX, "method": method, "max_steps": 80}
    batch = fs.trace(net, STARTS, **kw)
    assert isinstance(batch, list) and len(batch) == len(STARTS)
    for x0, res in zip(STARTS, batch, strict=True):
        one = fs.trace(net, x0, **kw)
        _close(res.points, one.points)
        assert res.stop_reasons == one.stop_reasons and res.closed == one.closed


def test_explore_batch_equals_members() -> None:
    net = fs.load_model("surface_1")
    batch = fs.explore(net, STARTS, target=0.3, step=0.02, bounds=BOX)
    for x0, res in zip(STARTS, batch, strict=True):
        one = fs.explore(net, x0, target=0.3, step=0.02, bounds=BOX)
        _close(res.points, one.points)
        assert res.reached == one.reached


def test_walk_chains_equal_members_and_starts() -> None:
    sphere = lambda x: (x**2).sum(-1, keepdim=True)  # noqa: E731
    x0 = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    batch = fs.walk(sphere, x0, batched=True, samples=20, step=0.3, chains=2, seed=7)
    for s, start in enumerate(x0):
        one = fs.walk(sphere, start, samples=20, step=0.3, chains=2, seed=7)
        # chain seeds depend on (seed, start index, chain): start s of a batch is not start 0
        assert batch[s].seeds != one.seeds or s == 0
    solo = fs.walk(sphere, x0[0], samples=20, step=0.3, chains=2, seed=7)
    _close(batch[0].samples, solo.samples)


def test_preimage_traces_its_levels_as_one_batch() -> None:
    net = fs.load_model("surface_1")
    res = fs.preimage(
        net, [0.2, 0.2], (0.142, 0.152), levels=4, bounds=BOX, step=0.05, region=False
    )
    for lvl, tr in zip(res.levels, res.traces, strict=True):
        one = fs.trace(net, tr.points[tr.start_index], step=0.05, bounds=BOX)
        # the batch traces the exact target level, the single trace N(start): 1e-12 apart
        assert tr.points.shape == one.points.shape
        assert torch.allclose(tr.points, one.points, rtol=0, atol=1e-9)
        assert float((tr.outputs - lvl).abs().max()) <= 1e-9


def _sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


SPHERE_STARTS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.2], [0.5, 0.5, 0.5]]


def test_traverse_batch_equals_members() -> None:
    target = [0.0, 3.0, 4.0]
    batch = fs.traverse(_sphere, SPHERE_STARTS, target, step=0.3, batched=True)
    assert isinstance(batch, list) and len(batch) == len(SPHERE_STARTS)
    for i, (x0, res) in enumerate(zip(SPHERE_STARTS, batch, strict=True)):
        one = fs.traverse(_sphere, x0, target, step=0.3)
        _close(res.points, one.points)
        _close(res.outputs, one.outputs)
        assert res.stop_reason == one.stop_reason == "minimum"
        assert res.options["batch_index"] == i and res.options["x0"] == x0


def test_traverse_batch_member_that_stops_at_once_does_not_stall_the_others() -> None:
    # (0, 1.2, 1.6) is already the point of its sphere nearest the target: it stops at once
    starts = [[1.0, 0.0, 0.0], [0.0, 1.2, 1.6], [0.5, 0.5, 0.5]]
    targets = [[0.0, 3.0, 4.0], [0.0, 3.0, 4.0], [2.0, 0.0, 0.0]]
    box = (0.0, 2.0)
    batch = fs.traverse(_sphere, starts, targets, step=0.2, bounds=box, batched=True)
    assert len(batch[1]) == 1 and batch[1].stop_reason == "minimum"
    assert len(batch[0]) > 5 and len(batch[2]) > 5
    for x0, tgt, res in zip(starts, targets, batch, strict=True):
        one = fs.traverse(_sphere, x0, tgt, step=0.2, bounds=box)
        _close(res.points, one.points)
        assert res.stop_reason == one.stop_reason
        assert res.residual <= 1e-9


def test_traverse_batch_refuses_targets_of_another_count() -> None:
    with pytest.raises(fs.errors.InputError, match=r"or \(3, 3\) \(one per start\)"):
        fs.traverse(_sphere, SPHERE_STARTS, [[0.0, 3.0, 4.0]] * 2, batched=True)


def test_sample_class_batch_equals_members() -> None:
    net = fs.load_model("surface_1")
    kw = {"step": 0.05, "bounds": BOX, "max_steps": 200}
    batch = fs.sample_class(net, STARTS, 20, **kw)
    assert isinstance(batch, list) and len(batch) == len(STARTS)
    for i, (x0, res) in enumerate(zip(STARTS, batch, strict=True)):
        one = fs.sample_class(net, x0, 20, **kw)
        _close(res.points, one.points)
        _close(res.outputs, one.outputs)
        _close(res.trace.points, one.trace.points)
        assert res.trace.stop_reasons == one.trace.stop_reasons
        assert res.closed == one.closed
        assert res.length == pytest.approx(one.length, abs=1e-12)
        assert res.options["batch_index"] == i and res.options["x0"] == x0


def test_sample_class_batch_member_that_stops_early_does_not_stall_the_others() -> None:
    # the class of (0.9, 0.9) leaves the box within a few steps; the others are long loops
    net = fs.load_model("surface_1")
    starts = [[0.25, 0.25], [0.9, 0.9], [0.0, 0.95]]
    kw = {"step": 0.05, "bounds": BOX, "max_steps": 200}
    batch = fs.sample_class(net, starts, 10, **kw, batched=True)
    assert batch[1].trace.stop_reasons == {"forward": "boundary", "backward": "boundary"}
    assert len(batch[1].trace) < 10 < len(batch[0].trace) and len(batch[2].trace) > 100
    assert batch[0].closed and batch[2].closed and not batch[1].closed
    for x0, res in zip(starts, batch, strict=True):
        one = fs.sample_class(net, x0, 10, **kw)
        _close(res.points, one.points)
        assert res.trace.stop_reasons == one.trace.stop_reasons
        assert res.residual <= 1e-12


BINARY_BOX = ([-3.14, -1.0], [3.14, 1.5])


def test_boundary_walk_batch_equals_members() -> None:
    # (0, -0.01499) is next to the boundary: its walk ends after two steps while the two
    # others walk on for twenty more (and their closest-point searches run on alone)
    net = fs.load_model("binary")
    starts = [[0.0, -0.01499], [0.3, 0.2], [-0.5, -0.3]]
    kw = {"threshold": 0.5, "beyond": 0.1, "bounds": BINARY_BOX, "step": 0.05}
    batch = fs.boundary_walk(net, starts, batched=True, **kw)
    assert isinstance(batch, list) and len(batch) == len(starts)
    assert len(batch[0].path) == 3 and len(batch[1].path) > 20 and len(batch[2].path) > 20
    for i, (x0, res) in enumerate(zip(starts, batch, strict=True)):
        one = fs.boundary_walk(net, x0, **kw)
        _close(res.path.points, one.path.points)
        _close(res.path.outputs, one.path.outputs)
        assert res.boundary_index == one.boundary_index
        assert res.path.stop_reason == one.path.stop_reason == "reached"
        assert (res.decision_start, res.decision_flip) == (one.decision_start, one.decision_flip)
        assert res.side == one.side and res.closest_converged == one.closest_converged
        # the closest-point search stops at a first-order minimum (to rtol 1e-10), whose
        # position rounding moves by ~1e-10 (a lone member takes the engine's one-row path);
        # the distance, flat at the minimum, agrees to 1e-12
        assert res.closest_distance == pytest.approx(one.closest_distance, abs=1e-12)
        assert torch.allclose(res.closest_point, one.closest_point, rtol=0, atol=1e-9)
        assert res.options["batch_index"] == i and res.options["x0"] == x0


def test_boundary_walk_batch_default_beyond_is_per_start() -> None:
    x0 = [[0.3, 0.1], [-0.2, 0.3], [0.1, 0.05]]
    batch = fs.boundary_walk(_logistic, x0, threshold=0.5, step=0.05, batched=True)
    for start, res in zip(x0, batch, strict=True):
        one = fs.boundary_walk(_logistic, start, threshold=0.5, step=0.05)
        assert res.beyond == one.beyond == pytest.approx(abs(res.y0 - 0.5), abs=0)
        _close(res.path.points, one.path.points)
        _close(res.closest_point, one.closest_point)
        assert res.side == one.side
    assert [r.side for r in batch] == [1, -1, 1]


def test_boundary_walk_batch_names_the_start_that_falls_short() -> None:
    net = fs.load_model("binary")
    starts = [[0.3, 0.2], [-0.5, -0.3]]  # the second's default flip level is out of reach
    with pytest.raises(fs.errors.TargetNotReachedError, match="start 1 of the batch: cannot"):
        fs.boundary_walk(net, starts, threshold=0.5, bounds=BINARY_BOX, step=0.05, batched=True)


def test_boundary_walk_batch_refuses_starts_that_bind_the_output_differently() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 3)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8]]))
        net[0].bias.zero_()
    starts = [[0.6, 0.1], [-0.3, 0.6]]  # class 0 and class 1
    with pytest.raises(fs.errors.InputError, match="bind the output map differently"):
        fs.boundary_walk(net, starts, output=fs.outputs.ClassMargin(), batched=True)


def _logistic(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor([3.0, -4.0], dtype=x.dtype)
    return torch.sigmoid(x @ w + 0.5).unsqueeze(-1)


def _classifier() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    ).double()


CONFUSE_BOX = ([-3.0, -3.0], [3.0, 3.0])
CONFUSE_STARTS = [[0.3, 0.1], [-1.0, 1.5], [1.2, -0.8]]


def test_confuse_batch_equals_members() -> None:
    # starts of classes 0, 1, 0: one run of the six seeds of class 0, one of class 1's three
    net = _classifier()
    kw = {"bounds": CONFUSE_BOX, "step": 0.05}
    batch = fs.confuse(net, CONFUSE_STARTS, batched=True, **kw)
    assert isinstance(batch, list) and len(batch) == len(CONFUSE_STARTS)
    assert [r.decision_start for r in batch] == [0, 1, 0]
    for i, (x0, res) in enumerate(zip(CONFUSE_STARTS, batch, strict=True)):
        one = fs.confuse(net, x0, **kw)
        _close(res.point, one.point)
        _close(res.path, one.path)
        assert res.distance == pytest.approx(one.distance, abs=1e-12)
        assert res.decision_flip == one.decision_flip == res.decision_flipped
        assert res.boundary_residual <= 1e-12 and res.stop_reason == one.stop_reason
        assert res.options == one.options | {"batch_index": i}


def test_confuse_batch_interrupted_gives_a_partial_per_start() -> None:
    net = _classifier()
    kw = {"bounds": CONFUSE_BOX, "step": 0.05, "batched": True}
    polls = {"n": 0, "stop_after": 0}

    def stop() -> bool:
        polls["n"] += 1
        return 0 < polls["stop_after"] < polls["n"]

    class0 = fs.confuse(net, CONFUSE_STARTS[::2], stop=stop, **kw)  # the first run alone
    polls["stop_after"], polls["n"] = polls["n"] + 5, 0  # a few polls into class 1's run
    full = fs.confuse(net, CONFUSE_STARTS, **kw)
    assert [r.distance for r in class0] == [full[0].distance, full[2].distance]
    with pytest.raises(fs.errors.Interrupted) as info:
        fs.confuse(net, CONFUSE_STARTS, stop=stop, **kw)
    part = info.value.result
    assert isinstance(part, list) and len(part) == 3
    # class 0's run had finished: its starts keep their results; start 1 was interrupted
    assert part[0].complete and part[2].complete and not part[1].complete
    assert part[0].distance == full[0].distance and part[2].distance == full[2].distance
    assert part[1].stop_reason == "interrupted" and part[1].boundary_residual <= 1e-12
    assert part[1].distance >= full[1].distance
    resumed = fs.confuse(net, CONFUSE_STARTS, resume=info.value.snapshot, **kw)
    for a, b in zip(resumed, full, strict=True):
        _close(a.path, b.path)


def test_confuse_batch_toward_per_start_and_shared() -> None:
    net = _classifier()
    starts = [[0.3, 0.1], [-1.0, 1.5]]
    toward = [[[-2.5, 2.5]], [[2.5, -2.5]]]  # one candidate per start, (B, K=1, n)
    batch = fs.confuse(net, starts, toward=toward, rays=0, batched=True, step=0.05)
    for x0, t, res in zip(starts, toward, batch, strict=True):
        one = fs.confuse(net, x0, toward=t, rays=0, step=0.05)
        _close(res.point, one.point)
        assert res.options["toward"] == 1
    flat = fs.confuse(net, starts, toward=[[-2.5, 2.5], [2.5, -2.5]], rays=0, step=0.05)
    assert [r.distance for r in flat] == [r.distance for r in batch]


def test_confuse_batch_refuses_toward_of_another_count() -> None:
    net = _classifier()
    with pytest.raises(fs.errors.InputError, match=r"for a batch of 3 starts .* \(3, K, 2\)"):
        fs.confuse(net, CONFUSE_STARTS, toward=[[-2.5, 2.5], [2.5, -2.5]], batched=True)


def test_confuse_batch_names_the_start_that_finds_no_other_decision() -> None:
    net = _classifier()
    toward = [[-2.5, 2.5], [-1.0, 1.6]]  # the second start's own class
    with pytest.raises(fs.errors.TargetNotReachedError, match="start 1 of the batch: the dec"):
        fs.confuse(net, CONFUSE_STARTS[:2], toward=toward, rays=0, batched=True)
