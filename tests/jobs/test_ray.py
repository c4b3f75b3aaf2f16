"""Jobs on a local Ray cluster of 2 workers started inside the test run: a worker killed in the
middle of a job is replaced and its item run again; the store is complete and equal to the
run in this process, on 2 workers and on 1."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest

from fiberscope.jobs import open_store, run_many
from job_files import WALK, image_folder, images

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'fiberscope[ray]'")

N = 6
BAD = 4  # item 4 is not a .npy file: it fails on every backend, alone


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, models_file):
    root = tmp_path_factory.mktemp("ray")
    folder = image_folder(root / "digits", N, bad={BAD: b"not an array"})
    spec = f"{models_file}:Slow"
    ref = run_many(spec, folder, "walk", store=root / "here", seed=5, workers=0, **WALK)
    assert ref.done == N - 1
    return root, folder, spec


def _same_store(a, b) -> None:
    ra, rb = open_store(a), open_store(b)
    assert ra.manifest["job"] == rb.manifest["job"]
    assert [(e["status"], e["error"], e["seed"]) for e in ra.entries] == [
        (e["status"], e["error"], e["seed"]) for e in rb.entries
    ]
    for i in ra.done():
        x, y = ra.item(i), rb.item(i)
        np.testing.assert_array_equal(x.x, y.x)
        np.testing.assert_array_equal(x.y, y.y)
        for name, col in x.columns.items():
            np.testing.assert_array_equal(col, y.columns[name])
        assert x.result == y.result


def test_two_workers_one_killed_mid_job(cluster, dataset) -> None:
    root, folder, spec = dataset
    killed: list[int] = []

    def kill_first_worker(entry) -> None:
        if not killed and entry.status == "done":
            pid = int(entry.worker.rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)  # the worker has its next item queued or running
            killed.append(pid)

    res = run_many(
        spec, folder, "walk", store=root / "two", seed=5, workers=2, on_item=kill_first_worker,
        **WALK,
    )  # fmt: skip
    assert killed and res.workers == 2 and "2 Ray workers" in res.backend
    assert (res.done, res.pending, res.total) == (N - 1, 0, N)
    assert [f["index"] for f in res.failed] == [BAD]
    assert res.retried >= 1
    entries = open_store(root / "two").entries
    assert max(e["attempts"] for e in entries) == 2
    pids = {int(e["worker"].rsplit(":", 1)[1]) for e in entries if e["status"] == "done"}
    assert killed[0] in pids and len(pids) >= 2
    _same_store(root / "two", root / "here")


def test_one_worker_same_results(cluster, dataset) -> None:
    root, folder, spec = dataset
    res = run_many(spec, folder, "walk", store=root / "one", seed=5, workers=1, **WALK)
    assert res.workers == 1 and res.done == N - 1 and res.retried == 0
    # one actor, plus the driver, which recorded the unreadable item
    assert len({e["worker"] for e in open_store(root / "one").entries if e["worker"]}) == 2
    _same_store(root / "one", root / "here")


@pytest.mark.slow
def test_an_item_that_kills_every_worker_fails_after_its_retries(cluster, tmp_path, models_file):
    x = images(3)
    x[1, 0, 0, 0] = 0.123
    res = run_many(
        f"{models_file}:Doomed", x, "walk", store=tmp_path / "s", seed=5, workers=2, retries=1,
        **WALK,
    )  # fmt: skip
    assert (res.done, res.pending) == (2, 0)
    assert [f["index"] for f in res.failed] == [1]
    assert res.failed[0]["error"].startswith("the worker running it died 2 times (last: ")
    entries = open_store(tmp_path / "s").entries
    assert entries[1]["attempts"] == 2 and entries[1]["status"] == "failed"
