"""Every command that walks can be interrupted and resumed, and ends byte-identical.

The signal is simulated in process: the stop flag that SIGINT/SIGTERM would set fires after a
few steps (the real signal path is covered by the subprocess tests of test_output_files.py).
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from fiberscope.cli import durable
from fiberscope.cli.main import main

BOX = ["--bounds=-1,1"]
COMMANDS = {
    "trace": ["trace", "surface_1", "--at", "0.6,0.1", "--step", "0.05", *BOX],
    "explore": ["explore", "surface_1", "--at", "0.25,0.25", "--to", "0.3", "--step", "0.01"],
    "flip": [
        "explore",
        "binary",
        "--at",
        "0.5,0.9",
        "--flip",
        "--threshold",
        "0.5",
        "--beyond",
        "0.2",
        "--step",
        "0.02",
    ],
    "preimage": [
        "preimage",
        "surface_1",
        "--at",
        "0.2,0.2",
        "--interval",
        "0.142,0.152",
        "--levels",
        "4",
        "--step",
        "0.05",
        "--resolution",
        "32",
        *BOX,
    ],
    "sample": ["sample", "surface_1", "--at", "0.25,0.25", "-n", "20", "--step", "0.05"],
    "walk": [
        "walk",
        "surface_1",
        "--at",
        "0.25,0.25",
        "--samples",
        "12",
        "--chains",
        "2",
        "--step",
        "0.05",
        "--method",
        "uniform",
        "--seed",
        "3",
        *BOX,
    ],
    "walk-corrected": [
        "walk",
        "surface_1",
        "--at",
        "0.6,0.1",
        "--samples",
        "12",
        "--chains",
        "3",
        "--step",
        "0.2",
        "--thin",
        "2",
        *BOX,
    ],
}
#: Result suffix of a command (CSV unless listed); the other files of a result that must match.
SUFFIX = {"walk": ".npz", "walk-corrected": ".npz"}
ALSO = {"walk": (".csv",), "walk-corrected": (".csv",)}


class _SignalAfter(durable.StopFlag):
    """The CLI's stop flag, as if SIGINT arrived on its ``n``-th poll."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls == self.n and self.signum is None:
            self.signum = signal.SIGINT
        return self.signum is not None


@contextlib.contextmanager
def _signal_after(n: int) -> Iterator[durable.StopFlag]:
    yield _SignalAfter(n)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_interrupt_then_resume_gives_the_same_files(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = COMMANDS[name]
    suffix = SUFFIX.get(name, ".csv")
    full = tmp_path / f"full{suffix}"
    assert main([*args, "-o", str(full)]) == 0
    out = tmp_path / f"run{suffix}"
    monkeypatch.setattr(durable, "stop_on_signals", lambda: _signal_after(4))
    code = main([*args, "-o", str(out), "--checkpoint-every", "2"])
    assert code == 130
    assert (tmp_path / f"run{suffix}.ckpt").exists()
    monkeypatch.undo()
    assert main([*args, "-o", str(out), "--resume"]) == 0
    assert out.read_bytes() == full.read_bytes()
    for other in ALSO.get(name, ()):
        assert out.with_suffix(other).read_bytes() == full.with_suffix(other).read_bytes()
    meta_full = json.loads(full.with_suffix(".json").read_text())
    meta_run = json.loads(out.with_suffix(".json").read_text())
    assert meta_run["complete"] is True
    for key in ("points", "drift", "levels", "closest_distance", "residual"):
        assert meta_run.get(key) == meta_full.get(key)
    assert not (tmp_path / f"run{suffix}.ckpt").exists()
    assert not (tmp_path / f"run{suffix}.partial").exists()


MODELS_PY = """
import torch
from torch import nn


def clf():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def sphere(x):
    return (x ** 2).sum(-1, keepdim=True)
"""

#: Commands beyond COMMANDS whose models live in a models.py of the test's folder.
MORE = {
    "confuse": [
        "confuse",
        "{d}/models.py:clf",
        "--at",
        "0.3,0.1",
        "--bounds=-3,3",
        "--step",
        "0.02",
    ],
    "traverse": [
        "traverse",
        "{d}/models.py:sphere",
        "--at",
        "1,0,0",
        "--to",
        "0,3,4",
        "--step",
        "0.3",
    ],
}
SUFFIX |= {"confuse": ".npz", "traverse": ".npz"}


class _SigtermAfter(_SignalAfter):
    """As :class:`_SignalAfter`, with SIGTERM (a job scheduler's stop)."""

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls == self.n and self.signum is None:
            self.signum = signal.SIGTERM
        return self.signum is not None


@pytest.mark.parametrize("name", sorted([*COMMANDS, *MORE]))
def test_sigterm_writes_the_partial_result_marked_incomplete(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "models.py").write_text(MODELS_PY)
    args = [a.format(d=tmp_path) for a in (COMMANDS | MORE)[name]]
    suffix = SUFFIX.get(name, ".csv")
    full = tmp_path / f"full{suffix}"
    assert main([*args, "-o", str(full)]) == 0
    out = tmp_path / f"run{suffix}"

    @contextlib.contextmanager
    def flag() -> Iterator[durable.StopFlag]:
        yield _SigtermAfter(4)

    monkeypatch.setattr(durable, "stop_on_signals", flag)
    capsys.readouterr()
    assert main([*args, "-o", str(out), "--checkpoint-every", "0"]) == 143
    err = capsys.readouterr().err
    assert "interrupted by SIGTERM" in err and "(marked incomplete)" in err and "--resume" in err
    assert out.exists() and (tmp_path / f"run{suffix}.ckpt").exists()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["complete"] is False and meta["interrupted_by"] == "SIGTERM"
    assert out.read_bytes() != full.read_bytes()
    monkeypatch.undo()
    assert main([*args, "-o", str(out), "--resume"]) == 0
    assert out.read_bytes() == full.read_bytes()
    assert json.loads(out.with_suffix(".json").read_text())["complete"] is True
    assert not (tmp_path / f"run{suffix}.ckpt").exists()
