"""Independent plain-NumPy (float64) reference of the authors' "paper mode" algorithms.

Written from docs/method.md section 2 and docs/paper-mode-spec.md; shares no code with
fiberscope. Besides ``numpy.linalg.eigh`` it carries a small emulation of the symmetric
eigen-solver the authors used (one implicit QR sweep scheme on 2x2 matrices) because the
eigenvector signs it returns decide the first SiMEC step and every SiMExp step.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

CUT, TINY_EXP = 50.0, 1.92874984e-22  # the authors' activation cut-off and its stand-in value


def load_paper_csv(path: str | Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Weights-CSV -> [(W, b, TYPE), ...] (tab separated; see spec)."""
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    layers = []
    for i in range(int(lines[0].split()[0])):
        head = lines[1 + 3 * i].split()
        rows, cols = int(head[0]), int(head[1])
        w = np.array(lines[2 + 3 * i].split(), dtype=np.float64).reshape(rows, cols)
        b = np.array(lines[3 + 3 * i].split(), dtype=np.float64)
        layers.append((w, b, head[4]))
    return layers


def _sigmoid(z):
    zc = np.where(z > -CUT, z, 0.0)
    return np.where(z > -CUT, 1.0 / (1.0 + np.exp(-zc)), TINY_EXP)


def _act(kind, z):
    """Activation value and (Jacobian of the activation w.r.t. z) with the authors' cut-offs."""
    if kind == "FC_LAYER_SG":
        e = np.where(z > -CUT, np.exp(-np.where(z > -CUT, z, 0.0)), TINY_EXP)
        return _sigmoid(z), np.diag(e / (1.0 + 2.0 * e + e * e))
    if kind == "FC_LAYER_SP":
        val = np.where(z < CUT, np.log(1.0 + np.exp(np.minimum(z, CUT))), z)
        return val, np.diag(_sigmoid(z))
    if kind == "FC_LAYER_SL":
        s = _sigmoid(z)
        val = np.where(z > -CUT, z * s, TINY_EXP)
        return val, np.diag(np.where(z > -CUT, s + z * s * (1.0 - s), TINY_EXP))
    if kind == "FC_LAYER_SM":  # mathematically correct Jacobian (the authors' one is not)
        p = np.exp(z - z.max())
        p /= p.sum()
        return p, np.diag(p) - np.outer(p, p)
    raise ValueError(f"unknown layer type {kind}")


def forward(layers, x) -> np.ndarray:
    h = np.asarray(x, dtype=np.float64)
    for w, b, kind in layers:
        h = _act(kind, w @ h + b)[0]
    return h


def jacobians(layers, x) -> list[np.ndarray]:
    """Per-layer Jacobians J_i (output_i x input_i) at x."""
    h, out = np.asarray(x, dtype=np.float64), []
    for w, b, kind in layers:
        h, d = _act(kind, w @ h + b)
        out.append(d @ w)
    return out


def jacobian(layers, x) -> np.ndarray:
    jac = np.eye(len(x))
    for j in jacobians(layers, x):
        jac = j @ jac
    return jac


def metric(layers, x) -> np.ndarray:
    """Pull-back of the identity output metric, layer by layer from the last layer."""
    js = jacobians(layers, x)
    g = np.eye(js[-1].shape[0])
    for j in reversed(js):
        g = j.T @ g @ j
    return g


def _givens(p, q):
    if q == 0.0:
        return (-1.0 if p < 0 else 1.0), 0.0
    if p == 0.0:
        return 0.0, (1.0 if q < 0 else -1.0)
    if abs(p) > abs(q):
        t = q / p
        u = math.copysign(math.sqrt(1.0 + t * t), p)
        c = 1.0 / u
        return c, -t * c
    t = p / q
    u = math.copysign(math.sqrt(1.0 + t * t), q)
    s = -1.0 / u
    return -t * s, s


def eig_eigen2(g):
    """Eigenpairs of a symmetric 2x2 matrix as the authors' solver computes them (ascending):
    scale by max |entry|, Wilkinson-shifted implicit QR sweeps with Givens rotations
    accumulated into Q = I, deflate when (sub/eps)^2 <= |d0|+|d1|, sort ascending."""
    a, b, c = g[0, 0], g[1, 0], g[1, 1]
    scale = max(abs(a), abs(b), abs(c)) or 1.0
    d0, d1, e = a / scale, c / scale, b / scale
    q = np.eye(2)
    for _ in range(60):
        if abs(e) < np.finfo(float).tiny or (e / np.finfo(float).eps) ** 2 <= abs(d0) + abs(d1):
            break
        td, mu = 0.5 * (d0 - d1), d1
        if td == 0.0:
            mu -= abs(e)
        else:
            hi, lo = max(abs(td), abs(e)), min(abs(td), abs(e))
            h = hi * math.sqrt(1.0 + (lo / hi) * (lo / hi))  # Eigen's hypot formula
            mu -= e * e / (td + (h if td > 0 else -h))
        cs, sn = _givens(d0 - mu, e)
        sdk, dk1 = sn * d0 + cs * e, sn * e + cs * d1
        d0 = cs * (cs * d0 - sn * e) - sn * (cs * e - sn * d1)
        d1, e = sn * sdk + cs * dk1, cs * sdk - sn * dk1
        q = np.column_stack([cs * q[:, 0] - sn * q[:, 1], sn * q[:, 0] + cs * q[:, 1]])
    if d1 < d0:
        return np.array([d1, d0]) * scale, q[:, ::-1].copy()
    return np.array([d0, d1]) * scale, q


def eigvecs(g, solver="eigen"):
    if solver == "eigen" and g.shape == (2, 2):
        return eig_eigen2(g)[1]
    return np.linalg.eigh(g)[1]


def simec_1d(layers, x0, delta, n_steps, invert=False, box=None, variant=None, solver="eigen"):
    """SiMEC-1D. variant None: unbounded; 'clamp': clamp to box every step; 'stop': clamp,
    record the clamped point, stop. Returns (points K x n, start excluded; energy)."""
    x = np.array(x0, dtype=np.float64)
    old, energy, pts = np.zeros_like(x), 0.0, []
    lo, hi = (None, None) if box is None else (np.asarray(box[0], float), np.asarray(box[1], float))
    for _ in range(n_steps):
        g = metric(layers, x)
        v = eigvecs(g, solver)[:, 0]
        if old @ v < 0.0:
            v = -v
        x = x - delta * v if invert else x + delta * v
        halt = False
        if variant is not None:
            halt = bool(np.any(x > hi) or np.any(x < lo))
            x = np.minimum(np.maximum(x, lo), hi)
        energy += delta * (v @ g @ v)
        old = v
        pts.append(x.copy())
        if variant == "stop" and halt:
            break
    return np.array(pts).reshape(-1, len(x)), energy


def simexp_1d(layers, x0, delta, epsilon, max_steps=10000, invert=False, solver="eigen"):
    """SiMExp-1D: raw top eigenvector each step (never sign-aligned); at least one step; stop
    when |N(x)-N(x0)| >= epsilon or after max_steps. Returns points (start excluded)."""
    x = np.array(x0, dtype=np.float64)
    y0, pts = forward(layers, x)[0], []
    while True:
        v = eigvecs(metric(layers, x), solver)[:, -1]
        x = x - delta * v if invert else x + delta * v
        pts.append(x.copy())
        if not (abs(y0 - forward(layers, x)[0]) < epsilon and len(pts) < max_steps):
            break
    return np.array(pts)


def interval_driver(
    layers, x0, delta, n_steps, delta_exp, epsilon, box, nst=100, max_steps=10000, solver="eigen"
):
    """main.cpp's SiMExp-1D branch. Returns the blocks in file order as (name, points):
    per pass (SiMExp invert=True, then invert=False, both from x0) and per sub-step:
    stop-SiMEC invert=True, stop-SiMEC invert=False, SiMExp with epsilon/nst."""
    blocks = []
    for exp_invert in (True, False):
        p = np.array(x0, dtype=np.float64)
        for _ in range(nst):
            for inv in (True, False):
                pts, _ = simec_1d(layers, p, delta, n_steps, inv, box, "stop", solver)
                blocks.append((f"simec_invert={inv}", pts))
            pts = simexp_1d(layers, p, delta_exp, epsilon / nst, max_steps, exp_invert, solver)
            blocks.append((f"simexp_invert={exp_invert}", pts))
            p = pts[-1]
    return blocks


def format_rows(points) -> list[str]:
    """The authors' file format: C++ ostream defaults (6 significant digits, like %g), tabs."""
    return ["\t".join(f"{v:g}" for v in row) for row in np.atleast_2d(points)]
