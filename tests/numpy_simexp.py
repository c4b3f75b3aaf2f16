"""An independent NumPy reference of the authors' SiMEC-1D (stop at boundary), SiMExp-1D and
preimage driver, written from their C++ (simec-1d-test-code: neural_network.cpp, main.cpp).

It shares no code with fiberscope: it reads the weights-CSV itself, evaluates the network and
its Jacobian with NumPy, and eigen-decomposes the pullback metric with ``numpy.linalg.eigh``
(LAPACK, the same convention for the eigenvectors' signs as ``torch.linalg.eigh``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_layers(path: str | Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Read a paper weights-CSV: ``[(W, b, TYPE), ...]``."""
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    n_layers = int(lines[0].split()[0])
    layers = []
    for i in range(n_layers):
        head = lines[1 + 3 * i].split()
        rows, cols, kind = int(head[0]), int(head[1]), head[4]
        w = np.array([float(v) for v in lines[2 + 3 * i].split()]).reshape(rows, cols)
        b = np.array([float(v) for v in lines[3 + 3 * i].split()])
        layers.append((w, b, kind))
    return layers


def predict_and_jacobian(layers, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output and Jacobian (chain rule, layer by layer) of a sigmoid/softplus network."""
    h = np.asarray(x, dtype=np.float64)
    jac = np.eye(h.size)
    for w, b, kind in layers:
        z = w @ h + b
        if kind == "FC_LAYER_SG":
            h = 1.0 / (1.0 + np.exp(-z))
            d = h * (1.0 - h)
        elif kind == "FC_LAYER_SP":
            h = np.log1p(np.exp(z))
            d = 1.0 / (1.0 + np.exp(-z))
        else:  # pragma: no cover - the reference covers the layers the tests use
            raise NotImplementedError(kind)
        jac = (d[:, None] * w) @ jac
    return h, jac


def _eigvecs(layers, x):
    _, jac = predict_and_jacobian(layers, x)
    g = jac.T @ jac
    return np.linalg.eigh(g)[1]


def simec_stop_boundary(layers, x0, steps, delta, invert, h_inf, h_sup) -> list[np.ndarray]:
    """``SiMEC_1D_stop_boundary``: recorded points (start excluded)."""
    x = np.array(x0, dtype=np.float64)
    old = np.zeros_like(x)
    out = []
    for _ in range(steps):
        v = _eigvecs(layers, x)[:, 0]
        if old @ v < 0:
            v = -v
        x = x - delta * v if invert else x + delta * v
        halt = False
        for i in range(x.size):
            if x[i] > h_sup[i]:
                x[i] = h_sup[i]
                halt = True
            if x[i] < h_inf[i]:
                x[i] = h_inf[i]
                halt = True
        old = v
        out.append(x.copy())
        if halt:
            break
    return out


def simexp(layers, x0, delta, epsilon, max_steps, invert) -> list[np.ndarray]:
    """``SiMExp_1D``: recorded points (start excluded); the sign reference stays zero."""
    x = np.array(x0, dtype=np.float64)
    start = predict_and_jacobian(layers, x)[0][0]
    out = []
    step = 0
    while True:
        v = _eigvecs(layers, x)[:, -1]
        x = x - delta * v if invert else x + delta * v
        step += 1
        out.append(x.copy())
        if not (abs(start - predict_and_jacobian(layers, x)[0][0]) < epsilon and step < max_steps):
            break
    return out


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
