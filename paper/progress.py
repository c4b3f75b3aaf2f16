"""Progress lines on stderr for long runs, in a terminal or not.

:class:`Reporter` prints a line when a stage starts, rate-limited lines while a stage counts
its work (``update``), and a heartbeat line from a background thread whenever nothing was
printed for a few seconds, so a log never goes quiet during training, a long trace or the
figures. Lines go through rich without markup or highlighting (a message is printed as given).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["Reporter"]


class Reporter:
    """Rate-limited progress lines with a heartbeat.

    Parameters
    ----------
    console : rich.console.Console, optional
        Where to print (default: a rich console on stderr). Anything with a rich-style
        ``print(text, markup=..., highlight=...)`` works.
    every : float
        Least seconds between two ``update`` lines of one stage.
    heartbeat : float
        A line is printed at least this often while the reporter is running (0 disables the
        background thread).
    clock : callable
        Time source (seconds).
    """

    def __init__(
        self,
        console: Any = None,
        *,
        every: float = 2.0,
        heartbeat: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, soft_wrap=True)
        self.console = console
        self.every = float(every)
        self.heartbeat = float(heartbeat)
        self.clock = clock
        self.t0 = clock()
        self.last_print = self.t0
        self.last_update = -float("inf")
        self.stage_name = ""
        #: Text put before every stage name (e.g. the experiment being run).
        self.prefix = ""
        self.count: tuple[int, int, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ printing

    def _emit(self, text: str) -> None:
        with self._lock:
            now = self.clock()
            self.console.print(
                f"[{now - self.t0:7.1f} s] {text}", markup=False, highlight=False, emoji=False
            )
            self.last_print = now

    def stage(self, message: str) -> None:
        """Start a stage and print its line.

        Parameters
        ----------
        message : str
            What is being done.
        """
        self.stage_name = self.prefix + message.strip()
        self.count = None
        self.last_update = -float("inf")
        self._emit(self.stage_name)

    def say(self, message: str) -> None:
        """Print a line without changing the stage.

        Parameters
        ----------
        message : str
            Text.
        """
        self._emit(message)

    def update(self, done: int, total: int, unit: str = "steps") -> None:
        """Report the count of the current stage; printed at most every ``every`` seconds.

        Parameters
        ----------
        done, total : int
            Work done and planned.
        unit : str
            What is counted.
        """
        self.count = (int(done), int(total), unit)
        now = self.clock()
        if now - self.last_update >= self.every or done >= total:
            self.last_update = now
            self._emit(f"    {self.stage_name}: {self._count_text()}")

    def counter(self, unit: str = "steps") -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for fiberscope's verbs.

        Parameters
        ----------
        unit : str
            What is counted.

        Returns
        -------
        callable
            Calls :meth:`update`.
        """

        def cb(done: int, total: int) -> None:
            self.update(done, total, unit)

        return cb

    def _count_text(self) -> str:
        if self.count is None:
            return "working"
        done, total, unit = self.count
        pct = f" ({100.0 * done / total:.0f} %)" if total > 0 else ""
        return f"{done:,} of {total:,} {unit}{pct}"

    # ------------------------------------------------------------------ heartbeat

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat / 2)):
            if self.clock() - self.last_print >= self.heartbeat:
                self._emit(
                    f"    {self.stage_name or 'working'}: still running ({self._count_text()})"
                )

    def __enter__(self) -> Reporter:
        if self.heartbeat > 0:
            self._thread = threading.Thread(target=self._beat, name="paper-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
