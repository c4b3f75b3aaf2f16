"""Every verb can be interrupted and continued bit for bit (in memory and through files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import fiberscope as fs
from fiberscope.errors import CheckpointError, Interrupted
from fiberscope.io.checkpoint import CheckpointWriter, load_checkpoint

BOX = ([-1.0, -1.0], [1.0, 1.0])


class StopAfter:
    """A ``stop=`` flag that fires on its ``n``-th poll."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls == self.n


def _net1() -> Any:
    return fs.load_model("surface_1")


def _binary() -> Any:
    return fs.load_model("binary")


CASES: dict[str, tuple[Callable[[], Any], Callable[..., Any], dict[str, Any]]] = {
    "trace": (_net1, fs.trace, {"x0": [0.25, 0.25], "step": 0.05}),
    "trace-open": (_net1, fs.trace, {"x0": [0.6, 0.1], "step": 0.05, "bounds": BOX}),
    "trace-paper": (
        _net1,
        fs.trace,
        {"x0": [0.25, 0.25], "step": 0.0125, "max_steps": 60, "method": "paper"},
    ),
    "trace-batch": (
        _net1,
        fs.trace,
        {"x0": [[0.25, 0.25], [0.4, -0.1]], "step": 0.05, "bounds": BOX},
    ),
    "explore": (_net1, fs.explore, {"x0": [0.25, 0.25], "target": 0.3, "step": 0.02}),
    "explore-paper": (
        _net1,
        fs.explore,
        {"x0": [0.25, 0.25], "epsilon": 0.02, "step": 2e-3, "method": "paper"},
    ),
    "preimage": (
        _net1,
        fs.preimage,
        {
            "x0": [0.2, 0.2],
            "interval": (0.142, 0.152),
            "levels": 4,
            "bounds": BOX,
            "step": 0.05,
            "region": False,
        },
    ),
    "preimage-paper": (
        _net1,
        fs.preimage,
        {
            "x0": [0.2, 0.2],
            "interval": (0.142, 0.152),
            "bounds": BOX,
            "step": 0.02,
            "max_steps": 40,
            "nst": 4,
            "method": "paper",
            "region": False,
        },
    ),
    "boundary": (
        _binary,
        fs.boundary_walk,
        {"x0": [0.5, 0.9], "threshold": 0.5, "beyond": 0.2, "step": 0.02},
    ),
    "sample": (_net1, fs.sample_class, {"x0": [0.25, 0.25], "n": 20, "step": 0.05}),
    "boundary-batch": (
        _binary,
        fs.boundary_walk,
        {"x0": [[0.5, 0.9], [0.3, 0.2]], "threshold": 0.5, "beyond": 0.2, "step": 0.02},
    ),
    "sample-batch": (
        _net1,
        fs.sample_class,
        {"x0": [[0.25, 0.25], [0.4, -0.1]], "n": 10, "step": 0.1, "bounds": BOX},
    ),
    "traverse-batch": (
        lambda: _sphere,
        fs.traverse,
        {
            "x0": [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5]],
            "target": [[0.0, 3.0, 4.0], [2.0, 0.0, 0.0]],
            "step": 0.3,
            "batched": True,
        },
    ),
}


def _sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


def _points(res: Any) -> list[torch.Tensor]:
    """Every tensor of a result that must be reproduced exactly."""
    if isinstance(res, list):
        return [t for r in res for t in _points(r)]
    if isinstance(res, fs.PreimageResult):
        return [res.path, res.starts, *[t.points for t in res.traces]]
    if isinstance(res, fs.BoundaryWalkResult):
        return [res.path.points, res.closest_point]
    return [res.points]


def _run(name: str, **extra: Any) -> Any:
    model, verb, kwargs = CASES[name]
    kw = dict(kwargs)
    x0 = kw.pop("x0")
    return verb(model(), x0, **kw, **extra)


@pytest.mark.parametrize("name", sorted(CASES))
def test_interrupt_and_resume_in_memory_is_exact(name: str) -> None:
    full = _run(name)
    stops = 0
    snapshot = None
    while True:
        try:
            res = _run(name, stop=StopAfter(7), resume=snapshot)
            break
        except Interrupted as exc:
            stops += 1
            snapshot = exc.snapshot
            assert stops < 500
    assert stops >= 1
    for a, b in zip(_points(full), _points(res), strict=True):
        assert a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize(
    "name", ["trace", "preimage", "boundary", "boundary-batch", "explore-paper"]
)
def test_interrupt_and_resume_through_checkpoint_files(name: str, tmp_path: Path) -> None:
    full = _run(name)
    out = tmp_path / "r.csv"
    writer = CheckpointWriter(out)
    with pytest.raises(Interrupted) as info:
        _run(name, stop=StopAfter(9), checkpoint=writer, checkpoint_every=3)
    writer.save(info.value.snapshot)
    loaded = load_checkpoint(out)
    res = _run(name, resume=loaded.snapshot, checkpoint=CheckpointWriter.continuing(out, loaded))
    for a, b in zip(_points(full), _points(res), strict=True):
        assert torch.equal(a, b)


def test_partial_trace_result_is_marked_incomplete() -> None:
    with pytest.raises(Interrupted) as info:
        fs.trace(_net1(), [0.25, 0.25], step=0.02, stop=StopAfter(5))
    part = info.value.result
    assert part is not None and not part.complete
    assert "interrupted" in part.stop_reasons.values()


def test_resume_with_other_options_or_model_is_refused() -> None:
    with pytest.raises(Interrupted) as info:
        fs.trace(_net1(), [0.25, 0.25], step=0.02, stop=StopAfter(5))
    snap = info.value.snapshot
    with pytest.raises(CheckpointError, match="step"):
        fs.trace(_net1(), [0.25, 0.25], step=0.03, resume=snap)
    with pytest.raises(CheckpointError, match="same model"):
        fs.trace(fs.load_model("surface_2"), [0.25, 0.25], step=0.02, resume=snap)
    with pytest.raises(CheckpointError, match="trace run, not explore"):
        fs.explore(_net1(), [0.25, 0.25], target=0.2, step=0.02, resume=snap)


def test_edited_checkpoint_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    writer = CheckpointWriter(out)
    with pytest.raises(Interrupted) as info:
        fs.trace(_net1(), [0.25, 0.25], step=0.02, stop=StopAfter(9), checkpoint=writer)
    writer.save(info.value.snapshot)
    ckpt = tmp_path / "t.csv.ckpt"
    data = bytearray(ckpt.read_bytes())
    # change one digit of the JSON state (still valid JSON, still valid safetensors)
    at = data.index(b'\\"steps\\": ') + len(b'\\"steps\\": ')
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(out)
