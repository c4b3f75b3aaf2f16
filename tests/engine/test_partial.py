"""Every verb, interrupted by ``stop=``, raises ``fs.Interrupted`` carrying its partial result.

The partial result is marked ``complete=False`` (also in the JSON sidecar ``fiberscope.io``
writes) and agrees with the uninterrupted run's: the points are a prefix of its points (for
``sample_class``: the trace is a prefix of each branch and the samples lie on the class).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import fiberscope as fs
from fiberscope.errors import Interrupted, TraceInterrupted

BOX = ([-1.0, -1.0], [1.0, 1.0])


class StopAfter:
    """A ``stop=`` flag that fires on its ``n``-th poll."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls == self.n


class Count:
    """A ``stop=`` flag that never fires and counts its polls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return False


def _interrupted(verb: Any, *args: Any, after: int, **kwargs: Any) -> Any:
    with pytest.raises(Interrupted) as info:
        verb(*args, stop=StopAfter(after), **kwargs)
    assert info.value.snapshot is not None
    return info.value.result


def _prefix(part: torch.Tensor, full: torch.Tensor) -> bool:
    return 0 < part.shape[0] <= full.shape[0] and torch.equal(part, full[: part.shape[0]])


def _sidecar_complete(result: Any, tmp_path: Path, name: str) -> bool:
    files = fs.io.save(result, tmp_path / name, force=True)
    meta = json.loads(Path([f for f in files if str(f).endswith(".json")][0]).read_text())
    return meta["complete"]


def _branches(tr: Any) -> tuple[torch.Tensor, torch.Tensor]:
    s = tr.start_index
    return tr.points[s:], tr.points[: s + 1].flip(0)


def test_trace(tmp_path: Path) -> None:
    net = fs.load_model("surface_1")
    full = fs.trace(net, [0.25, 0.25], step=0.05)
    part = _interrupted(fs.trace, net, [0.25, 0.25], step=0.05, after=6)
    assert part.complete is False and "interrupted" in part.stop_reasons.values()
    assert _prefix(_branches(part)[0], _branches(full)[0])
    assert _sidecar_complete(part, tmp_path, "t.csv") is False
    assert _sidecar_complete(full, tmp_path, "full.csv") is True


def test_explore(tmp_path: Path) -> None:
    net = fs.load_model("surface_1")
    full = fs.explore(net, [0.25, 0.25], target=0.3, step=0.02)
    part = _interrupted(fs.explore, net, [0.25, 0.25], target=0.3, step=0.02, after=4)
    assert part.complete is False and not part.reached
    assert _prefix(part.points, full.points) and len(part) < len(full)
    assert _sidecar_complete(part, tmp_path, "e.csv") is False


@pytest.mark.parametrize("method", ["corrected", "paper"])
def test_preimage(method: str, tmp_path: Path) -> None:
    net = fs.load_model("surface_1")
    kw: dict[str, Any] = {"bounds": BOX, "region": False}
    if method == "corrected":
        kw |= {"levels": 4, "step": 0.05}
    else:
        kw |= {"step": 0.02, "max_steps": 40, "nst": 4, "method": "paper"}
    polls = Count()
    full = fs.preimage(net, [0.2, 0.2], (0.142, 0.152), stop=polls, **kw)
    # while walking to the levels: the path so far, no level traced yet
    early = _interrupted(fs.preimage, net, [0.2, 0.2], (0.142, 0.152), after=2, **kw)
    assert early.complete is False and len(early) == 0 and early.path.shape[0] >= 2
    assert _sidecar_complete(early, tmp_path, "early.csv") is False
    # while tracing the levels: every level, each traced part a prefix of the full trace's
    late = _interrupted(fs.preimage, net, [0.2, 0.2], (0.142, 0.152), after=polls.calls - 5, **kw)
    assert late.complete is False and len(late) == len(full)
    assert torch.equal(late.levels, full.levels) and torch.equal(late.path, full.path)
    for got, want in zip(late.traces, full.traces, strict=True):
        assert got.complete is False
        assert _prefix(_branches(got)[0], _branches(want)[0])
    assert sum(len(t) for t in late.traces) < sum(len(t) for t in full.traces)
    assert _sidecar_complete(late, tmp_path, "late.csv") is False


def test_boundary_walk(tmp_path: Path) -> None:
    net = fs.load_model("binary")
    kw = {"threshold": 0.5, "beyond": 0.2, "step": 0.02}
    polls = Count()
    full = fs.boundary_walk(net, [0.5, 0.9], stop=polls, **kw)
    # before the boundary: the path so far, no boundary point yet
    early = _interrupted(fs.boundary_walk, net, [0.5, 0.9], after=3, **kw)
    assert early.complete is False and early.boundary_index is None
    assert early.closest_point is None and early.decision_flip is None
    assert _prefix(early.path.points, full.path.points) and len(early.path) == 3
    assert early.summary()["boundary_point"] is None
    assert _sidecar_complete(early, tmp_path, "early.csv") is False
    fig = fs.plot.plot(early, model=net)  # drawn without the points it does not know yet
    assert fig.get_suptitle().startswith("interrupted")
    # past the boundary: its point is known, the path still a prefix
    for after in range(full.boundary_index + 2, polls.calls):
        mid = _interrupted(fs.boundary_walk, net, [0.5, 0.9], after=after, **kw)
        if mid.boundary_index is not None:
            break
    assert mid.complete is False and mid.boundary_index == full.boundary_index
    assert torch.equal(mid.boundary_point, full.boundary_point)
    assert _prefix(mid.path.points, full.path.points) and len(mid.path) < len(full.path)
    assert mid.closest_distance >= full.closest_distance - 1e-12
    # in the closest-point search: the whole path, the search's point so far
    late = _interrupted(fs.boundary_walk, net, [0.5, 0.9], after=polls.calls - 2, **kw)
    assert late.complete is False and not late.closest_converged
    assert torch.equal(late.path.points, full.path.points)
    assert late.decision_flip == full.decision_flip
    assert full.closest_distance <= late.closest_distance <= full.boundary_distance
    assert _sidecar_complete(late, tmp_path, "late.csv") is False


def test_boundary_walk_batch() -> None:
    net = fs.load_model("binary")
    x0 = [[0.5, 0.9], [0.3, 0.2]]
    kw = {"threshold": 0.5, "beyond": 0.2, "step": 0.02}
    full = fs.boundary_walk(net, x0, **kw)
    part = _interrupted(fs.boundary_walk, net, x0, after=5, **kw)
    assert isinstance(part, list) and len(part) == 2
    for got, want in zip(part, full, strict=True):
        assert got.complete is False and _prefix(got.path.points, want.path.points)


@pytest.mark.parametrize("closed", [True, False])
def test_sample_class(closed: bool, tmp_path: Path) -> None:
    net = fs.load_model("surface_1")
    x0, kw = ([0.25, 0.25], {"n": 20}) if closed else ([0.6, 0.1], {"n": 10, "bounds": BOX})
    full = fs.sample_class(net, x0, step=0.05, **kw)
    part = _interrupted(fs.sample_class, net, x0, step=0.05, after=6, **kw)
    assert part.complete is False and part.trace.complete is False and len(part) == kw["n"]
    for got, want in zip(_branches(part.trace), _branches(full.trace), strict=True):
        assert _prefix(got, want)
    assert 0 < part.length < full.length and not part.closed
    assert part.residual <= 1e-9  # the samples lie on the class
    assert torch.equal(part.points[0], part.trace.points[0])
    assert _sidecar_complete(part, tmp_path, "s.csv") is False
    # the partial result's projections do not leak into the snapshot: resuming it gives the
    # uninterrupted run's counters (a bug: they were counted twice)
    with pytest.raises(Interrupted) as info:
        fs.sample_class(net, x0, step=0.05, stop=StopAfter(6), **kw)
    resumed = fs.sample_class(net, x0, step=0.05, resume=info.value.snapshot, **kw)
    assert resumed.stats.counters() == full.stats.counters()
    # interrupted before the first step: the start is all that is known
    first = _interrupted(fs.sample_class, net, x0, step=0.05, after=1, **kw)
    assert first.complete is False and first.length == 0.0
    assert torch.equal(first.points, first.trace.points[:1].expand(kw["n"], -1))


def test_sample_class_batch() -> None:
    net = fs.load_model("surface_1")
    x0 = [[0.25, 0.25], [0.4, -0.1]]
    part = _interrupted(fs.sample_class, net, x0, n=10, step=0.1, bounds=BOX, after=5)
    assert isinstance(part, list) and all(not p.complete for p in part)


def _sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


def test_walk(tmp_path: Path) -> None:
    kw = {"samples": 40, "step": 0.2, "seed": 3}
    full = fs.walk(_sphere, [1.0, 0.0, 0.0], **kw)
    part = _interrupted(fs.walk, _sphere, [1.0, 0.0, 0.0], after=10, **kw)
    assert part.complete is False and 0 < len(part) < len(full)
    k = part.counts[0]
    assert torch.equal(part.samples[0, :k], full.samples[0, :k])
    assert _sidecar_complete(part, tmp_path, "w.npz") is False


def test_traverse(tmp_path: Path) -> None:
    full = fs.traverse(_sphere, [1.0, 0.0, 0.0], [0.0, 3.0, 4.0], step=0.3)
    part = _interrupted(fs.traverse, _sphere, [1.0, 0.0, 0.0], [0.0, 3.0, 4.0], step=0.3, after=4)
    assert part.complete is False and _prefix(part.points, full.points) and len(part) < len(full)
    assert _sidecar_complete(part, tmp_path, "v.npz") is False


def test_confuse(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    ).double()
    kw = {"bounds": ([-3.0, -3.0], [3.0, 3.0]), "step": 0.02}
    full = fs.confuse(net, [0.3, 0.1], **kw)
    part = _interrupted(fs.confuse, net, [0.3, 0.1], after=5, **kw)
    assert part.complete is False and part.stop_reason == "interrupted"
    # several descents run together (rays and segment seeds): the partial path is the one
    # nearest so far, not necessarily the start of the full run's best descent
    assert 0 < len(part) and torch.equal(part.path[-1], part.point)
    assert part.stats.steps < full.stats.steps
    assert part.boundary_residual <= 1e-12  # where the descent had got to is on the boundary
    assert part.distance > full.distance
    assert part.decision_start == full.decision_start
    assert _sidecar_complete(part, tmp_path, "c.npz") is False


def test_old_name_is_the_same_exception() -> None:
    assert TraceInterrupted is fs.Interrupted is Interrupted
