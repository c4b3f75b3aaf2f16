"""Compare the NumPy reference (tests/reference/numpy_simec.py) with the authors' output files.

Not a pytest test: run ``python tests/reference/check_authors.py [--solver eigen|numpy]``.
Reports, per fixture in tests/data/authors/, the largest |reference - printed| and the largest
ratio to the half unit in the last printed place (6 significant digits, "%g"); every row passes
when that ratio is <= 1 (plus float slack). Also times one 150,000-step run.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from reference import numpy_simec as R  # noqa: E402

DATA = TESTS / "data" / "authors"
# the authors' surface_1_good_weights.csv: the shared copy, or the identical file bundled with
# the package as surface_1.csv
SURFACE_1 = next(
    p
    for p in (
        TESTS.parents[1] / "shared" / "paper-networks" / "surface_1_good_weights.csv",
        TESTS.parent / "src" / "fiberscope" / "models" / "bundled" / "surface_1.csv",
    )
    if p.exists()
)

# file -> (weights, start, delta, steps, invert_build): all unbounded SiMEC_1D
RUNS = {
    "surface_2_simec_out_left.excerpt.csv": (
        DATA / "weights_surface_2.csv",
        (0.25, 0.25),
        1e-5,
        150_000,
        False,
    ),
    "surface_2_simec_out_right.excerpt.csv": (
        DATA / "weights_surface_2.csv",
        (0.25, 0.25),
        1e-5,
        150_000,
        True,
    ),
    "surface_1_bad_simec_out.excerpt.csv": (
        SURFACE_1,
        (0.25, 0.25),
        0.0125,
        200,
        True,
    ),
}


def half_ulp_6g(text: str) -> float:
    """Half a unit in the 6th significant digit of a value printed with %g."""
    v = abs(float(text))
    return 0.5 * 10.0 ** (math.floor(math.log10(v)) - 5) if v > 0 else 5e-324


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--solver", default="eigen", choices=["eigen", "numpy"])
    args = ap.parse_args()
    ok = True
    for name, (weights, x0, delta, steps, invert) in RUNS.items():
        rows = list(csv.DictReader((DATA / name).open()))
        net = R.load_paper_csv(weights)
        t0 = time.perf_counter()
        pts, energy = R.simec_1d(net, x0, delta, steps, invert=invert, solver=args.solver)
        elapsed = time.perf_counter() - t0
        max_abs, max_ratio, exact = 0.0, 0.0, 0
        for r in rows:
            k = int(r["row"])  # 1-based line of the authors' file = point after k steps
            printed = [r["x0"], r["x1"]]
            mine = pts[k - 1]
            exact += R.format_rows(mine)[0] == "\t".join(printed)
            for m, p in zip(mine, printed, strict=True):
                d = abs(m - float(p))
                max_abs = max(max_abs, d)
                max_ratio = max(max_ratio, d / half_ulp_6g(p))
        passed = max_ratio <= 1.0 + 1e-6
        ok &= passed
        print(
            f"{name}: {len(rows)} rows, max|diff| = {max_abs:.3e}, "
            f"max diff / half-ulp(6 sig) = {max_ratio:.3f}, "
            f"identical printed rows {exact}/{len(rows)}, energy = {energy:.3e}, "
            f"{steps} steps in {elapsed:.1f} s -> {'PASS' if passed else 'FAIL'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
