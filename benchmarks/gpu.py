"""GPU check: targets G3, G4 and G5 on CUDA (a prepared script, under 5 minutes).

Runs when a CUDA device is available (the inputs are put on ``cuda``; fiberscope's geometry
follows the input's device) and writes ``benchmarks/results/gpu.md`` with the date and the
device name. Without CUDA it prints one line and exits with code 0, writing nothing.

- G3: one Jacobian evaluation and one corrected step (time per engine iteration, the clock
  synchronised with the device at every poll) for network 1's trace (n = 2), the 784 -> 64 ->
  64 -> 1 MLP walk, the bundled MNIST CNN walk and the ResNet-18 walk on 3x224x224 (n = 150,528).
- G4: 1,024 starts at once against 32 one at a time (network 1 traces; CNN walks with
  ``chains=1024`` against ``chains=1``), per-start throughput ratio.
- G5: ResNet-18 step / Jacobian, and the peak device memory (``torch.cuda.max_memory_allocated``
  above the memory held before) of one Jacobian evaluation and of one walk iteration, against
  n * m * 8 bytes.

``--device cpu --quick`` runs the same code on the CPU with small sizes (for tests).

Run: python benchmarks/gpu.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import command_line, interleaved, mmm, table, write  # noqa: E402
from _models import mlp_784, mnist_cnn, resnet18, start  # noqa: E402
from batch import circle_starts  # noqa: E402

import fiberscope as fs  # noqa: E402
from fiberscope.geometry.jacobian import ModelFunction  # noqa: E402


def sync(dev: torch.device) -> None:
    """Wait for the device's queued work (no-op on the CPU)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def synced(fn, dev: torch.device):
    """``fn`` with the device synchronised before and after (so timings include its work)."""

    def run():
        sync(dev)
        out = fn()
        sync(dev)
        return out

    return run


class DeviceClock:
    """``stop=`` callable: synchronises, timestamps each iteration, tracks peak device memory."""

    def __init__(self, dev: torch.device) -> None:
        self.dev = dev
        self.t: list[float] = []
        self.peaks: list[int] = []
        self._base: int | None = None

    def __call__(self) -> bool:
        sync(self.dev)
        if self.dev.type == "cuda":
            if self._base is not None:
                self.peaks.append(torch.cuda.max_memory_allocated(self.dev) - self._base)
            torch.cuda.reset_peak_memory_stats(self.dev)
            self._base = torch.cuda.memory_allocated(self.dev)
        self.t.append(time.perf_counter())
        return False

    def per_iteration(self) -> float:
        """Mean seconds per iteration."""
        return (self.t[-1] - self.t[0]) / (len(self.t) - 1)


def jac_peak(fn: ModelFunction, xs: torch.Tensor, dev: torch.device) -> int | None:
    """Peak device memory above the held memory during one Jacobian evaluation (CUDA only)."""
    if dev.type != "cuda":
        return None
    sync(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    fn.values_and_jacobians(xs)
    sync(dev)
    return torch.cuda.max_memory_allocated(dev) - base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --quick)")
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 round (tests)")
    ap.add_argument("--out", type=Path, default=None, help="results folder")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu.py: no CUDA device here (torch.cuda.is_available() is False); nothing measured, "
            "no table written: run it on a machine with a CUDA GPU (--device cpu --quick "
            "checks its code paths on the CPU)"
        )
        return
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(1)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    quick = args.quick
    repeats = 1 if quick else args.repeats
    t_start = time.perf_counter()
    rn_size = 32 if quick else 224
    models = [
        ("network 1 (2 -> 1)", fs.load_model("surface_1"),
         torch.tensor([0.25, 0.25], dtype=torch.float64), "trace", {"step": 0.01}),
        ("MLP 784 -> 64 -> 64 -> 1", mlp_784(), start((784,)), "walk",
         {"samples": 20 if quick else 200, "step": 0.05}),
        ("MNIST CNN (1x28x28 -> 10)", mnist_cnn(), start((1, 28, 28)), "walk",
         {"samples": 5 if quick else 100, "step": 0.05}),
        (f"ResNet-18 (3x{rn_size}x{rn_size} -> 10)", resnet18(width=8 if quick else 64),
         start((3, rn_size, rn_size)), "walk", {"samples": 3 if quick else 10, "step": 0.05}),
    ]  # fmt: skip
    g3_rows, ratios, mem_rows = [], {}, []
    for label, model, x0, verb, kw in models:
        model = model.to(dev)
        x = x0.to(dev)
        fn = ModelFunction(model, x)
        xs = x.reshape(1, -1)
        fn.values_and_jacobians(xs)  # choose the Jacobian scheme outside the timing
        reps = 1 if "ResNet" in label else 20
        clocks: list[DeviceClock] = []

        def step_run(model=model, x=x, verb=verb, kw=kw, clocks=clocks):
            clk = DeviceClock(dev)
            call = fs.trace if verb == "trace" else fs.walk
            extra = {} if verb == "trace" else {"seed": 0}
            r = call(model, x, stop=clk, **kw, **extra)
            clocks.append(clk)
            return r

        def jac_run(fn=fn, xs=xs, reps=reps):
            for _ in range(reps):
                fn.values_and_jacobians(xs)

        res = interleaved(
            {"step": synced(step_run, dev), "jac": synced(jac_run, dev)}, repeats, warmup=1
        )
        r = res["step"].out
        jac = res["jac"].scaled(1.0 / reps)
        loop = [c.per_iteration() for c in clocks[-repeats:]]
        ratio = statistics.median(loop) / jac.wall_med
        ratios[label] = ratio
        k = max(1, r.stats.steps)
        g3_rows.append(
            [
                label,
                fn.n,
                fn.m,
                verb,
                r.stats.steps,
                mmm(jac.wall, 1e3),
                mmm(loop, 1e3),
                f"{ratio:.2f}",
                f"{r.stats.jacobian_evals / k:.2f} / {r.stats.value_evals / k:.2f}",
            ]
        )
        if "ResNet" in label:
            jp = jac_peak(fn, xs, dev)
            steps_peak = max((p for c in clocks for p in c.peaks), default=None)
            nm8 = fn.n * fn.m * 8

            def fmt(v: int | None) -> str:
                return "n/a (CPU)" if v is None else f"{v / 2**20:.1f}"

            mem_rows = [
                ["n * m * 8 bytes (one float64 Jacobian)", f"{nm8 / 2**20:.1f}"],
                ["peak above held memory, one Jacobian evaluation", fmt(jp)],
                ["peak above held memory, one walk iteration (max)", fmt(steps_peak)],
            ]
        del model, fn
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    # G4
    big = 64 if quick else 1024
    singles = 4 if quick else 32
    samples = 2 if quick else 5
    net = fs.load_model("surface_1").to(dev)
    xs = circle_starts(big, device=str(dev))
    cnn = mnist_cnn().to(dev)
    x_img = start((1, 28, 28)).to(dev)
    kw_t = {"step": 0.05, "bounds": (-1.0, 1.0)}
    kw_w = {"samples": samples, "step": 0.05}
    g4 = interleaved(
        {
            "trace batch": synced(lambda: fs.trace(net, xs, batched=True, **kw_t), dev),
            "trace singles": synced(
                lambda: [fs.trace(net, xs[i], **kw_t) for i in range(singles)], dev
            ),
            "walk chains": synced(lambda: fs.walk(cnn, x_img, chains=big, seed=0, **kw_w), dev),
            "walk singles": synced(
                lambda: [fs.walk(cnn, x_img, seed=i, **kw_w) for i in range(singles)], dev
            ),
        },
        repeats,
    )
    g4_rows = []
    for what in ("trace", "walk"):
        b = g4[f"{what} batch" if what == "trace" else "walk chains"].scaled(1.0 / big)
        s = g4[f"{what} singles"].scaled(1.0 / singles)
        g4_rows.append(
            [
                "network 1 traces" if what == "trace" else "MNIST CNN walks",
                mmm(b.wall, 1e3),
                mmm(s.wall, 1e3),
                f"{s.wall_med / b.wall_med:.1f}x",
            ]
        )

    props = ""
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        props = f", {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
    lines = [
        f"# GPU check: G3, G4, G5 on {name}",
        "",
        f"`{command_line()}` on {datetime.date.today().isoformat()}: device {name}{props}; "
        f"torch {torch.__version__}; median (min-max) of {repeats} interleaved rounds, wall "
        "time with the device synchronised; whole script "
        f"{time.perf_counter() - t_start:.0f} s.",
        "",
        "## G3: one corrected step in Jacobian evaluations",
        "",
    ]
    lines += table(
        [
            "model",
            "n",
            "m",
            "verb",
            "steps",
            "Jacobian ms",
            "loop ms/iteration",
            "step / Jacobian",
            "Jacobian / value evals per step",
        ],
        g3_rows,
    )
    worst = max(ratios, key=ratios.get)
    lines += ["", f"Worst step / Jacobian: {worst} at {ratios[worst]:.2f} (target <= 2.5).", ""]
    lines += [f"## G4: {big} starts at once against {singles} one at a time", ""]
    lines += table(
        ["case", "ms/start batched", "ms/start one at a time", "throughput ratio"], g4_rows
    )
    rn_label = models[-1][0]
    lines += ["", f"## G5: {rn_label}", ""]
    lines += [f"Step / Jacobian: {ratios[rn_label]:.2f} (target <= 2).", ""]
    lines += table(["quantity", "MiB"], mem_rows)
    write("gpu", lines, args.out)


if __name__ == "__main__":
    main()
