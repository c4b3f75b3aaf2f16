"""Shared helpers of the benchmark scripts: timing, machine facts, tables.

Every figure is the median of several runs with its min and max. Cases that are compared run
side by side in one process, interleaved round by round (round ``r`` runs every case once, in
a rotating order), so a change in the machine's load hits all of them alike. Each run records
its wall time (``time.perf_counter``) and its CPU time (``time.process_time``, this process's
user + system time): on a shared, loaded machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Sample:
    """Wall and CPU seconds of the runs of one case (plus whatever the runs returned)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    out: Any = None

    def add(self, wall: float, cpu: float) -> None:
        """Record one run."""
        self.wall.append(wall)
        self.cpu.append(cpu)

    def scaled(self, factor: float) -> Sample:
        """The same runs with every time multiplied by ``factor`` (e.g. per step)."""
        return Sample([w * factor for w in self.wall], [c * factor for c in self.cpu], self.out)

    @property
    def wall_med(self) -> float:
        """Median wall time."""
        return statistics.median(self.wall)

    @property
    def cpu_med(self) -> float:
        """Median CPU time."""
        return statistics.median(self.cpu)


@dataclass
class Measured:
    """A case's own measurement of itself (e.g. a C++ driver timing its loop inside a child
    process): :func:`interleaved` records these times instead of the call's."""

    wall: float
    cpu: float
    out: Any = None


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of one call of ``fn`` and its result."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, c1 - c0, out


def interleaved(
    cases: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, Sample]:
    """Run every case ``repeats`` times, round by round in a rotating order.

    Parameters
    ----------
    cases : dict
        Name -> zero-argument callable.
    repeats : int
        Timed rounds.
    warmup : int
        Untimed rounds first.

    Returns
    -------
    dict
        Name -> :class:`Sample` (``out`` is the last result). A case that returns a
        :class:`Measured` is recorded with the times it reports.
    """
    names = list(cases)
    out = {k: Sample() for k in names}
    for _ in range(warmup):
        for k in names:
            res = cases[k]()
            out[k].out = res.out if isinstance(res, Measured) else res
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for k in order:
            w, c, res = timed(cases[k])
            if isinstance(res, Measured):
                w, c, res = res.wall, res.cpu, res.out
            out[k].add(w, c)
            out[k].out = res
    return out


class StepClock:
    """A ``stop=`` callable that timestamps every iteration of an engine run.

    The engine polls ``stop()`` once before every iteration, so the differences between
    consecutive polls are the times of whole iterations (proposal, correction, judgement,
    recording), without the verb's set-up and result building.
    """

    def __init__(self) -> None:
        self.created = (time.perf_counter(), time.process_time())
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self) -> bool:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())
        return False

    def setup(self) -> tuple[float, float]:
        """Wall and CPU seconds from the clock's creation to the first iteration."""
        return self.wall[0] - self.created[0], self.cpu[0] - self.created[1]

    def per_iteration(self, skip: int = 0) -> tuple[float, float, int]:
        """Mean wall and CPU seconds per iteration after the first ``skip`` ones, and count."""
        k = len(self.wall) - 1 - skip
        if k < 1:
            raise RuntimeError("too few iterations to time")
        w = (self.wall[-1] - self.wall[skip]) / k
        c = (self.cpu[-1] - self.cpu[skip]) / k
        return w, c, k


def load() -> float:
    """One-minute load average (NaN where unknown)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def header(title: str, command: str, load_start: float, extra: str = "") -> list[str]:
    """Title and machine lines of a results table."""
    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    lines = [
        f"# {title}",
        "",
        f"`{command}` on {datetime.date.today().isoformat()}: python {platform.python_version()}, "
        f"torch {torch.__version__}, {cpu}, {os.cpu_count()} CPUs, torch threads {threads}; "
        f"load average {load_start:.1f} at the start and {load():.1f} at the end "
        "(the machine is shared: CPU time, this process's user + system seconds, is the "
        "steadier figure).",
    ]
    if extra:
        lines += ["", extra]
    return lines + [""]


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return out


def mmm(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    """``median (min-max)`` of ``values * scale`` with ``digits`` significant digits."""
    med = statistics.median(values) * scale
    lo, hi = min(values) * scale, max(values) * scale
    return f"{_g(med, digits)} ({_g(lo, digits)}-{_g(hi, digits)})"


def _g(v: float, digits: int) -> str:
    if v != v:  # NaN
        return "nan"
    if v == 0:
        return "0"
    if abs(v) >= 10 ** (digits - 1):
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def write(name: str, lines: list[str], out_dir: Path | None = None) -> Path:
    """Print the table and write it to ``out_dir/name.md`` (default ``benchmarks/results``)."""
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    d = RESULTS if out_dir is None else out_dir
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.md"
    path.write_text(text)
    print(f"wrote {path}", file=sys.stderr)
    return path


def command_line() -> str:
    """The command that ran this script (for the table header)."""
    argv = [Path(sys.argv[0]).as_posix()] + sys.argv[1:]
    here = Path.cwd()
    try:
        argv[0] = Path(argv[0]).resolve().relative_to(here).as_posix()
    except ValueError:
        pass
    return "python " + " ".join(argv)


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{key} not in /proc/self/status")


def reset_peak() -> int:
    """Reset this process's peak resident memory (Linux ``clear_refs``); current RSS, bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def peak_rss() -> int:
    """Peak resident memory since the last :func:`reset_peak`, bytes."""
    return _status("VmHWM")


def peak_during(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Peak resident memory above the starting RSS while ``fn()`` runs, bytes, and its result."""
    rss0 = reset_peak()
    out = fn()
    return peak_rss() - rss0, out


class MemClock(StepClock):
    """A :class:`StepClock` that also records each iteration's peak RSS above its start."""

    def __init__(self) -> None:
        super().__init__()
        self.peaks: list[int] = []
        self._rss0: int | None = None

    def __call__(self) -> bool:
        if self._rss0 is not None:
            self.peaks.append(peak_rss() - self._rss0)
        self._rss0 = reset_peak()
        return super().__call__()
