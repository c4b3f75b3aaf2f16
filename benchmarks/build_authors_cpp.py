"""Build the authors' C++ SiMEC-1D code (simec-1d-test-code) in a folder outside this repository.

fiberscope never ships or commits the authors' code. To compare with it, fetch their public
repository yourself (https://github.com/alessiomarta/simec-1d-test-code: the ``Makefile``, the
``*.cpp`` and ``*.h`` files at its root) into any folder outside this repository, then run::

    python benchmarks/build_authors_cpp.py SRC_DIR [--out BUILD_DIR]

This copies their sources to ``BUILD_DIR`` (default: a new temporary folder), links Eigen into
it when their folder has none (Debian: ``apt-get install libeigen3-dev``; their sources include
``"Eigen/Dense"``, so Eigen must sit next to them, as in their own setup), and runs ``make``
with their own Makefile and flags, unchanged. It then builds a small timing driver of ours,
``simec_timer`` (written here, not theirs), linked against their object files with their flags:
it reads a network in their file format, calls their ``neural_network::SiMEC_1D`` loop and
prints the wall and CPU time of that call alone (their code prints no timing). It prints the
build folder; ``benchmarks/trace_loop.py --cpp-build BUILD_DIR`` uses both executables.

Refuses to build inside this repository, so none of their files can end up in a commit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EIGEN_CANDIDATES = (Path("/usr/include/eigen3/Eigen"), Path("/usr/local/include/eigen3/Eigen"))

#: Their object files, except their ``main.o`` (our driver has its own ``main``).
LIB_OBJECTS = (
    "layer.o",
    "fc_layer_sg.o",
    "fc_layer_sp.o",
    "fc_layer_sl.o",
    "fc_layer_sm.o",
    "neural_network.o",
    "activation_functions.o",
    "read_csv.o",
)

# Our driver (fiberscope's code, not the authors'): times one call of their SiMEC_1D loop.
DRIVER = r"""// simec_timer: fiberscope's timing driver around the authors' SiMEC_1D (ours).
// usage: simec_timer WEIGHTS X0 X1 STEPS DELTA REPEATS OUT_CSV [quiet]
// Calls their SiMEC_1D (which prints six lines per step to stdout), or with "quiet" their
// SiMEC_1D_stop_boundary inside a box too large to reach (the same steps, without printing).
// Prints to stderr one line per repeat: "simec_timer wall_s cpu_s".
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <string>
#include "neural_network.h"

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        std::cerr << "usage: simec_timer WEIGHTS X0 X1 STEPS DELTA REPEATS OUT_CSV [quiet]"
                  << std::endl;
        return 2;
    }
    const bool quiet = argc == 9 && std::string(argv[8]) == "quiet";
    neural_network net;
    net.network_read(argv[1]);
    Eigen::VectorXd start(2);
    start << std::atof(argv[2]), std::atof(argv[3]);
    const int steps = std::atoi(argv[4]);
    const double delta = std::atof(argv[5]);
    const int repeats = std::atoi(argv[6]);
    Eigen::VectorXd lo = Eigen::VectorXd::Constant(2, -1e300);
    Eigen::VectorXd hi = Eigen::VectorXd::Constant(2, 1e300);
    for (int r = 0; r < repeats; r++) {
        if (quiet) std::remove(argv[7]);  // the stop-boundary variant appends
        const auto t0 = std::chrono::steady_clock::now();
        const std::clock_t c0 = std::clock();
        if (quiet)
            net.SiMEC_1D_stop_boundary(argv[7], steps, delta, false, start, lo, hi);
        else
            net.SiMEC_1D(argv[7], steps, delta, false, start);
        const std::clock_t c1 = std::clock();
        const auto t1 = std::chrono::steady_clock::now();
        const double wall = std::chrono::duration<double>(t1 - t0).count();
        const double cpu = double(c1 - c0) / CLOCKS_PER_SEC;
        std::cerr << "simec_timer " << wall << " " << cpu << std::endl;
    }
    return 0;
}
"""

DRIVER_MK = """# fiberscope's rule for its timing driver, with the CC and CFLAGS of their Makefile.
simec_timer: simec_timer.cpp {objs}
\t$(CC) $(CFLAGS) -o simec_timer simec_timer.cpp {objs}
""".format(objs=" ".join(LIB_OBJECTS))


def build(src: Path, out: Path | None = None) -> Path:
    """Copy the authors' sources to ``out``, build them with their Makefile, add our driver.

    Parameters
    ----------
    src : Path
        Folder holding their ``Makefile``, ``*.cpp`` and ``*.h``.
    out : Path, optional
        Build folder (created; must be outside this repository). Default: a temporary folder.

    Returns
    -------
    Path
        The build folder, holding ``main.x`` (theirs) and ``simec_timer`` (ours).
    """
    src = src.resolve()
    if not (src / "Makefile").is_file() or not (src / "neural_network.cpp").is_file():
        raise SystemExit(
            f"error: {src} does not hold the authors' Makefile and neural_network.cpp; fetch "
            "simec-1d-test-code into it first"
        )
    out = Path(tempfile.mkdtemp(prefix="simec-build-")) if out is None else out.resolve()
    for p in (src, out):
        if p == REPO or REPO in p.parents:
            raise SystemExit(
                f"error: {p} is inside the fiberscope repository; keep the authors' code "
                "outside it (e.g. under /tmp)"
            )
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and (f.suffix in (".cpp", ".h") or f.name == "Makefile"):
            shutil.copy2(f, out / f.name)
    if (src / "Eigen").exists():
        if not (out / "Eigen").exists():
            (out / "Eigen").symlink_to(src / "Eigen")
    elif not (out / "Eigen").exists():
        eigen = next((e for e in EIGEN_CANDIDATES if e.is_dir()), None)
        if eigen is None:
            raise SystemExit(
                "error: Eigen not found; install it (Debian: apt-get install libeigen3-dev) "
                "or put its Eigen/ folder next to the authors' sources"
            )
        (out / "Eigen").symlink_to(eigen)
    (out / "simec_timer.cpp").write_text(DRIVER)
    (out / "fiberscope_driver.mk").write_text(DRIVER_MK)
    for cmd in (
        ["make", "-s"],
        ["make", "-s", "-f", "Makefile", "-f", "fiberscope_driver.mk", "simec_timer"],
    ):
        done = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise SystemExit(f"error: {' '.join(cmd)} failed in {out} (output above)")
    for exe in ("main.x", "simec_timer"):
        if not (out / exe).is_file():
            raise SystemExit(f"error: the build did not produce {exe} in {out}")
    return out


def main() -> None:
    """Command line: build and print the build folder."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="folder with the authors' sources (outside the repo)")
    ap.add_argument("--out", type=Path, default=None, help="build folder (outside the repo)")
    args = ap.parse_args()
    out = build(args.src, args.out)
    print(out)


if __name__ == "__main__":
    sys.exit(main())
