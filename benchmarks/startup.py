"""Benchmark: how long the command line takes to start, and a whole ``fiberscope trace``.

Runs each command in a fresh process (wall time from spawn to exit, as a user waits for it),
the commands interleaved round by round (one run of each per round, after one warm-up run of
each): ``fiberscope --help`` and ``fiberscope --version`` (both must stay under 0.5 s: they
import neither torch nor matplotlib), the import of the command-line package, a whole
``fiberscope trace surface_1 --at 0.25,0.25 --step 0.1`` (issue 14, item 4: within 1 s of
``python -c "import torch"`` on the same machine) and for reference the bare interpreter and
``import torch`` (the floor of every command that computes). Prints median, min and max wall
and CPU time (user + system of the child: what the process itself costs, whatever else loads
the machine), each command's difference from ``import torch`` in every round (paired), and
writes the table to benchmarks/results/startup.md.

Run: python benchmarks/startup.py [--repeats 10] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import command_line, header, load, mmm, table, write  # noqa: E402

TRACE_TARGET_S = 1.0  # issue 14, item 4: the trace process within 1 s of `import torch`
HELP_TARGET_S = 0.5
TORCH = "import torch (reference)"
TRACE = "fiberscope trace surface_1 --at 0.25,0.25 --step 0.1"


def run_once(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``cmd`` as a child process."""
    env = dict(os.environ, COLUMNS="100")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args()
    load0 = load()
    py = sys.executable
    script = shutil.which("fiberscope", path=str(Path(py).parent)) or shutil.which("fiberscope")
    tmp = Path(tempfile.mkdtemp(prefix="fiberscope-startup-"))
    cases: list[tuple[str, list[str]]] = []
    if script:
        cases += [("fiberscope --help", [script, "--help"])]
        cases += [("fiberscope --version", [script, "--version"])]
    cases += [
        ("python -m fiberscope --help", [py, "-m", "fiberscope", "--help"]),
        ("python -m fiberscope --version", [py, "-m", "fiberscope", "--version"]),
        ("import fiberscope.cli.main", [py, "-c", "import fiberscope.cli.main"]),
    ]
    trace = [script] if script else [py, "-m", "fiberscope"]
    trace += ["trace", "surface_1", "--at", "0.25,0.25", "--step", "0.1"]
    cases += [(TRACE, trace + ["-o", str(tmp / "loop.csv"), "--force"])]
    cases += [
        ("python -c pass (reference)", [py, "-c", "pass"]),
        (TORCH, [py, "-c", "import torch"]),
    ]
    walls: dict[str, list[float]] = {name: [] for name, _ in cases}
    cpus: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _name, cmd in cases:  # warm-up: disk caches, .pyc files
        run_once(cmd, tmp)
    for k in range(args.repeats):
        for name, cmd in cases:
            w, c = run_once(cmd, tmp)
            walls[name].append(w)
            cpus[name].append(c)
        print(f"round {k + 1}/{args.repeats} done", file=sys.stderr)

    def paired(name: str, what: dict[str, list[float]]) -> list[float]:
        return [a - b for a, b in zip(what[name], what[TORCH], strict=True)]

    rows = []
    for name, _ in cases:
        dw = paired(name, walls)
        rows.append(
            [
                f"`{name}`",
                mmm(walls[name]),
                mmm(cpus[name]),
                f"{statistics.median(dw):+.3f}",
                f"{statistics.median(walls[name]) / statistics.median(walls[TORCH]):.2f}x",
            ]
        )
    lines = table(
        [
            "command",
            "wall s",
            "CPU s",
            "wall - import torch, s (median of paired rounds)",
            "wall vs import torch",
        ],
        rows,
    )

    def verdict(label: str, value: float, target: float) -> str:
        ok = value <= target
        return f"{label} {'met' if ok else 'missed'} ({value:+.3f} s" + (
            ")" if ok else f", {value - target:.3f} s over)"
        )

    dw, dc = paired(TRACE, walls), paired(TRACE, cpus)
    gap_w, gap_c = statistics.median(dw), statistics.median(dc)
    lines += [
        "",
        f"**Issue 14 item 4 (startup): {verdict('wall time', gap_w, TRACE_TARGET_S)}; "
        f"{verdict('CPU time', gap_c, TRACE_TARGET_S)}**. `{TRACE}` as a whole process takes "
        f"{statistics.median(walls[TRACE]):.3f} s wall ({statistics.median(cpus[TRACE]):.3f} s "
        f"CPU) against {statistics.median(walls[TORCH]):.3f} s wall "
        f"({statistics.median(cpus[TORCH]):.3f} s CPU) for `python -c 'import torch'`; "
        f"the difference, paired round by round: {gap_w:+.3f} s wall (min {min(dw):+.3f}, "
        f"max {max(dw):+.3f}), {gap_c:+.3f} s CPU (min {min(dc):+.3f}, max {max(dc):+.3f}); "
        f"target <= +{TRACE_TARGET_S} s. Wall time is what a user waits for; on this shared "
        "machine it also holds the waits for the other jobs' processes, which CPU time does "
        "not.",
    ]
    if script:
        hw = statistics.median(walls["fiberscope --help"])
        hc = statistics.median(cpus["fiberscope --help"])
        lines += [
            "",
            f"**`fiberscope --help` under {HELP_TARGET_S} s: "
            f"{verdict('wall time', hw - HELP_TARGET_S, 0.0)}; "
            f"{verdict('CPU time', hc - HELP_TARGET_S, 0.0)}**: {hw:.3f} s wall, {hc:.3f} s "
            "CPU (medians; the signed figures are the differences from the target).",
        ]
    head = header(
        "Startup: fresh processes, from spawn to exit",
        command_line(),
        load0,
        f"Median (min-max) of {args.repeats} rounds after one warm-up run of each command; "
        "in every round each command runs once, in the order of the table (side by side). "
        "CPU = the child's user + system seconds.",
    )
    write("startup", head + lines, args.out)


if __name__ == "__main__":
    main()
