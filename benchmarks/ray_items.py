"""Benchmark: items per second of a dataset job in this process, on 1 and on 2 Ray workers.

Two workloads, side by side in one run (every repeat runs every configuration, in turn):

- ``walk``: ``fs.walk`` on MNIST test digits (``benchmarks/data``), a small CNN (784 -> 10,
  random weights), 4 chains x 40 samples per item;
- ``empty``: ``fs.trace`` of surface_1 with ``max_steps=1`` (almost no work per item), whose
  time on Ray minus its time here is Ray's cost per item (transfer, scheduling, the driver's
  bookkeeping; the store is written by the driver in both cases).

Every job writes a fresh store. The Ray jobs run on one local Ray started once by this script
(its start is reported on its own, as is the start of a job's actors, which load the model);
a job's wall time includes its actors' start. Prints the table and writes it to
``benchmarks/results/ray_items.md``.

Run: python benchmarks/ray_items.py [--repeats 3] [--items 24]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
DIGITS = HERE / "data" / "mnist-t10k-first32.npy"
WALK = {"samples": 40, "chains": 4, "step": 0.05}


def SmallCNN() -> nn.Module:  # noqa: N802 - a factory named like the class it builds
    """The benchmark's CNN: 1x28x28 -> 10 logits (random weights, seed 0)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 5, stride=2),
        nn.Tanh(),
        nn.Conv2d(4, 8, 5, stride=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(128, 10),
    ).double()


def _stats(times: list[float]) -> tuple[float, float, float]:
    return statistics.median(times), min(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--items", type=int, default=24, help="walk items (empty: 4x as many)")
    args = ap.parse_args()

    import ray

    from fiberscope.jobs import run_many
    from fiberscope.jobs.ray_backend import RayPool, connect
    from fiberscope.jobs.spec import ModelSpec
    from fiberscope.jobs.worker import ItemRunner, Task

    torch.set_num_threads(1)  # as a Ray worker of 1 CPU
    spec = f"{Path(__file__).resolve()}:SmallCNN"
    digits = np.load(DIGITS)[: args.items].astype(np.float64) / 255.0
    rng = np.random.default_rng(0)
    starts = rng.uniform(-0.7, 0.7, size=(4 * args.items, 2))
    workloads = {
        "walk": (spec, digits, "walk", {**WALK, "seed": 1}),
        "empty": ("surface_1", starts, "trace", {"step": 0.05, "max_steps": 1}),
    }
    configs = [("this process", 0), ("Ray", 1), ("Ray", 2)]

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray_start = time.perf_counter() - t
    conn = connect(None, None)
    root = Path(tempfile.mkdtemp(prefix="fiberscope-bench-"))
    times: dict[tuple[str, str, int], list[float]] = {}
    starts: dict[tuple[str, str, int], list[float]] = {}
    per_item: dict[str, list[float]] = {"this process": [], "Ray": []}
    empty_model, empty_x, _, empty_opts = workloads["empty"]
    tasks = [Task(i, x, dict(empty_opts)) for i, x in enumerate(empty_x)]
    local = ItemRunner(ModelSpec(empty_model), "trace")
    try:
        # warm-up: imports and first calls in this process
        for name, (model, inputs, verb, opts) in workloads.items():
            run_many(model, inputs[:1], verb, store=root / f"warm-{name}", workers=0, **opts)
        for rep in range(args.repeats):
            for name, (model, inputs, verb, opts) in workloads.items():
                for label, workers in configs:
                    store = root / f"{name}-{label}-{workers}-{rep}"
                    t = time.perf_counter()
                    res = run_many(model, inputs, verb, store=store, workers=workers, **opts)
                    times.setdefault((name, label, workers), []).append(time.perf_counter() - t)
                    starts.setdefault((name, label, workers), []).append(res.startup)
                    assert res.done == len(inputs), res.failed[:1]
                    shutil.rmtree(store)
            # Ray's cost per item, on a warm actor: the empty items one by one, there and here
            pool = RayPool(conn, ModelSpec(empty_model).payload(), "trace", 1, 1.0, 0.0, None)
            pool.check_started()
            actor = pool.actors[0].handle
            ray.get(actor.run.remote(tasks[0]))
            local.run(tasks[0])
            there, here = [], []
            for task in tasks:  # paired: the same item there and here, one after the other
                t = time.perf_counter()
                ray.get(actor.run.remote(task))
                there.append(time.perf_counter() - t)
                t = time.perf_counter()
                local.run(task)
                here.append(time.perf_counter() - t)
            pool.close()
            per_item["Ray"].append(statistics.median(there))
            per_item["this process"].append(statistics.median(here))
            per_item.setdefault("diff", []).append(
                statistics.median([a - b for a, b in zip(there, here, strict=True)])
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        ray.shutdown()

    rows = []
    for name, (_m, inputs, _v, _o) in workloads.items():
        n = len(inputs)
        base = statistics.median(times[(name, "this process", 0)])
        for label, workers in configs:
            med, lo, hi = _stats(times[(name, label, workers)])
            start = statistics.median(starts[(name, label, workers)])
            rows.append(
                [
                    name,
                    label,
                    str(workers if workers else 1),
                    str(n),
                    f"{med:.2f}",
                    f"{lo:.2f}",
                    f"{hi:.2f}",
                    f"{start:.2f}",
                    f"{n / med:.2f}",
                    f"{n / (med - start):.2f}",
                    f"{base / med:.2f}",
                ]
            )
    header = [
        "workload",
        "where",
        "workers",
        "items",
        "median s",
        "min s",
        "max s",
        "of which start s",
        "items/s",
        "items/s after the start",
        "speed-up",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    here_ms = [1000 * v for v in per_item["this process"]]
    ray_ms = [1000 * v for v in per_item["Ray"]]
    diff = [1000 * v for v in per_item["diff"]]
    notes = [
        "",
        "| Ray's cost | median | min | max |",
        "|---|---|---|---|",
        f"| `ray.init(num_cpus=2)`, once (s) | {ray_start:.1f} | | |",
        "| empty item on a warm actor, round trip (ms, median of items) | "
        + " | ".join(f"{v:.1f}" for v in _stats(ray_ms))
        + " |",
        "| the same item in this process (ms) | "
        + " | ".join(f"{v:.1f}" for v in _stats(here_ms))
        + " |",
        "| **Ray's cost per item** (ms, median of paired differences) | "
        + " | ".join(f"{v:.1f}" for v in _stats(diff))
        + " |",
        "",
        "A job's wall time includes its start (`of which start`: in this process the model "
        "loaded; on Ray the actors started, each a process that imports torch and loads the "
        "model); `items/s after the start` leaves it out. `speed-up`: against this process. "
        "Every worker, and this process, uses 1 torch thread.",
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    notes += [
        "",
        f"{args.repeats} repeats, side by side; {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {load:.1f} at the end; torch {torch.__version__}, ray {ray.__version__}.",
    ]
    text = "\n".join(lines + notes) + "\n"
    print(text)
    out = HERE / "results" / "ray_items.md"
    out.parent.mkdir(exist_ok=True)
    title = (
        "# Dataset jobs: items per second in this process, on 1 and 2 Ray workers\n\n"
        "`python benchmarks/ray_items.py` "
        f"(--repeats {args.repeats} --items {args.items})\n\n"
    )
    out.write_text(title + text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
