"""``progress=True``: a progress bar (terminal/notebook) or rate-limited lines on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


class ProgressLines:
    """Plain progress lines on stderr, at most one every ``every`` seconds.

    Parameters
    ----------
    label : str
        What is running.
    every : float
        Seconds between lines.
    stream : file, optional
        Where to write (stderr).
    """

    def __init__(self, label: str, every: float = 2.0, stream: Any = None) -> None:
        self.label = label
        self.every = every
        self.stream = stream if stream is not None else sys.stderr
        self.last = 0.0
        self.start = time.monotonic()
        self.final = False

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` steps (printed when due, and once at the end)."""
        now = time.monotonic()
        end = total > 0 and done >= total
        if end and self.final:
            return
        if not end and now - self.last < self.every:
            return
        self.last = now
        self.final = end
        pct = f" ({100.0 * done / total:.0f}%)" if total > 0 else ""
        print(
            f"{self.label}: {done}/{total} steps{pct}, {now - self.start:.1f} s",
            file=self.stream,
            flush=True,
        )


class ProgressBar:
    """A rich progress bar on stderr; closed by :meth:`close`."""

    def __init__(self, label: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.task = self.bar.add_task(label, total=None)
        self.bar.start()

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` steps."""
        self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        """Stop drawing."""
        self.bar.stop()


def progress_callback(
    progress: bool | Callable[[int, int], None] | None, label: str
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """Turn a verb's ``progress=`` argument into a callback and a closer.

    Parameters
    ----------
    progress : bool, callable or None
        ``True`` for a bar (a terminal or a notebook) or plain lines on stderr (anything else);
        a callable ``progress(done, total)``; None/False for nothing.
    label : str
        What is running.

    Returns
    -------
    callback : callable or None
        What the engine calls.
    close : callable
        Call when the run ends.
    """
    if progress is None or progress is False:
        return None, lambda: None
    if progress is True:
        interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
        if interactive:
            bar = ProgressBar(label)
            return bar, bar.close
        return ProgressLines(label), lambda: None
    if not callable(progress):
        from ..errors import InputError

        raise InputError(
            f"progress must be True, False or a callable progress(done, total), got "
            f"{type(progress).__name__}"
        )
    return progress, lambda: None
