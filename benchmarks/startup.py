"""Benchmark: how long the command line takes to start.

Runs each command in a fresh process (wall time from spawn to exit, as a user waits for it):
``fiberscope --help``, ``fiberscope --version`` (both must stay under 0.5 s: they import
neither torch nor matplotlib), the import of the command-line package, and for reference the
bare interpreter and ``import torch`` (the floor of every command that computes). Prints
median, min and max over the repeats and writes the table to benchmarks/results/startup.md.

Run: python benchmarks/startup.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str], repeats: int) -> list[float]:
    """Wall times of ``repeats`` runs of ``cmd`` (after one warm-up run)."""
    env = dict(os.environ, COLUMNS="100")
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    return times


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
    for name, cmd in cases:
        t = wall(cmd, args.repeats)
        rows.append((name, statistics.median(t), min(t), max(t)))
        print(f"{name}: median {statistics.median(t):.3f} s", file=sys.stderr)
    lines = [
        "# startup benchmark: wall time of a fresh process",
        "",
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.repeats} runs each after one warm-up run (`python benchmarks/startup.py "
        f"--repeats {args.repeats}`).",
        "",
        "| command | median s | min s | max s |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{n}` | {m:.3f} | {lo:.3f} | {hi:.3f} |" for n, m, lo, hi in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / "startup.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
