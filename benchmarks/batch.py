"""Benchmark G4: 1,024 starts at once against one at a time (per-start throughput).

- Network 1 traces: 1,024 starts (radius 0.15-0.6, any angle, box (-1, 1), step 0.05) traced
  together with ``fs.trace(net, X, batched=True)``, against ``fs.trace`` called once per start
  for the first 32 of them (extrapolated per start), and the 32 as one batch.
- Walks on the bundled MNIST CNN (1x28x28 -> 10, trained, float32; the corrected walk from a
  random interior start):
  ``fs.walk(..., chains=1024)`` against 32 calls with ``chains=1`` (extrapolated per chain),
  and ``chains=32``.

Per-start throughput ratio = (time per start one at a time) / (time per start in the batch);
target >= 50x on CPU. Every figure is the median (min-max) of interleaved rounds.

Run: python benchmarks/batch.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    StepClock,
    command_line,
    header,
    interleaved,
    load,
    mmm,
    table,
    write,
)
from _models import mnist_cnn, start  # noqa: E402

import fiberscope as fs  # noqa: E402

G4_TARGET = 50.0


def circle_starts(count: int, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """``count`` starts on network 1's domain: radius 0.15-0.6, uniform angle."""
    g = torch.Generator().manual_seed(seed)
    r = 0.15 + 0.45 * torch.rand(count, generator=g, dtype=torch.float64)
    a = 2 * math.pi * torch.rand(count, generator=g, dtype=torch.float64)
    return torch.stack((r * torch.cos(a), r * torch.sin(a)), dim=1).to(device)


class Phases:
    """Set-up, engine loop and the rest (last iteration + results) of one call, in CPU s."""

    def __init__(self) -> None:
        self.rounds: list[tuple[float, float, float]] = []

    def wrap(self, call):
        """A case running ``call(stop=clock)`` and splitting its CPU time."""

        def run():
            clk = StepClock()
            out = call(clk)
            end = time.process_time()
            first, last = clk.cpu[0], clk.cpu[-1]
            self.rounds.append((first - clk.created[1], last - first, end - last))
            return out

        return run

    def cell(self) -> str:
        """``set-up / loop / rest`` medians of the timed rounds (the warm-up dropped)."""
        rounds = self.rounds[1:] or self.rounds
        med = [statistics.median(r[i] for r in rounds) for i in range(3)]
        return " / ".join(f"{v:.3g}" for v in med)


def trace_cases(net, xs: torch.Tensor, singles: int, step: float, phases: dict) -> dict:
    """Batched and one-at-a-time traces of network 1."""
    kw = {"step": step, "bounds": (-1.0, 1.0)}
    big = f"trace batch {xs.shape[0]}"
    small = f"trace batch {singles}"
    phases[big], phases[small] = Phases(), Phases()
    return {
        big: phases[big].wrap(lambda c: fs.trace(net, xs, batched=True, stop=c, **kw)),
        small: phases[small].wrap(
            lambda c: fs.trace(net, xs[:singles], batched=True, stop=c, **kw)
        ),
        f"trace 1 x {singles}": lambda: [fs.trace(net, xs[i], **kw) for i in range(singles)],
    }


def walk_cases(
    cnn, x0: torch.Tensor, chains: int, singles: int, samples: int, phases: dict
) -> dict:
    """Walks of ``chains`` chains at once, of ``singles`` chains at once, and one at a time."""
    kw = {"samples": samples, "step": 0.05}
    big = f"walk chains {chains}"
    small = f"walk chains {singles}"
    phases[big], phases[small] = Phases(), Phases()
    return {
        big: phases[big].wrap(lambda c: fs.walk(cnn, x0, chains=chains, seed=0, stop=c, **kw)),
        small: phases[small].wrap(lambda c: fs.walk(cnn, x0, chains=singles, seed=0, stop=c, **kw)),
        f"walk 1 x {singles}": lambda: [fs.walk(cnn, x0, seed=i, **kw) for i in range(singles)],
    }


def steps_of(out) -> int:
    """Accepted steps of a result or a list of results (a batch's results share one Stats)."""
    results = out if isinstance(out, list) else [out]
    seen = {id(r.stats): int(r.stats.steps) for r in results}
    return sum(seen.values())


def rows_for(
    res: dict, names: list[str], starts: list[int], phases: dict
) -> tuple[list[list], float]:
    """Table rows (per start and per step) and the batch / one-at-a-time throughput ratio."""
    rows = []
    per_start = {}
    for name, k in zip(names, starts, strict=True):
        s = res[name]
        st = steps_of(s.out)
        ps = s.scaled(1.0 / k)
        per_start[name] = ps
        rows.append(
            [
                name,
                k,
                st,
                mmm(s.wall),
                mmm(ps.wall, 1e3),
                mmm(ps.cpu, 1e3),
                f"{s.cpu_med / st * 1e6:.1f}",
                phases[name].cell() if name in phases else "-",
            ]
        )
    one, big = per_start[names[2]], per_start[names[0]]
    ratio = one.cpu_med / big.cpu_med
    for row, name in zip(rows, names, strict=True):
        row.append(f"{one.cpu_med / per_start[name].cpu_med:.1f}x")
    return rows, ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="64 starts, 1 round (smoke)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", type=Path, default=None, help="results folder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = load()
    quick = args.quick
    repeats = 1 if quick else args.repeats
    big = 64 if quick else 1024
    singles = 8 if quick else 32
    samples = 2 if quick else 5
    net = fs.load_model("surface_1")
    xs = circle_starts(big)
    cnn = mnist_cnn()
    x_img = start((1, 28, 28))

    phases: dict = {}
    res = interleaved(trace_cases(net, xs, singles, 0.05, phases), repeats)
    names = [f"trace batch {big}", f"trace batch {singles}", f"trace 1 x {singles}"]
    t_rows, t_ratio = rows_for(res, names, [big, singles, singles], phases)
    res = interleaved(walk_cases(cnn, x_img, big, singles, samples, phases), repeats)
    names = [f"walk chains {big}", f"walk chains {singles}", f"walk 1 x {singles}"]
    w_rows, w_ratio = rows_for(res, names, [big, singles, singles], phases)

    cols = [
        "case",
        "starts",
        "accepted steps",
        "wall s",
        "ms/start wall",
        "ms/start CPU",
        "us/step CPU",
        "CPU s: set-up / engine loop / last iteration + results",
        "throughput vs one at a time (CPU)",
    ]
    lines = header(
        "G4: many starts at once against one at a time",
        command_line(),
        load0,
        f"Median (min-max) of {repeats} interleaved rounds; torch threads {args.threads}. "
        f"One at a time = {singles} separate calls, extrapolated per start. For the batched "
        "calls the CPU time is split at the engine's `stop=` polls: set-up (validation, the "
        "starts' Jacobians), the engine loop, and the rest (its last iteration and the "
        "building of the results).",
    )
    lines += ["## Network 1 traces (step 0.05, box (-1, 1), both branches)", ""]
    lines += table(cols, t_rows)
    lines += [
        "",
        f"## MNIST CNN walks (corrected, {samples} samples of step <= 0.05 per chain)",
        "",
    ]
    lines += table(cols, w_rows)
    lines += [""]
    for what, ratio in (("network 1 traces", t_ratio), ("MNIST CNN walks", w_ratio)):
        ok = ratio >= G4_TARGET
        lines.append(
            f"**G4 {what}: {'met' if ok else 'missed'}**: {big} starts at once give "
            f"{ratio:.2f}x the per-start throughput of one at a time (CPU time; target >= "
            f"{G4_TARGET:.0f}x" + ("" if ok else f", {G4_TARGET / ratio:.2f}x short") + ")."
        )
        lines.append("")
    write("batch", lines, args.out)


if __name__ == "__main__":
    main()
