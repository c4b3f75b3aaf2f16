"""The runner: one run at a time off the request thread, progress, cancel, one-line failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import fiberscope as fs
from fiberscope.app.tasks import AppError, RunCancelled, RunContext, Runner
from fiberscope.errors import InputError


def wait(runner: Runner, run_id: str) -> dict:
    runner.wait(30)
    return runner.get(run_id).status()


def test_a_run_reports_progress_and_its_result(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    gate = threading.Event()

    def work(ctx: RunContext) -> dict:
        ctx.progress(3, 10)
        gate.wait(10)
        (ctx.folder / "out.txt").write_text("x")
        ctx.add_file(ctx.folder / "out.txt")
        return {"answer": 42}

    run = runner.start("test", "m", "a test run", work)
    deadline = time.monotonic() + 10
    while runner.get(run.id).status()["progress"]["done"] != 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert runner.get(run.id).status()["state"] == "running"
    assert runner.current() is run
    gate.set()
    st = wait(runner, run.id)
    assert st["state"] == "done" and st["result"] == {"answer": 42} and st["files"] == ["out.txt"]
    assert runner.current() is None


def test_one_run_at_a_time(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    gate = threading.Event()
    first = runner.start("test", "m", "slow run", lambda ctx: gate.wait(10) and {})
    with pytest.raises(AppError, match=r"a run is already going \(slow run, starting\)") as err:
        runner.start("test", "m", "second", lambda ctx: {})
    assert err.value.status == 409
    gate.set()
    wait(runner, first.id)
    second = runner.start("test", "m", "second", lambda ctx: {"ok": True})
    assert wait(runner, second.id)["state"] == "done"


def test_cancel_stops_a_trace_between_steps(tmp_path: Path, net1) -> None:
    runner = Runner(tmp_path)
    started = threading.Event()

    def work(ctx: RunContext) -> dict:
        def progress(done: int, total: int) -> None:
            started.set()
            ctx.progress(done, total)

        fs.trace(net1, [0.25, 0.25], step=1e-5, max_steps=10**6, progress=progress, stop=ctx.stop)
        return {}

    run = runner.start("trace", "surface_1", "long trace", work)
    assert started.wait(30)
    runner.cancel(run.id)
    st = wait(runner, run.id)
    assert st["state"] == "cancelled" and "result" not in st
    assert st["message"] == "cancelled: nothing was kept from this run"


def test_a_cancelled_run_may_keep_a_partial_result(tmp_path: Path) -> None:
    runner = Runner(tmp_path)

    def work(ctx: RunContext) -> dict:
        (ctx.folder / "walk.npz").write_bytes(b"partial")
        ctx.add_file(ctx.folder / "walk.npz")
        raise RunCancelled("cancelled: 3 of 10 samples kept", result={"counts": [3]})

    st = wait(runner, runner.start("walk", "m", "walk", work).id)
    assert st["state"] == "cancelled" and st["message"] == "cancelled: 3 of 10 samples kept"
    assert st["result"] == {"counts": [3]} and st["files"] == ["walk.npz"]


def test_failures_are_one_line_and_the_runner_goes_on(tmp_path: Path) -> None:
    runner = Runner(tmp_path)

    def bad_input(ctx: RunContext) -> dict:
        raise InputError("the start point is outside the box;\n use another")

    def bug(ctx: RunContext) -> dict:
        raise ZeroDivisionError("division by zero\nsecond line")

    st = wait(runner, runner.start("x", "m", "bad", bad_input).id)
    assert st["state"] == "failed"
    assert st["message"] == "the start point is outside the box; use another"
    st = wait(runner, runner.start("x", "m", "bug", bug).id)
    assert st["state"] == "failed"
    assert st["message"] == "internal error: ZeroDivisionError: division by zero second line"
    assert wait(runner, runner.start("x", "m", "ok", lambda ctx: {}).id)["state"] == "done"


def test_a_run_that_ends_with_sys_exit_fails_and_frees_the_runner(tmp_path: Path) -> None:
    """User code's SystemExit (not an Exception) left the run "running" for ever: every later
    run was refused as a second run."""
    import sys

    runner = Runner(tmp_path)

    def quits(ctx: RunContext) -> dict:
        sys.exit(3)

    st = wait(runner, runner.start("x", "m", "quits", quits).id)
    assert (st["state"], st["message"]) == ("failed", "the run ended with SystemExit: 3")
    assert wait(runner, runner.start("x", "m", "ok", lambda ctx: {}).id)["state"] == "done"


def test_unknown_runs_and_old_runs_are_forgotten(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    with pytest.raises(AppError, match="the server was restarted") as err:
        runner.get("nope-1")
    assert err.value.status == 404
    ids = []
    for _ in range(22):
        ids.append(runner.start("x", "m", "quick", lambda ctx: {}).id)
        runner.wait(10)
    with pytest.raises(AppError):
        runner.get(ids[0])
    assert runner.get(ids[-1]).status()["state"] == "done"
    assert len(list(tmp_path.iterdir())) == 20  # the forgotten runs' folders are removed


def test_close_cancels_the_run_going(tmp_path: Path) -> None:
    runner = Runner()
    workdir = runner.workdir

    def work(ctx: RunContext) -> dict:
        while not ctx.stop():
            time.sleep(0.01)
        ctx.check()
        return {}

    run = runner.start("x", "m", "endless", work)
    runner.close(timeout=10)
    assert run.status()["state"] == "cancelled"
    assert not workdir.exists()
