"""Runs of the app: one at a time, on a worker thread, with progress and cancellation.

A request starts a run and returns at once; the page polls the run's state (progress, then
the result or a one-line message). The library's verbs are called with ``progress=`` and
``stop=``; pressing Cancel sets the stop flag, which they poll between steps, and they raise
:class:`~fiberscope.errors.Interrupted` (with the partial result, if any). A cancelled run may
keep a partial result for the page (:class:`RunCancelled` ``result=``).
"""

from __future__ import annotations

import itertools
import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FiberscopeError

log = logging.getLogger("fiberscope.app")

#: Finished runs kept (with their files); older ones are forgotten.
KEEP_RUNS = 20
#: Runs whose in-memory data (walk samples, for the frames) is kept.
KEEP_DATA = 4


class AppError(FiberscopeError):
    """A request the app refuses; ``status`` is the HTTP status the page receives."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


#: What the page says of a cancelled run that kept nothing.
NOTHING_KEPT = "cancelled: nothing was kept from this run"


class RunCancelled(Exception):
    """The run was cancelled (raised by :meth:`RunContext.check`, or by a piece of work that
    caught the library's :class:`~fiberscope.errors.Interrupted`).

    Parameters
    ----------
    message : str
        What the page says.
    result : dict, optional
        A partial result for the page (the run's files stay offered).
    """

    def __init__(self, message: str = NOTHING_KEPT, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


@dataclass
class Run:
    """One piece of work and what the page may ask about it."""

    id: str
    kind: str
    model: str
    label: str
    folder: Path
    state: str = "running"  # running | done | failed | cancelled
    done: int = 0
    total: int = 0
    message: str = ""
    result: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    seconds: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)

    def status(self) -> dict[str, Any]:
        """The run as the page sees it (JSON-ready)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "label": self.label,
            "state": self.state,
            "progress": {"done": self.done, "total": self.total},
            "message": self.message,
            "seconds": self.seconds
            if self.seconds is not None
            else time.perf_counter() - self.started,
        }
        if self.state == "done" or (self.state == "cancelled" and self.result is not None):
            out["result"] = self.result
            out["files"] = sorted(self.files)
        return out


class RunContext:
    """What a piece of work gets: its folder, a progress callback and the stop flag."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self.folder = run.folder

    def progress(self, done: int, total: int) -> None:
        """Record progress ``(done, total)`` (the library's ``progress=`` callback)."""
        self._run.done, self._run.total = int(done), int(total)

    def stop(self) -> bool:
        """True once the run was cancelled (the library's ``stop=`` callback)."""
        return self._run.stop_event.is_set()

    def check(self) -> None:
        """Raise :class:`RunCancelled` if the run was cancelled (between stages)."""
        if self.stop():
            raise RunCancelled()

    def add_file(self, path: Path) -> None:
        """Offer ``path`` (inside the run's folder) for download."""
        self._run.files[path.name] = path

    def keep(self, **data: Any) -> None:
        """Keep objects for later requests about this run (e.g. walk samples)."""
        self._run.data.update(data)


Work = Callable[[RunContext], dict[str, Any]]


class Runner:
    """Starts runs on a worker thread, one at a time, and keeps the last few.

    Parameters
    ----------
    workdir : pathlib.Path, optional
        Where runs write their files (a fresh temporary folder by default, removed by
        :meth:`close`).
    """

    def __init__(self, workdir: Path | None = None) -> None:
        self._own_dir = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="fiberscope-app-"))
        self.workdir = workdir
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._current: Run | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._session = secrets.token_hex(3)

    # ------------------------------------------------------------------ starting
    def start(self, kind: str, model: str, label: str, work: Work) -> Run:
        """Start ``work`` on the worker thread.

        Raises
        ------
        AppError
            (409) when a run is already going.
        """
        with self._lock:
            current = self._current
            if current is not None and current.state == "running":
                raise AppError(
                    f"a run is already going ({current.label}, "
                    f"{_fraction(current)}): wait for it to finish or press Cancel",
                    status=409,
                )
            run_id = f"{self._session}-{next(self._ids)}"
            folder = self.workdir / run_id
            folder.mkdir(parents=True)
            run = Run(id=run_id, kind=kind, model=model, label=label, folder=folder)
            self._runs[run_id] = run
            self._current = run
            self._forget_old()
            thread = threading.Thread(
                target=self._work, args=(run, work), name=f"fiberscope-run-{run_id}", daemon=True
            )
            self._thread = thread
        log.info("run %s started: %s", run.id, label)
        thread.start()
        return run

    def _work(self, run: Run, work: Work) -> None:
        ctx = RunContext(run)
        try:
            result = work(ctx)
            if run.stop_event.is_set():
                raise RunCancelled()
        except RunCancelled as exc:
            run.result = exc.result
            self._finish(run, "cancelled", exc.message)
        except KeyboardInterrupt:
            # the library's Interrupted (a KeyboardInterrupt) after stop= returned True, from
            # work that keeps no partial result
            if run.stop_event.is_set():
                self._finish(run, "cancelled", NOTHING_KEPT)
            else:  # pragma: no cover - a real Ctrl-C reaches the main thread, not this one
                self._finish(run, "failed", "interrupted")
        except FiberscopeError as exc:
            self._finish(run, "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
            text = " ".join(str(exc).split())[:300]
            log.error("run %s: internal error: %s: %s", run.id, type(exc).__name__, text)
            self._finish(run, "failed", f"internal error: {type(exc).__name__}: {text}")
        except BaseException as exc:  # SystemExit & co. from user code: never a run that
            text = " ".join(str(exc).split())[:300]  # stays "running" and blocks the app
            self._finish(run, "failed", f"the run ended with {type(exc).__name__}: {text}")
        else:
            run.result = result
            self._finish(run, "done", "")

    def _finish(self, run: Run, state: str, message: str) -> None:
        run.seconds = time.perf_counter() - run.started
        run.message = message
        run.state = state
        if state == "done":
            log.info("run %s done in %.2f s", run.id, run.seconds)
        elif state == "cancelled":
            log.info("run %s cancelled after %.2f s", run.id, run.seconds)
        else:
            log.info("run %s %s: %s", run.id, state, message)

    def _forget_old(self) -> None:
        while len(self._runs) > KEEP_RUNS:
            _, old = self._runs.popitem(last=False)
            shutil.rmtree(old.folder, ignore_errors=True)
        # big objects (walk samples) are kept for the last few runs only; older runs keep
        # their numbers and files
        for old in list(self._runs.values())[:-KEEP_DATA]:
            old.data.clear()

    # ------------------------------------------------------------------ asking
    def get(self, run_id: str) -> Run:
        """The run ``run_id``.

        Raises
        ------
        AppError
            (404) for a run this server does not know: it was restarted, or the run is old.
        """
        run = self._runs.get(run_id)
        if run is None:
            raise AppError(
                f"run {run_id} is not known to this server: the server was restarted (or the "
                "run is too old), so its result is gone; start it again",
                status=404,
            )
        return run

    def cancel(self, run_id: str) -> Run:
        """Ask the run to stop (it stops at its next step)."""
        run = self.get(run_id)
        if run.state == "running":
            run.stop_event.set()
            log.info("run %s: cancel requested", run.id)
        return run

    def current(self) -> Run | None:
        """The run going now, if any."""
        run = self._current
        return run if run is not None and run.state == "running" else None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the worker thread (tests and shut-down)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel the run going (if any), wait for it, and remove the runs' files."""
        run = self.current()
        if run is not None:
            run.stop_event.set()
            log.info("shutting down: cancelling run %s", run.id)
        self.wait(timeout)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _fraction(run: Run) -> str:
    if run.total:
        return f"{run.done}/{run.total}"
    return "starting"
