"""Output files of every command: planned and checked before any work, locked while a run owns
them, written only as regular files, never lost to a full disk or a failing plot
(issue 13 §4-§5, issue 8 items 4 and 9)."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fiberscope.cli.main import main

S1 = ["surface_1", "--at", "0.25,0.25"]
COMMANDS = {
    "trace": ["trace", *S1],
    "explore": ["explore", *S1, "--to", "0.2"],
    "preimage": [
        "preimage",
        "surface_1",
        "--at",
        "0.2,0.2",
        "--interval",
        "0.1416094864,0.1516017306",
        "--bounds=-1,1",
        "--levels",
        "3",
        "--resolution",
        "60",
    ],
    "sample": ["sample", *S1, "-n", "5"],
}
FRAGILE = """
import torch

def fragile(x):
    # fine near the class through (0.25, 0.25); raises on the corners of the plot's grid
    if bool((x.abs() > 0.9).any()):
        raise RuntimeError("outside the training range")
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)
"""


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


# ---------------------------------------------------------------- two outputs, one file
@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_json_result_would_be_its_own_sidecar(verb: str, tmp_path: Path, capsys) -> None:
    code, err = _run([*COMMANDS[verb], "-o", str(tmp_path / "t.json")], capsys)
    assert code == 2
    assert "sidecar would be the same file" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verb", sorted(COMMANDS))
@pytest.mark.parametrize("same", ["t.csv", "t.json", "./t.csv"])
def test_plot_on_the_result_or_the_sidecar(
    verb: str, same: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run([*COMMANDS[verb], "-o", "t.csv", "--plot", same], capsys)
    assert code == 2
    assert "--plot" in _one_line(err) and "is the same file as the" in err
    assert list(tmp_path.iterdir()) == []


def test_symlinked_plot_is_the_same_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "link.png").symlink_to(tmp_path / "t.csv")
    args = [*COMMANDS["trace"], "-o", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "link.png")]
    code, err = _run(args, capsys)
    assert code == 2 and "same file" in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png"]


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_output_over_the_model_file(verb: str, tmp_path: Path, capsys) -> None:
    import fiberscope.models.registry as reg

    model = tmp_path / "net.csv"
    model.write_bytes(reg.resolve_path("surface_1").read_bytes())
    before = model.read_bytes()
    args = [verb, str(model), *COMMANDS[verb][2:], "-o", str(tmp_path / "net.csv"), "--force"]
    code, err = _run(args, capsys)
    assert code == 2 and "would overwrite the model file" in _one_line(err)
    assert model.read_bytes() == before and sorted(tmp_path.iterdir()) == [model]


def test_output_over_the_arch_file(tmp_path: Path, capsys) -> None:
    arch = tmp_path / "arch.py"
    arch.write_text("def Net():\n    raise RuntimeError('never imported')\n")
    args = [*COMMANDS["trace"], "--arch", f"{arch}:Net", "-o", str(tmp_path / "x.csv")]
    code, err = _run([*args, "--plot", str(arch), "--force"], capsys)
    assert code == 2 and "would overwrite the --arch file" in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arch.py"]


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("verb", ["trace", "explore"])
def test_empty_and_too_long_names(verb: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run([*COMMANDS[verb], "-o", ""], capsys)
    assert code == 2 and "-o/--out is empty" in _one_line(err)
    code, err = _run([*COMMANDS[verb], "-o", "a" * 300 + ".csv"], capsys)
    assert code == 2 and "is 304 bytes long; this file system allows at most" in _one_line(err)
    code, err = _run([*COMMANDS[verb], "-o", "t.csv", "--plot", ""], capsys)
    assert code == 2 and "--plot is empty" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_a_name_whose_checkpoint_would_be_too_long(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _run([*COMMANDS["trace"], "-o", "c" * 250], capsys)
    assert code == 2
    assert "(its checkpoint stream): the file name" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("verb", ["trace", "sample"])
def test_a_240_character_name_is_accepted(verb: str, tmp_path: Path, capsys, monkeypatch) -> None:
    """The temporary names built from it used to exceed the 255-byte limit."""
    monkeypatch.chdir(tmp_path)
    name = "n" * 236 + ".csv"
    code, err = _run([*COMMANDS[verb], "-o", name, "--plot", "p" * 236 + ".png"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [name, "n" * 236 + ".json", "p" * 236 + ".png"]
    )


def test_non_ascii_name_under_an_ascii_locale_is_refused_first(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    code, err = _run([*COMMANDS["trace"], "-o", str(tmp_path / "tëst.csv")], capsys)
    assert code == 2
    assert "cannot be written under this locale's file-name encoding (ascii)" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_non_ascii_name_in_a_real_ascii_locale(tmp_path: Path) -> None:
    """LC_ALL=C without UTF-8 mode: the name arrives as undecodable bytes; it used to be written
    and then the program died printing it (internal error, exit 1)."""
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONIOENCODING="ascii")
    name = "t\u00ebst.csv".encode()
    cmd = [sys.executable.encode(), b"-m", b"fiberscope", b"trace", b"surface_1", b"--at"]
    proc = subprocess.run(
        [*cmd, b"0.25,0.25", b"-o", name], cwd=tmp_path, env=env, capture_output=True
    )
    err = proc.stderr.decode("ascii", "replace")
    assert proc.returncode == 2, err
    assert "cannot be written under this locale" in err and "internal error" not in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- only regular files
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("what", ["out", "sidecar", "plot"])
def test_a_named_pipe_is_never_replaced(what: str, tmp_path: Path, capsys) -> None:
    out, plot = tmp_path / "t.csv", tmp_path / "t.png"
    fifo = {"out": out, "sidecar": tmp_path / "t.json", "plot": plot}[what]
    os.mkfifo(fifo)
    code, err = _run([*COMMANDS["trace"], "-o", str(out), "--plot", str(plot), "--force"], capsys)
    assert code == 2 and "is a named pipe; fiberscope writes only regular files" in _one_line(err)
    assert [p.name for p in tmp_path.iterdir()] == [fifo.name]
    assert not fifo.is_file()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="unix sockets are POSIX")
def test_a_socket_is_never_replaced(tmp_path: Path, capsys) -> None:
    """(A device would do too, but a test must never risk replacing a real /dev node.)"""
    out = tmp_path / "t.csv"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(out))
        code, err = _run([*COMMANDS["trace"], "-o", str(out), "--force"], capsys)
    assert code == 2 and "t.csv exists and is a socket" in _one_line(err)
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"] and not out.is_file()


# ---------------------------------------------------------------- locks
def test_a_locked_output_is_refused_and_a_stale_lock_is_not(tmp_path: Path, capsys) -> None:
    from fiberscope.io.paths import plan_outputs

    out = tmp_path / "t.csv"
    with plan_outputs(out).locked():  # another run owns t.csv
        assert (tmp_path / "t.csv.lock").read_text().strip() == str(os.getpid())
        code, err = _run([*COMMANDS["trace"], "-o", str(out)], capsys)
        assert code == 2
        assert f"is being written by another fiberscope run (process {os.getpid()})" in (
            _one_line(err)
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv.lock", "t.json.lock"]
    assert list(tmp_path.iterdir()) == []  # the owner removed its locks
    # a lock file left by a killed process is not locked: it does not block
    (tmp_path / "t.csv.lock").write_text("999999\n")
    code, err = _run([*COMMANDS["trace"], "-o", str(out)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]


SLOW = """
import os, time, torch
from torch import nn

class Slow(nn.Module):
    calls = 0

    def forward(self, x):
        Slow.calls += 1
        hang = os.environ.get("HANG_AT")
        if hang and Slow.calls == int(hang):
            import json, sys
            state = {"matplotlib": "matplotlib" in sys.modules}
            open(os.environ["HANG_FLAG"], "w").write(json.dumps(state))
            time.sleep(600)
        return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)
"""
TRACE = ["--at", "0.25,0.25", "--step", "0.02", "--bounds=-1,1", "--checkpoint-every", "5"]


def _start(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fiberscope", *args],
        env=dict(os.environ, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_a_live_run_owns_its_output_and_a_second_sigterm_stops_it(tmp_path: Path, capsys) -> None:
    """One process, three defects. While it runs, a second run on the same output is refused
    (before: both wrote the same .partial and .ckpt, and a third run called the live one
    interrupted). The first SIGTERM waits for the current step; a second one stops at once,
    even while the (slow, Python) model is still evaluating, and the committed points are
    saved (before: ignored until the evaluation returned, here 600 s). And a trace without
    --plot never imported matplotlib (before: always)."""
    (tmp_path / "slow.py").write_text(SLOW)
    out, flag = tmp_path / "t.csv", tmp_path / "hanging"
    args = ["trace", f"{tmp_path / 'slow.py'}:Slow", *TRACE, "-o", str(out)]
    proc = _start(args, HANG_AT="40", HANG_FLAG=str(flag))
    try:
        _wait_for(flag, proc)
        assert json.loads(flag.read_text())["matplotlib"] is False
        for _ in range(2):
            code, err = _run(args, capsys)
            assert code == 2
            line = _one_line(err)
            assert f"being written by another fiberscope run (process {proc.pid})" in line
            assert "interrupted" not in line
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # the first signal waits for the current step
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["complete"] is False and meta["points"] > 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hanging",
        "slow.py",
        "t.csv",
        "t.csv.ckpt",
        "t.csv.partial",
        "t.json",
    ]
    code, err = _run([*args, "--resume"], capsys)
    assert code == 0, err
    assert json.loads(out.with_suffix(".json").read_text())["complete"] is True


def test_a_second_sigterm_in_the_first_model_evaluation(tmp_path: Path) -> None:
    """Both signals arrive while the model is still evaluating the start (before the loop):
    exit 143 with one line, and nothing left behind (before: exit 130, silent)."""
    (tmp_path / "slow.py").write_text(SLOW)
    out, flag = tmp_path / "t.csv", tmp_path / "hanging"
    args = ["trace", f"{tmp_path / 'slow.py'}:Slow", *TRACE, "-o", str(out)]
    proc = _start(args, HANG_AT="1", HANG_FLAG=str(flag))
    try:
        _wait_for(flag, proc)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # the first signal waits for the evaluation
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    # (the test model leaves its flag file open: Python's ResourceWarning may come first)
    last = err.strip().splitlines()[-1]
    assert last == "interrupted by SIGTERM before the first step: nothing was written", err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hanging", "slow.py"]


def test_ctrl_c_while_the_model_loads_says_interrupted(tmp_path: Path, capsys, monkeypatch) -> None:
    """Ctrl-C before the run's own handlers (typer turns it into a silent exit 130)."""
    import fiberscope.models

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fiberscope.models, "load_model", interrupted)
    code, err = _run(["trace", *S1, "-o", str(tmp_path / "t.csv")], capsys)
    assert (code, _one_line(err)) == (130, "interrupted")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- a full disk at the end
@pytest.fixture
def full_disk(monkeypatch):
    """``fsync`` of the temporary file of a chosen output fails with ENOSPC."""
    real = os.fsync
    target: list[str] = []

    def fsync(fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if any(re.fullmatch(rf"\.{re.escape(t)}\.[a-z0-9_]+\.tmp", name) for t in target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return target


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.parametrize("fails", ["t.csv", "t.json"])
def test_full_disk_at_the_final_write_keeps_the_checkpoint(
    tmp_path: Path, capsys, full_disk, fails: str
) -> None:
    out = tmp_path / "t.csv"
    args = [*COMMANDS["trace"], "--step", "0.0125", "-o", str(out)]
    full_disk.append(fails)
    code, err = _run(args, capsys)
    assert code == 2
    line = _one_line(err)
    assert f"cannot write {tmp_path / fails}: No space left on device" in line
    assert "the finished run is kept in" in line and "--resume" in line
    # no result beside a sidecar of another write: only the checkpoint files are left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv.ckpt", "t.csv.partial"]
    full_disk.clear()
    code, err = _run([*args, "--resume"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]
    assert json.loads(out.with_suffix(".json").read_text())["closed"] is True


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_full_disk_keeps_the_checkpoint_of_every_verb(tmp_path: Path, capsys, full_disk) -> None:
    # every verb checkpoints now: sample keeps its finished run like trace does
    out = tmp_path / "t.csv"
    args = [*COMMANDS["sample"], "-o", str(out)]
    full_disk.append("t.csv")
    code, err = _run(args, capsys)
    assert code == 2
    line = _one_line(err)
    assert "No space left on device" in line and "the finished run is kept in" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv.ckpt", "t.csv.partial"]
    full_disk.clear()
    code, err = _run([*args, "--resume"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]


# ---------------------------------------------------------------- a failing plot
@pytest.mark.parametrize("verb", ["trace", "sample"])
def test_a_failing_plot_keeps_the_result(verb: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "fragile.py").write_text(FRAGILE)
    out, png = tmp_path / "t.csv", tmp_path / "t.png"
    model = f"{tmp_path / 'fragile.py'}:fragile"
    args = [verb, model, "--at", "0.25,0.25", "--bounds=-1,1", "-o", str(out), "--plot", str(png)]
    code, err = _run(args, capsys)
    assert code == 3
    line = _one_line(err)
    assert line.startswith(f"error: the plot {png} was not written (")
    assert "outside the training range" in line and f"the result is saved in {out}" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fragile.py", "t.csv", "t.json"]
    assert json.loads((tmp_path / "t.json").read_text())["complete"] is True
    # the rerun finds a finished result, not an interrupted run
    code, err = _run(args, capsys)
    assert code == 2 and "already exists; use --force" in _one_line(err)


# ---------------------------------------------------------------- demo
def test_demo_keeps_existing_files(tmp_path: Path, capsys) -> None:
    (tmp_path / "class.png").write_text("mine")
    code, err = _run(["demo", "--out-dir", str(tmp_path)], capsys)
    assert code == 2 and "class.png already exists; use --force" in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["class.png"]
    assert (tmp_path / "class.png").read_text() == "mine"


def test_demo_out_dir_that_is_a_file_or_unwritable(tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    code, err = _run(["demo", "--out-dir", str(tmp_path / "afile")], capsys)
    assert code == 2 and "is a file, not a folder" in _one_line(err)
    code, err = _run(["demo", "--out-dir", str(tmp_path / "afile" / "sub")], capsys)
    assert code == 2 and "is a file, not a folder" in _one_line(err)
    code, err = _run(["demo", "--out-dir", "/sys/fiberscope-demo"], capsys)
    assert code == 2 and "cannot create folder /sys/fiberscope-demo" in _one_line(err)
    code, err = _run(["demo", "--out-dir", ""], capsys)
    assert code == 2 and "--out-dir is empty" in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
