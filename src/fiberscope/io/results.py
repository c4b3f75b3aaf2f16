"""Result files: a CSV of points with a header, plus a JSON sidecar with every parameter.

Walks on classes of any dimension (:class:`~fiberscope.WalkResult`) and traversals toward a
target (:class:`~fiberscope.TraverseResult`) are written as ``.npz`` (NumPy arrays only, no
pickles; the same bytes for the same result), the JSON sidecar, and a CSV table of the points
when the input has at most :data:`WALK_CSV_MAX_N` coordinates.
"""

from __future__ import annotations

import csv
import json
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from .atomic import atomic_write, check_writable

if TYPE_CHECKING:
    from ..algorithms.results import ConfusionResult, TraceResult, TraverseResult, WalkResult

#: Largest input size (flat coordinates) for which a walk also gets a CSV table.
WALK_CSV_MAX_N = 16


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
        "complete": bool(getattr(result, "complete", True)),
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

    ``phase`` is 0 up to the boundary point (included) and 1 after it (all 0 in the partial
    result of a walk interrupted before the boundary).

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
    last = len(pts) if result.boundary_index is None else result.boundary_index
    rows = [
        [*x, *o, a, 0 if i <= last else 1]
        for i, (x, o, a) in enumerate(zip(pts, outs, arc, strict=True))
    ]
    meta = {
        "complete": bool(getattr(result, "complete", True)),
        **result.summary(),
        "parameters": result.options,
        **(extra or {}),
    }
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
        "complete": bool(getattr(result, "complete", True)),
        **result.summary(),
        "path": result.path.reshape(result.path.shape[0], -1).tolist(),
        "path_outputs": result.path_outputs.tolist(),
        "starts": result.starts.reshape(
            result.starts.shape[0], result.path.reshape(result.path.shape[0], -1).shape[1]
        ).tolist(),
        "parameters": result.options,
        **(extra or {}),
    }
    if result.final_points is not None:
        meta["final_points"] = result.final_points.reshape(2, -1).tolist()
    if not rows:
        n = result.path.reshape(result.path.shape[0], -1).shape[1]
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
    meta = {
        "complete": bool(getattr(result, "complete", True)),
        **result.summary(),
        "parameters": result.options,
        **(extra or {}),
    }
    return _write_table(
        path, [*_columns(len(pts[0]), len(outs[0])), "arclength"], rows, meta, force=force
    )


# ---------------------------------------------------------------- walks on classes (n-D)
_NPZ_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same result gives the same bytes


def walk_paths(path: str | Path, n: int, what: str = "a walk") -> dict[str, Path]:
    """The files :func:`save_walk` (or :func:`save_traverse`) writes for ``n`` coordinates.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.npz`` destination.
    n : int
        Flat input size (the CSV table is written when ``n <= WALK_CSV_MAX_N``).
    what : str
        What is saved, for the refusal (``"a walk"``, ``"a traversal"``).

    Returns
    -------
    dict
        ``{"result": ..npz, "sidecar": ..json}`` plus ``"table": ..csv`` for small inputs.

    Raises
    ------
    OutputFileError
        When ``path`` does not end in ``.npz``.
    """
    from ..errors import OutputFileError
    from .atomic import display_name

    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise OutputFileError(
            f"{display_name(p)}: {what} is saved as NumPy arrays (.npz, with a .json sidecar "
            "and a .csv table for small inputs); give the result a name ending in .npz"
        )
    out = {"result": p, "sidecar": sidecar_path(p)}
    if n <= WALK_CSV_MAX_N:
        out["table"] = p.with_suffix(".csv")
    return out


def walk_arrays(result: WalkResult) -> dict[str, Any]:
    """Every array of a walk, as NumPy (float64 / int64 / unicode: nothing needs a pickle).

    Parameters
    ----------
    result : WalkResult
        The walk.

    Returns
    -------
    dict of numpy.ndarray
        ``samples`` ``(chains, S, *shape)``, ``outputs`` ``(chains, S, m)``, ``counts``,
        ``x0``, ``y0``, ``seeds`` and the per-chain statistics (``accepted``,
        ``rejections_<reason>``, ``path_length``, ``rank_changes``, ``stop_reasons``, and
        ``pseudolength`` in paper mode).
    """
    import numpy as np

    def f64(t: Any) -> Any:
        a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        return np.asarray(a, dtype=np.float64, order="C")

    def i64(v: Any) -> Any:
        return np.asarray(list(v), dtype=np.int64)

    arrays: dict[str, Any] = {
        "samples": f64(result.samples),
        "outputs": f64(result.outputs),
        "counts": i64(result.counts),
        "x0": f64(result.x0),
        "y0": f64(result.y0),
        "seeds": i64(result.seeds),
        "accepted": i64(result.accepted),
        "path_length": np.asarray(result.path_length, dtype=np.float64),
        "rank_changes": i64(result.rank_changes),
        "stop_reasons": np.asarray(result.stop_reasons, dtype=np.str_),
        "residual": np.asarray(result.residual, dtype=np.float64),
        "method": np.asarray(result.method, dtype=np.str_),
    }
    for reason, counts in result.rejections.items():
        arrays[f"rejections_{reason}"] = i64(counts)
    if result.pseudolength is not None:
        arrays["pseudolength"] = np.asarray(result.pseudolength, dtype=np.float64)
    return arrays


def _write_npz(fh: Any, arrays: dict[str, Any]) -> None:
    """The ``np.savez`` format (a zip of ``.npy`` members), with fixed member times."""
    import numpy as np

    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_NPZ_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arr, order="C"), allow_pickle=False)


def walk_metadata(
    result: WalkResult, files: dict[str, Path], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON sidecar of a walk: version, every option, the summary, the files written.

    Parameters
    ----------
    result : WalkResult
        The walk.
    files : dict
        The files of the result (see :func:`walk_paths`).
    extra : dict, optional
        More metadata (model identity; ``complete: False`` for a partial result).

    Returns
    -------
    dict
        JSON-ready metadata.
    """
    meta: dict[str, Any] = {
        "fiberscope_version": __version__,
        "kind": "walk",
        "complete": bool(getattr(result, "complete", True)),
        **result.summary(),
        "input_shape": list(result.x0.shape),
        "n": int(result.x0.numel()),
        "m": int(result.y0.numel()),
        "x0": result.x0.reshape(-1).tolist(),
        "y0": result.y0.reshape(-1).tolist(),
        "files": {role: p.name for role, p in files.items()},
        "parameters": result.options,
    }
    if extra:
        meta.update(extra)
    return _jsonable(meta)


def save_walk(
    result: WalkResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, ...]:
    """Write a walk: ``.npz`` arrays, the JSON sidecar, and a CSV table for small inputs.

    The ``.npz`` holds NumPy arrays only (``np.load(path, allow_pickle=False)`` reads it; see
    :func:`walk_arrays` for its members) and is byte-for-byte the same for the same result.
    The sidecar (same name, ``.json``) holds every option, the summary (residual, acceptance,
    rejections by reason, rank changes, path lengths, seeds, timing) and the fiberscope
    version. When the input has at most :data:`WALK_CSV_MAX_N` coordinates, a CSV (same name,
    ``.csv``) lists the valid samples as ``chain, index, x0.., y0..``.

    Parameters
    ----------
    result : WalkResult
        The walk.
    path : str or pathlib.Path
        Destination; must end in ``.npz``.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata for the sidecar.

    Returns
    -------
    tuple of pathlib.Path
        The files written (npz, json, and csv when written).

    Raises
    ------
    OutputFileError
        A name not ending in ``.npz``, an existing file without ``force``, an unwritable
        folder.
    """
    n = int(result.x0.numel())
    files = walk_paths(path, n)
    for p in files.values():
        check_writable(p, force=force)
    text = json.dumps(walk_metadata(result, files, extra), indent=2) + "\n"
    with atomic_write(files["result"], "wb") as fh:
        _write_npz(fh, walk_arrays(result))
    if "table" in files:
        m = int(result.y0.numel())
        chains = result.chains
        flat = result.samples.reshape(chains, result.samples.shape[1], n).cpu().tolist()
        outs = result.outputs.cpu().tolist()
        with atomic_write(files["table"]) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["chain", "index", *_columns(n, m)])
            for c in range(chains):
                for k in range(result.counts[c]):
                    w.writerow([c, k, *(repr(float(v)) for v in flat[c][k] + outs[c][k])])
    with atomic_write(files["sidecar"]) as fh:
        fh.write(text)
    order = ("result", "sidecar", "table")
    return tuple(files[r] for r in order if r in files)


def traverse_arrays(result: TraverseResult) -> dict[str, Any]:
    """Every array of a traversal, as NumPy (float64 / unicode: nothing needs a pickle).

    Parameters
    ----------
    result : TraverseResult
        The traversal.

    Returns
    -------
    dict of numpy.ndarray
        ``points`` ``(K, *shape)`` (the start first), ``outputs`` ``(K, m)``, ``distance``
        ``(K,)`` to the target, ``target``, ``y0``, ``target_output``, and the scalars
        ``kkt``, ``residual``, ``stop_reason``.
    """
    import numpy as np

    def f64(t: Any) -> Any:
        a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        return np.asarray(a, dtype=np.float64, order="C")

    return {
        "points": f64(result.points),
        "outputs": f64(result.outputs),
        "distance": f64(result.distance),
        "target": f64(result.target),
        "y0": f64(result.y0),
        "target_output": f64(result.target_output),
        "kkt": np.asarray(result.kkt, dtype=np.float64),
        "residual": np.asarray(result.residual, dtype=np.float64),
        "stop_reason": np.asarray(result.stop_reason, dtype=np.str_),
    }


def save_traverse(
    result: TraverseResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, ...]:
    """Write a traversal: ``.npz`` arrays, the JSON sidecar, and a CSV table for small inputs.

    As :func:`save_walk`: the ``.npz`` holds NumPy arrays only (see :func:`traverse_arrays`)
    and is the same bytes for the same result; the sidecar (same name, ``.json``) holds the
    summary (distances to the target, path length, stop reason and its message, kkt,
    residual, timing), every option and the fiberscope version; when the input has at most
    :data:`WALK_CSV_MAX_N` coordinates a CSV (same name, ``.csv``) lists the path as
    ``index, x0.., y0.., distance``.

    Parameters
    ----------
    result : TraverseResult
        The traversal (``fs.traverse``).
    path : str or pathlib.Path
        Destination; must end in ``.npz``.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata for the sidecar.

    Returns
    -------
    tuple of pathlib.Path
        The files written (npz, json, and csv when written).

    Raises
    ------
    OutputFileError
        A name not ending in ``.npz``, an existing file without ``force``, an unwritable
        folder.
    """
    k = len(result)
    flat = result.points.reshape(k, -1)
    n = int(flat.shape[1])
    files = walk_paths(path, n, "a traversal")
    for p in files.values():
        check_writable(p, force=force)
    meta: dict[str, Any] = {
        "fiberscope_version": __version__,
        "kind": "traverse",
        "complete": bool(getattr(result, "complete", True)),
        **result.summary(),
        "message": result.message,
        "input_shape": list(result.target.shape),
        "n": n,
        "m": int(result.y0.numel()),
        "files": {role: p.name for role, p in files.items()},
        "parameters": result.options,
    }
    if extra:
        meta.update(extra)
    text = json.dumps(_jsonable(meta), indent=2) + "\n"
    with atomic_write(files["result"], "wb") as fh:
        _write_npz(fh, traverse_arrays(result))
    if "table" in files:
        m = int(result.y0.numel())
        pts = flat.cpu().tolist()
        outs = result.outputs.cpu().tolist()
        dist = result.distance.cpu().tolist()
        with atomic_write(files["table"]) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["index", *_columns(n, m), "distance"])
            for i in range(k):
                w.writerow([i, *(repr(float(v)) for v in [*pts[i], *outs[i], dist[i]])])
    with atomic_write(files["sidecar"]) as fh:
        fh.write(text)
    order = ("result", "sidecar", "table")
    return tuple(files[r] for r in order if r in files)


def load_walk(path: str | Path) -> WalkResult:
    """Read a walk written by :func:`save_walk` (arrays without pickles, plus its sidecar).

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.npz`` file (its ``.json`` sidecar is read when present: options, timing and
        whether the walk was complete).

    Returns
    -------
    WalkResult
        The walk, with float64 tensors.

    Raises
    ------
    InputError
        A missing or unreadable file, or one that is not a fiberscope walk.
    """
    import numpy as np
    import torch

    from ..algorithms.results import WalkResult
    from ..engine.stats import Stats
    from ..errors import InputError
    from .atomic import display_name

    p = Path(path)
    name = display_name(p)
    if p.is_file() and not zipfile.is_zipfile(p):
        raise InputError(f"cannot read the walk {name}: not a valid .npz file")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise InputError(f"cannot read the walk {name}: the file does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        why = "it holds pickled objects" if "pickle" in str(exc) else "not a valid .npz file"
        raise InputError(f"cannot read the walk {name}: {why}") from None
    needed = ("samples", "outputs", "counts", "x0", "y0", "seeds", "method")
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise InputError(
            f"{name} is not a fiberscope walk (no {', '.join(missing)}); it was not written "
            "by fiberscope.io.save"
        )
    meta: dict[str, Any] = {}
    side = sidecar_path(p)
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (OSError, ValueError):
            meta = {}
    stats = Stats()
    if isinstance(meta.get("stats"), dict):
        stats.restore(meta["stats"])
        stats.wall_time = float(meta["stats"].get("wall_time", 0.0))

    def t(key: str) -> Any:
        return torch.from_numpy(np.array(arrays[key], dtype=np.float64))

    def ints(key: str) -> list[int]:
        return [int(v) for v in arrays[key].reshape(-1)]

    rejections = {
        k.removeprefix("rejections_"): ints(k) for k in arrays if k.startswith("rejections_")
    }
    pseudo = arrays.get("pseudolength")
    return WalkResult(
        samples=t("samples"),
        outputs=t("outputs"),
        counts=ints("counts"),
        x0=t("x0"),
        y0=t("y0"),
        residual=float(arrays["residual"]) if "residual" in arrays else float("nan"),
        accepted=ints("accepted") if "accepted" in arrays else [],
        rejections=rejections,
        path_length=[float(v) for v in arrays.get("path_length", np.zeros(0))],
        rank_changes=ints("rank_changes") if "rank_changes" in arrays else [],
        seeds=ints("seeds"),
        stop_reasons=[str(v) for v in arrays.get("stop_reasons", np.zeros(0, dtype=np.str_))],
        method=str(arrays["method"]),
        options=dict(meta.get("parameters") or {}),
        stats=stats,
        pseudolength=None if pseudo is None else [float(v) for v in pseudo],
        complete=bool(meta.get("complete", True)),
    )


def confusion_arrays(result: ConfusionResult) -> dict[str, Any]:
    """Every array of a confusion search, as NumPy (float64 / int64: nothing needs a pickle).

    Parameters
    ----------
    result : ConfusionResult
        From ``fs.confuse``.

    Returns
    -------
    dict of numpy.ndarray
        ``start``, ``point`` (the nearest boundary point), ``flipped`` (just past it), their
        raw outputs ``outputs_start``, ``outputs_point``, ``outputs_flipped``, the descent
        ``path`` ``(K, *shape)``, the scalars ``distance``, ``kkt``, ``boundary_residual`` and
        the decisions ``decisions`` = (start, class across, at the flipped point), the
        confusion path ``line`` (``x0 -> point``, then ``flipped``) and its ``line_outputs``.
    """
    import numpy as np

    def f64(t: Any) -> Any:
        a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        return np.asarray(a, dtype=np.float64, order="C")

    return {
        "start": f64(result.start),
        "point": f64(result.point),
        "flipped": f64(result.flipped),
        "outputs_start": f64(result.outputs_start),
        "outputs_point": f64(result.outputs_point),
        "outputs_flipped": f64(result.outputs_flipped),
        "path": f64(result.path),
        "line": f64(result.line),
        "line_outputs": f64(result.line_outputs),
        "distance": np.asarray(result.distance, dtype=np.float64),
        "kkt": np.asarray(result.kkt, dtype=np.float64),
        "boundary_residual": np.asarray(result.boundary_residual, dtype=np.float64),
        "decisions": np.asarray(
            [result.decision_start, result.decision_flip, result.decision_flipped],
            dtype=np.int64,
        ),
    }


def save_confusion(
    result: ConfusionResult,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, ...]:
    """Write a confusion search: ``.npz`` arrays (:func:`confusion_arrays`) + JSON sidecar.

    Parameters
    ----------
    result : ConfusionResult
        From ``fs.confuse``.
    path : str or pathlib.Path
        Destination; must end in ``.npz``.
    force : bool
        Overwrite existing files.
    extra : dict, optional
        More metadata for the sidecar.

    Returns
    -------
    tuple of pathlib.Path
        The files written (npz, json).

    Raises
    ------
    OutputFileError
        A name not ending in ``.npz``, an existing file without ``force``, an unwritable
        folder.
    """
    files = walk_paths(path, WALK_CSV_MAX_N + 1, "a confusion search")  # no CSV table
    for p in files.values():
        check_writable(p, force=force)
    meta: dict[str, Any] = {
        "fiberscope_version": __version__,
        "kind": "confuse",
        "complete": bool(getattr(result, "complete", True)),
        **result.summary(),
        "input_shape": list(result.start.shape),
        "files": {role: p.name for role, p in files.items()},
        "parameters": result.options,
    }
    if extra:
        meta.update(extra)
    text = json.dumps(_jsonable(meta), indent=2) + "\n"
    with atomic_write(files["result"], "wb") as fh:
        _write_npz(fh, confusion_arrays(result))
    with atomic_write(files["sidecar"]) as fh:
        fh.write(text)
    return files["result"], files["sidecar"]


def save(
    result: Any,
    path: str | Path,
    *,
    force: bool = True,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, ...]:
    """Write any fiberscope result: a CSV table (or tables) plus a JSON sidecar.

    A walk (:class:`~fiberscope.WalkResult`) or a traversal
    (:class:`~fiberscope.TraverseResult`) is written as ``.npz`` arrays, the sidecar and, for
    small inputs, a CSV table (see :func:`save_walk`, :func:`save_traverse`).

    Parameters
    ----------
    result : TraceResult, ExploreResult, PreimageResult, BoundaryWalkResult, SampleResult, ...
        The result (or a :class:`~fiberscope.WalkResult`, :class:`~fiberscope.TraverseResult`).
    path : str or pathlib.Path
        Destination (``.csv``; ``.npz`` for a walk or a traversal); the sidecar is the same
        name with ``.json``.
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
        ConfusionResult,
        ExploreResult,
        PreimageResult,
        SampleResult,
        TraceResult,
        TraverseResult,
        WalkResult,
    )
    from ..errors import InputError

    if isinstance(result, ConfusionResult):
        return save_confusion(result, path, force=force, extra=extra)
    if isinstance(result, WalkResult):
        return save_walk(result, path, force=force, extra=extra)
    if isinstance(result, TraverseResult):
        return save_traverse(result, path, force=force, extra=extra)
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
