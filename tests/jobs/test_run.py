"""Dataset jobs in this process: results equal to the verbs' own, the store, resuming,
failing items, refusals. (Ray: test_ray.py.)"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import fiberscope as fs
from fiberscope.errors import CheckpointError, InputError, Interrupted, OutputFileError
from fiberscope.jobs import item_seed, open_store, run_many
from fiberscope.jobs.store import MANIFEST, item_name
from job_files import WALK, image_folder, images

STARTS = np.array([[0.25, 0.25], [0.5, -0.3], [-0.6, 0.1]])
TRACE = {"step": 0.05, "bounds": [-1.0, 1.0]}


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    store = tmp_path_factory.mktemp("t") / "store"
    res = run_many("surface_1", STARTS, "trace", store=store, workers=0, **TRACE)
    return store, res


def test_trace_job_equals_the_verb(traced) -> None:
    store, res = traced
    assert (res.done, res.failed, res.pending, res.backend) == (3, [], 0, "this process")
    reader = open_store(store)
    net = fs.load_model("surface_1")
    for i, x0 in enumerate(STARTS):
        want = fs.trace(net, x0, **TRACE)
        got = reader.item(i)
        assert got.key == f"row {i}"
        np.testing.assert_array_equal(got.x, want.points.numpy())
        np.testing.assert_array_equal(got.y, want.outputs.numpy())
        np.testing.assert_array_equal(got.columns["arclength"], want.arclength.numpy())
        np.testing.assert_array_equal(got.columns["branch"], want.branch.numpy())
        assert got.result["closed"] == want.closed and got.result["drift"] == want.drift
    table = reader.table()
    assert table.column_names == ["item", "row", "branch", "arclength", "x", "y"]
    assert sorted(set(table.column("item").to_pylist())) == [0, 1, 2]
    manifest = reader.manifest
    assert manifest["fiberscope_version"] == fs.__version__
    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["job"]["options"] == TRACE and manifest["job"]["verb"] == "trace"
    assert [e["status"] for e in manifest["items"]] == ["done"] * 3
    assert not (store / ".lock").exists()


def test_walk_job_seeds_per_item(tmp_path, models_file) -> None:
    x = images(3)
    spec = f"{models_file}:TinyCNN"
    res = run_many(spec, x, "walk", store=tmp_path / "s", seed=11, workers=0, **WALK)
    assert res.done == 3
    net = fs.load_model(spec)
    reader = open_store(tmp_path / "s")
    for i in (0, 2):
        want = fs.walk(net, x[i], seed=item_seed(11, i), **WALK)
        got = reader.item(i)
        assert got.seed == item_seed(11, i) and got.result["seeds"] == want.seeds
        flat, outs = want.flat()
        np.testing.assert_array_equal(got.x, flat.numpy())
        np.testing.assert_array_equal(got.y, outs.numpy())
        assert got.x.shape == (12, 1, 8, 8)
        assert list(got.columns["chain"]) == [0] * 6 + [1] * 6


def test_failing_items_are_recorded_and_the_others_done(tmp_path, models_file) -> None:
    folder = image_folder(tmp_path / "in", 5, bad={1: b"garbage", 3: b""})
    np.save(folder / "img-004.npy", np.zeros((1, 8, 9)))  # wrong shape
    seen = []
    res = run_many(
        f"{models_file}:TinyCNN", folder, "walk", store=tmp_path / "s", seed=1, workers=0,
        on_item=seen.append, **WALK,
    )  # fmt: skip
    assert res.done == 2 and res.pending == 0
    errors = {f["key"]: f["error"] for f in res.failed}
    assert set(errors) == {"img-001.npy", "img-003.npy", "img-004.npy"}
    assert errors["img-001.npy"].startswith("not a valid .npy file")
    assert "shape (1, 8, 9) differs from the other items' (1, 8, 8)" in errors["img-004.npy"]
    assert all("\n" not in e for e in errors.values())
    assert [e.index for e in seen] == [0, 1, 2, 3, 4]
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["counts"] == {"done": 2, "failed": 3, "pending": 0}
    assert sorted(os.listdir(tmp_path / "s" / "items")) == [item_name(0), item_name(2)]
    # fixed inputs: running the job again retries the failed items only
    np.save(folder / "img-001.npy", images(5)[1])
    res2 = run_many(
        f"{models_file}:TinyCNN", folder, "walk", store=tmp_path / "s", workers=0, **WALK
    )
    assert (res2.skipped, res2.ran, res2.done, len(res2.failed)) == (2, 3, 3, 2)


def test_interrupted_job_continues_to_the_same_store(tmp_path, traced) -> None:
    ref_store, _ = traced
    polls = iter(range(10**6))
    calls = []
    with pytest.raises(Interrupted) as info:
        run_many(
            "surface_1", STARTS, "trace", store=tmp_path / "s", workers=0,
            stop=lambda: next(polls) > 60, on_item=calls.append, **TRACE,
        )  # fmt: skip
    part = info.value.result
    assert 1 <= part.done < 3 and part.pending == 3 - part.done
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["counts"]["done"] == part.done
    assert manifest["runs"][-1]["outcome"] == "interrupted"
    assert not (tmp_path / "s" / ".lock").exists()
    res = run_many("surface_1", STARTS, "trace", store=tmp_path / "s", workers=0, **TRACE)
    assert (res.skipped, res.ran, res.done) == (part.done, 3 - part.done, 3)
    a, b = open_store(tmp_path / "s"), open_store(ref_store)
    for i in range(3):
        np.testing.assert_array_equal(a.item(i).x, b.item(i).x)
        assert a.item(i).result == b.item(i).result


def test_damaged_or_missing_item_files_are_redone(tmp_path, traced) -> None:
    """A finished item whose file was lost or damaged is run again, not skipped; until then
    reading the store says so in one line."""
    import shutil

    ref_store, _ = traced
    store = tmp_path / "s"
    shutil.copytree(ref_store, store)
    (store / "items" / item_name(0)).unlink()
    (store / "items" / item_name(1)).write_bytes(b"garbage")
    reader = open_store(store)
    with pytest.raises(InputError, match=r"^the item file item-00000001\.parquet of the store "
                       r".* is missing or damaged \(.*\); run the job again"):  # fmt: skip
        reader.item(1)
    with pytest.raises(InputError, match=r"^an item file of the store .* run the job again"):
        reader.table()
    res = run_many("surface_1", STARTS, "trace", store=store, workers=0, **TRACE)
    assert (res.skipped, res.ran, res.done) == (1, 2, 3)
    a, b = open_store(store), open_store(ref_store)
    assert a.table().num_rows == b.table().num_rows
    for i in range(3):
        np.testing.assert_array_equal(a.item(i).x, b.item(i).x)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda m: m["items"][0].update(attempts="abc"), r'items\[0\]\.attempts is "abc"'),
        (lambda m: m["items"].__setitem__(1, None), r"items\[1\] is not a table"),
        (lambda m: m["items"][2].update(status="ok"), r'items\[2\]\.status is "ok"'),
        (lambda m: m["items"][2].update(index=0), r"items\[2\]\.index is 0, not 2"),
        (lambda m: m.update(items=5), r"items is not a list"),
        (lambda m: m.update(runs=None), r"runs is not a list of tables"),
        (lambda m: m.update(layout=None), r"layout\.input_shape is not a list"),
    ],
)
def test_an_edited_manifest_is_refused_untouched(tmp_path, traced, edit, problem) -> None:
    """A manifest edited by hand (still valid JSON) is one line, not an internal error, and
    neither a run nor a reader changes the store."""
    import shutil

    ref_store, _ = traced
    store = tmp_path / "s"
    shutil.copytree(ref_store, store)
    manifest = json.loads((store / MANIFEST).read_text())
    edit(manifest)
    (store / MANIFEST).write_text(json.dumps(manifest))
    before = {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    pattern = rf"^the manifest\.json of the store .* was edited or damaged \({problem}"
    with pytest.raises(CheckpointError, match=pattern):
        run_many("surface_1", STARTS, "trace", store=store, workers=0, **TRACE)
    with pytest.raises(CheckpointError, match=pattern):
        open_store(store)
    assert {p.name: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


def test_a_finished_item_whose_input_file_changed_is_run_again(tmp_path) -> None:
    """Same file name, other contents: the finished result was of other data (before: skipped
    as done, the store kept a result of the old input without a word)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i, x in enumerate(STARTS):
        np.save(folder / f"p{i}.npy", x)
    store = tmp_path / "s"
    run_many("surface_1", folder, "trace", store=store, workers=0, seed=0, **TRACE)
    np.save(folder / "p1.npy", np.array([0.6, -0.2]))
    lines: list[str] = []
    res = run_many("surface_1", folder, "trace", store=store, workers=0, seed=0, log=lines.append,
                   **TRACE)  # fmt: skip
    assert (res.skipped, res.ran, res.done) == (2, 1, 3)
    assert "1 finished item run again (input file changed)" in lines[0]
    fresh = fs.trace(fs.load_model("surface_1"), [0.6, -0.2], **TRACE)
    np.testing.assert_array_equal(open_store(store).item(1).x, fresh.points.numpy())
    res = run_many("surface_1", folder, "trace", store=store, workers=0, seed=0, **TRACE)
    assert (res.skipped, res.ran) == (3, 0)


def test_a_full_disk_keeps_the_finished_items_and_the_job_continues(tmp_path, monkeypatch):
    import errno

    real = os.fsync

    def fsync(fd: int) -> None:
        if "item-00000001" in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    store = tmp_path / "s"
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OutputFileError, match=r"No space left on device; the 1 finished item is "
                       r"kept in the store .*; once it can be written .* run the same job "
                       r"again"):  # fmt: skip
        run_many("surface_1", STARTS, "trace", store=store, workers=0, **TRACE)
    manifest = json.loads((store / MANIFEST).read_text())
    assert manifest["counts"] == {"done": 1, "failed": 0, "pending": 2}
    assert manifest["runs"][-1]["outcome"] == "failed"
    assert sorted(os.listdir(store / "items")) == [item_name(0)]  # no temporary file left
    monkeypatch.setattr(os, "fsync", real)
    res = run_many("surface_1", STARTS, "trace", store=store, workers=0, **TRACE)
    assert (res.skipped, res.ran, res.done) == (1, 2, 3)


def test_special_files_in_the_store_are_never_opened(tmp_path) -> None:
    """A named pipe as manifest.json blocked the job for ever; one as .lock was an internal
    error. Both are one line now, and nothing is written."""
    import threading

    manifest, lock = tmp_path / "a" / MANIFEST, tmp_path / "b" / ".lock"
    for fifo in (manifest, lock):
        fifo.parent.mkdir()
        os.mkfifo(fifo)

    def unblock() -> None:  # a reader stuck on the pipe returns: the test fails, not hangs
        for fifo in (manifest, lock):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    timer = threading.Timer(10.0, unblock)
    timer.start()
    try:
        with pytest.raises(CheckpointError, match=r"has a manifest\.json that is not a regular"):
            run_many("surface_1", STARTS, "trace", store=manifest.parent, workers=0, **TRACE)
        with pytest.raises(OutputFileError, match=r"holds \.lock, which is not a regular file"):
            run_many("surface_1", STARTS, "trace", store=lock.parent, workers=0, **TRACE)
    finally:
        timer.cancel()
    assert sorted(os.listdir(manifest.parent)) == [MANIFEST]
    assert sorted(os.listdir(lock.parent)) == [".lock"]


def test_item_written_after_the_last_manifest_update_is_kept(tmp_path) -> None:
    """A run killed between an item's file and the manifest: the file is taken, not redone;
    a half-written temporary file is swept."""
    store = tmp_path / "s"
    run_many("surface_1", STARTS, "trace", store=store, workers=0, **TRACE)
    manifest = json.loads((store / MANIFEST).read_text())
    manifest["items"][1]["status"] = "pending"
    manifest["items"][2]["status"] = "pending"
    (store / MANIFEST).write_text(json.dumps(manifest))
    (store / "items" / item_name(2)).unlink()
    (store / "items" / f".{item_name(2)}.abc123.tmp").write_bytes(b"half")
    ran = []
    res = run_many(
        "surface_1", STARTS, "trace", store=store, workers=0, on_item=ran.append, **TRACE
    )
    assert [e.index for e in ran] == [2] and res.done == 3
    assert sorted(os.listdir(store / "items")) == [item_name(i) for i in range(3)]


def _files(folder) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_store_of_another_job_or_version_is_refused_untouched(traced, tmp_path) -> None:
    store, _ = traced
    before = _files(store)
    with pytest.raises(CheckpointError, match=r"written with options\.step=0\.05, this job has "):
        run_many("surface_1", STARTS, "trace", store=store, workers=0, step=0.1, bounds=[-1, 1])
    with pytest.raises(CheckpointError, match=r"written with inputs\.count=3, this job has "):
        run_many("surface_1", STARTS[:2], "trace", store=store, workers=0, **TRACE)
    with pytest.raises(CheckpointError, match=r"written with model\.spec=\"surface_1\""):
        run_many("surface_2", STARTS, "trace", store=store, workers=0, **TRACE)
    assert _files(store) == before
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((store / MANIFEST).read_text())
    manifest["fiberscope_version"] = "0.0.1"
    (other / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"written by fiberscope 0\.0\.1 .* give another"):
        run_many("surface_1", STARTS, "trace", store=other, workers=0, **TRACE)
    assert os.listdir(other) == [MANIFEST]


def test_store_folder_refusals(tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputFileError, match="is a file, not a folder"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "afile", workers=0, **TRACE)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("precious")
    with pytest.raises(OutputFileError, match="is not empty and is not a fiberscope store"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "full", workers=0, **TRACE)
    with pytest.raises(OutputFileError, match="folder .*missing does not exist"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "missing" / "s", workers=0)
    assert sorted(os.listdir(tmp_path)) == ["afile", "full"]
    assert os.listdir(tmp_path / "full") == ["mine.txt"]


def test_store_locked_by_another_run(tmp_path) -> None:
    from fiberscope.jobs.store import _lock

    (tmp_path / "s").mkdir()
    fd = _lock(tmp_path / "s" / ".lock")
    try:
        with pytest.raises(OutputFileError, match=r"being written by another fiberscope run"):
            run_many("surface_1", STARTS, "trace", store=tmp_path / "s", workers=0, **TRACE)
    finally:
        os.close(fd)
    assert os.listdir(tmp_path / "s") == [".lock"]


def test_same_error_on_the_first_items_stops_the_job(tmp_path) -> None:
    starts = np.tile(STARTS[:1], (8, 1))
    with pytest.raises(InputError, match=r"the first 5 items all failed .* \(3 items not run\)"):
        run_many(
            "surface_1", starts, "trace", store=tmp_path / "s", workers=0, step=0.05,
            bounds=[0.3, 1.0],
        )  # fmt: skip
    counts = json.loads((tmp_path / "s" / MANIFEST).read_text())["counts"]
    assert counts == {"done": 0, "failed": 5, "pending": 3}


def test_bad_job_options_write_nothing(tmp_path) -> None:
    with pytest.raises(InputError, match="trace has no option 'samples'"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "s", workers=0, samples=3)
    with pytest.raises(InputError, match="unknown verb 'tracer'"):
        run_many("surface_1", STARTS, "tracer", store=tmp_path / "s", workers=0)
    with pytest.raises(InputError, match="a preimage job needs interval="):
        run_many("surface_1", STARTS, "preimage", store=tmp_path / "s", workers=0)
    with pytest.raises(InputError, match="the inputs .* do not exist"):
        run_many("surface_1", tmp_path / "nope", "trace", store=tmp_path / "s", workers=0)
    with pytest.raises(fs.ModelLoadError, match="no such model file: nope.onnx"):
        run_many("nope.onnx", STARTS, "trace", store=tmp_path / "s", workers=0, **TRACE)
    # (before: internal errors from torch, after the store was made)
    with pytest.raises(InputError, match=r"^device must be cpu, cuda, cuda:N or auto, got 'tpu'"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "s", device="tpu", **TRACE)
    with pytest.raises(InputError, match=r"^cpus_per_worker must be a positive number, got nan"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "s", cpus_per_worker=float("nan"))
    assert os.listdir(tmp_path) == []


def test_a_cuda_device_this_machine_lacks_is_refused_here(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=r"^device cuda:1: this machine has no CUDA GPU"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "s", workers=0, device="cuda:1",
                 **TRACE)  # fmt: skip
    assert os.listdir(tmp_path) == []


def test_a_finished_job_starts_no_workers(traced, monkeypatch) -> None:
    import fiberscope.jobs.run as run_module

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started for a job with nothing to do")

    monkeypatch.setattr(run_module, "_run_ray", no_ray)
    store, _ = traced
    res = run_many("surface_1", STARTS, "trace", store=store, workers=2, **TRACE)
    assert (res.done, res.skipped, res.ran) == (3, 3, 0)


def test_model_objects_run_in_this_process_only(tmp_path) -> None:
    net = fs.load_model("surface_1")
    res = run_many(net, STARTS[:1], "trace", store=tmp_path / "s", **TRACE)
    assert res.backend == "this process" and res.done == 1
    assert "weights_sha256" in open_store(tmp_path / "s").manifest["job"]["model"]
    with pytest.raises(InputError, match="a model object cannot be sent to Ray workers"):
        run_many(net, STARTS[:1], "trace", store=tmp_path / "t", workers=2, **TRACE)


def test_preimage_grid_is_inputs_times_intervals(tmp_path) -> None:
    intervals = [[0.1416094864, 0.1516017306], [0.145, 0.16]]
    res = run_many(
        "surface_1", np.array([[0.2, 0.2]]), "preimage", store=tmp_path / "s", workers=0,
        intervals=intervals, bounds=[-1, 1], levels=3, step=0.05, region=False,
    )  # fmt: skip
    assert res.done == 2
    reader = open_store(tmp_path / "s")
    assert [e["key"] for e in reader.entries] == ["row 0 interval 0", "row 0 interval 1"]
    item = reader.item(1)
    assert item.result["interval"] == [[0.145], [0.16]]
    assert set(item.columns["level"]) == {-1, 0, 1, 2}
    want = fs.preimage(
        fs.load_model("surface_1"), [0.2, 0.2], intervals[1], bounds=[-1, 1], levels=3,
        step=0.05, region=False,
    )  # fmt: skip
    np.testing.assert_array_equal(item.x[item.columns["level"] == 1], want.traces[1].points)


def test_without_ray_the_job_runs_here_and_says_so(tmp_path, monkeypatch) -> None:
    import fiberscope.jobs.ray_backend as rb

    monkeypatch.setattr(rb, "ray_available", lambda: False)
    lines = []
    res = run_many(
        "surface_1", STARTS[:1], "trace", store=tmp_path / "s", log=lines.append, **TRACE
    )
    assert res.backend == "this process"
    assert lines[0] == (
        "Ray is not installed: pip install 'fiberscope[ray]' to run on several workers; "
        "running in this process"
    )
    with pytest.warns(RuntimeWarning, match="Ray is not installed"):
        run_many("surface_1", STARTS[:1], "trace", store=tmp_path / "s", **TRACE)
    with pytest.raises(InputError, match=r"Ray is not installed: pip install 'fiberscope\[ray\]'"):
        run_many("surface_1", STARTS[:1], "trace", store=tmp_path / "t", ray_address="auto")


def test_unreachable_cluster_is_one_line(tmp_path) -> None:
    with pytest.raises(InputError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1 \("):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "s", ray_address="127.0.0.1:1")
    with pytest.raises(InputError, match="the port 'x' is not a number"):
        run_many("surface_1", STARTS, "trace", store=tmp_path / "s", ray_address="head:x")
    assert os.listdir(tmp_path) == []


def test_worker_plan() -> None:
    from fiberscope.jobs.ray_backend import plan_workers

    assert plan_workers(None, 8, 0, None, None) == (8, 1.0, 0.0)
    assert plan_workers(None, 8, 0, 2, None) == (4, 2.0, 0.0)
    assert plan_workers(None, 16, 2, None, None) == (2, 1.0, 1.0)  # one worker per GPU
    assert plan_workers(4, 16, 2, None, None) == (4, 1.0, 0.5)  # GPUs shared
    assert plan_workers(3, 16, 1, None, None) == (3, 1.0, 0.33)
    assert plan_workers(2, 16, 2, None, 0) == (2, 1.0, 0.0)  # CPU workers on a GPU cluster


def test_workers_that_do_not_fit_are_refused() -> None:
    from fiberscope.jobs.ray_backend import check_fit

    check_fit(2, 1.0, 0.0, 2.0, 0.0)
    with pytest.raises(InputError, match=r"3 workers of 1 CPU each need 3 CPUs but the Ray "):
        check_fit(3, 1.0, 0.0, 2.0, 0.0)
    with pytest.raises(InputError, match=r"need 2 GPUs but the Ray cluster has 1; ask for fewer"):
        check_fit(2, 1.0, 1.0, 8.0, 1.0)
