"""Result files: a CSV of points with a header, plus a JSON sidecar with every parameter."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from .atomic import atomic_write, check_writable

if TYPE_CHECKING:
    from ..algorithms.results import TraceResult


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a CSV result file (same name, suffix ``.json``)."""
    return Path(path).with_suffix(".json")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    return obj


def trace_metadata(result: TraceResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to understand and rerun a trace, as a JSON-ready dict."""
    meta = {
        "fiberscope_version": __version__,
        "kind": "trace",
        "complete": bool(getattr(result, "complete", True)),
        **result.summary(),
        "y0": result.y0.tolist(),
        "start_index": result.start_index,
        "stop_points": result.stop_points,
        "messages": result.messages,
        "energy": result.energy,
        "parameters": result.options,
    }
    if extra:
        meta.update(extra)
    return _jsonable(meta)


def _write_table(
    path: str | Path,
    header: list[str],
    rows: list[list[Any]],
    meta: dict[str, Any],
    *,
    force: bool,
) -> tuple[Path, Path]:
    """Write a CSV table and its JSON sidecar atomically (both checked before either is written)."""
    csv_path = check_writable(path, force=force)
    json_path = check_writable(sidecar_path(csv_path), force=force)
    meta = _jsonable({"fiberscope_version": __version__, "complete": True, **meta})
    text = json.dumps(meta, indent=2) + "\n"
    with atomic_write(csv_path) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow([v if isinstance(v, (int, str)) else repr(float(v)) for v in row])
    with atomic_write(json_path) as fh:
        fh.write(text)
    return csv_path, json_path


def _columns(n: int, m: int) -> list[str]:
    return [f"x{i}" for i in range(n)] + [f"y{i}" for i in range(m)]


def save_trace(
    result: TraceResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write a trace to ``path`` (CSV) and ``path.with_suffix('.json')`` (metadata).

    Columns: ``x0..x{n-1}`` (flattened input coordinates), ``y0..y{m-1}`` (outputs),
    ``arclength`` (signed, from the start) and ``branch`` (-1 backward, 0 start, +1 forward).

    Parameters
    ----------
    result : TraceResult
        The trace.
    path : str or pathlib.Path
        CSV destination.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata for the sidecar (e.g. the model spec).

    Returns
    -------
    tuple of pathlib.Path
        The CSV and JSON paths.
    """
    pts = result.points.reshape(result.points.shape[0], -1).cpu().tolist()
    outs = result.outputs.cpu().tolist()
    arc = result.arclength.cpu().tolist()
    br = result.branch.cpu().tolist()
    header = [*_columns(len(pts[0]), len(outs[0])), "arclength", "branch"]
    rows = [[*p, *o, a, b] for p, o, a, b in zip(pts, outs, arc, br, strict=True)]
    return _write_table(path, header, rows, trace_metadata(result, extra), force=force)


def load_trace_csv(path: str | Path) -> dict[str, Any]:
    """Read a trace CSV and its sidecar back as plain lists (for tests and notebooks).

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV written by :func:`save_trace`.

    Returns
    -------
    dict
        ``{"header": [...], "rows": [[float, ...], ...], "meta": {...}}``.
    """
    p = Path(path)
    with p.open() as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [[float(v) for v in row] for row in reader]
    meta = json.loads(sidecar_path(p).read_text()) if sidecar_path(p).exists() else {}
    return {"header": header, "rows": rows, "meta": meta}


# ---------------------------------------------------------------- walks across classes
if TYPE_CHECKING:
    from ..algorithms.results import BoundaryWalkResult, ExploreResult, PreimageResult, SampleResult


def save_explore(
    result: ExploreResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write an exploration path: CSV ``x.., y.., arclength`` plus a JSON sidecar.

    Parameters
    ----------
    result : ExploreResult
        The path.
    path : str or pathlib.Path
        CSV destination.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata (e.g. the model spec).

    Returns
    -------
    tuple of pathlib.Path
        The CSV and JSON paths.
    """
    pts = result.points.reshape(len(result), -1).cpu().tolist()
    outs = result.outputs.cpu().tolist()
    arc = result.arclength.cpu().tolist()
    rows = [[*p, *o, a] for p, o, a in zip(pts, outs, arc, strict=True)]
    meta = {
        "kind": "explore",
        **result.summary(),
        "message": result.message,
        "energy": result.energy,
        "parameters": result.options,
        **(extra or {}),
    }
    return _write_table(
        path, [*_columns(len(pts[0]), len(outs[0])), "arclength"], rows, meta, force=force
    )


def save_boundary_walk(
    result: BoundaryWalkResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write a decision-boundary walk: CSV ``x.., y.., arclength, phase`` plus JSON.

    ``phase`` is 0 up to the boundary point (included) and 1 after it.

    Parameters
    ----------
    result : BoundaryWalkResult
        The walk.
    path : str or pathlib.Path
        CSV destination.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata.

    Returns
    -------
    tuple of pathlib.Path
        The CSV and JSON paths.
    """
    p = result.path
    pts = p.points.reshape(len(p), -1).cpu().tolist()
    outs = p.outputs.cpu().tolist()
    arc = p.arclength.cpu().tolist()
    rows = [
        [*x, *o, a, 0 if i <= result.boundary_index else 1]
        for i, (x, o, a) in enumerate(zip(pts, outs, arc, strict=True))
    ]
    meta = {**result.summary(), "parameters": result.options, **(extra or {})}
    header = [*_columns(len(pts[0]), len(outs[0])), "arclength", "phase"]
    return _write_table(path, header, rows, meta, force=force)


def save_preimage(
    result: PreimageResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write a preimage: every traced point with its level, plus a JSON sidecar.

    Columns: ``x..``, ``y..``, ``level`` (index into ``levels`` in the sidecar), ``target``
    (the level's first output), ``arclength`` and ``branch`` (as in a trace). The sidecar holds
    the levels, their stop reasons, the exploration path and (2-D) the region's areas and
    boundary distances.

    Parameters
    ----------
    result : PreimageResult
        The preimage.
    path : str or pathlib.Path
        CSV destination.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata.

    Returns
    -------
    tuple of pathlib.Path
        The CSV and JSON paths.
    """
    rows: list[list[Any]] = []
    n = m = 0
    for k, tr in enumerate(result.traces):
        pts = tr.points.reshape(len(tr), -1).cpu().tolist()
        outs = tr.outputs.cpu().tolist()
        n, m = len(pts[0]), len(outs[0])
        level = float(result.levels[k, 0])
        for p, o, a, b in zip(pts, outs, tr.arclength.tolist(), tr.branch.tolist(), strict=True):
            rows.append([*p, *o, k, level, a, int(b)])
    meta = {
        **result.summary(),
        "path": result.path.reshape(result.path.shape[0], -1).tolist(),
        "path_outputs": result.path_outputs.tolist(),
        "starts": result.starts.reshape(result.starts.shape[0], -1).tolist(),
        "parameters": result.options,
        **(extra or {}),
    }
    if result.final_points is not None:
        meta["final_points"] = result.final_points.reshape(2, -1).tolist()
    if not rows:
        n = result.starts.reshape(max(1, result.starts.shape[0]), -1).shape[1]
        m = result.y0.numel()
    header = [*_columns(n, m), "level", "target", "arclength", "branch"]
    return _write_table(path, header, rows, meta, force=force)


def save_samples(
    result: SampleResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write class samples: CSV ``x.., y.., arclength`` plus a JSON sidecar.

    Parameters
    ----------
    result : SampleResult
        The samples.
    path : str or pathlib.Path
        CSV destination.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata.

    Returns
    -------
    tuple of pathlib.Path
        The CSV and JSON paths.
    """
    pts = result.points.reshape(len(result), -1).cpu().tolist()
    outs = result.outputs.cpu().tolist()
    arc = result.arclength.cpu().tolist()
    rows = [[*p, *o, a] for p, o, a in zip(pts, outs, arc, strict=True)]
    meta = {**result.summary(), "parameters": result.options, **(extra or {})}
    return _write_table(
        path, [*_columns(len(pts[0]), len(outs[0])), "arclength"], rows, meta, force=force
    )


def save(
    result: Any,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, ...]:
    """Write any fiberscope result: a CSV table (or tables) plus a JSON sidecar.

    Parameters
    ----------
    result : TraceResult, ExploreResult, PreimageResult, BoundaryWalkResult or SampleResult
        The result.
    path : str or pathlib.Path
        CSV destination; the sidecar is the same name with ``.json``.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata for the sidecar.

    Returns
    -------
    tuple of pathlib.Path
        The files written.

    Raises
    ------
    InputError
        For an object that is not a fiberscope result.
    """
    from ..algorithms.results import (
        BoundaryWalkResult,
        ExploreResult,
        PreimageResult,
        SampleResult,
        TraceResult,
    )
    from ..errors import InputError

    if isinstance(result, TraceResult):
        return save_trace(result, path, force=force, extra=extra)
    if isinstance(result, ExploreResult):
        return save_explore(result, path, force=force, extra=extra)
    if isinstance(result, PreimageResult):
        return save_preimage(result, path, force=force, extra=extra)
    if isinstance(result, BoundaryWalkResult):
        return save_boundary_walk(result, path, force=force, extra=extra)
    if isinstance(result, SampleResult):
        return save_samples(result, path, force=force, extra=extra)
    raise InputError(
        f"cannot save a {type(result).__name__}: fiberscope.io.save takes the result of a "
        "fiberscope verb"
    )
