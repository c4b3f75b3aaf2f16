"""Benchmark: one full loop of the circle class of the paper's network 1 from (0.25, 0.25).

Prints, for the corrected method (closed-form MLP Jacobian and the generic torch.func path)
and for the authors' SiMEC-1D (paper mode, one loop's worth of steps): the in-process wall time
of the trace (median of repeats), the output drift, the time per accepted step, the time of one
Jacobian evaluation measured in the same run, and their ratio. Writes the table to
benchmarks/results/trace_loop.md.

Run: python benchmarks/trace_loop.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path

import torch

import fiberscope as fs
from fiberscope.geometry.jacobian import ModelFunction

X0 = [0.25, 0.25]


def median_time(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def jac_time(model, repeats: int) -> float:
    x = torch.tensor(X0, dtype=torch.float64)
    fn = ModelFunction(model, x)
    fn.value_and_jacobian(x)
    n = 200
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn.value_and_jacobian(x)
        samples.append((time.perf_counter() - t) / n)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = fs.load_model("surface_1")

    def generic(x):  # not an nn.Sequential: forces the torch.func Jacobian path
        return net(x)

    rows = []
    jac_mlp = jac_time(net, args.repeats)
    jac_func = jac_time(generic, max(3, args.repeats // 4))
    r0 = math.hypot(*X0)
    loop_steps = math.ceil(2 * math.pi * r0 / 0.0125)
    cases = [
        ("corrected", "closed-form MLP", net, 0.0125, None, jac_mlp, args.repeats),
        ("corrected", "closed-form MLP", net, 0.05, None, jac_mlp, args.repeats),
        ("corrected", "torch.func", generic, 0.0125, None, jac_func, max(3, args.repeats // 4)),
        ("paper", "closed-form MLP", net, 0.0125, loop_steps, jac_mlp, args.repeats),
        ("paper", "closed-form MLP", net, 0.0125, 200, jac_mlp, args.repeats),
    ]
    for method, path, model, step, n, jt, reps in cases:
        if method == "corrected":
            t, res = median_time(lambda m=model, s=step: fs.trace(m, X0, step=s), reps)
        else:
            t, res = median_time(
                lambda m=model, s=step, k=n: fs.trace(
                    m, X0, step=s, max_steps=k, method="paper", direction="forward"
                ),
                reps,
            )
        steps = res.stats.steps
        per_step = t / steps
        rows.append(
            {
                "method": method,
                "jacobian": path,
                "step": step,
                "steps": steps,
                "closed": res.closed,
                "wall_ms": t * 1e3,
                "drift": res.drift,
                "us_per_step": per_step * 1e6,
                "jac_evals_per_step": res.stats.jacobian_evals / steps,
                "us_per_jac": jt * 1e6,
                "ratio": per_step / jt,
            }
        )
    header = (
        "| method | Jacobian | step | steps | closed | wall ms | drift | us/step "
        "| Jacobian evals/step | us/Jacobian | step cost / Jacobian |"
    )
    lines = [
        "# trace_loop benchmark: network 1 (surface_1), start (0.25, 0.25), one loop",
        "",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.machine()}, 1 thread, median of {args.repeats} repeats "
        f"(torch.func rows: {max(3, args.repeats // 4)}).",
        "",
        header,
        "|" + "---|" * 11,
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['jacobian']} | {r['step']} | {r['steps']} | {r['closed']} "
            f"| {r['wall_ms']:.2f} | {r['drift']:.2e} | {r['us_per_step']:.1f} "
            f"| {r['jac_evals_per_step']:.2f} | {r['us_per_jac']:.1f} | {r['ratio']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / "trace_loop.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
