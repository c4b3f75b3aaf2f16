"""Durable long traces: stream points to disk in chunks and checkpoint the tracer's state.

A run writing ``trace.csv`` keeps two files next to it while it works:

``trace.csv.partial``
    The points so far, appended in chunks (one CSV row per point: branch, index, the input
    coordinates, the outputs, the conditioning), each chunk flushed and ``fsync``-ed.
``trace.csv.ckpt``
    JSON, replaced atomically after every chunk: the tracer state of the branch in progress,
    finished branches, counters, the run's options, and how many bytes of the stream (and
    their SHA-256) belong to this state.

A crash between the two writes leaves extra rows at the end of the stream; they are cut off
on resume, because the checkpoint says how many bytes count. Floats are written with
``repr``, which round-trips float64 exactly, so a resumed run continues bit for bit.
Nothing here is unpickled: both files are text.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..algorithms.snapshot import BranchRecord, TraceSnapshot
from ..errors import CheckpointError, OutputFileError
from .atomic import atomic_write

CHECKPOINT_FORMAT = "fiberscope-trace-checkpoint"
CHECKPOINT_VERSION = 1
MAX_CHECKPOINT_BYTES = 2**30


def checkpoint_paths(out: str | Path) -> tuple[Path, Path]:
    """The checkpoint and stream files of the result file ``out``.

    Parameters
    ----------
    out : str or pathlib.Path
        The CSV the run will write.

    Returns
    -------
    tuple of pathlib.Path
        ``(out + ".ckpt", out + ".partial")``.
    """
    p = Path(out)
    return p.with_name(p.name + ".ckpt"), p.with_name(p.name + ".partial")


def _row(name: str, i: int, x: Any, y: Any, cond: float | None) -> str:
    xs = ",".join(repr(float(v)) for v in x.reshape(-1).tolist())
    ys = ",".join(repr(float(v)) for v in y.reshape(-1).tolist())
    c = "" if cond is None else repr(float(cond))
    return f"{name},{i},{xs},{ys},{c}\n"


class CheckpointWriter:
    """Writes a run's stream and checkpoint; pass it as ``trace(checkpoint=...)``.

    Parameters
    ----------
    out : str or pathlib.Path
        The result CSV of the run (the checkpoint files are named after it).
    meta : dict, optional
        Extra JSON-ready facts stored in the checkpoint (model spec, file hash, ...).
    """

    def __init__(self, out: str | Path, *, meta: dict[str, Any] | None = None) -> None:
        self.out = Path(out)
        self.ckpt_path, self.stream_path = checkpoint_paths(self.out)
        self.meta = dict(meta or {})
        self.streamed: dict[str, int] = {}
        self.stream_bytes = 0
        self._hash = hashlib.sha256()
        self.saves = 0

    @classmethod
    def continuing(
        cls, out: str | Path, loaded: LoadedCheckpoint, *, meta: dict[str, Any] | None = None
    ) -> CheckpointWriter:
        """A writer that appends to the stream of a loaded checkpoint.

        Parameters
        ----------
        out : str or pathlib.Path
            The result CSV.
        loaded : LoadedCheckpoint
            What :func:`load_checkpoint` returned.
        meta : dict, optional
            Metadata to store (defaults to the loaded one).

        Returns
        -------
        CheckpointWriter
            The writer.
        """
        writer = cls(out, meta=meta if meta is not None else loaded.meta)
        writer.streamed = {b.name: len(b.points) for b in loaded.snapshot.branches}
        writer.stream_bytes = loaded.stream_bytes
        writer._hash = hashlib.sha256(loaded.stream_prefix)
        return writer

    def __call__(self, snapshot: TraceSnapshot) -> None:
        """Same as :meth:`save` (so the writer is a ``checkpoint=`` callback)."""
        self.save(snapshot)

    def save(self, snapshot: TraceSnapshot) -> Path:
        """Append the new points to the stream, then replace the checkpoint atomically.

        Parameters
        ----------
        snapshot : TraceSnapshot
            The run's state.

        Returns
        -------
        pathlib.Path
            The checkpoint file.
        """
        lines = []
        for b in snapshot.branches:
            have = self.streamed.get(b.name, 0)
            if len(b.points) < have:
                raise CheckpointError(
                    f"branch {b.name} has {len(b.points)} points but {have} are already streamed"
                )
            for i in range(have, len(b.points)):
                cond = b.conditioning[i] if i < len(b.conditioning) else None
                lines.append(_row(b.name, i, b.points[i], b.outputs[i], cond))
        chunk = "".join(lines).encode("ascii")
        try:
            fd = os.open(self.stream_path, os.O_WRONLY | os.O_CREAT, 0o666)
            try:
                os.ftruncate(fd, self.stream_bytes)  # rows after the last checkpoint do not count
                os.lseek(fd, self.stream_bytes, os.SEEK_SET)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise OutputFileError(
                f"cannot write the stream {self.stream_path}: {exc.strerror or exc}"
            ) from None
        self._hash.update(chunk)
        self.stream_bytes += len(chunk)
        for b in snapshot.branches:
            self.streamed[b.name] = len(b.points)
        doc = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "complete": False,
            "steps": snapshot.steps,
            "points": snapshot.n_points,
            "meta": self.meta,
            "method": snapshot.method,
            "options": snapshot.options,
            "y0": snapshot.y0,
            "stats": snapshot.stats,
            "closed": snapshot.closed,
            "branches": [
                {
                    "name": b.name,
                    "sign": b.sign,
                    "rows": len(b.points),
                    "finished": b.finished,
                    "reason": b.reason,
                    "message": b.message,
                    "stop_point": b.stop_point,
                    "energy": b.energy,
                    "state": b.state,
                }
                for b in snapshot.branches
            ],
            "stream": {
                "file": self.stream_path.name,
                "bytes": self.stream_bytes,
                "sha256": self._hash.hexdigest(),
            },
        }
        with atomic_write(self.ckpt_path) as fh:
            json.dump(doc, fh)
            fh.write("\n")
        self.saves += 1
        return self.ckpt_path

    def remove(self) -> None:
        """Delete the checkpoint and the stream (after the final result is written)."""
        remove_checkpoint(self.out)


def remove_checkpoint(out: str | Path) -> None:
    """Delete the checkpoint files of ``out`` if they exist.

    Parameters
    ----------
    out : str or pathlib.Path
        The result CSV.
    """
    for p in checkpoint_paths(out):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputFileError(f"cannot remove {p}: {exc.strerror or exc}") from None


@dataclass
class LoadedCheckpoint:
    """A checkpoint read back from disk.

    Attributes
    ----------
    snapshot : TraceSnapshot
        Pass it to ``trace(resume=...)``.
    meta : dict
        The metadata stored with it.
    stream_bytes : int
        Bytes of the stream that belong to it.
    stream_prefix : bytes
        Those bytes.
    """

    snapshot: TraceSnapshot
    meta: dict[str, Any] = field(default_factory=dict)
    stream_bytes: int = 0
    stream_prefix: bytes = b""


def _corrupt(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"the checkpoint {path} is corrupt ({why}); delete {path.name} and its .partial file "
        "and run again without --resume"
    )


def load_checkpoint(out: str | Path, *, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """Read the checkpoint and stream of the result file ``out``.

    Parameters
    ----------
    out : str or pathlib.Path
        The result CSV of the interrupted run.
    device : torch.device or str
        Where to put the points.

    Returns
    -------
    LoadedCheckpoint
        The snapshot and its metadata.

    Raises
    ------
    CheckpointError
        If there is no checkpoint, or it or its stream is corrupt.
    """
    ckpt, stream = checkpoint_paths(out)
    if not ckpt.is_file():
        raise CheckpointError(
            f"nothing to resume: {ckpt} does not exist (a run writes it every "
            "--checkpoint-every steps and when it is interrupted)"
        )
    try:
        if ckpt.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise _corrupt(ckpt, "larger than 1 GiB")
        doc = json.loads(ckpt.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(ckpt, type(exc).__name__) from None
    try:
        if doc.get("format") != CHECKPOINT_FORMAT:
            raise _corrupt(ckpt, "not a fiberscope trace checkpoint")
        if doc.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{ckpt} was written by checkpoint format version {doc.get('version')!r}; this "
                f"fiberscope reads version {CHECKPOINT_VERSION}"
            )
        info = doc["stream"]
        nbytes, digest = int(info["bytes"]), str(info["sha256"])
        branches_doc = list(doc["branches"])
        options, y0 = dict(doc["options"]), [float(v) for v in doc["y0"]]
        stats = {str(k): int(v) for k, v in dict(doc["stats"]).items()}
        method, closed, meta = str(doc["method"]), bool(doc["closed"]), dict(doc.get("meta", {}))
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _corrupt(ckpt, f"missing or malformed field {exc}") from None
    try:
        with open(stream, "rb") as fh:
            prefix = fh.read(nbytes)
    except FileNotFoundError:
        if nbytes:
            raise CheckpointError(
                f"the stream {stream} of checkpoint {ckpt.name} is missing"
            ) from None
        prefix = b""
    except OSError as exc:
        raise CheckpointError(f"cannot read {stream}: {exc.strerror or exc}") from None
    if len(prefix) != nbytes or hashlib.sha256(prefix).hexdigest() != digest:
        raise CheckpointError(
            f"the stream {stream.name} does not match its checkpoint (truncated or edited); "
            f"delete {ckpt.name} and {stream.name} and run again without --resume"
        )
    rows: dict[str, list[list[str]]] = {}
    try:
        for line in prefix.decode("ascii").splitlines():
            parts = line.split(",")
            rows.setdefault(parts[0], []).append(parts)
    except UnicodeDecodeError:
        raise _corrupt(stream, "not text") from None
    dev = torch.device(device)
    n = len(options.get("x0", []))
    records: list[BranchRecord] = []
    try:
        for b in branches_doc:
            name = str(b["name"])
            mine = rows.get(name, [])
            if len(mine) != int(b["rows"]):
                raise _corrupt(ckpt, f"branch {name} has {len(mine)} rows, expected {b['rows']}")
            pts, outs, conds = [], [], []
            for i, parts in enumerate(mine):
                if int(parts[1]) != i or len(parts) < n + 4:
                    raise _corrupt(stream, f"row {i} of branch {name} is malformed")
                f64 = torch.float64
                pts.append(torch.tensor([float(v) for v in parts[2 : 2 + n]], dtype=f64))
                outs.append(torch.tensor([float(v) for v in parts[2 + n : -1]], dtype=f64))
                if parts[-1]:
                    conds.append(float(parts[-1]))
            records.append(
                BranchRecord(
                    name=name,
                    sign=int(b["sign"]),
                    points=[p.to(dev) for p in pts],
                    outputs=[o.to(dev) for o in outs],
                    conditioning=conds,
                    finished=bool(b["finished"]),
                    reason=str(b["reason"]),
                    message=str(b["message"]),
                    stop_point=None if b["stop_point"] is None else list(b["stop_point"]),
                    energy=float(b["energy"]),
                    state=b["state"],
                )
            )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _corrupt(ckpt, f"malformed branch ({type(exc).__name__})") from None
    snapshot = TraceSnapshot(
        method=method, options=options, y0=y0, branches=records, stats=stats, closed=closed
    )
    return LoadedCheckpoint(snapshot=snapshot, meta=meta, stream_bytes=nbytes, stream_prefix=prefix)
