"""Durable traces: checkpoints, exact resume, and killed runs that lose nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import fiberscope as fs
from fiberscope.cli.main import main
from fiberscope.errors import CheckpointError, TraceInterrupted
from fiberscope.io.checkpoint import CheckpointWriter, checkpoint_paths, load_checkpoint

SLOW_MODEL = '''
import os, signal, time, torch
from torch import nn

class Slow(nn.Module):
    """exp(x^2 + y^2 - 2). Test hooks that never change its numbers:
    FIBERSCOPE_TEST_SLOW=s sleeps s seconds per call; FIBERSCOPE_TEST_SIGNAL_AFTER=k sends
    SIGINT to this process at call k (twice in a row with FIBERSCOPE_TEST_SIGNAL_TWICE);
    FIBERSCOPE_TEST_FAIL raises for x[0] < 0."""

    calls = 0

    def forward(self, x):
        delay = os.environ.get("FIBERSCOPE_TEST_SLOW")
        if delay:
            time.sleep(float(delay))
        after = os.environ.get("FIBERSCOPE_TEST_SIGNAL_AFTER")
        if after:
            Slow.calls += 1
            if Slow.calls == int(after) or (
                os.environ.get("FIBERSCOPE_TEST_SIGNAL_TWICE") and Slow.calls == int(after) + 1
            ):
                signal.raise_signal(signal.SIGINT)
        if os.environ.get("FIBERSCOPE_TEST_FAIL") and float(x.reshape(-1)[0]) < 0:
            raise RuntimeError("x[0] < 0 is not supported")
        return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)
'''

# The class through (0.25, 0.25) is a circle of radius 0.354; the box cuts it at y = 0.3, so
# the forward branch is short and the backward branch runs the long way round to the face.
BOX = ["--bounds=-1,1", "--bounds=-1,0.3"]


def _args(model: str, out: Path, *extra: str) -> list[str]:
    return ["trace", model, "--at", "0.25,0.25", "--step", "0.008", *BOX, "-o", str(out), *extra]


def _meta(path: Path) -> dict:
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["stats"].pop("wall_time")
    return meta


def _rows(path: Path) -> list[tuple[str, ...]]:
    """Rows without the arclength column (measured from the first point, so a partial
    result's values differ from the full one's in the last bits)."""
    with path.open() as fh:
        return [tuple(r[:-2] + r[-1:]) for r in csv.reader(fh)]


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("model")
    (folder / "slow.py").write_text(SLOW_MODEL)
    return f"{folder / 'slow.py'}:Slow"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, slow_model: str) -> Path:
    ref = tmp_path_factory.mktemp("ref") / "ref.csv"
    assert main(_args(slow_model, ref, "--checkpoint-every", "0")) == 0
    return ref


def _start(model: str, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, FIBERSCOPE_TEST_SLOW="0.003")
    cmd = [
        sys.executable,
        "-m",
        "fiberscope",
        *_args(model, out, "--checkpoint-every", "10", *extra),
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(ckpt: Path, more_than: int, proc: subprocess.Popen) -> int:
    """Wait until the checkpoint records more than ``more_than`` steps (generous deadline)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            steps = load_checkpoint(ckpt.with_suffix("")).snapshot.steps
            if steps > more_than:
                return steps
        except (OSError, CheckpointError):
            pass
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


def _assert_same_result(run: Path, ref: Path) -> None:
    assert run.read_bytes() == ref.read_bytes()
    assert _meta(run) == _meta(ref)
    assert _meta(run)["complete"] is True
    assert not any(p.exists() for p in checkpoint_paths(run))


def _assert_saved_partial(run: Path, ref: Path, sig: signal.Signals, at_least: int) -> None:
    meta = json.loads(run.with_suffix(".json").read_text())
    assert meta["complete"] is False and meta["interrupted_by"] == sig.name
    assert "interrupted" in meta["stop_reasons"].values()
    rows = _rows(run)
    assert len(rows) - 1 == meta["points"] >= at_least
    # every point saved so far is a point of the uninterrupted trace: nothing wrong
    assert set(rows) <= set(_rows(ref))


def test_kill_and_resume_equals_an_uninterrupted_run(
    tmp_path: Path, slow_model: str, reference: Path
) -> None:
    """A real process is stopped by SIGTERM (as a job scheduler does), resumed, killed with
    SIGKILL and resumed again; the final files equal those of an uninterrupted run."""
    run = tmp_path / "run.csv"
    ckpt, stream = checkpoint_paths(run)
    proc = _start(slow_model, run)
    steps = _wait_for_steps(ckpt, 15, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    _assert_saved_partial(run, reference, signal.SIGTERM, steps)
    partial = run.read_bytes()
    proc = _start(slow_model, run, "--resume")
    steps = _wait_for_steps(ckpt, steps + 15, proc)
    proc.send_signal(signal.SIGKILL)  # no handler runs: only the periodic checkpoint survives
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert run.read_bytes() == partial
    assert load_checkpoint(run).snapshot.steps >= steps and stream.exists()
    assert main(_args(slow_model, run, "--checkpoint-every", "10", "--resume")) == 0
    _assert_same_result(run, reference)


@pytest.mark.parametrize("twice", [False, True], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_in_process_saves_and_resumes(
    tmp_path: Path, slow_model: str, reference: Path, monkeypatch, capsys, twice: bool
) -> None:
    run = tmp_path / "run.csv"
    monkeypatch.setenv("FIBERSCOPE_TEST_SIGNAL_AFTER", "120")
    if twice:  # the second Ctrl-C stops at once; the last completed step is still kept
        monkeypatch.setenv("FIBERSCOPE_TEST_SIGNAL_TWICE", "1")
    assert main(_args(slow_model, run, "--checkpoint-every", "0")) == 130
    assert "interrupted by SIGINT" in capsys.readouterr().err
    _assert_saved_partial(run, reference, signal.SIGINT, 10)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.delenv("FIBERSCOPE_TEST_SIGNAL_AFTER")
    assert main(_args(slow_model, run, "--resume")) == 0
    _assert_same_result(run, reference)


def test_checkpoint_files_are_removed_after_success(tmp_path: Path, slow_model: str) -> None:
    out = tmp_path / "t.csv"
    assert main(_args(slow_model, out, "--checkpoint-every", "7")) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]


def test_an_error_during_the_run_leaves_no_files(
    tmp_path: Path, slow_model: str, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("FIBERSCOPE_TEST_FAIL", "1")
    out = tmp_path / "t.csv"
    assert main(_args(slow_model, out, "--checkpoint-every", "5")) == 2
    err = capsys.readouterr().err
    assert "x[0] < 0 is not supported" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_resume_guards(
    tmp_path: Path, slow_model: str, reference: Path, monkeypatch, capsys
) -> None:
    run = tmp_path / "run.csv"
    monkeypatch.setenv("FIBERSCOPE_TEST_SIGNAL_AFTER", "100")
    assert main(_args(slow_model, run)) == 130
    monkeypatch.delenv("FIBERSCOPE_TEST_SIGNAL_AFTER")
    capsys.readouterr()
    # a checkpoint of this output exists: a plain rerun must not silently discard it
    assert main(_args(slow_model, run)) == 2
    assert "add --resume to continue it or --force" in capsys.readouterr().err
    # other options than the checkpoint's
    assert main([*_args(slow_model, run, "--resume"), "--tol", "1e-11"]) == 2
    assert "written with tol=1e-12, this run has tol=1e-11" in capsys.readouterr().err
    # the model file changed
    model_file = Path(slow_model.rpartition(":")[0])
    original = model_file.read_text()
    model_file.write_text(original + "\n# edited\n")
    try:
        assert main(_args(slow_model, run, "--resume")) == 2
        assert "the model file changed" in capsys.readouterr().err
    finally:
        model_file.write_text(original)
    assert main([*_args(slow_model, run, "--resume"), "--force"]) == 2
    assert "give one" in capsys.readouterr().err
    assert main(_args(slow_model, run, "--resume")) == 0
    _assert_same_result(run, reference)
    assert main(_args(slow_model, run, "--resume")) == 2
    assert "nothing to resume" in capsys.readouterr().err


# ------------------------------------------------------------------ in-process, no subprocess
NET_CASES = [
    ("binary", [0.0, -0.01499], dict(step=0.02, bounds=([-3.14, -1.0], [3.14, 1.5]))),
    ("surface_1", [0.25, 0.25], dict(step=0.0125)),
    ("surface_2", [0.25, 0.25], dict(step=0.01, max_steps=150, method="paper", bounds=(-1, 1))),
]


def _stop_after(polls: int):
    calls = iter(range(10**9))
    return lambda: next(calls) >= polls


@pytest.mark.parametrize(
    "name, x0, kw", NET_CASES, ids=[c[0] + "-" + c[2].get("method", "corrected") for c in NET_CASES]
)
def test_resume_from_disk_at_every_checkpoint(tmp_path: Path, name, x0, kw) -> None:
    net = fs.load_model(name)
    ref = fs.trace(net, x0, **kw)
    out = tmp_path / "t.csv"
    saved: list[int] = []

    def keep(snapshot) -> None:
        writer(snapshot)
        saved.append(snapshot.steps)

    writer = CheckpointWriter(out)
    fs.trace(net, x0, checkpoint=keep, checkpoint_every=23, **kw)
    assert len(saved) >= 3
    # resume from a checkpoint taken mid-run: stop a fresh run at a random-ish step
    for cut in (0, 5, saved[1] + 3, ref.stats.steps - 1):
        writer = CheckpointWriter(out)
        try:
            fs.trace(net, x0, checkpoint=writer, checkpoint_every=23, stop=_stop_after(cut), **kw)
        except TraceInterrupted as exc:
            writer.save(exc.snapshot)
            assert not exc.result.complete
        loaded = load_checkpoint(out)
        res = fs.trace(net, x0, resume=loaded.snapshot, **kw)
        assert torch.equal(res.points, ref.points) and torch.equal(res.outputs, ref.outputs)
        assert res.stop_reasons == ref.stop_reasons and res.energy == ref.energy
        a, b = res.stats.as_dict(), ref.stats.as_dict()
        a.pop("wall_time"), b.pop("wall_time")
        assert a == b


def _points(snapshot) -> int:  # noqa: ANN001 - a Snapshot
    """Points of a trace snapshot, the start included."""
    return 1 + sum(int(t.shape[0]) for k, t in snapshot.tensors.items() if k.endswith(".rec.x"))


def test_rows_written_after_the_last_checkpoint_are_ignored(tmp_path: Path) -> None:
    net = fs.load_model("surface_1")
    ref = fs.trace(net, [0.25, 0.25], step=0.0125)
    out = tmp_path / "t.csv"
    writer = CheckpointWriter(out)
    calls = iter(range(10**9))
    with pytest.raises(TraceInterrupted) as info:
        fs.trace(net, [0.25, 0.25], step=0.0125, stop=lambda: next(calls) >= 50)
    writer.save(info.value.snapshot)
    # a crash after appending a chunk but before replacing the checkpoint
    _, stream = checkpoint_paths(out)
    with stream.open("ab") as fh:
        fh.write(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage garbage!")
    loaded = load_checkpoint(out)
    assert _points(loaded.snapshot) == 51
    res = fs.trace(
        net,
        [0.25, 0.25],
        step=0.0125,
        resume=loaded.snapshot,
        checkpoint=CheckpointWriter.continuing(out, loaded),
        checkpoint_every=10,
    )
    assert torch.equal(res.points, ref.points)
    assert _points(load_checkpoint(out).snapshot) == len(ref)


def _interrupted_checkpoint(out: Path) -> None:
    net = fs.load_model("surface_1")
    calls = iter(range(10**9))
    with pytest.raises(TraceInterrupted) as info:
        fs.trace(net, [0.25, 0.25], step=0.0125, stop=lambda: next(calls) >= 30)
    CheckpointWriter(out).save(info.value.snapshot)


def _resign(ckpt: Path, change_doc=None, change_tensors=None) -> None:  # noqa: ANN001
    """Edit a checkpoint *and* fix its checksum (what a determined hand-editor would do)."""
    import hashlib

    from safetensors.torch import load, save

    head, _, body = ckpt.read_bytes().partition(b"\n")
    n = int.from_bytes(body[:8], "little")
    meta = json.loads(body[8 : 8 + n])["__metadata__"]
    doc = json.loads(meta["fiberscope"])
    tensors = load(body)
    if change_doc:
        change_doc(doc)
    if change_tensors:
        change_tensors(tensors)
    new = save(tensors, metadata={"fiberscope": json.dumps(doc)})
    prefix = head.split(b"sha256=")[0] + b"sha256="
    ckpt.write_bytes(prefix + hashlib.sha256(new).hexdigest().encode() + b"\n" + new)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "not-a-checkpoint": (lambda c, s: c.write_text("{oops"), r"older fiberscope"),
    "other-file": (lambda c, s: c.write_bytes(b"PK\x03\x04 zip"), r"not a fiberscope checkpoint"),
    "edited": (lambda c, s: _flip_byte(c), r"checksum does not match"),
    "version": (
        lambda c, s: _resign(c, lambda d: d.update(version=99)),
        r"format version 99",
    ),
    "no-field": (lambda c, s: _resign(c, lambda d: d.pop("options")), r"is corrupt \(KeyError\)"),
    "stream-edited": (lambda c, s: _flip_byte(s), r"does not match its checkpoint"),
    "stream-truncated": (
        lambda c, s: s.write_bytes(s.read_bytes()[:-10]),
        r"does not match its checkpoint",
    ),
    "stream-missing": (lambda c, s: s.unlink(), r"\.partial of checkpoint .* is missing"),
    "rows": (
        lambda c, s: _resign(c, lambda d: d["rows"].update({"p0.rec.x": 3})),
        r"table p0\.rec\.x has 30 rows, expected 3",
    ),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_checkpoints_are_refused(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "t.csv"
    _interrupted_checkpoint(out)
    change, message = CORRUPTIONS[kind]
    change(*checkpoint_paths(out))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(out)
    assert "\n" not in str(info.value)


def test_a_state_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    _interrupted_checkpoint(out)
    ckpt, _ = checkpoint_paths(out)

    def widen(t: dict) -> None:
        t["p0.mem.x"] = torch.zeros(1, 3, dtype=torch.float64)

    _resign(ckpt, change_tensors=widen)
    snap = load_checkpoint(out).snapshot
    with pytest.raises(CheckpointError, match="does not fit this run"):
        fs.trace(fs.load_model("surface_1"), [0.25, 0.25], step=0.0125, resume=snap)
    _resign(ckpt, change_tensors=lambda t: t.pop("p0.mem.h"))
    snap = load_checkpoint(out).snapshot
    with pytest.raises(CheckpointError, match="phase 0 is malformed"):
        fs.trace(fs.load_model("surface_1"), [0.25, 0.25], step=0.0125, resume=snap)


def test_resume_with_other_options_or_model_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    _interrupted_checkpoint(out)
    snap = load_checkpoint(out).snapshot
    net = fs.load_model("surface_1")
    with pytest.raises(
        CheckpointError, match=r"written with step=0\.0125, this run has step=0\.01"
    ):
        fs.trace(net, [0.25, 0.25], step=0.01, resume=snap)
    with pytest.raises(CheckpointError, match=r"x0=\[0\.25, 0\.25\]"):
        fs.trace(net, [0.25, 0.26], step=0.0125, resume=snap)
    other = fs.load_model("surface_1")
    with torch.no_grad():
        other[0].bias.add_(1e-3)
    with pytest.raises(CheckpointError, match="output at the start differs"):
        fs.trace(other, [0.25, 0.25], step=0.0125, resume=snap)


#: Other commands stopped by a real SIGTERM: the walk to the decision boundary (the slow
#: model's level 0.2 is the circle of radius 0.62 around the origin) and the class samples.
OTHER_COMMANDS = {
    "flip": [
        "explore",
        "{model}",
        "--at",
        "0.25,0.25",
        "--flip",
        "--threshold",
        "0.2",
        "--beyond",
        "0.02",
        "--step",
        "0.002",
    ],
    "sample": ["sample", "{model}", "--at", "0.25,0.25", "-n", "30", "--step", "0.008", *BOX],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OTHER_COMMANDS))
def test_sigterm_saves_a_partial_result_of_every_command(
    name: str, tmp_path: Path, slow_model: str
) -> None:
    """A real ``fiberscope explore --flip`` / ``sample`` process stopped by SIGTERM writes its
    partial result marked incomplete; ``--resume`` then writes the uninterrupted run's file."""
    args = [a.format(model=slow_model) for a in OTHER_COMMANDS[name]]
    ref, run = tmp_path / "ref.csv", tmp_path / "run.csv"
    assert main([*args, "-o", str(ref), "--checkpoint-every", "0"]) == 0
    env = dict(os.environ, FIBERSCOPE_TEST_SLOW="0.003")
    cmd = [sys.executable, "-m", "fiberscope", *args, "-o", str(run), "--checkpoint-every", "5"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_steps(checkpoint_paths(run)[0], 10, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "(marked incomplete)" in err, err
    assert "Traceback" not in err
    meta = json.loads(run.with_suffix(".json").read_text())
    assert meta["complete"] is False and meta["interrupted_by"] == "SIGTERM"
    assert run.read_bytes() != ref.read_bytes() and len(_rows(run)) > 1
    assert main([*args, "-o", str(run), "--checkpoint-every", "5", "--resume"]) == 0
    _assert_same_result(run, ref)
