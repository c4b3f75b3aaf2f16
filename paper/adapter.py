"""Everything ``paper/`` needs from fiberscope beyond its verbs, in one place.

The reproduction calls fiberscope only through its public API (``import fiberscope as fs``:
``fs.trace``, ``fs.preimage``, ``fs.load_model``, ``fs.save_model``, the errors). This module
holds the few glue pieces that read result objects into plain arrays, evaluate a model on a
grid, and write files atomically, so that when the library's result conventions change
(``fiberscope.io.save`` / ``fiberscope.plot.plot``, see ``docs/architecture.md``) only this
file has to follow.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

__all__ = [
    "Curve",
    "atomic_write",
    "curve_from_trace",
    "evaluate_grid",
    "preimage_curves",
]


@dataclass
class Curve:
    """One traced class as plain arrays.

    Attributes
    ----------
    points : numpy.ndarray
        ``(K, 2)`` points along the curve.
    outputs : numpy.ndarray
        ``(K,)`` network outputs there.
    start_index : int
        Row of the start.
    level : float
        Output at the start.
    closed : bool
        The tracer closed the loop.
    reasons : dict
        Stop reason per branch.
    sweep : int or None
        Interval experiments, paper mode: the SiMExp sweep of the level.
    """

    points: np.ndarray
    outputs: np.ndarray
    start_index: int
    level: float
    closed: bool = False
    reasons: dict[str, str] = field(default_factory=dict)
    sweep: int | None = None

    @property
    def start(self) -> np.ndarray:
        """The start point."""
        return self.points[self.start_index]

    def tracing_order(self) -> np.ndarray:
        """Points from the start outwards along the single (or forward) branch.

        Returns
        -------
        numpy.ndarray
            ``(k, 2)`` points, the start first.
        """
        if self.start_index == self.points.shape[0] - 1:
            return self.points[::-1]
        return self.points[self.start_index :]


def curve_from_trace(res: Any, sweep: int | None = None) -> Curve:
    """A :class:`Curve` from the result of ``fs.trace``.

    Parameters
    ----------
    res : fiberscope.TraceResult
        The trace.
    sweep : int, optional
        Paper-mode intervals: the sweep the level belongs to.

    Returns
    -------
    Curve
        Points, outputs (first component), start, level, closure and stop reasons.
    """
    return Curve(
        points=res.points.reshape(len(res), -1).cpu().numpy().astype(np.float64),
        outputs=res.outputs[:, 0].cpu().numpy().astype(np.float64),
        start_index=int(res.start_index),
        level=float(res.y0.reshape(-1)[0]),
        closed=bool(res.closed),
        reasons=dict(res.stop_reasons),
        sweep=sweep,
    )


@dataclass
class PreimageArrays:
    """The parts of an ``fs.preimage`` result the reproduction uses, as plain arrays.

    Attributes
    ----------
    curves : list of Curve
        One per traced level, in the result's order.
    paths : list of numpy.ndarray
        The exploration path ``(P, 2)`` through the start, from the lowest output to the
        highest (corrected: the gradient line; paper: the SiMExp steps of both sweeps).
    final_outputs : list of float
        Paper mode: output where each sweep ended (never traced).
    unreached : list of float
        Corrected with ``partial=True``: requested levels that could not be reached.
    steps, jacobian_evals : int
        Counters of the whole run.
    wall_time : float
        Seconds.
    """

    curves: list[Curve]
    paths: list[np.ndarray]
    final_outputs: list[float]
    unreached: list[float]
    steps: int
    jacobian_evals: int
    wall_time: float


def preimage_curves(res: Any) -> PreimageArrays:
    """Plain arrays from the result of ``fs.preimage`` (either method).

    Parameters
    ----------
    res : fiberscope.PreimageResult
        The result.

    Returns
    -------
    PreimageArrays
        Levels as curves, exploration paths, counters.
    """
    sweeps = list(res.sweeps) if res.method == "paper" else [None] * len(res.traces)
    curves = [curve_from_trace(t, s) for t, s in zip(res.traces, sweeps, strict=True)]
    path = res.path.reshape(res.path.shape[0], -1).cpu().numpy().astype(np.float64)
    finals = [] if res.final_outputs is None else res.final_outputs.reshape(-1).tolist()
    unreached = [float(np.asarray(u["level"]).reshape(-1)[0]) for u in res.unreached]
    return PreimageArrays(
        curves=curves,
        paths=[path],
        final_outputs=[float(v) for v in finals],
        unreached=unreached,
        steps=int(res.stats.steps),
        jacobian_evals=int(res.stats.jacobian_evals),
        wall_time=float(res.stats.wall_time),
    )


def evaluate_grid(
    model: Any,
    lo: Sequence[float],
    hi: Sequence[float],
    resolution: int,
    *,
    chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values of a scalar 2-input model on a ``resolution x resolution`` grid.

    Parameters
    ----------
    model : callable
        Takes a batch ``(B, 2)`` of float64 points.
    lo, hi : sequence of float
        Corners of the box.
    resolution : int
        Points per axis.
    chunk : int
        Batch size.

    Returns
    -------
    xs, ys, z : numpy.ndarray
        Axes ``(R,)`` and values ``(R, R)`` with ``z[i, j]`` at ``(xs[j], ys[i])``.
    """
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution, dtype=torch.float64)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=1)
    values = []
    with torch.no_grad():
        for start in range(0, pts.shape[0], chunk):
            batch = pts[start : start + chunk]
            out = model(batch)
            values.append(out.reshape(batch.shape[0], -1)[:, 0].to(torch.float64))
    z = torch.cat(values).reshape(resolution, resolution)
    return xs.numpy(), ys.numpy(), z.numpy()


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in the same folder, renamed when complete.

    A failure inside the block leaves neither a half-written ``path`` nor the temporary file.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination.
    mode : {"w", "wb"}
        Text or binary.

    Yields
    ------
    file object
        The open temporary file.
    """
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
