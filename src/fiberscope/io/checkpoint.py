"""Durable long runs: stream recorded points to disk and checkpoint the engine's state.

A run writing ``result.csv`` keeps two files next to it while it works:

``result.csv.partial``
    The recorded rows so far (points, outputs and per-row extras of every phase), appended in
    chunks, each chunk flushed and ``fsync``-ed. A chunk is an 8-byte little-endian length
    followed by a safetensors blob of the new rows.
``result.csv.ckpt``
    The rest of the run's :class:`~fiberscope.engine.Snapshot` (members, policy variables,
    counters, options) as a safetensors blob, replaced atomically after every chunk, with how
    many bytes of the stream (and their SHA-256) belong to it. Its first line is the SHA-256
    of everything after it: a checkpoint edited by hand, even into valid content, is refused.

A crash between the two writes leaves extra bytes at the end of the stream; they are cut off
on resume, because the checkpoint says how many bytes count. Tensors are stored bit for bit,
so a resumed run continues exactly. Nothing here is unpickled (safetensors and JSON only).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..engine.state import Snapshot
from ..errors import CheckpointError, OutputFileError
from .atomic import atomic_write

CHECKPOINT_FORMAT = "fiberscope-checkpoint"
CHECKPOINT_VERSION = 2
MAX_CHECKPOINT_BYTES = 2**30
_MAGIC = b"fiberscope-checkpoint 2 sha256="


def checkpoint_paths(out: str | Path) -> tuple[Path, Path]:
    """The checkpoint and stream files of the result file ``out``.

    Parameters
    ----------
    out : str or pathlib.Path
        The file the run will write.

    Returns
    -------
    tuple of pathlib.Path
        ``(out + ".ckpt", out + ".partial")``.
    """
    p = Path(out)
    return p.with_name(p.name + ".ckpt"), p.with_name(p.name + ".partial")


def _is_row_table(name: str) -> bool:
    """Recorder tables (``p<k>.rec.<key>``) are append-only: they go to the stream."""
    parts = name.split(".")
    return len(parts) >= 3 and parts[1] == "rec"


def _st_save(tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().clone() for k, v in tensors.items()}, metadata=metadata)


def _st_load(data: bytes) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors.torch import load

    tensors = load(data)
    # the metadata lives in the header: parse it as JSON (never code)
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__") or {}
    return tensors, {str(k): str(v) for k, v in meta.items()}


class CheckpointWriter:
    """Writes a run's stream and checkpoint; pass it as ``checkpoint=`` to any verb.

    Parameters
    ----------
    out : str or pathlib.Path
        The result file of the run (the checkpoint files are named after it).
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
            The result file.
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
        writer.streamed = dict(loaded.streamed)
        writer.stream_bytes = loaded.stream_bytes
        writer._hash = hashlib.sha256(loaded.stream_prefix)
        return writer

    def __call__(self, snapshot: Snapshot) -> None:
        """Same as :meth:`save` (so the writer is a ``checkpoint=`` callback)."""
        self.save(snapshot)

    def save(self, snapshot: Snapshot) -> Path:
        """Append the new rows to the stream, then replace the checkpoint atomically.

        Parameters
        ----------
        snapshot : Snapshot
            The run's state.

        Returns
        -------
        pathlib.Path
            The checkpoint file.
        """
        if not isinstance(snapshot, Snapshot):
            raise CheckpointError(f"a checkpoint takes a Snapshot, got {type(snapshot).__name__}")
        new_rows: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for name, t in snapshot.tensors.items():
            if not _is_row_table(name):
                continue
            have = self.streamed.get(name, 0)
            if t.shape[0] < have:
                raise CheckpointError(
                    f"{name} has {t.shape[0]} rows but {have} are already streamed"
                )
            if t.shape[0] > have:
                new_rows[name] = t[have:]
            counts[name] = int(t.shape[0])
        chunk = b""
        if new_rows:
            blob = _st_save(new_rows)
            chunk = struct.pack("<Q", len(blob)) + blob
        try:
            fd = os.open(self.stream_path, os.O_WRONLY | os.O_CREAT, 0o666)
            try:
                os.ftruncate(fd, self.stream_bytes)  # bytes after the last checkpoint do not count
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
        self.streamed.update(counts)
        doc = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "complete": False,
            "steps": snapshot.steps,
            "meta": self.meta,
            "verb": snapshot.verb,
            "options": snapshot.options,
            "y0": snapshot.y0,
            "phase": snapshot.phase,
            "state": snapshot.meta,
            "stats": snapshot.stats,
            "rows": self.streamed,
            "stream": {
                "file": self.stream_path.name,
                "bytes": self.stream_bytes,
                "sha256": self._hash.hexdigest(),
            },
        }
        state = {k: v for k, v in snapshot.tensors.items() if not _is_row_table(k)}
        body = _st_save(state, metadata={"fiberscope": json.dumps(doc)})
        digest = hashlib.sha256(body).hexdigest().encode("ascii")
        with atomic_write(self.ckpt_path, "wb") as fh:
            fh.write(_MAGIC + digest + b"\n")
            fh.write(body)
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
        The result file.
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
    snapshot : Snapshot
        Pass it as ``resume=`` to the verb that wrote it.
    meta : dict
        The metadata stored with it.
    stream_bytes : int
        Bytes of the stream that belong to it.
    stream_prefix : bytes
        Those bytes.
    streamed : dict
        Rows of every recorder table in the stream.
    """

    snapshot: Snapshot
    meta: dict[str, Any] = field(default_factory=dict)
    stream_bytes: int = 0
    stream_prefix: bytes = b""
    streamed: dict[str, int] = field(default_factory=dict)


def _corrupt(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"the checkpoint {path} is corrupt ({why}); delete {path.name} and its .partial file "
        "and run again without --resume"
    )


def _read_regular(path: Path, limit: int, count: int | None = None) -> bytes:
    """Read a regular file of at most ``limit`` bytes (no FIFOs or devices).

    ``count`` reads only that many bytes from the start.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise _corrupt(path, f"larger than {limit // 2**20} MiB")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(st.st_size if count is None else min(count, st.st_size))
    finally:
        os.close(fd)


def load_checkpoint(out: str | Path, *, device: torch.device | str = "cpu") -> LoadedCheckpoint:
    """Read the checkpoint and stream of the result file ``out``.

    Parameters
    ----------
    out : str or pathlib.Path
        The result file of the interrupted run.
    device : torch.device or str
        Unused (tensors are restored on the run's device when it resumes); kept for callers.

    Returns
    -------
    LoadedCheckpoint
        The snapshot and its metadata.

    Raises
    ------
    CheckpointError
        If there is no checkpoint, or it or its stream is corrupt or was edited.
    """
    ckpt, stream = checkpoint_paths(out)
    if not ckpt.exists():
        raise CheckpointError(
            f"nothing to resume: {ckpt} does not exist (a run writes it every "
            "--checkpoint-every steps and when it is interrupted)"
        )
    data = _read_regular(ckpt, MAX_CHECKPOINT_BYTES)
    head, sep, body = data.partition(b"\n")
    if not sep or not head.startswith(_MAGIC):
        if data.lstrip().startswith(b"{"):
            raise CheckpointError(
                f"{ckpt} was written by an older fiberscope (checkpoint format 1); this "
                f"fiberscope reads format {CHECKPOINT_VERSION}: run again without --resume"
            )
        raise _corrupt(ckpt, "not a fiberscope checkpoint")
    if hashlib.sha256(body).hexdigest().encode("ascii") != head[len(_MAGIC) :]:
        raise _corrupt(ckpt, "its checksum does not match: the file was edited or damaged")
    try:
        tensors, st_meta = _st_load(body)
        doc = json.loads(st_meta["fiberscope"])
        if doc.get("format") != CHECKPOINT_FORMAT:
            raise _corrupt(ckpt, "not a fiberscope checkpoint")
        if doc.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{ckpt} was written by checkpoint format version {doc.get('version')!r}; this "
                f"fiberscope reads version {CHECKPOINT_VERSION}"
            )
        info = doc["stream"]
        nbytes, digest = int(info["bytes"]), str(info["sha256"])
        rows = {str(k): int(v) for k, v in dict(doc["rows"]).items()}
        snapshot = Snapshot(
            verb=str(doc["verb"]),
            options=dict(doc["options"]),
            y0=[float(v) for v in doc["y0"]],
            phase=int(doc["phase"]),
            tensors=dict(tensors),
            meta=dict(doc["state"]),
            stats={str(k): int(v) for k, v in dict(doc["stats"]).items()},
        )
        meta = dict(doc.get("meta", {}))
    except CheckpointError:
        raise
    except Exception as exc:  # malformed safetensors or JSON: a corrupt file, one line
        raise _corrupt(ckpt, f"{type(exc).__name__}") from None
    prefix = b""
    if nbytes:
        try:
            raw = _read_regular(stream, 2**62, count=nbytes)
        except CheckpointError:
            raise CheckpointError(
                f"the stream {stream} of checkpoint {ckpt.name} is missing or unreadable"
            ) from None
        prefix = raw[:nbytes]
    if len(prefix) != nbytes or hashlib.sha256(prefix).hexdigest() != digest:
        raise CheckpointError(
            f"the stream {stream.name} does not match its checkpoint (truncated or edited); "
            f"delete {ckpt.name} and {stream.name} and run again without --resume"
        )
    parts: dict[str, list[Tensor]] = {}
    pos = 0
    try:
        while pos < len(prefix):
            (size,) = struct.unpack("<Q", prefix[pos : pos + 8])
            chunk, _ = _st_load(prefix[pos + 8 : pos + 8 + size])
            for k, v in chunk.items():
                parts.setdefault(k, []).append(v)
            pos += 8 + size
    except Exception as exc:
        raise _corrupt(stream, f"malformed chunk ({type(exc).__name__})") from None
    for k, n in rows.items():
        got = torch.cat(parts[k]) if k in parts else None
        if got is None or got.shape[0] != n:
            raise _corrupt(
                ckpt, f"table {k} has {0 if got is None else got.shape[0]} rows, expected {n}"
            )
        snapshot.tensors[k] = got
    return LoadedCheckpoint(
        snapshot=snapshot, meta=meta, stream_bytes=nbytes, stream_prefix=prefix, streamed=rows
    )
