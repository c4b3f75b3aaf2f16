"""Progress lines of the paper commands: rate-limited counts and a heartbeat, TTY or not."""

from __future__ import annotations

import io
import time

from rich.console import Console

from paper.progress import Reporter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _lines(buf: io.StringIO) -> list[str]:
    return [ln for ln in buf.getvalue().splitlines() if ln.strip()]


def test_updates_are_rate_limited_and_the_last_one_is_always_printed() -> None:
    buf, clock = io.StringIO(), Clock()
    rep = Reporter(Console(file=buf, width=200), every=2.0, heartbeat=0, clock=clock)
    rep.stage("tracing")
    for k in range(1, 101):
        clock.t = 0.05 * k  # 5 s of work in 100 callbacks
        rep.update(k, 100)
    lines = _lines(buf)
    assert lines[0].endswith("tracing")
    counts = [ln for ln in lines if "of 100 steps" in ln]
    assert 2 <= len(counts) <= 4, counts  # about every 2 s, not 100 lines
    assert counts[-1].endswith("tracing: 100 of 100 steps (100 %)")
    assert lines[-1].startswith("[    5.0 s]")


def test_heartbeat_prints_while_nothing_else_does() -> None:
    # a console that is not a terminal still gets plain lines
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False)
    assert not console.is_terminal
    with Reporter(console, heartbeat=0.2) as rep:
        rep.stage("training [bold]x[/bold]")
        rep.update(3, 10, "epochs")
        time.sleep(0.9)
    lines = _lines(buf)
    beats = [ln for ln in lines if "still running" in ln]
    assert len(beats) >= 2, lines
    assert "training [bold]x[/bold]: still running (3 of 10 epochs (30 %))" in beats[0]


def test_prefix_names_the_experiment() -> None:
    buf = io.StringIO()
    rep = Reporter(Console(file=buf, width=200), heartbeat=0)
    rep.prefix = "[4] "
    rep.stage("paper network: paper mode")
    rep.update(1, 2, "levels")
    assert "[4] paper network: paper mode: 1 of 2 levels (50 %)" in buf.getvalue()
