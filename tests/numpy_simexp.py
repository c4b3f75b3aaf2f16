"""Views of the independent NumPy reference (``reference/numpy_simec.py``) shaped for the
explore and preimage tests: SiMExp-1D, stop-at-boundary SiMEC-1D and ``main.cpp``'s interval
driver, all with the authors' eigenvector signs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reference import numpy_simec as ref


def load_layers(path: str | Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Read a paper weights-CSV: ``[(W, b, TYPE), ...]``."""
    return ref.load_paper_csv(path)


def simec_stop_boundary(layers, x0, steps, delta, invert, h_inf, h_sup) -> list[np.ndarray]:
    """Stop-at-boundary SiMEC-1D; the recorded points (start excluded)."""
    pts, _ = ref.simec_1d(layers, x0, delta, steps, invert, box=(h_inf, h_sup), variant="stop")
    return list(pts)


def simexp(layers, x0, delta, epsilon, max_steps, invert) -> list[np.ndarray]:
    """SiMExp-1D; the recorded points (start excluded)."""
    return list(ref.simexp_1d(layers, x0, delta, epsilon, max_steps, invert))


def preimage_driver(
    layers, x0, *, n_iterations, delta, epsilon, delta_exp, nst, h_inf, h_sup, max_steps=10000
):
    """``main.cpp`` for SiMExp-1D: per sweep a list of levels ``(start, backward, forward)``
    (backward = the ``invert=true`` SiMEC run) and the final, never traced, point."""
    sweeps = []
    for invert in (True, False):
        x = np.array(x0, dtype=np.float64)
        levels = []
        for _ in range(nst):
            back = simec_stop_boundary(layers, x, n_iterations, delta, True, h_inf, h_sup)
            fwd = simec_stop_boundary(layers, x, n_iterations, delta, False, h_inf, h_sup)
            levels.append((x.copy(), back, fwd))
            x = simexp(layers, x, delta_exp, epsilon / nst, max_steps, invert)[-1]
        sweeps.append({"levels": levels, "final": x})
    return sweeps
