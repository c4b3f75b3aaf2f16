"""Where a step's time goes: torch calls per engine iteration, by fiberscope function.

A ``TorchFunctionMode`` counts every torch function call made while a verb runs and charges it
to the innermost fiberscope function on the Python stack. On small models each call costs a
few microseconds whatever its size, so the count per iteration is the step's overhead.

Cases: network 1's trace (default settings, and the fastest closing setting of G1), the
784 -> 64 -> 64 -> 1 MLP's corrected walk and the bundled MNIST CNN's corrected walk. The table
lists the calls per iteration of each case and, for each case, the functions that make the
most calls.

Run: python benchmarks/op_count.py [--quick]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import command_line, header, load, table, write  # noqa: E402
from _models import mlp_784, mnist_cnn, start  # noqa: E402

import fiberscope as fs  # noqa: E402

PKG = str(Path(fs.__file__).resolve().parent)


class CallCounter(TorchFunctionMode):
    """Counts torch calls by the innermost fiberscope function that made them."""

    def __init__(self) -> None:
        super().__init__()
        self.by: collections.Counter[str] = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        f = sys._getframe(1)
        while f is not None and not f.f_code.co_filename.startswith(PKG):
            f = f.f_back
        if f is None:
            key = "(outside fiberscope)"
        else:
            rel = Path(f.f_code.co_filename).relative_to(PKG).as_posix()
            key = f"{rel}:{f.f_code.co_name}"
        self.by[key] += 1
        return func(*args, **(kwargs or {}))


def count(run) -> tuple[CallCounter, int]:
    """Run ``run()`` (a verb call) under the counter; calls and engine iterations."""
    run()  # warm-up (lazy imports, the Jacobian scheme)
    c = CallCounter()
    with c:
        res = run()
    s = res.stats
    return c, s.steps + s.rejected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke)")
    ap.add_argument("--top", type=int, default=8, help="functions listed per case")
    ap.add_argument("--out", type=Path, default=None, help="results folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load0 = load()
    net = fs.load_model("surface_1")
    mlp, x_mlp = mlp_784(), start((784,))
    cnn, x_img = mnist_cnn(), start((1, 28, 28))
    k = 20 if args.quick else 100
    cases = {
        "network 1 trace, step 0.01 (default)": lambda: fs.trace(net, [0.25, 0.25]),
        "network 1 trace, step 0.1, max_angle 0.6": lambda: fs.trace(
            net, [0.25, 0.25], step=0.1, max_angle=0.6
        ),
        "MLP 784 walk (corrected)": lambda: fs.walk(mlp, x_mlp, samples=k, step=0.05, seed=0),
        "MNIST CNN walk (corrected)": lambda: fs.walk(cnn, x_img, samples=k, step=0.05, seed=0),
    }
    summary, details = [], []
    for name, run in cases.items():
        c, iters = count(run)
        total = sum(c.by.values())
        summary.append([name, iters, f"{total / iters:.1f}"])
        for fn, v in c.by.most_common(args.top):
            details.append([name, fn, f"{v / iters:.1f}"])
    lines = header(
        "Torch calls per engine iteration",
        command_line(),
        load0,
        "Counted with a TorchFunctionMode over one whole verb call (set-up and results "
        "included, divided by the engine iterations = accepted + rejected steps).",
    )
    lines += table(["case", "iterations", "torch calls per iteration"], summary)
    lines += ["", f"The {args.top} functions making the most calls, per iteration:", ""]
    lines += table(["case", "fiberscope function", "calls per iteration"], details)
    write("op_count", lines, args.out)


if __name__ == "__main__":
    main()
