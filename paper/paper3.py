"""Reproduce paper III from a checkout: ``python -m paper.paper3 --out DIR``.

Benfenati & Marta, *A singular Riemannian geometry approach to Deep Neural Networks III.
Piecewise differentiable layers and random walks on n-dimensional classes* (arXiv 2404.06104),
walks the classes of networks with more inputs than outputs. This command repeats its
experiments with the authors' walk (``fs.walk(method="paper")``) next to fiberscope's
``"corrected"`` and ``"uniform"`` walks, through the public API only:

- the ReLU and leaky tests (section 7.1): ``ReLU(x - y)``, ``ReLU(x - y + z)`` and the authors'
  leaky unit (slope ``-0.01`` below zero), from their starts with their ``delta`` and step
  counts; their classes are known exactly (lines, planes, a half-plane), so the table gives
  the true distance of every sample from the class;
- the CCPP regression network (section 7.3; the authors' architecture with its LSTM cell,
  ``paper/ccpp.py``), trained here deterministically with the authors' target (RH, one of the
  inputs: their bug) and with the intended one (PE), walked from the first training row;
- the bundled MNIST CNN (``fiberscope.models.zoo.mnist_cnn``; section 7.2 used a similar CNN)
  walked from a bundled test digit.

It writes ``relu.png``, ``ccpp.png``, ``mnist.png``, ``table.md``, ``table.csv`` and
``paper3.json`` into ``--out`` (refusing to overwrite without ``--force``), progress lines on
stderr and the Markdown table on stdout. ``--quick`` is the small version the tests run (its
numbers are not the paper's).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer
from rich.console import Console
from rich.markup import escape

import fiberscope as fs

from .adapter import atomic_write
from .reproduce import _ABORT, _EXIT, MAX_SEED, _click_exc, check_out_dir

__all__ = [
    "FILES",
    "RELU_CASES",
    "ReluCase",
    "WalkRow",
    "app",
    "main",
    "run_all",
]

#: Files one run writes into ``--out``.
FILES = ("relu.png", "ccpp.png", "mnist.png", "table.md", "table.csv", "paper3.json")
METHODS = ("paper", "corrected", "uniform")
COLORS = {"paper": "#d62728", "corrected": "#1f77b4", "uniform": "#2ca02c"}
#: Slope of the authors' leaky unit below zero (negative: the unit is V-shaped).
LEAKY_SLOPE = -0.01
#: The uniform MNIST walk starts from ``INNER[0] + INNER[1] * digit`` (inside the pixel box).
INNER = (0.05, 0.9)
#: Samples kept per walk (the rest is thinned out).
KEEP = 2000

err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)


# --------------------------------------------------------------------------- the tests of 7.1


def relu_unit(z: torch.Tensor) -> torch.Tensor:
    """``max(z, 0)``."""
    return torch.relu(z)


def leaky_unit(z: torch.Tensor) -> torch.Tensor:
    """The authors' leaky unit: ``z`` above zero, ``-0.01 z`` below (V-shaped)."""
    return torch.where(z > 0, z, LEAKY_SLOPE * z)


@dataclass(frozen=True)
class ReluCase:
    """One ReLU/leaky test: ``f(x) = unit(a . x)`` from the authors' start.

    Attributes
    ----------
    name : str
        Label in the table.
    unit : {"relu", "leaky"}
        The activation.
    a : tuple of float
        Weights of the single unit (``(1, -1)`` or ``(1, -1, 1)``).
    x0 : tuple of float
        The authors' start.
    delta : float
        The authors' ``delta`` (their walk moves ``delta / 2`` per step).
    steps : int
        The authors' step count.
    """

    name: str
    unit: str
    a: tuple[float, ...]
    x0: tuple[float, ...]
    delta: float
    steps: int

    def model(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The network ``R^n -> R^1``."""
        w = torch.tensor(self.a, dtype=torch.float64)
        act = relu_unit if self.unit == "relu" else leaky_unit

        def f(x: torch.Tensor) -> torch.Tensor:
            return act((x * w.to(x.dtype)).sum(-1, keepdim=True))

        return f

    @property
    def z0(self) -> float:
        """Pre-activation at the start."""
        return float(np.dot(self.a, self.x0))

    @property
    def dead(self) -> bool:
        """The start lies where the unit is flat (the class is a full-dimensional region)."""
        return self.unit == "relu" and self.z0 <= 0

    def levels(self) -> list[float]:
        """Values of ``a . x`` on the class (the class is the union of these hyperplanes)."""
        z0 = self.z0
        if self.unit == "relu":
            return [z0]
        f0 = z0 if z0 > 0 else LEAKY_SLOPE * z0
        return sorted({f0, f0 / LEAKY_SLOPE}) if f0 > 0 else [0.0]

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Exact Euclidean distance of points ``(k, n)`` from the class of the start."""
        a = np.asarray(self.a)
        z = x @ a
        norm = float(np.linalg.norm(a))
        if self.dead:
            return np.maximum(z, 0.0) / norm
        return np.min(np.abs(z[:, None] - np.asarray(self.levels())[None, :]), axis=1) / norm

    def basis(self) -> np.ndarray:
        """Orthonormal basis ``(k, n)`` of the class's directions (the piece through x0)."""
        n = len(self.a)
        if self.dead:
            return np.eye(n)
        _, _, vt = np.linalg.svd(np.asarray(self.a)[None, :])
        return vt[1:]

    def class_text(self) -> str:
        """The class in words."""
        terms = "x - y" if len(self.a) == 2 else "x - y + z"
        if self.dead:
            return f"{terms} <= 0 (dead region, full-dimensional)"
        return " or ".join(f"{terms} = {v:.4g}" for v in self.levels())


#: The tests of section 7.1 with the authors' starts, deltas and step counts (method.md §5).
RELU_CASES = (
    ReluCase("relu_2d", "relu", (1.0, -1.0), (-1.85, 1.3), 0.01, 10_000),
    ReluCase("relu_3d", "relu", (1.0, -1.0, 1.0), (1.85, 1.3, 1.5), 0.01, 5_000),
    ReluCase("leaky_2d (1.85, 1.3)", "leaky", (1.0, -1.0), (1.85, 1.3), 1e-3, 10_000),
    ReluCase("leaky_2d (-1.85, 1.3)", "leaky", (1.0, -1.0), (-1.85, 1.3), 1e-3, 10_000),
    ReluCase("leaky_3d", "leaky", (1.0, -1.0, 1.0), (1.85, 1.3, -1.5), 0.01, 7_500),
)


# --------------------------------------------------------------------------- results


@dataclass
class WalkRow:
    """One walk: its settings and what it measured (a row of the table).

    Attributes
    ----------
    case, method : str
        Experiment and ``fs.walk`` method.
    settings : str
        Steps and step size in words.
    steps : int
        Steps (proposals for ``"uniform"``) taken by the chain.
    saved : int
        Samples kept.
    seconds : float
        Wall time of the ``fs.walk`` call.
    residual : float
        ``max |N(x) - N(x0)|`` over the saved samples (``WalkResult.residual``).
    class_distance : float or None
        Largest exact distance of a sample from the class (analytic classes only).
    reach : float
        Largest distance of a sample from the start.
    coverage : float or None
        Length (1-D class) or area (2-D class) of the convex hull of the samples.
    coverage_text : str
        Coverage in words (the table's column).
    notes : str
        Acceptance, rejections, stop reason, anything else worth a word.
    """

    case: str
    method: str
    settings: str
    steps: int
    saved: int
    seconds: float
    residual: float
    class_distance: float | None
    reach: float
    coverage: float | None
    coverage_text: str
    notes: str
    samples: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    extra: dict[str, Any] = field(default_factory=dict)


def _walk(
    model: Any,
    x0: Any,
    *,
    method: str,
    steps: int,
    step: float,
    seed: int,
    **kw: Any,
) -> tuple[fs.WalkResult, float]:
    if "thin" in kw:
        thin = int(kw.pop("thin"))
    else:  # the smallest thin that keeps at most KEEP samples and divides the step count
        thin = max(1, math.ceil(steps / KEEP))
        while steps % thin:
            thin += 1
    samples = max(1, steps // thin)
    t0 = time.perf_counter()
    res = fs.walk(
        model,
        x0,
        samples=samples,
        thin=thin,
        max_steps=samples * thin,
        step=step,
        method=method,
        seed=seed,
        **kw,
    )
    assert isinstance(res, fs.WalkResult)
    return res, time.perf_counter() - t0


def _flat(res: fs.WalkResult) -> np.ndarray:
    k = res.counts[0]
    return res.samples[0, :k].reshape(k, -1).detach().cpu().numpy().astype(np.float64)


def _hull_measure(coords: np.ndarray) -> float:
    """Length (1-D) or area (2-D) of the convex hull of ``coords`` ``(k, d)``."""
    if coords.shape[1] == 1:
        return float(coords.max() - coords.min())
    from scipy.spatial import ConvexHull, QhullError

    try:
        return float(ConvexHull(coords).volume)
    except (QhullError, ValueError):  # collinear samples: no area
        return 0.0


def _steps_taken(res: fs.WalkResult) -> int:
    if res.method == "uniform":
        return int(res.accepted[0] + sum(v[0] for v in res.rejections.values()))
    return int(res.accepted[0] + res.rejections.get("step", [0])[0])


def _notes(res: fs.WalkResult) -> str:
    parts = []
    if res.method == "uniform":
        total = _steps_taken(res)
        rej = {k: v[0] for k, v in res.rejections.items() if v[0]}
        acc = res.accepted[0] / total if total else 0.0
        parts.append(f"accepted {acc:.0%}")
        if rej:
            parts.append("rejected " + ", ".join(f"{k} {v}" for k, v in rej.items()))
    if res.rank_changes[0]:
        parts.append(f"{res.rank_changes[0]} rank changes")
    if res.stop_reasons[0] != "max_steps":
        parts.append(f"stopped: {res.stop_reasons[0]}")
    return "; ".join(parts)


def run_relu(case: ReluCase, *, quick: bool, seed: int, rep: Any) -> list[WalkRow]:
    """Walk one ReLU/leaky test with the three methods.

    The authors' walk gets their ``delta`` and step count; the corrected and uniform walks get
    the same number of steps with the same displacement per step (``delta / 2``: the largest
    step of the corrected walk, the proposal scale of the uniform one). No box (the authors
    use none in these tests).

    Parameters
    ----------
    case : ReluCase
        The test.
    quick : bool
        A 500th of the steps (at least 12).
    seed : int
        Seed of the walks.
    rep : Reporter
        Progress lines.

    Returns
    -------
    list of WalkRow
        One row per method.
    """
    f = case.model()
    steps = max(12, case.steps // 500) if quick else case.steps
    x0 = np.asarray(case.x0, dtype=np.float64)
    rows = []
    for method in METHODS:
        rep.stage(f"{case.name}: {method} walk, {steps:,} steps")
        if method == "paper":
            kw: dict[str, Any] = {"null": "threshold", "step": case.delta}
            settings = f"{steps:,} steps, delta {case.delta:g} (moves delta/2)"
        else:
            kw = {"step": case.delta / 2}
            settings = f"{steps:,} steps, step {case.delta / 2:g}"
        res, secs = _walk(
            f,
            torch.tensor(x0),
            method=method,
            steps=steps,
            seed=seed,
            allow_singular=case.dead,
            progress=rep.counter("steps"),
            **kw,
        )
        pts = _flat(res)
        with_start = np.vstack([x0[None, :], pts])
        coords = (with_start - x0) @ case.basis().T
        hull = _hull_measure(coords)
        dim = coords.shape[1]
        centred = coords - coords.mean(0)
        spread = np.linalg.svd(centred, compute_uv=False) / math.sqrt(len(coords))
        if dim == 1:
            text = f"length {hull:.3g}"
        else:
            text = f"area {hull:.3g}; spread {spread[0]:.3g} x {spread[1]:.3g}"
        rows.append(
            WalkRow(
                case=case.name,
                method=method,
                settings=settings,
                steps=_steps_taken(res),
                saved=len(pts),
                seconds=secs,
                residual=res.residual,
                class_distance=float(case.distance(pts).max()) if len(pts) else 0.0,
                reach=float(np.linalg.norm(pts - x0, axis=1).max()) if len(pts) else 0.0,
                coverage=hull,
                coverage_text=text,
                notes=_notes(res),
                samples=pts,
                extra={"spread": spread.tolist(), "class_coords": coords[1:]},
            )
        )
    return rows


# --------------------------------------------------------------------------- CCPP (7.3)


def run_ccpp(
    *, quick: bool, seed: int, epochs: int | None, rep: Any
) -> tuple[list[WalkRow], dict[str, Any]]:
    """Train the CCPP network with both targets and walk the class of the first training row.

    The authors' walk: their threshold rule (eigenvalues below 1e-5), ``delta = 1e-4``, 1000
    steps, clamped to ``[0, 1]``. Corrected and uniform: 1000 steps of 0.01 in the box
    ``[0, 1]^4``.

    Parameters
    ----------
    quick : bool
        Two epochs and 20 steps.
    seed : int
        Seed of the initial weights and of the walks.
    epochs : int, optional
        Training epochs (default: the authors' 500; 2 with ``quick``).
    rep : Reporter
        Progress lines.

    Returns
    -------
    rows : list of WalkRow
        Three rows per network.
    info : dict
        Training errors and times, the start, the normalisation.
    """
    from .ccpp import COLUMNS, load_ccpp, train_ccpp

    n_epochs = epochs if epochs is not None else (2 if quick else 500)
    steps = 20 if quick else 1000
    rows: list[WalkRow] = []
    info: dict[str, Any] = {"epochs": n_epochs, "networks": {}}
    for target in ("rh", "pe"):
        label = f"CCPP, target {target.upper()}" + (" (the authors')" if target == "rh" else "")
        rep.stage(f"training the CCPP network, target {target.upper()}, {n_epochs} epochs")
        data = load_ccpp(target)
        trained = train_ccpp(
            target, epochs=n_epochs, seed=seed, data=data, progress=rep.counter("epochs")
        )
        net = trained.model
        x0 = data.X_train[0].to(torch.float64)
        with torch.no_grad():
            y0 = float(net(x0.to(torch.float32)))
        unit = "% RH" if target == "rh" else "MW"
        info["networks"][target] = {
            "val_mse": trained.val_mse,
            "train_mse": trained.train_mse,
            "val_mae": trained.val_mae_units,
            "val_mae_unit": unit,
            "train_seconds": trained.seconds,
            "x0": x0.tolist(),
            "x0_units": data.denormalise(x0.numpy()).tolist(),
            "y0": y0,
        }
        info["minimum"] = data.minimum.tolist()
        info["maximum"] = data.maximum.tolist()
        info["columns"] = list(COLUMNS)
        for method in METHODS:
            rep.stage(f"{label}: {method} walk, {steps:,} steps")
            if method == "paper":
                kw: dict[str, Any] = {"null": "threshold", "step": 1e-4}
                settings = f"{steps:,} steps, delta 1e-4, clamp [0, 1]"
            else:
                kw = {"step": 0.01}
                settings = f"{steps:,} steps, step 0.01, box [0, 1]"
            res, secs = _walk(
                net,
                x0,
                method=method,
                steps=steps,
                seed=seed,
                bounds=(0.0, 1.0),
                progress=rep.counter("steps"),
                **kw,
            )
            pts = _flat(res)
            x0n = x0.numpy()
            share = (pts.max(0) - pts.min(0)) if len(pts) else np.zeros(4)
            rows.append(
                WalkRow(
                    case=label,
                    method=method,
                    settings=settings,
                    steps=_steps_taken(res),
                    saved=len(pts),
                    seconds=secs,
                    residual=res.residual,
                    class_distance=None,
                    reach=float(np.linalg.norm(pts - x0n, axis=1).max()) if len(pts) else 0.0,
                    coverage=None,
                    coverage_text="range of "
                    + ", ".join(f"{c} {s:.2f}" for c, s in zip(COLUMNS[:4], share, strict=True)),
                    notes=_notes(res),
                    samples=pts,
                    extra={"target": target, "range_share": share.tolist()},
                )
            )
    return rows, info


# --------------------------------------------------------------------------- MNIST (7.2)


def run_mnist(*, quick: bool, seed: int, rep: Any) -> tuple[list[WalkRow], dict[str, Any]]:
    """Walk the class of a bundled test digit under the bundled MNIST CNN (10 logits).

    The authors' walk: ``delta = 0.1``, 1000 steps, a sample every 100, their index rule,
    clamped to the pixel box ``[0, 1]``. Corrected: 1000 steps of at most 1.0 in the box.
    Uniform: it refuses starts on the box faces and a digit has hundreds of pixels at 0, so
    it walks the class of the digit pulled 5 % into the box (``0.05 + 0.9 x``, see
    :data:`INNER`), 1000 proposals of scale 0.002 (larger scales push pixels out of the
    box: in a 50-step probe 0.005 had 28 % of its proposals accepted, 0.002 98 %).

    Parameters
    ----------
    quick : bool
        Two steps of the authors' walk, six of the others.
    seed : int
        Seed of the walks.
    rep : Reporter
        Progress lines.

    Returns
    -------
    rows : list of WalkRow
        One row per method.
    info : dict
        The digit, its label and prediction, the inner start's output change.
    """
    from fiberscope.models import zoo

    model = zoo.mnist_cnn()
    images, labels = zoo.mnist_digits()
    x0 = images[0].to(torch.float64)
    label = int(labels[0])
    inner = INNER[0] + INNER[1] * x0
    with torch.no_grad():
        y0 = model(x0.to(torch.float32)[None])[0].to(torch.float64)
        y_in = model(inner.to(torch.float32)[None])[0].to(torch.float64)
    info = {
        "label": label,
        "prediction": int(y0.argmax()),
        "pixels_on_faces": int(((x0 <= 0) | (x0 >= 1)).sum()),
        "inner_logit_change": float((y_in - y0).abs().max()),
    }
    plan = {
        "paper": (2 if quick else 1000, {"step": 0.1, "null": "index"}, "delta 0.1, clamp [0, 1]"),
        "corrected": (6 if quick else 1000, {"step": 1.0}, "step <= 1, box [0, 1]"),
        "uniform": (6 if quick else 1000, {"step": 0.002}, "scale 0.002, box [0, 1]"),
    }
    rows = []
    for method in METHODS:
        steps, kw, words = plan[method]
        start = inner if method == "uniform" else x0
        rep.stage(f"MNIST digit {label}: {method} walk, {steps:,} steps")
        res, secs = _walk(
            model,
            start,
            method=method,
            steps=steps,
            seed=seed,
            bounds=(0.0, 1.0),
            thin=max(1, steps // 10),
            progress=rep.counter("steps"),
            **kw,
        )
        pts = _flat(res)
        with torch.no_grad():
            preds = (
                model(torch.from_numpy(pts).to(torch.float32).reshape(-1, 1, 28, 28))
                .argmax(-1)
                .tolist()
            )
        x0n = start.reshape(-1).numpy()
        kept = sum(p == info["prediction"] for p in preds)
        prefix = "from the inner digit; " if method == "uniform" else ""
        rows.append(
            WalkRow(
                case=f"MNIST CNN, digit {label}",
                method=method,
                settings=f"{steps:,} steps, {words}",
                steps=_steps_taken(res),
                saved=len(pts),
                seconds=secs,
                residual=res.residual,
                class_distance=None,
                reach=float(np.linalg.norm(pts - x0n, axis=1).max()) if len(pts) else 0.0,
                coverage=None,
                coverage_text=f"mean pixel range {float((pts.max(0) - pts.min(0)).mean()):.3f}"
                if len(pts)
                else "",
                notes=prefix
                + f"prediction kept {kept}/{len(preds)}"
                + (f"; {_notes(res)}" if _notes(res) else ""),
                samples=pts,
                extra={"predictions": preds},
            )
        )
    return rows, info


# --------------------------------------------------------------------------- figures


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    if x == 0:
        return "0"
    return f"{x:.2e}"


def relu_figure(cases: Sequence[ReluCase], rows: Sequence[WalkRow]) -> Any:
    """Samples of every method on every ReLU/leaky test, with the exact class.

    2-D tests in the ``(x, y)`` plane with the class drawn; 3-D tests in coordinates of the
    class's plane (an orthonormal basis of its directions, origin at the start). An inset
    zooms on the start, where the corrected and uniform samples are.

    Parameters
    ----------
    cases : sequence of ReluCase
        The tests, one panel each (at most five).
    rows : sequence of WalkRow
        Their walks (from :func:`run_relu`).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not attached to pyplot).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(15, 9.5), layout="constrained")
    by_case = {c.name: [r for r in rows if r.case == c.name] for c in cases}
    for i, case in enumerate(cases):
        runs = by_case[case.name]
        flat = len(case.a) == 3
        x0 = np.zeros(2) if flat else np.asarray(case.x0)

        def pts(r: WalkRow, flat: bool = flat) -> np.ndarray:
            return r.extra["class_coords"] if flat else r.samples

        ax = fig.add_subplot(2, 3, i + 1)
        every = np.vstack([pts(r) for r in runs] + [x0[None, :]])
        near = np.vstack([pts(r) for r in runs if r.method != "paper"] + [x0[None, :]])
        frac = (every - every.min(0)) / np.maximum(np.ptp(every, 0), 1e-12)
        corners = [(0.6, 0.04), (0.04, 0.04), (0.6, 0.59), (0.04, 0.59)]
        crowd = [
            int(((np.abs(frac - np.array([cx, cy]) - 0.18) < 0.22).all(1)).sum())
            for cx, cy in corners
        ]
        zoom = ax.inset_axes((*corners[int(np.argmin(crowd))], 0.37, 0.37))
        for axis, sel in ((ax, every), (zoom, near)):
            lo, hi = sel.min(0), sel.max(0)
            pad = 0.08 * np.maximum(hi - lo, 1e-3) + 1e-3
            lo, hi = lo - pad, hi + pad
            if not flat:
                xs = np.linspace(lo[0], hi[0], 2)
                if case.dead:
                    axis.fill_between(xs, xs, hi[1], color="0.88")
                else:
                    for v in case.levels():
                        axis.plot(xs, xs - v, color="0.5", lw=1)
            for r in runs:
                q = pts(r)
                axis.plot(q[:, 0], q[:, 1], ".", ms=2, color=COLORS[r.method])
            axis.plot(x0[0], x0[1], "k*", ms=10)
            axis.set_xlim(lo[0], hi[0])
            axis.set_ylim(lo[1], hi[1])
        zoom.tick_params(labelsize=6)
        ax.set_xlabel("u (in the class's plane)" if flat else "x")
        ax.set_ylabel("v (in the class's plane)" if flat else "y")
        dist = ", ".join(f"{r.method} {_fmt(r.class_distance)}" for r in runs)
        ax.set_title(f"{case.name}: {case.class_text()}\ndistance from class: {dist}", fontsize=8)
    handles = [
        Line2D([], [], ls="", marker=".", ms=8, color=COLORS[m], label=f"fs.walk(method={m!r})")
        for m in METHODS
    ] + [Line2D([], [], ls="", marker="*", ms=10, color="k", label="the authors' start")]
    legend_ax = fig.add_subplot(2, 3, 6)
    legend_ax.axis("off")
    legend_ax.legend(handles=handles, loc="center", fontsize=10, frameon=False)
    return fig


def ccpp_figure(rows: Sequence[WalkRow], info: dict[str, Any]) -> Any:
    """The classes of the RH and PE networks in physical units: AT-RH and V-AP planes.

    Parameters
    ----------
    rows : sequence of WalkRow
        The CCPP walks (from :func:`run_ccpp`).
    info : dict
        Its side information (normalisation, starts, training errors).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from matplotlib.figure import Figure

    lo, hi = np.asarray(info["minimum"][:4]), np.asarray(info["maximum"][:4])
    cols = info["columns"]
    fig = Figure(figsize=(11, 9), layout="constrained")
    for i, target in enumerate(("rh", "pe")):
        runs = [r for r in rows if r.extra.get("target") == target]
        x0 = np.asarray(info["networks"][target]["x0_units"])
        for j, (a, b) in enumerate(((0, 3), (1, 2))):
            ax = fig.add_subplot(2, 2, 2 * i + j + 1)
            for r in runs:
                s = lo + r.samples * (hi - lo)
                ax.plot(s[:, a], s[:, b], ".", ms=2, color=COLORS[r.method], label=r.method)
            ax.plot(x0[a], x0[b], "k*", ms=10, label="start (first training row)")
            ax.set_xlim(lo[a], hi[a])
            ax.set_ylim(lo[b], hi[b])
            ax.set_xlabel(cols[a])
            ax.set_ylabel(cols[b])
            net = info["networks"][target]
            ax.set_title(
                f"target {target.upper()}: class of N(x0) = {net['y0']:.4f} "
                f"(val MAE {net['val_mae']:.2f} {net['val_mae_unit']})",
                fontsize=9,
            )
            if i == 0 and j == 0:
                leg = ax.legend(fontsize=7)
                for h in leg.legend_handles:
                    if h is not None:
                        h.set_markersize(6)
    return fig


def mnist_figure(rows: Sequence[WalkRow], info: dict[str, Any], start: np.ndarray) -> Any:
    """The digit and samples of each walk (the last one's difference from its start).

    Parameters
    ----------
    rows : sequence of WalkRow
        The MNIST walks (from :func:`run_mnist`).
    info : dict
        Label and prediction of the digit.
    start : numpy.ndarray
        The digit, ``(784,)`` pixels in ``[0, 1]``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6.5), layout="constrained")
    cols = 7
    for i, r in enumerate(rows):
        s = r.samples
        ref = INNER[0] + INNER[1] * start if r.method == "uniform" else start
        picks = np.linspace(0, len(s) - 1, min(len(s), cols - 2)).round().astype(int)
        images = [ref] + [s[k] for k in picks]
        titles = ["start" + (" (inner)" if r.method == "uniform" else "")] + [
            f"sample {k + 1}: pred {r.extra['predictions'][k]}" for k in picks
        ]
        for j, (im, title) in enumerate(zip(images, titles, strict=True)):
            ax = fig.add_subplot(len(rows), cols, i * cols + j + 1)
            ax.imshow(im.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(r.method, fontsize=9)
        if len(s):
            ax = fig.add_subplot(len(rows), cols, i * cols + cols)
            d = (s[-1] - ref).reshape(28, 28)
            v = max(float(np.abs(d).max()), 1e-12)
            ax.imshow(d, cmap="RdBu", vmin=-v, vmax=v)
            ax.set_title(f"last - start (max {v:.2f})\nresidual {r.residual:.1e}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"MNIST CNN, test digit {info['label']} (predicted {info['prediction']}): "
        "samples of its class",
        fontsize=10,
    )
    return fig


# --------------------------------------------------------------------------- tables


HEADER = [
    "case",
    "method",
    "settings",
    "time [s]",
    "largest residual",
    "distance from class",
    "reach",
    "coverage",
    "notes",
]


def _row_cells(r: WalkRow) -> list[str]:
    return [
        r.case,
        r.method,
        r.settings,
        f"{r.seconds:.2f}",
        _fmt(r.residual),
        _fmt(r.class_distance) if r.class_distance is not None else "n/a",
        f"{r.reach:.3g}",
        r.coverage_text,
        r.notes,
    ]


def table_markdown(rows: Sequence[WalkRow]) -> str:
    """The error table as Markdown.

    Parameters
    ----------
    rows : sequence of WalkRow
        One row per walk.

    Returns
    -------
    str
        The table, one line per walk after the header.
    """
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def table_csv(rows: Sequence[WalkRow]) -> str:
    """The error table as CSV, full precision.

    Parameters
    ----------
    rows : sequence of WalkRow
        One row per walk.

    Returns
    -------
    str
        The CSV text with a header line.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = [
        "case",
        "method",
        "settings",
        "steps",
        "saved",
        "seconds",
        "residual",
        "class_distance",
        "reach",
        "coverage",
        "coverage_text",
        "notes",
    ]
    w.writerow(names)
    for r in rows:
        d = asdict(r)
        w.writerow(["" if d[k] is None else d[k] for k in names])
    return buf.getvalue()


# --------------------------------------------------------------------------- driver


@dataclass
class Report:
    """Everything one run measured.

    Attributes
    ----------
    rows : list of WalkRow
        The table: ReLU/leaky tests, CCPP (RH, PE), MNIST, three methods each.
    ccpp, mnist : dict
        Side information of the CCPP networks and of the MNIST digit.
    mnist_start : numpy.ndarray
        The digit's pixels ``(784,)``.
    settings : dict
        ``quick``, ``seed`` and ``epochs`` of the run.
    seconds : float
        Wall time of :func:`run_all`.
    """

    rows: list[WalkRow]
    ccpp: dict[str, Any]
    mnist: dict[str, Any]
    mnist_start: np.ndarray
    settings: dict[str, Any]
    seconds: float = 0.0


def run_all(
    *, quick: bool = False, seed: int = 0, epochs: int | None = None, rep: Any = None
) -> Report:
    """Run every experiment (no files written).

    Parameters
    ----------
    quick : bool
        The small version (tests).
    seed : int
        Seed of training and walks.
    epochs : int, optional
        CCPP training epochs.
    rep : Reporter, optional
        Progress lines (default: a silent one).

    Returns
    -------
    Report
        Rows of the table and the side information.
    """
    from .progress import Reporter

    reporter = rep if rep is not None else Reporter(Console(file=io.StringIO()), heartbeat=0)
    t0 = time.perf_counter()
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows: list[WalkRow] = []
        for case in RELU_CASES:
            rows += run_relu(case, quick=quick, seed=seed, rep=reporter)
        crow, cinfo = run_ccpp(quick=quick, seed=seed, epochs=epochs, rep=reporter)
        mrow, minfo = run_mnist(quick=quick, seed=seed, rep=reporter)
    finally:
        torch.set_num_threads(old)
    from fiberscope.models import zoo

    start = zoo.mnist_digits()[0][0].reshape(-1).numpy().astype(np.float64)
    return Report(
        rows=rows + crow + mrow,
        ccpp=cinfo,
        mnist=minfo,
        mnist_start=start,
        settings={"quick": quick, "seed": seed, "epochs": cinfo["epochs"]},
        seconds=time.perf_counter() - t0,
    )


def _row_json(r: WalkRow) -> dict[str, Any]:
    d = {k: v for k, v in asdict(r).items() if k not in ("samples", "extra")}
    d["extra"] = {k: v for k, v in r.extra.items() if not isinstance(v, np.ndarray)}
    return d


def write_report(report: Report, out: Path, *, dpi: int) -> list[Path]:
    """Write the figures, tables and JSON into ``out`` (each file atomically).

    Parameters
    ----------
    report : Report
        What :func:`run_all` measured.
    out : pathlib.Path
        The folder (created if missing; its parent must exist).
    dpi : int
        Resolution of the PNG figures.

    Returns
    -------
    list of pathlib.Path
        The files written (:data:`FILES`).
    """
    out.mkdir(exist_ok=True)
    relu_rows = [r for r in report.rows if r.class_distance is not None]
    figs = {
        "relu.png": relu_figure(RELU_CASES, relu_rows),
        "ccpp.png": ccpp_figure([r for r in report.rows if "target" in r.extra], report.ccpp),
        "mnist.png": mnist_figure(
            [r for r in report.rows if r.case.startswith("MNIST")],
            report.mnist,
            report.mnist_start,
        ),
    }
    written = []
    for name, fig in figs.items():
        with atomic_write(out / name, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
        written.append(out / name)
    doc = {
        "settings": report.settings,
        "seconds": report.seconds,
        "fiberscope": fs.__version__,
        "torch": torch.__version__,
        "ccpp": report.ccpp,
        "mnist": report.mnist,
        "rows": [_row_json(r) for r in report.rows],
    }
    texts = {
        "table.md": table_markdown(report.rows),
        "table.csv": table_csv(report.rows),
        "paper3.json": json.dumps(doc, indent=1) + "\n",
    }
    for name, text in texts.items():
        with atomic_write(out / name) as fh:
            fh.write(text)
        written.append(out / name)
    return written


app = typer.Typer(
    name="python -m paper.paper3",
    help="Reproduce paper III: the authors' n-D walk next to fiberscope's walks.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def paper3(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Folder for the figures and tables."),
    ] = Path("paper3"),
    quick: Annotated[
        bool,
        typer.Option("--quick", metavar="", help="Few steps, two epochs (tests; not the paper's)."),
    ] = False,
    seed: Annotated[
        int, typer.Option(metavar="INT", help=f"Seed of training and walks (0..{MAX_SEED}).")
    ] = 0,
    epochs: Annotated[
        int | None,
        typer.Option(metavar="INT", help="CCPP training epochs (default 500; 2 with --quick)."),
    ] = None,
    dpi: Annotated[int, typer.Option(metavar="INT", help="Resolution of the PNG figures.")] = 150,
    force: Annotated[
        bool, typer.Option("--force", metavar="", help="Overwrite existing files in --out.")
    ] = False,
) -> None:
    """Reproduce paper III: walks on the classes of its networks, figures and error table.

    Writes relu.png, ccpp.png, mnist.png, table.md, table.csv and paper3.json into --out.
    """
    from .progress import Reporter

    if not 0 <= seed <= MAX_SEED:
        raise fs.InputError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
    if epochs is not None and not 1 <= epochs <= 100_000:
        raise fs.InputError(f"--epochs must be between 1 and 100000, got {epochs}")
    if not 50 <= dpi <= 600:
        raise fs.InputError(f"--dpi must be between 50 and 600, got {dpi}")
    check_out_dir(out, FILES, force)
    t0 = time.perf_counter()
    with Reporter(err_console) as rep:
        report = run_all(quick=quick, seed=seed, epochs=epochs, rep=rep)
        rep.stage("writing figures and tables")
        written = write_report(report, out, dpi=dpi)
    out_console.print(table_markdown(report.rows), highlight=False, markup=False)
    out_console.print(
        f"wrote {len(written)} files to {out} in {time.perf_counter() - t0:.1f} s",
        highlight=False,
        markup=False,
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (without the program name); return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        0 on success, 2 for bad input, 130 when interrupted, 1 for an unexpected error.
    """
    args = list(sys.argv[1:] if argv is None else argv)

    def error(kind: str, text: str) -> None:
        err_console.print(f"[red]{kind}:[/red] {escape(_one_line(text))}", highlight=False)

    old_term = None
    with contextlib.suppress(ValueError):  # not in the main thread

        def on_term(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            code: Any = app(args=args, prog_name="python -m paper.paper3", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            return code
    except fs.FiberscopeError as exc:
        error("error", str(exc))
        return 2
    except _EXIT as exc:
        return int(exc.exit_code or 0)
    except _click_exc.ClickException as exc:
        error("error", exc.format_message())
        return 2
    except (KeyboardInterrupt, *_ABORT):
        err_console.print("interrupted", highlight=False, markup=False)
        return 130
    except Exception as exc:  # a bug: still one line, but exit 1
        error("internal error", f"{exc.__class__.__name__}: {_one_line(str(exc))[:300]}")
        return 1
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through main() in the tests
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
