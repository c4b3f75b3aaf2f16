"""What each button of the page runs: library calls, their numbers, and their files.

Every function here builds a piece of work for :class:`~fiberscope.app.tasks.Runner` (it
runs off the request thread) from a :class:`~fiberscope.app.catalog.ModelEntry` and the
page's parameters, calls the library (``fs.trace``, ``fs.preimage``, ``fs.boundary_walk``,
``fs.walk``, ``fs.traverse``) with the run's ``progress=`` and ``stop=``, writes the result
files with ``fiberscope.io.save`` into the run's folder and returns the JSON the page draws.
On Cancel the verb raises :class:`~fiberscope.errors.Interrupted`; its partial result (marked
``complete=False``) is saved and shown the same way, and the run ends ``cancelled`` saying what
was kept (:class:`~fiberscope.app.tasks.RunCancelled`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor

from ..algorithms import boundary_walk, preimage, trace, traverse, walk
from ..algorithms.results import TraverseResult, WalkResult
from ..errors import FiberscopeError, InputError, Interrupted
from ..geometry.grid import evaluate_grid
from ..io import save
from . import images
from .catalog import ModelEntry
from .tasks import RunCancelled, RunContext, Work

#: Largest grid the heat map asks for.
MAX_RESOLUTION = 400


# ----------------------------------------------------------------------------- helpers
def _plain(value: Any) -> Any:
    """Tensors, arrays and numpy scalars to JSON-ready Python values (NaN/inf to None)."""
    if isinstance(value, torch.Tensor):
        return _plain(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _hooks(ctx: RunContext) -> dict[str, Any]:
    """The run's ``progress=`` and ``stop=`` for a library verb (every verb takes both)."""
    return {"progress": ctx.progress, "stop": ctx.stop}


def save_result(result: Any, path: Path, ctx: RunContext, extra: dict[str, Any]) -> None:
    """Write a library result as CSV + JSON sidecar into the run's folder and offer both.

    Written by ``fiberscope.io.save`` (one dispatch for every result).
    """
    for written in save(result, path, force=False, extra=extra):
        ctx.add_file(written)


def _box(entry: ModelEntry) -> tuple[list[float], list[float]]:
    lo, hi = entry.bounds
    return list(lo), list(hi)


def check_point(entry: ModelEntry, point: Any, what: str = "point") -> list[float]:
    """A 2-D point from the page, refused (one line) when malformed or outside the box."""
    try:
        values = [float(v) for v in point]
    except (TypeError, ValueError):
        raise InputError(f"the {what} must be two numbers, got {point!r}") from None
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise InputError(f"the {what} must be two finite numbers, got {point!r}")
    lo, hi = _box(entry)
    if not all(lo[i] <= values[i] <= hi[i] for i in range(2)):
        raise InputError(
            f"the {what} ({values[0]:.4g}, {values[1]:.4g}) is outside the box "
            f"[{lo[0]:g}, {hi[0]:g}] x [{lo[1]:g}, {hi[1]:g}]; click inside the dashed box"
        )
    return values


def _step(value: Any, entry: ModelEntry) -> float:
    try:
        step = float(value)
    except (TypeError, ValueError):
        raise InputError(f"step must be a number, got {value!r}") from None
    if not math.isfinite(step) or step <= 0:
        raise InputError(f"step must be a positive number, got {value!r}")
    if entry.kind == "2d":
        lo, hi = _box(entry)
        span = min(hi[0] - lo[0], hi[1] - lo[1])
        if step > span / 4:
            raise InputError(
                f"step {step:g} is too large for this box (narrowest side {span:g}); use at "
                f"most {span / 4:g}"
            )
    return step


def _trace_json(res: Any) -> dict[str, Any]:
    pts = res.points.reshape(res.points.shape[0], -1)
    return {
        "points": _plain(pts),
        "outputs": _plain(res.outputs[:, 0]),
        "closed": bool(res.closed),
        "drift": float(res.drift),
        "stop_reasons": dict(res.stop_reasons),
        "messages": dict(res.messages),
        "length": float(res.length),
        "n_points": len(res),
        "method": res.method,
        "complete": bool(getattr(res, "complete", True)),
        "stats": _plain(res.stats.as_dict()),
    }


# ------------------------------------------------------------------------ the heat map
def heatmap(entry: ModelEntry, resolution: int = 160) -> dict[str, Any]:
    """The model's output on a grid over its box (2-D models).

    Parameters
    ----------
    entry : ModelEntry
        A 2-D model.
    resolution : int
        Grid points per axis (16 to :data:`MAX_RESOLUTION`).

    Returns
    -------
    dict
        ``xs``, ``ys``, ``z`` (``z[i][j]`` at ``(xs[j], ys[i])``), the box and the range.
    """
    if entry.kind != "2d":
        raise InputError(f"{entry.name} has {entry.n_inputs} inputs: there is no 2-D map")
    if not 16 <= resolution <= MAX_RESOLUTION:
        raise InputError(f"resolution must be from 16 to {MAX_RESOLUTION}, got {resolution}")
    lo, hi = _box(entry)
    xs, ys, z = evaluate_grid(entry.grid_model, lo, hi, resolution, output=entry.output)
    finite = z[torch.isfinite(z)]
    return {
        "model": entry.name,
        "xs": _plain(xs),
        "ys": _plain(ys),
        "z": _plain(z),
        "lo": lo,
        "hi": hi,
        "zmin": float(finite.min()) if finite.numel() else None,
        "zmax": float(finite.max()) if finite.numel() else None,
        "threshold": entry.threshold,
    }


# ------------------------------------------------------------------------- 2-D: a click
def point_work(
    entry: ModelEntry,
    point: Any,
    *,
    step: float = 0.01,
    paper: bool = False,
    threshold: float | None = None,
    max_steps: int = 20_000,
) -> Work:
    """Trace the class of a clicked point (and, for a classifier, its shortest flip).

    Validation that needs no model evaluation happens here, before the run starts.
    """
    x0 = check_point(entry, point, "clicked point")
    step = _step(step, entry)
    if threshold is not None:
        threshold = float(threshold)
        if not math.isfinite(threshold):
            raise InputError("the decision threshold must be a finite number")
    lo, hi = _box(entry)
    box = (lo, hi)
    extra = {"model": entry.source, "app": "fiberscope app"}

    def work(ctx: RunContext) -> dict[str, Any]:
        try:
            res = trace(
                entry.model,
                x0,
                step=step,
                max_steps=max_steps,
                bounds=box,
                output=entry.output,
                **_hooks(ctx),
            )
        except Interrupted as exc:
            part = _stopped_trace(exc.result, ctx.folder / "trace.csv", ctx, extra)
            _cancel({"x0": x0, "y0": float(exc.result.y0[0]), "bounds": [lo, hi], "trace": part})
        save_result(res, ctx.folder / "trace.csv", ctx, extra)
        out: dict[str, Any] = {
            "x0": x0,
            "y0": float(res.y0[0]),
            "bounds": [lo, hi],
            "trace": _trace_json(res),
        }
        try:
            ctx.check()
            if paper:
                out["paper"] = _paper_overlay(entry, x0, res, step, box, ctx, extra)
            ctx.check()
            if threshold is not None:
                out["boundary"] = _boundary(entry, x0, threshold, step, box, ctx, extra)
        except _Stopped as stopped:
            out[stopped.key] = stopped.part
            _cancel(out, stopped)
        return out

    return work


def _paper_overlay(
    entry: ModelEntry,
    x0: list[float],
    corrected: Any,
    step: float,
    box: Any,
    ctx: RunContext,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The authors' SiMEC-1D from the same start, as long as the corrected class."""
    steps = max(50, min(200_000, math.ceil(corrected.length / step) + 1))
    direction = "forward" if corrected.closed else "both"
    try:
        res = trace(
            entry.model,
            x0,
            step=step,
            max_steps=steps,
            bounds=box,
            method="paper",
            direction=direction,
            output=entry.output,
            **_hooks(ctx),
        )
    except Interrupted as exc:
        part = _stopped_trace(exc.result, ctx.folder / "paper_trace.csv", ctx, extra)
        raise _Stopped("paper", part, "the authors' trace") from None
    save_result(res, ctx.folder / "paper_trace.csv", ctx, extra)
    return _trace_json(res)


def _boundary(
    entry: ModelEntry,
    x0: list[float],
    threshold: float,
    step: float,
    box: Any,
    ctx: RunContext,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Shortest way to flip the decision from ``x0`` and the decision boundary through it.

    A start on the boundary, or a boundary out of reach, is reported in the result (the
    class of the clicked point is still shown).
    """
    try:
        walk = boundary_walk(
            entry.model,
            x0,
            threshold=threshold,
            step=step,
            bounds=box,
            output=entry.output,
            batched=False,
            **_hooks(ctx),
        )
    except Interrupted as exc:
        partial = exc.result
        if len(partial.path) <= 1:
            raise _Stopped("boundary", None, "the walk to the boundary") from None
        save_result(partial, ctx.folder / "boundary_walk.csv", ctx, extra)
        raise _Stopped(
            "boundary",
            _boundary_json(partial, threshold),
            f"the walk to the boundary ({len(partial.path) - 1} steps kept)",
        ) from None
    except FiberscopeError as exc:
        return {"error": str(exc), "threshold": threshold}
    save_result(walk, ctx.folder / "boundary_walk.csv", ctx, extra)
    out = _boundary_json(walk, threshold)
    if ctx.stop():
        raise _Stopped("boundary", out, "the trace of the decision boundary (not started)")
    try:
        edge = trace(
            entry.model,
            walk.boundary_point.reshape(-1).tolist(),
            step=step,
            bounds=box,
            output=entry.output,
            **_hooks(ctx),
        )
    except Interrupted as exc:
        part = _stopped_trace(exc.result, ctx.folder / "decision_boundary.csv", ctx, extra)
        out["boundary_class"] = part
        raise _Stopped("boundary", out, "the trace of the decision boundary") from None
    except FiberscopeError as exc:
        out["boundary_class_error"] = str(exc)
    else:
        save_result(edge, ctx.folder / "decision_boundary.csv", ctx, extra)
        out["boundary_class"] = _trace_json(edge)
    return out


def _vector(point: Tensor | None) -> list[float] | None:
    return None if point is None else _plain(point.reshape(-1))


def _boundary_json(walk: Any, threshold: float) -> dict[str, Any]:
    """The page's numbers of a boundary walk (a partial one has None where it has not got)."""
    path = walk.path.points.reshape(walk.path.points.shape[0], -1)
    index = walk.boundary_index
    return {
        "threshold": threshold,
        "complete": bool(walk.complete),
        "path": _plain(path),
        "boundary_index": None if index is None else int(index),
        "y0": walk.y0,
        "decision_start": walk.decision_start,
        "decision_flip": walk.decision_flip,
        "boundary_point": _vector(walk.boundary_point),
        "boundary_output": _plain(walk.boundary_output),
        "boundary_length": _plain(walk.boundary_length),
        "boundary_distance": _plain(walk.boundary_distance),
        "flip_point": _vector(walk.flip_point),
        "flip_output": _plain(walk.flip_output),
        "closest_point": _vector(walk.closest_point),
        "closest_distance": _plain(walk.closest_distance),
        "closest_kkt": _plain(walk.closest_kkt),
        "closest_converged": walk.closest_converged,
    }


class _Stopped(Exception):
    """Cancel stopped a later part of a click's run (``key`` of its JSON; ``part``: what
    that part kept, or None)."""

    def __init__(self, key: str, part: dict[str, Any] | None, what: str) -> None:
        super().__init__(what)
        self.key, self.part, self.what = key, part, what


def _stopped_trace(
    partial: Any, path: Path, ctx: RunContext, extra: dict[str, Any]
) -> dict[str, Any] | None:
    """Save an interrupted trace (its sidecar says ``"complete": false``) and return its
    JSON, or None when it has not left its start."""
    if len(partial) <= 1:
        return None
    save_result(partial, path, ctx, extra)
    return _trace_json(partial)


def _cancel(out: dict[str, Any], stopped: _Stopped | None = None) -> NoReturn:
    """End a click's run as cancelled, keeping what it has (or nothing)."""
    if stopped is None:  # the class itself was interrupted
        trace_json = out["trace"]
        if trace_json is None:
            raise RunCancelled() from None
        raise RunCancelled(
            f"cancelled: {trace_json['n_points']} points kept; the partial trace is shown "
            '(its files say "complete": false)',
            result=out,
        ) from None
    if stopped.part is None:
        out.pop(stopped.key, None)
    raise RunCancelled(
        f"cancelled during {stopped.what}: the class is complete; what was kept is shown "
        '(the files of a partial part say "complete": false)',
        result=out,
    ) from None


# ---------------------------------------------------------------------- 2-D: a drag
def band_start(
    entry: ModelEntry, a: float, b: float, hint: list[float] | None
) -> tuple[list[float], float]:
    """A start for the band ``a <= N <= b``: the hint when its output is inside, else the
    grid node inside the band closest to the hint (or to the box's centre)."""
    lo, hi = _box(entry)
    if hint is not None:
        y = float(entry.evaluate(torch.tensor(hint, dtype=torch.float64))[0])
        margin = 1e-6 * max(1.0, abs(b - a))
        if a + margin <= y <= b - margin:
            return hint, y
    xs, ys, z = evaluate_grid(entry.grid_model, lo, hi, 200, output=entry.output)
    inside = (z >= a) & (z <= b)
    if not bool(inside.any()):
        raise InputError(
            f"no point of the box has an output in [{a:.6g}, {b:.6g}]; drag across the colours "
            "of the map"
        )
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    target = hint if hint is not None else [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2]
    dist = (gx - target[0]) ** 2 + (gy - target[1]) ** 2
    dist[~inside] = float("inf")
    i = int(torch.argmin(dist))
    start = [float(gx.reshape(-1)[i]), float(gy.reshape(-1)[i])]
    return start, float(z.reshape(-1)[i])


def preimage_work(
    entry: ModelEntry,
    *,
    a: float | None = None,
    b: float | None = None,
    p1: Any = None,
    p2: Any = None,
    levels: int = 9,
    step: float = 0.01,
    resolution: int = 240,
) -> Work:
    """The band of inputs whose output lies in ``[a, b]`` (from a drag ``p1 -> p2`` or two
    numbers), traced with ``fs.preimage``, with its area."""
    step = _step(step, entry)
    hint = None
    if p1 is not None or p2 is not None:
        if p1 is None or p2 is None:
            raise InputError("a drag needs both ends (p1 and p2)")
        q1 = check_point(entry, p1, "start of the drag")
        q2 = check_point(entry, p2, "end of the drag")
        y1 = float(entry.evaluate(torch.tensor(q1, dtype=torch.float64))[0])
        y2 = float(entry.evaluate(torch.tensor(q2, dtype=torch.float64))[0])
        a, b = min(y1, y2), max(y1, y2)
        hint = [(q1[0] + q2[0]) / 2, (q1[1] + q2[1]) / 2]
    if a is None or b is None:
        raise InputError("give the output interval: drag on the map, or type both ends")
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        raise InputError(f"the interval ends must be numbers, got {a!r} and {b!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise InputError("the interval ends must be finite numbers")
    if not a < b:
        raise InputError(
            f"the interval [{a:.6g}, {b:.6g}] is empty; drag farther (across more colours) or "
            "type a < b"
        )
    try:
        levels = int(levels)
    except (TypeError, ValueError):
        raise InputError(f"levels must be a whole number, got {levels!r}") from None
    if not 2 <= levels <= 41:
        raise InputError(f"levels must be from 2 to 41, got {levels}")
    lo, hi = _box(entry)
    extra = {"model": entry.source, "app": "fiberscope app"}

    def work(ctx: RunContext) -> dict[str, Any]:
        start, y_start = band_start(entry, a, b, hint)
        ctx.check()
        try:
            res = preimage(
                entry.model,
                start,
                (a, b),
                levels=levels,
                bounds=(lo, hi),
                step=step,
                output=entry.output,
                partial=True,
                resolution=resolution,
                **_hooks(ctx),
            )
        except Interrupted as exc:
            partial = exc.result
            if len(partial) == 0:  # still walking to the levels: no level traced yet
                raise RunCancelled() from None
            save_result(partial, ctx.folder / "preimage.csv", ctx, extra)
            raise RunCancelled(
                f"cancelled: {len(partial)} levels kept, each partly traced; the partial band "
                'is shown (its files say "complete": false)',
                result=band_json(partial, (a, b), start, y_start),
            ) from None
        save_result(res, ctx.folder / "preimage.csv", ctx, extra)
        return band_json(res, (a, b), start, y_start)

    return work


def band_json(
    res: Any, interval: tuple[float, float], start: list[float], y_start: float
) -> dict[str, Any]:
    """The page's numbers of a preimage band (complete or partial).

    Parameters
    ----------
    res : PreimageResult
        From ``fs.preimage``.
    interval : tuple of float
        The output interval ``(a, b)``.
    start : list of float
        Where the band was entered.
    y_start : float
        The output there.

    Returns
    -------
    dict
        JSON-ready: ``interval``, ``complete``, ``levels``, ``traces``, ``path``, ``drift``,
        ``region`` (when computed) and the rest of the result's numbers.
    """
    out: dict[str, Any] = {
        "complete": bool(res.complete),
        "interval": list(interval),
        "start": start,
        "y_start": y_start,
        "levels": _plain(res.levels[:, 0]),
        "traces": [_trace_json(t) for t in res.traces],
        "path": _plain(res.path.reshape(res.path.shape[0], -1)),
        "drift": float(res.drift),
        "covered": list(res.covered),
        "unreached": _plain(res.unreached),
        "stats": _plain(res.stats.as_dict()),
    }
    region = res.region
    if region is not None:
        mask = region.mask
        out["region"] = {
            "area": region.area,
            "band_area": region.band_area,
            "polygon_area": region.polygon_area,
            "boundary_distance": _plain(region.boundary_distance),
            "resolution": region.resolution,
            "xs": _plain(region.xs),
            "ys": _plain(region.ys),
            "mask": ["".join("1" if v else "0" for v in row) for row in mask.tolist()],
        }
    return out


# ------------------------------------------------------------------- n-D and image walks
#: Walk methods the page offers (``fs.walk``'s ``method=``).
WALK_METHODS = ("corrected", "uniform")


def chains_of(result: WalkResult | TraverseResult) -> tuple[Tensor, Tensor, list[int], Tensor]:
    """A walk's or a traversal's points as chains (for the frames, the grid and the GIF).

    Parameters
    ----------
    result : WalkResult or TraverseResult
        From ``fs.walk`` or ``fs.traverse`` (complete or partial).

    Returns
    -------
    samples : torch.Tensor
        ``(chains, K, *input_shape)``; a traversal is one chain, its path (the start first).
    outputs : torch.Tensor
        ``(chains, K, m)``.
    counts : list of int
        Valid rows of each chain (a walk's chain that stopped early has fewer; its other rows
        are NaN).
    x0 : torch.Tensor
        The start.
    """
    if isinstance(result, TraverseResult):
        return (
            result.points.unsqueeze(0),
            result.outputs.unsqueeze(0),
            [len(result)],
            result.start,
        )
    return result.samples, result.outputs, list(result.counts), result.x0


def walk_work(
    entry: ModelEntry,
    x0: torch.Tensor,
    *,
    target: torch.Tensor | None = None,
    samples: int = 40,
    chains: int = 2,
    step: float = 1.0,
    seed: int = 0,
    max_steps: int = 300,
    method: str = "corrected",
    start_label: str = "",
    target_label: str = "",
) -> Work:
    """A walk on the class of ``x0`` (``fs.walk``) or a traversal toward ``target``
    (``fs.traverse``), for the walk view.

    Cancel sets the run's stop flag; the library stops between steps and raises
    :class:`~fiberscope.errors.Interrupted`. Its partial result, when it kept samples, is
    saved (its sidecar says ``"complete": false``) and shown; otherwise nothing is kept.

    Parameters
    ----------
    entry : ModelEntry
        An image or n-D model.
    x0 : torch.Tensor
        The start (any shape with the model's number of inputs).
    target : torch.Tensor, optional
        Traverse toward it instead of walking.
    samples, chains, step, seed : optional
        ``fs.walk``'s (``step``: the largest step; for ``"uniform"``, the proposal scale).
    max_steps : int
        ``fs.traverse``'s step cap.
    method : {"corrected", "uniform"}
        ``fs.walk``'s method.
    start_label, target_label : str
        What the page calls the inputs (written to the sidecar).

    Returns
    -------
    Work
        The run's work: returns :func:`walk_json` of the result.
    """
    if method not in WALK_METHODS:
        raise InputError(
            f"unknown walk method {method!r}; the page offers {', '.join(WALK_METHODS)}"
        )
    x0 = x0.to(torch.float64).reshape(entry.input_shape)
    if target is not None:
        target = target.to(torch.float64).reshape(entry.input_shape)
    extra: dict[str, Any] = {
        "model": entry.source,
        "output_selection": entry.output_spec,
        "start": start_label,
        "app": "fiberscope app",
    }
    if target is not None:
        extra["target"] = target_label

    def work(ctx: RunContext) -> dict[str, Any]:
        try:
            if target is None:
                res: WalkResult | TraverseResult = walk(
                    entry.model,
                    x0,
                    samples=samples,
                    step=step,
                    chains=chains,
                    method=method,
                    bounds=entry.bounds,
                    output=entry.output,
                    seed=seed,
                    **_hooks(ctx),
                )
            else:
                res = traverse(
                    entry.model,
                    x0,
                    target,
                    step=step,
                    max_steps=max_steps,
                    bounds=entry.bounds,
                    output=entry.output,
                    batched=False,
                    **_hooks(ctx),
                )
        except Interrupted as exc:
            partial = exc.result
            kept = _kept(partial)
            if kept is None:
                raise RunCancelled() from None
            out = publish(entry, partial, ctx, extra)
            noun = "walk" if isinstance(partial, WalkResult) else "traversal"
            raise RunCancelled(
                f"cancelled: {kept} kept; the partial {noun} is shown (its files say "
                '"complete": false)',
                result=out,
            ) from None
        return publish(entry, res, ctx, extra)

    return work


def _kept(partial: Any) -> str | None:
    """How much of an interrupted walk is kept, or None when nothing worth showing is."""
    if isinstance(partial, WalkResult) and sum(partial.counts) > 0:
        total = partial.chains * partial.samples.shape[1]
        return f"{sum(partial.counts)} of {total} samples"
    if isinstance(partial, TraverseResult) and len(partial) > 1:
        return f"{len(partial) - 1} steps"
    return None


def publish(
    entry: ModelEntry, result: WalkResult | TraverseResult, ctx: RunContext, extra: dict[str, Any]
) -> dict[str, Any]:
    """Save a walk or a traversal into the run's folder, keep it for the frames, and return
    the page's JSON.

    Files: ``walk.npz`` / ``traverse.npz`` with their JSON sidecar (``fiberscope.io.save``;
    a CSV table too for inputs of at most 16 numbers), and for image models a PNG grid and an
    animated GIF.
    """
    name = "walk" if isinstance(result, WalkResult) else "traverse"
    for path in save(result, ctx.folder / f"{name}.npz", force=False, extra=_plain(extra)):
        ctx.add_file(path)
    ctx.keep(result=result)
    if entry.image is not None:
        _write_images(entry, result, ctx, name)
    return walk_json(entry, result)


def walk_json(entry: ModelEntry, result: WalkResult | TraverseResult) -> dict[str, Any]:
    """The numbers of a walk or a traversal for the page: the library's own summary, and per
    chain the outputs, residuals and distances of its valid samples (the samples themselves
    come as images, or as coordinates for small vector inputs).

    Parameters
    ----------
    entry : ModelEntry
        The model.
    result : WalkResult or TraverseResult
        The library's result (complete or partial).

    Returns
    -------
    dict
        JSON-ready: ``kind``, ``complete``, ``counts``, ``y0``, ``outputs``, ``residuals``,
        ``distance_from_start`` (lists per chain), ``residual`` and ``numbers`` (the result's
        summary); a traversal adds ``distance_to_target`` and ``message``.
    """
    samples, outputs, counts, x0 = chains_of(result)
    y0 = result.y0.detach().cpu().to(torch.float64)
    flat = samples.detach().cpu().reshape(samples.shape[0], samples.shape[1], -1)
    outputs = outputs.detach().cpu()
    start = x0.detach().cpu().reshape(1, -1).to(flat)
    outs, residuals, moved = [], [], []
    for c, k in enumerate(counts):
        o = outputs[c, :k]
        outs.append(_plain(o))
        residuals.append(_plain((o - y0).abs().amax(dim=-1)) if k else [])
        moved.append(_plain(torch.linalg.vector_norm(flat[c, :k] - start, dim=-1)))
    summary = {k: v for k, v in result.summary().items() if k not in ("y0", "target_output")}
    if "seeds" in summary:  # 63-bit integers: JavaScript numbers would round them
        summary["seeds"] = [str(v) for v in summary["seeds"]]
    out: dict[str, Any] = {
        "kind": "walk" if isinstance(result, WalkResult) else "traverse",
        "complete": bool(result.complete),
        "chains": len(counts),
        "counts": counts,
        "y0": _plain(y0),
        "outputs": outs,
        "residuals": residuals,
        "residual": float(result.residual),
        "distance_from_start": moved,
        "numbers": _plain(summary),
        "image": list(entry.image) if entry.image else None,
    }
    if isinstance(result, TraverseResult):
        out["distance_to_target"] = [_plain(result.distance)]
        out["message"] = result.message
    else:
        out["method"] = result.method
    if entry.image is None and entry.n_inputs <= 64:
        out["coordinates"] = [_plain(flat[c, :k]) for c, k in enumerate(counts)]
        out["x0"] = _plain(start[0])
    return out


def _write_images(
    entry: ModelEntry, result: WalkResult | TraverseResult, ctx: RunContext, name: str
) -> None:
    """The PNG grid (one row per chain) and the GIF; a chain that stopped early holds its
    last sample. Nothing for a walk without samples."""
    samples, _, counts, x0 = chains_of(result)
    k = max(counts)
    if k == 0:
        return
    frames = samples[:, :k].detach().cpu().clone()
    for c, n in enumerate(counts):
        if n < k:
            frames[c, n:] = frames[c, n - 1] if n else x0.detach().cpu()
    assert entry.image is not None
    bounds = entry.bounds or (0.0, 1.0)
    ctx.add_file(images.write_grid(ctx.folder / f"{name}_grid.png", frames, entry.image, bounds))
    ctx.add_file(images.write_gif(ctx.folder / f"{name}.gif", frames, entry.image, bounds))


def frame(
    entry: ModelEntry, result: WalkResult | TraverseResult, chain: int, k: int | None, diff: bool
) -> bytes:
    """PNG of sample ``k`` of ``chain`` (``k=None``: the start), or of its change from the start.

    Raises
    ------
    InputError
        For a model that does not take images, or a sample the result does not have.
    """
    if entry.image is None:
        raise InputError(f"{entry.name} does not take images: its samples have no pictures")
    samples, _, counts, x0 = chains_of(result)
    if k is None:
        x = x0
    elif 0 <= chain < len(counts) and 0 <= k < counts[chain]:
        x = samples[chain, k]
    else:
        have = ", ".join(str(n) for n in counts)
        raise InputError(f"no sample {k} in chain {chain}: the chains have {have} samples")
    if diff:
        arr = images.diff_uint8(x.cpu(), x0.cpu(), entry.image)
    else:
        arr = images.to_uint8(x.cpu(), entry.image, *(entry.bounds or (0.0, 1.0)))
    return images.png_bytes(arr)
