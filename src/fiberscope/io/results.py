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
    from ..algorithms.result import TraceResult


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
    csv_path = check_writable(path, force=force)
    json_path = check_writable(sidecar_path(csv_path), force=force)
    pts = result.points.reshape(result.points.shape[0], -1).cpu().tolist()
    outs = result.outputs.cpu().tolist()
    arc = result.arclength.cpu().tolist()
    br = result.branch.cpu().tolist()
    n, m = len(pts[0]), len(outs[0])
    header = [f"x{i}" for i in range(n)] + [f"y{i}" for i in range(m)] + ["arclength", "branch"]
    meta = trace_metadata(result, extra)
    with atomic_write(csv_path) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for p, o, a, b in zip(pts, outs, arc, br, strict=True):
            w.writerow([*(repr(v) for v in p), *(repr(v) for v in o), repr(a), b])
    with atomic_write(json_path) as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    return csv_path, json_path


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
