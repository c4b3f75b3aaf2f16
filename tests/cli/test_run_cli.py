"""``fiberscope run JOB.toml``: a job file end to end, continuing, failed items, Ctrl-C."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fiberscope.cli.main import main
from fiberscope.jobs import open_store
from job_files import write_models

STARTS = np.array([[0.25, 0.25], [0.5, -0.3], [-0.6, 0.1]])
JOB = """verb = "trace"
model = "{model}"
inputs = "pts.npy"
store = "results"
workers = 0

[options]
step = 0.05
bounds = [-1.0, 1.0]
"""


@pytest.fixture
def job(tmp_path):
    np.save(tmp_path / "pts.npy", STARTS)
    write_models(tmp_path)
    path = tmp_path / "job.toml"
    path.write_text(JOB.format(model="surface_1"))
    return path


def test_job_file_end_to_end_then_continued(job, capsys) -> None:
    assert main(["run", str(job)]) == 0
    out = capsys.readouterr()
    assert "trace on 3 items in this process" in out.out
    assert out.err == ""
    store = open_store(job.parent / "results")
    assert store.counts == {"done": 3, "failed": 0, "pending": 0}
    assert main(["run", str(job)]) == 0
    assert "3 done before (skipped)" in capsys.readouterr().out
    # -o puts the results elsewhere
    assert main(["run", str(job), "-o", str(job.parent / "other")]) == 0
    assert open_store(job.parent / "other").counts["done"] == 3


def test_failed_items_exit_4_with_one_line_each(job, capsys) -> None:
    pts = STARTS.copy()
    pts[1] = [0.0, 2.0]  # outside the box
    np.save(job.parent / "pts.npy", pts)
    assert main(["run", str(job)]) == 4
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: item 1 (row 1): the start point is outside the bounds on axis 1: 2 not in "
        "[-1, 1]; widen the bounds or move the start"
    ]
    manifest = json.loads((job.parent / "results" / "manifest.json").read_text())
    assert [e["status"] for e in manifest["items"]] == ["done", "failed", "done"]


def test_ctrl_c_keeps_a_consistent_store_and_the_job_continues(job, capsys) -> None:
    """SIGINT in the middle of item 1 (sent by the model itself): exit 130, item 0 kept,
    item 1 redone by the next run; the results equal an uninterrupted run's."""
    job.write_text(JOB.format(model="models.py:interrupting"))
    assert main(["run", str(job)]) == 130
    err = capsys.readouterr().err
    assert "interrupted (SIGINT): 1 of 3 items done in" in err
    assert "run the same command again to continue" in err
    store = open_store(job.parent / "results")
    assert store.counts == {"done": 1, "failed": 0, "pending": 2}
    assert store.manifest["runs"][-1]["outcome"] == "interrupted"
    assert not (job.parent / "results" / ".lock").exists()
    assert main(["run", str(job)]) == 0
    assert "1 done before (skipped)" in capsys.readouterr().out
    assert main(["run", str(job), "-o", str(job.parent / "reference")]) == 0
    a, b = open_store(job.parent / "results"), open_store(job.parent / "reference")
    for i in range(3):
        np.testing.assert_array_equal(a.item(i).x, b.item(i).x)
        assert a.item(i).result == b.item(i).result
