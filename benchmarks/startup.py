"""Benchmark: how long the command line takes to start.

Runs each command in a fresh process (wall time from spawn to exit, as a user waits for it):
``fiberscope --help``, ``fiberscope --version`` (both must stay under 0.5 s: they import
neither torch nor matplotlib), the import of the command-line package, and for reference the
bare interpreter and ``import torch`` (the floor of every command that computes). Prints
median, min and max wall time and the median CPU time (user + system: what the process itself
costs, whatever else loads the machine) over the repeats, and writes the table to
benchmarks/results/startup.md.

Run: python benchmarks/startup.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(cmd: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) times of ``repeats`` runs of ``cmd`` after one warm-up.

    The CPU time of the child does not grow when other processes load the machine; the wall
    time, which a user waits for, does.
    """
    env = dict(os.environ, COLUMNS="100")
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    py = sys.executable
    script = shutil.which("fiberscope", path=str(Path(py).parent)) or shutil.which("fiberscope")
    cases = []
    if script:
        cases += [("fiberscope --help", [script, "--help"])]
        cases += [("fiberscope --version", [script, "--version"])]
    cases += [
        ("python -m fiberscope --help", [py, "-m", "fiberscope", "--help"]),
        ("python -m fiberscope --version", [py, "-m", "fiberscope", "--version"]),
        ("import fiberscope.cli.main", [py, "-c", "import fiberscope.cli.main"]),
        ("python -c pass (reference)", [py, "-c", "pass"]),
        ("import torch (reference)", [py, "-c", "import torch"]),
    ]
    rows = []
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for name, cmd in cases:
        w, c = timed(cmd, args.repeats)
        rows.append((name, statistics.median(w), min(w), max(w), statistics.median(c)))
        print(f"{name}: median {statistics.median(w):.3f} s", file=sys.stderr)
    lines = [
        "# startup benchmark: a fresh process, from spawn to exit",
        "",
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f} at the start, {args.repeats} runs each after one warm-up run "
        f"(`python benchmarks/startup.py --repeats {args.repeats}`).",
        "",
        "| command | wall median s | wall min s | wall max s | CPU median s |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{n}` | {m:.3f} | {lo:.3f} | {hi:.3f} | {cpu:.3f} |" for n, m, lo, hi, cpu in rows
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / "startup.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
