"""``fiberscope.run_many``: one verb on every item of a dataset, in this process or on Ray."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FiberscopeError, InputError, Interrupted, OutputFileError
from .inputs import ItemReadError
from .spec import Job, ModelSpec, build_job, check_seed, random_seed
from .store import Entry, Store, check_store_path, precheck, read_manifest
from .worker import ItemRunner, Outcome, Task, one_line, worker_name

#: A job stops early when this many items failed first, all with the same error.
SAME_ERROR_LIMIT = 5


@dataclass
class JobResult:
    """What a run of a job did.

    Attributes
    ----------
    store : pathlib.Path
        The store folder.
    total : int
        Items in the job.
    done : int
        Items finished (including those finished by earlier runs).
    failed : list of dict
        ``{"index", "key", "error"}`` of every failed item.
    pending : int
        Items not done (an interrupted run).
    skipped : int
        Items that earlier runs had finished (not run again).
    ran : int
        Items this run computed.
    retried : int
        Item attempts repeated because a worker died.
    backend : str
        Where the items ran.
    workers : int
        Workers used (1 in this process).
    seconds : float
        Wall time of this run.
    startup : float
        Of which starting the workers (Ray, actors, the model loaded), or loading the model
        in this process.
    """

    store: Path
    total: int
    done: int
    failed: list[dict[str, Any]]
    pending: int
    skipped: int
    ran: int
    retried: int
    backend: str
    workers: int
    seconds: float
    startup: float = 0.0

    @property
    def complete(self) -> bool:
        """Every item is done."""
        return self.done == self.total

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "store": str(self.store),
            "items": self.total,
            "done": self.done,
            "failed": len(self.failed),
            "pending": self.pending,
            "skipped (done before)": self.skipped,
            "computed now": self.ran,
            "retried after a worker died": self.retried,
            "backend": self.backend,
            "seconds": round(self.seconds, 3),
            "of which starting (model, workers)": round(self.startup, 3),
        }


class _Lines:
    """``progress=True``: one line on stderr every few seconds."""

    def __init__(self, label: str, every: float = 2.0) -> None:
        self.label, self.every, self.last, self.start = label, every, 0.0, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.every:
            return
        self.last = now
        print(f"{self.label}: {done}/{total} items, {now - self.start:.1f} s", file=sys.stderr)


def _backend_choice(
    model: Any, workers: int | None, ray_address: str | None, log: Callable[[str], None] | None
) -> str:
    """``"process"`` or ``"ray"``."""
    from .ray_backend import RAY_MISSING, ray_available

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise InputError(f"workers must be an integer (0: in this process), got {workers!r}")
    if workers is not None and workers < 0:
        raise InputError(f"workers must be 0 (in this process) or more, got {workers}")
    if workers == 0:
        if ray_address is not None:
            raise InputError("workers=0 runs in this process; drop the Ray address or give workers")
        return "process"
    if not isinstance(model, (str, Path)):
        if ray_address is not None or workers:
            raise InputError(
                "a model object cannot be sent to Ray workers (they load models from specs, "
                "never from pickles); give a spec (bundled name, model file, module:attr) or "
                "run in this process with workers=0"
            )
        return "process"
    if ray_address is not None:
        return "ray"
    if not ray_available():
        message = f"{RAY_MISSING} to run on several workers; running in this process"
        if log is not None:
            log(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        return "process"
    return "ray"


def _positive(value: Any, name: str, *, integer: bool = False, zero: bool = False) -> Any:
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if ok and not integer and not math.isfinite(value):
        ok = False  # nan passes every comparison below
    if isinstance(value, bool) or not ok or value < 0 or (value == 0 and not zero):
        kind = "integer" if integer else "number"
        sign = "non-negative" if zero else "positive"
        raise InputError(f"{name} must be a {sign} {kind}, got {value!r}")
    return value


_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?|auto")


def _check_device(device: Any, *, here: bool) -> Any:
    """Refuse a device name torch would choke on, and (for a job in this process) a CUDA
    device this machine does not have, before any work."""
    if device is None:
        return None
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise InputError(f"device must be cpu, cuda, cuda:N or auto, got {device!r}")
    if here and device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            have = f"has {count} CUDA GPU{'s' * (count != 1)}" if count else "has no CUDA GPU"
            raise InputError(
                f"device {device}: this machine {have} that torch can use; use device = "
                '"cpu" or "auto" (a GPU when there is one)'
            )
    return device


def run_many(
    model: Any,
    inputs: Any,
    verb: str = "walk",
    *,
    store: str | Path,
    seed: int | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    format: str | None = None,
    arch: str | None = None,
    shape: Any = None,
    device: str | None = None,
    threads: int | None = None,
    cpus_per_worker: float | None = None,
    gpus_per_worker: float | None = None,
    retries: int = 2,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    on_item: Callable[[Entry], None] | None = None,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> JobResult:
    """Run a verb on every item of a dataset; write each item's result into one store.

    Each item (one input; for ``preimage`` with ``intervals=``, one input and one interval) is
    one call of the verb, whose own batch holds the item's chains (walk), branches (trace) or
    levels (preimage). Items run in this process or on Ray workers that load the model once;
    results go into ``store`` as they arrive. Running the same job again continues it: items
    already done are skipped, the others (pending, interrupted or failed) are run.

    Parameters
    ----------
    model : str, pathlib.Path or callable
        A model spec (bundled name, model file, ``module:attr`` or ``file.py:attr``), which
        every worker loads itself; or a model object (this process only).
    inputs : str, pathlib.Path or array
        A folder of ``.npy``/``.png`` files (one item each, sorted by name), one ``.npy`` array
        ``(N, *shape)``, or an array / list of arrays in memory.
    verb : {"walk", "trace", "preimage"}
        What to run on every item.
    store : str or pathlib.Path
        The store folder (new, empty, or the store of an earlier run of the same job).
    seed : int, optional
        The job's seed; item ``i`` gets :func:`~fiberscope.jobs.item_seed` ``(seed, i)``.
        Default: the store's seed when continuing, else a random one (recorded).
    workers : int, optional
        0 runs in this process. Otherwise the number of Ray workers (default: one per CPU of
        the cluster, or per GPU on a GPU cluster). Without Ray installed, jobs run in this
        process (with a warning).
    ray_address : str, optional
        ``"auto"`` (the cluster this machine belongs to), ``HOST:PORT`` or
        ``ray://HOST:10001``; default: this process's Ray if it has one, else a local Ray
        started for this job.
    format, arch : str, optional
        Model format and architecture (as :func:`fiberscope.load_model`).
    shape : sequence of int, optional
        The shape every item must have (default: the most common one).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"auto"``; default: CPU in this process (or the device of a
        model object), the GPU Ray assigns on Ray workers that have one.
    threads : int, optional
        Torch threads in this process (Ray workers use as many as their CPUs).
    cpus_per_worker, gpus_per_worker : float, optional
        Resources every Ray worker asks for (default 1 CPU; a share of the GPUs when the
        cluster has some).
    retries : int
        More tries for an item whose worker died while running it.
    progress : bool or callable, optional
        True for a line on stderr every few seconds, or ``progress(done, total)`` (items).
    stop : callable, optional
        Polled between items (and inside each item's verb): True interrupts the job.
    on_item : callable, optional
        ``on_item(entry)`` after every item is recorded (status, key, worker, seconds).
    log : callable, optional
        ``log(line)`` for notes (where the job runs, what is skipped).
    **options
        The verb's options (``samples``, ``chains``, ``step``, ``bounds``, ``output``, ...;
        preimage: ``interval=[a, b]`` or ``intervals=[[a, b], ...]``).

    Returns
    -------
    JobResult
        Counts, failed items with their errors, backend, time.

    Raises
    ------
    InputError
        A bad option, inputs that cannot be listed, Ray missing for an address, an unreachable
        cluster.
    CheckpointError
        The store was written by another fiberscope version or for another job.
    OutputFileError
        The store folder cannot be used (a file, not empty, locked by another run).
    Interrupted
        Ctrl-C or ``stop``: ``.result`` is the :class:`JobResult` so far; the store is
        consistent and running the job again continues it.

    Examples
    --------
    >>> import numpy as np, fiberscope as fs
    >>> from fiberscope.jobs import open_store
    >>> starts = np.array([[0.25, 0.25], [0.5, 0.1]])
    >>> res = fs.run_many("surface_1", starts, "trace", store="out", step=0.05, workers=0)
    >>> res.done, open_store("out").item(0).x.shape
    (2, (44, 2))
    """
    t0 = time.perf_counter()
    retries = _positive(retries, "retries", integer=True, zero=True)
    threads = _positive(threads, "threads", integer=True)
    cpus_per_worker = _positive(cpus_per_worker, "cpus_per_worker")
    gpus_per_worker = _positive(gpus_per_worker, "gpus_per_worker", zero=True)
    device = _check_device(device, here=False)
    store_path = check_store_path(store)
    if seed is None:
        old = read_manifest(store_path) if store_path.exists() else None
        old_seed = (old or {}).get("job", {}).get("seed")
        seed = old_seed if isinstance(old_seed, int) else random_seed()
    job = build_job(model, inputs, verb, options, seed=check_seed(seed), shape=shape,
                    format=format, arch=arch)  # fmt: skip
    _check_apart(store_path, job)
    precheck(store_path, job)
    backend = _backend_choice(model, workers, ray_address, log)
    if backend == "ray" and _all_done(store_path, len(job)):
        backend = "process"  # nothing to run: no workers to start
    if progress is True:
        progress = _Lines(f"run ({verb})")
    elif progress is False:
        progress = None
    if backend == "process":
        _check_device(device, here=True)  # (on Ray the workers' GPUs count, not this machine's)
        return _run_local(job, store_path, t0, device, threads, stop, progress, on_item, log)
    return _run_ray(job, store_path, t0, workers, ray_address, device, cpus_per_worker,
                    gpus_per_worker, retries, stop, progress, on_item, log)  # fmt: skip


def _all_done(store: Path, total: int) -> bool:
    """The store (already checked to be this job's) says every item is done."""
    manifest = read_manifest(store) if store.is_dir() else None
    items = (manifest or {}).get("items", [])
    return len(items) == total and all(e.get("status") == "done" for e in items)


def _check_apart(store: Path, job: Job) -> None:
    """The store must not be the inputs, nor hold them."""
    source = job.inputs.source
    if source == "<array>":
        return
    src = Path(source)
    if src == store or store in src.parents:
        raise InputError(
            f"the store {store} would hold the inputs {src}; give a store folder of its own"
        )


class _Tracker:
    """Records outcomes in the store and reports progress (shared by both backends)."""

    def __init__(
        self,
        store: Store,
        progress: Callable[[int, int], None] | None,
        on_item: Callable[[Entry], None] | None,
    ) -> None:
        self.store = store
        self.progress = progress
        self.on_item = on_item
        self.ran = 0
        self.retried = 0
        self.first_errors: list[str] = []
        self.successes = 0
        self.total = len(store.entries)
        self.done = sum(e.status == "done" for e in store.entries)

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    def record(self, outcome: Outcome) -> None:
        if outcome.ok:
            entry = self.store.write_item(outcome)
            self.done += 1
            self.successes += 1
        else:
            entry = self.store.fail_item(
                outcome.index, outcome.error or "failed", seconds=outcome.seconds,
                worker=outcome.worker,
            )  # fmt: skip
            if not self.successes:
                self.first_errors.append(outcome.error or "")
        self.ran += 1
        self.store.flush()
        if self.on_item is not None:
            self.on_item(entry)
        self.report()

    def fail(self, index: int, error: str, worker: str | None = None) -> None:
        self.record(Outcome(index, False, None, None, error, 0.0, worker or "driver"))

    def hopeless(self, remaining: int) -> str | None:
        """The shared error when the first items all failed the same way (and more remain)."""
        errs = self.first_errors
        if remaining and len(errs) >= SAME_ERROR_LIMIT and len(set(errs)) == 1:
            return errs[0]
        return None


def _task(job: Job, index: int, store: Store) -> Task:
    source = job.input_index(index)
    x = job.inputs.read(source)
    store.input_digests[index] = job.inputs.digest(source)  # recorded with the result
    return Task(index, x, job.call_options(index))


def _write_failed(store: Store, exc: OutputFileError) -> OutputFileError:
    """The store could not be written: keep what is finished, and say how to go on."""
    with contextlib.suppress(FiberscopeError, OSError):
        store.flush(force=True, finished="failed")
    done = store.counts()["done"]
    return OutputFileError(
        f"{exc}; {'the 1 finished item is' if done == 1 else f'the {done} finished items are'} "
        f"kept in the store {store.path}; once it can be written (free space, permissions), "
        "run the same job again to continue"
    )


def _read_failure(job: Job, index: int, exc: ItemReadError) -> str:
    return str(exc)


def _result(job: Job, store: Store, tracker: _Tracker, t0: float, backend: str, workers: int,
            skipped: int, startup: float) -> JobResult:  # fmt: skip
    counts = store.counts()
    failed = [
        {"index": e.index, "key": e.key, "error": e.error}
        for e in store.entries
        if e.status == "failed"
    ]
    return JobResult(
        store.path, len(job), counts.get("done", 0), failed, counts.get("pending", 0), skipped,
        tracker.ran, tracker.retried, backend, workers, time.perf_counter() - t0, startup,
    )  # fmt: skip


def _stop_early(tracker: _Tracker, remaining: int, store: Store) -> None:
    shared = tracker.hopeless(remaining)
    if shared is not None:
        store.flush(force=True, finished="stopped")
        raise InputError(
            f"the first {len(tracker.first_errors)} items all failed with the same error, so "
            f"the job stopped ({remaining} items not run): {shared}"
        )


def _run_local(
    job: Job,
    store_path: Path,
    t0: float,
    device: str | None,
    threads: int | None,
    stop: Callable[[], bool] | None,
    progress: Callable[[int, int], None] | None,
    on_item: Callable[[Entry], None] | None,
    log: Callable[[str], None] | None,
) -> JobResult:
    backend = "this process"

    def load() -> ItemRunner:
        return ItemRunner(job.model, job.verb, device=device, threads=threads)

    # the model is loaded before the store is touched (a model that fails writes nothing)
    runner = None if _all_done(store_path, len(job)) else load()
    startup = time.perf_counter() - t0
    with Store(store_path, job, backend) as store:
        todo = store.pending()
        if todo and runner is None:  # the manifest said done, but item files are missing
            runner = load()
        skipped = len(job) - len(todo)
        if log is not None:
            _say_start(log, job, store, skipped, backend)
        tracker = _Tracker(store, progress, on_item)
        tracker.report()
        try:
            for k, index in enumerate(todo):
                if stop is not None and stop():
                    raise Interrupted(None, None)
                try:
                    task = _task(job, index, store)
                except ItemReadError as exc:
                    tracker.fail(index, _read_failure(job, index, exc), worker_name())
                else:
                    assert runner is not None
                    tracker.record(runner.run(task, stop=stop))
                _stop_early(tracker, len(todo) - k - 1, store)
        except KeyboardInterrupt:
            store.flush(force=True, finished="interrupted")
            part = _result(job, store, tracker, t0, backend, 1, skipped, startup)
            raise Interrupted(part, None) from None
        except OutputFileError as exc:  # a full disk, a store made read-only
            raise _write_failed(store, exc) from None
        store.flush(force=True, finished="finished")
        return _result(job, store, tracker, t0, backend, 1, skipped, startup)


def _say_start(
    log: Callable[[str], None], job: Job, store: Store, skipped: int, where: str
) -> None:
    parts = [f"{job.verb} on {len(job)} items in {where}"]
    if skipped:
        parts.append(f"{skipped} done before (skipped)")
    if store.adopted:
        parts.append(f"{store.adopted} found finished in the store")
    if store.changed:
        n = len(store.changed)
        parts.append(f"{n} finished item{'s' if n != 1 else ''} run again (input file changed)")
    if job.inputs.ignored:
        n = job.inputs.ignored
        files = f"{n} file{'s' if n != 1 else ''}"
        parts.append(f"{files} in the inputs folder not .npy/.png (ignored)")
    log("; ".join(parts))


def _run_ray(
    job: Job,
    store_path: Path,
    t0: float,
    workers: int | None,
    ray_address: str | None,
    device: str | None,
    cpus_per_worker: float | None,
    gpus_per_worker: float | None,
    retries: int,
    stop: Callable[[], bool] | None,
    progress: Callable[[int, int], None] | None,
    on_item: Callable[[Entry], None] | None,
    log: Callable[[str], None] | None,
) -> JobResult:
    from .ray_backend import (
        RayPool,
        check_fit,
        connect,
        plan_workers,
        resources,
        worker_failure_line,
    )

    assert isinstance(job.model, ModelSpec)
    payload = job.model.payload()
    local_cpus = None
    if ray_address is None and workers:  # a local Ray has room for the workers asked for
        wanted = math.ceil(workers * (cpus_per_worker or 1))
        local_cpus = max(os.cpu_count() or 1, wanted)
    conn = connect(ray_address, local_cpus)
    try:
        cpus, gpus = resources(conn.ray)
        n, cpw, gpw = plan_workers(workers, cpus, gpus, cpus_per_worker, gpus_per_worker)
        check_fit(n, cpw, gpw, cpus, gpus)
        what = f"{n} Ray worker{'s' if n != 1 else ''} ({cpw:g} CPU"
        what += f", {gpw:g} GPU each)" if gpw else " each)"
        backend = f"{what} on {conn.description}"
        pool = RayPool(conn, payload, job.verb, n, cpw, gpw, device)
        try:
            pool.check_started()
            startup = time.perf_counter() - t0
            with Store(store_path, job, backend) as store:
                todo = deque(store.pending())
                skipped = len(job) - len(todo)
                if log is not None:
                    _say_start(log, job, store, skipped, backend)
                tracker = _Tracker(store, progress, on_item)
                tracker.report()
                crashes: dict[int, int] = {}

                def next_task() -> Task | None:
                    while todo:
                        index = todo.popleft()
                        try:
                            return _task(job, index, store)
                        except ItemReadError as exc:
                            tracker.fail(index, _read_failure(job, index, exc), worker_name())
                    return None

                try:
                    while todo or pool.inflight:
                        if stop is not None and stop():
                            raise Interrupted(None, None)
                        pool.submit(next_task)
                        for kind, index, got in pool.wait(timeout=0.2):
                            if kind == "done":
                                tracker.record(got)
                            elif kind == "requeue":  # queued on a worker that died
                                todo.appendleft(index)
                            elif kind == "error":
                                tracker.fail(index, one_line(got))
                            else:
                                crashes[index] = crashes.get(index, 0) + 1
                                if crashes[index] > retries:  # (recording counts the try)
                                    tracker.fail(
                                        index,
                                        f"the worker running it died {crashes[index]} times "
                                        f"(last: {worker_failure_line(got)})",
                                    )
                                else:
                                    store.entries[index].attempts += 1
                                    tracker.retried += 1
                                    todo.appendleft(index)
                        _stop_early(tracker, len(todo), store)
                except KeyboardInterrupt:
                    store.flush(force=True, finished="interrupted")
                    raise Interrupted(
                        _result(job, store, tracker, t0, backend, n, skipped, startup), None
                    ) from None
                except OutputFileError as exc:  # a full disk, a store made read-only
                    raise _write_failed(store, exc) from None
                store.flush(force=True, finished="finished")
                return _result(job, store, tracker, t0, backend, n, skipped, startup)
        finally:
            pool.close()
    finally:
        conn.close()


__all__ = ["JobResult", "run_many"]
