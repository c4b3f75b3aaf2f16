"""The store of a dataset job: one Parquet file per item plus a JSON manifest.

Layout of a store folder::

    STORE/
      manifest.json              parameters, versions, seeds, every item's status
      items/item-00000042.parquet
      .lock                      while a run writes the store

Every item file is written whole to a temporary name and renamed (atomic), and holds in its
Parquet metadata the job's fingerprint hash, the item's index, key, seed and result summary;
so an item file is either complete and known to belong to this job, or absent. The manifest is
rewritten atomically (every few seconds while a job runs, and when it ends or is
interrupted); an item whose file was written after the last manifest update is recognised by
its metadata when the job is continued. All item files share one schema per verb, so the folder
``items/`` reads as one table (``pyarrow.dataset``, pandas, DuckDB, Spark).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import CheckpointError, InputError, OutputFileError
from ..io.inputs import not_a_regular_file

try:  # POSIX only; elsewhere a store is not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Identifies a fiberscope store, and the version of its layout.
FORMAT = "fiberscope-store"
STORE_FORMAT = 1
MANIFEST = "manifest.json"
ITEMS = "items"
LOCK = ".lock"
#: Parquet metadata key of an item file.
META_KEY = b"fiberscope"
#: Columns of an item table per verb (besides ``item``, ``x`` and ``y``).
COLUMNS = {
    "walk": ("chain", "sample"),
    "trace": ("row", "branch", "arclength"),
    "preimage": ("level", "row", "branch", "arclength"),
}
#: Seconds between manifest updates while a job runs.
FLUSH_EVERY = 2.0


def item_name(index: int) -> str:
    """File name of item ``index`` (inside ``items/``)."""
    return f"item-{index:08d}.parquet"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def versions() -> dict[str, str]:
    """Versions of what computes and writes results (recorded in the manifest)."""
    import pyarrow
    import torch

    return {
        "fiberscope": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
    }


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def first_difference(old: Any, new: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """The first key (dotted) where two JSON values differ, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = first_difference(old.get(key), new.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    from .spec import canonical

    if canonical(old) != canonical(new):
        return where or "job", old, new
    return None


def _lock(path: Path) -> int:
    """Take an exclusive lock on ``path`` (created); raise when another run holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return -1
    if not_a_regular_file(path) is not None:
        raise OutputFileError(
            f"the store {path.parent} holds {path.name}, which is not a regular file (a "
            "folder, pipe, socket or device); remove it or give another store folder"
        )
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise OutputFileError(
                f"cannot write the store {path.parent}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return fd  # no locks on this file system: go on unlocked
            try:
                pid = os.read(fd, 32).decode("ascii", "replace").strip()
            except OSError:
                pid = ""
            os.close(fd)
            who = f" (process {pid})" if pid.isdigit() else ""
            raise OutputFileError(
                f"the store {path.parent} is being written by another fiberscope run{who}; wait "
                "for it to finish or give another store folder"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except OSError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest of the store at ``path`` (None when there is none).

    Raises
    ------
    CheckpointError
        It exists but cannot be read, or is not a fiberscope store's manifest.
    """
    p = Path(path) / MANIFEST
    if not p.exists():
        return None
    if not_a_regular_file(p) is not None:  # a named pipe would block the read for ever
        raise CheckpointError(
            f"the store {Path(path)} has a {MANIFEST} that is not a regular file (a folder, "
            "pipe, socket or device); give another store folder"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else type(exc).__name__
        raise CheckpointError(
            f"the store {Path(path)} has an unreadable {MANIFEST} ({why}); give another store "
            "folder"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{p} is not the manifest of a fiberscope store; give another store folder"
        )
    same_version = (
        data.get("store_format") == STORE_FORMAT and data.get("fiberscope_version") == __version__
    )  # a store of another version is refused by its version (Store._check), not its fields
    problem = _manifest_problem(data) if same_version else None
    if problem is not None:
        raise CheckpointError(
            f"the {MANIFEST} of the store {Path(path)} was edited or damaged ({problem}); "
            "restore it, or give another store folder"
        )
    return data


_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "seed": (int,),
    "error": (str, type(None)),
    "attempts": (int,),
    "seconds": (int, float, type(None)),
    "worker": (str, type(None)),
    "rows": (int, type(None)),
}


def _manifest_problem(data: dict[str, Any]) -> str | None:
    """What in a manifest (valid JSON of the right format) a run or a reader cannot use."""
    if not isinstance(data.get("verb"), str):
        return "verb is not a string"
    if not isinstance(data.get("job"), dict):
        return "job is not a table"
    layout = data.get("layout")
    shape = layout.get("input_shape") if isinstance(layout, dict) else None
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        return "layout.input_shape is not a list of positive integers"
    runs = data.get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        return "runs is not a list of tables"
    if not isinstance(data.get("counts", {}), dict):
        return "counts is not a table"
    items = data.get("items", [])
    if not isinstance(items, list):
        return "items is not a list"
    for k, e in enumerate(items):
        if not isinstance(e, dict):
            return f"items[{k}] is not a table"
        index = e.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index != k:
            return f"items[{k}].index is {_short(index)}, not {k}"
        if e.get("status") not in ("pending", "done", "failed"):
            return f"items[{k}].status is {_short(e.get('status'))}"
        for name, types in _ENTRY_TYPES.items():
            value = e.get(name)
            if name in e and (not isinstance(value, types) or isinstance(value, bool)):
                return f"items[{k}].{name} is {_short(value)}"
    return None


def check_store_path(path: str | Path) -> Path:
    """Refuse a store folder that cannot be one (before any work); return it absolute.

    A store is a new folder (its parent must exist), an empty folder, or the folder of an
    earlier run of the same job.
    """
    from ..io.atomic import check_folder, display_name

    p = Path(path).expanduser().absolute()
    if p.exists() and not p.is_dir():
        raise OutputFileError(
            f"the store {display_name(p)} is a file, not a folder; give a folder for the store"
        )
    if not p.exists():
        check_folder(p)
        return p
    if not (p / MANIFEST).exists():
        try:
            entries = [e for e in p.iterdir() if e.name != LOCK]
        except OSError as exc:
            raise OutputFileError(f"cannot read the store {p}: {exc.strerror or exc}") from None
        if entries:
            raise OutputFileError(
                f"{display_name(p)} is not empty and is not a fiberscope store (no {MANIFEST}); "
                "give a new or empty folder for the store"
            )
    return p


def precheck(path: Path, job: Any) -> None:
    """Refuse, before any work (and before Ray starts), a store of another job or version, or
    one that another run is writing. :meth:`Store.open` checks again under the lock."""
    if not path.is_dir():
        return
    old = read_manifest(path)
    if old is not None:
        Store(path, job, "")._check(old)
    if (path / LOCK).exists():
        fd = _lock(path / LOCK)  # raises when another run holds it
        with contextlib.suppress(OSError):
            os.unlink(path / LOCK)
        with contextlib.suppress(OSError):
            os.close(fd)


@dataclass
class Entry:
    """The status of one item in the manifest."""

    index: int
    key: str
    seed: int
    status: str = "pending"
    error: str | None = None
    attempts: int = 0
    seconds: float | None = None
    worker: str | None = None
    rows: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


class Store:
    """A store being written by one run of a job (locked while open).

    Parameters
    ----------
    path : pathlib.Path
        The store folder (checked by :func:`check_store_path`).
    job : Job
        The job.
    backend : str
        How this run computes (recorded).
    """

    def __init__(self, path: Path, job: Any, backend: str) -> None:
        self.path = path
        self.job = job
        self.job_sha256 = job.fingerprint_sha256()
        self.items_dir = path / ITEMS
        self._fd: int | None = None
        self._dirty = False
        self._last_flush = 0.0
        self.backend = backend
        self.adopted = 0
        #: SHA-256 of each item's input file as it was read for this run (folders only)
        self.input_digests: dict[int, str | None] = {}
        self.changed: set[int] = set()  # finished items whose input file changed: run again

    # ------------------------------------------------------------ open / close
    def open(self) -> Store:
        """Lock the store, create or check its manifest, and find the items left to do.

        Raises
        ------
        CheckpointError
            The store was written by another fiberscope version or for another job.
        OutputFileError
            The store is being written by another run, or cannot be written.
        """
        created = not self.path.exists()
        if created:
            try:
                self.path.mkdir()
            except OSError as exc:
                raise OutputFileError(
                    f"cannot create the store folder {self.path}: {exc.strerror or exc}"
                ) from None
        try:
            self._fd = _lock(self.path / LOCK)
            old = read_manifest(self.path)
            if old is not None:
                self._check(old)
            self.items_dir.mkdir(exist_ok=True)
            self._sweep_temporaries()
            self.entries = self._entries(old)
            self.manifest = self._manifest(old)
            self.flush(force=True)
        except BaseException:
            self.close()
            if created:
                with contextlib.suppress(OSError):
                    for leftover in (self.path / LOCK, self.items_dir):
                        if leftover.is_dir():
                            leftover.rmdir()
                        else:
                            leftover.unlink()
                    self.path.rmdir()
            raise
        return self

    def close(self) -> None:
        """Release the lock (the manifest must have been flushed)."""
        if self._fd is not None and self._fd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(self.path / LOCK)
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        try:
            self.flush(force=True)
        finally:
            self.close()

    def _check(self, old: dict[str, Any]) -> None:
        if old.get("store_format") != STORE_FORMAT or old.get("fiberscope_version") != __version__:
            raise CheckpointError(
                f"the store {self.path} was written by fiberscope "
                f"{old.get('fiberscope_version', '?')} (store format "
                f"{old.get('store_format', '?')}); this is fiberscope {__version__}: give "
                "another store folder so that results of two versions never mix"
            )
        diff = first_difference(old.get("job"), self.job.fingerprint())
        if diff is not None and diff[0] == "inputs.data_sha256":
            raise CheckpointError(
                f"the store {self.path} was written from other input data (the contents of "
                f"{Path(str(self.job.inputs.source)).name or 'the inputs'} differ from the "
                "ones it was written from); restore the inputs to continue, or give another "
                "store folder"
            )
        if diff is not None:
            where, was, now = diff
            raise CheckpointError(
                f"the store {self.path} was written with {where}={_short(was)}, this job has "
                f"{where}={_short(now)}; run the same job to continue it, or give another "
                "store folder"
            )

    def _sweep_temporaries(self) -> None:
        """Remove temporary files of writes that a killed run left behind (we hold the lock)."""
        for p in self.items_dir.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    p.unlink()
        for p in self.path.iterdir():
            if p.name.startswith(f".{MANIFEST}.") and p.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    p.unlink()

    def _entries(self, old: dict[str, Any] | None) -> list[Entry]:
        known = {}
        if old is not None:
            for e in old.get("items", []):
                with contextlib.suppress(KeyError, TypeError):
                    known[int(e["index"])] = e
        out = []
        for i in range(len(self.job)):
            entry = Entry(i, self.job.key(i), self.job.seed_of(i))
            prev = known.get(i)
            path = self.items_dir / item_name(i)
            if prev is not None:
                entry.attempts = int(prev.get("attempts") or 0)
                # a damaged or foreign file is not a finished item: it is run again
                if prev.get("status") == "done" and self._item_meta(path, i) is not None:
                    for k in ("status", "seconds", "worker", "rows"):
                        setattr(entry, k, prev.get(k))
                elif prev.get("status") == "failed":
                    entry.error = prev.get("error")  # shown until the item is retried
            if entry.status != "done" and path.is_file() and self._adopt(path, entry):
                self.adopted += 1
            out.append(entry)
        return out

    def _item_meta(self, path: Path, index: int) -> tuple[dict[str, Any], int] | None:
        """The metadata and row count of item ``index``'s file, if it is a readable Parquet
        file of this job (None for a missing, damaged or foreign file)."""
        import pyarrow.parquet as pq

        if not path.is_file():
            return None
        try:
            info = pq.ParquetFile(path).metadata
            meta = json.loads(info.metadata[META_KEY])
            rows = int(info.num_rows)
        except Exception:
            return None
        if meta.get("job_sha256") != self.job_sha256 or meta.get("index") != index:
            return None
        recorded = meta.get("input_sha256")
        if recorded is not None:
            now = self.job.inputs.digest(self.job.input_index(index))
            if now != recorded:  # the input file changed: the result is of other data
                self.changed.add(index)
                return None
        return meta, rows

    def _adopt(self, path: Path, entry: Entry) -> bool:
        """Take an item file written after the last manifest update, if it is this job's."""
        found = self._item_meta(path, entry.index)
        if found is None:
            return False
        entry.status, entry.error, entry.rows = "done", None, found[1]
        return True

    def _manifest(self, old: dict[str, Any] | None) -> dict[str, Any]:
        runs = list(old.get("runs", [])) if old else []
        runs.append({"started": _now(), "backend": self.backend, "finished": None})
        return {
            "format": FORMAT,
            "store_format": STORE_FORMAT,
            "fiberscope_version": __version__,
            "versions": versions(),
            "created": old.get("created", _now()) if old else _now(),
            "verb": self.job.verb,
            "job": self.job.fingerprint(),
            "job_sha256": self.job_sha256,
            "seeds": "item i has seed splitmix64(splitmix64(seed) ^ i) mod 2**63 "
            "(fiberscope.jobs.item_seed)",
            "layout": {
                "items": f"{ITEMS}/item-NNNNNNNN.parquet (NNNNNNNN = the item's index)",
                "columns": ["item", *COLUMNS[self.job.verb], "x", "y"],
                "input_shape": list(self.job.inputs.shape),
            },
            "counts": {},
            "runs": runs,
            "items": [],
        }

    # ------------------------------------------------------------ status
    def pending(self) -> list[int]:
        """Indices of the items still to do (pending or failed before), in order."""
        return [e.index for e in self.entries if e.status != "done"]

    def counts(self) -> dict[str, int]:
        """Items per status."""
        out = {"done": 0, "failed": 0, "pending": 0}
        for e in self.entries:
            out[e.status] = out.get(e.status, 0) + 1
        return out

    def write_item(self, outcome: Any) -> Entry:
        """Write a finished item's file, then mark it done.

        Parameters
        ----------
        outcome : Outcome
            From a worker, with ``ok`` True.

        Returns
        -------
        Entry
            The item's status.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..io.atomic import atomic_write

        entry = self.entries[outcome.index]
        cols = outcome.columns
        rows = int(cols["x"].shape[0])
        arrays = {"item": pa.array(np.full(rows, outcome.index, dtype=np.int64))}
        for name in COLUMNS[self.job.verb]:
            arrays[name] = pa.array(cols[name])
        for name in ("x", "y"):
            values = np.ascontiguousarray(cols[name], dtype=np.float64)
            width = int(values.shape[1]) if values.ndim == 2 else 1
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)
        meta = {
            "job_sha256": self.job_sha256,
            "index": outcome.index,
            "key": entry.key,
            "seed": entry.seed,
            "verb": self.job.verb,
            "fiberscope_version": __version__,
            "result": outcome.meta,
            "input_sha256": self.input_digests.get(outcome.index),
        }
        table = pa.table(arrays).replace_schema_metadata(
            {META_KEY: json.dumps(meta, sort_keys=True).encode()}
        )
        with atomic_write(self.items_dir / item_name(outcome.index), "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
        entry.status, entry.error, entry.rows = "done", None, rows
        entry.attempts += 1
        entry.seconds, entry.worker = round(outcome.seconds, 6), outcome.worker
        self._dirty = True
        return entry

    def fail_item(self, index: int, error: str, *, seconds: float | None = None,
                  worker: str | None = None) -> Entry:  # fmt: skip
        """Mark an item failed with its one-line error."""
        entry = self.entries[index]
        entry.status, entry.error, entry.rows = "failed", error, None
        entry.attempts += 1
        entry.seconds = None if seconds is None else round(seconds, 6)
        entry.worker = worker
        self._dirty = True
        return entry

    def flush(self, *, force: bool = False, finished: str | None = None) -> None:
        """Rewrite the manifest atomically (when due, or ``force``)."""
        from ..io.atomic import atomic_write

        now = time.monotonic()
        if not force and not (self._dirty and now - self._last_flush >= FLUSH_EVERY):
            return
        self.manifest["counts"] = self.counts()
        self.manifest["items"] = [e.as_dict() for e in self.entries]
        if finished is not None:
            self.manifest["runs"][-1]["finished"] = _now()
            self.manifest["runs"][-1]["outcome"] = finished
        text = json.dumps(self.manifest, indent=1) + "\n"
        with atomic_write(self.path / MANIFEST) as fh:
            fh.write(text)
        self._dirty = False
        self._last_flush = now


# ---------------------------------------------------------------- reading a store
@dataclass
class ItemResult:
    """One item of a store, read back.

    Attributes
    ----------
    index : int
        The item's index.
    key : str
        Its name (file name, ``row 5``, ...).
    seed : int
        Its seed.
    x : numpy.ndarray
        ``(rows, *input_shape)`` points (walk: samples of every chain; trace: the class in
        order; preimage: every level, then the path).
    y : numpy.ndarray
        ``(rows, m)`` outputs.
    columns : dict
        The other columns (``chain``, ``sample``; ``row``, ``branch``, ``arclength``;
        ``level``).
    result : dict
        The result's summary (residual or drift, stop reasons, seeds, counters, ...).
    """

    index: int
    key: str
    seed: int
    x: np.ndarray
    y: np.ndarray
    columns: dict[str, np.ndarray]
    result: dict[str, Any]


class StoreReader:
    """A store on disk: its manifest, items and one table of all of them.

    Parameters
    ----------
    path : str or pathlib.Path
        The store folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        manifest = read_manifest(self.path)
        if manifest is None:
            raise InputError(f"{self.path} is not a fiberscope store (no {MANIFEST})")
        self.manifest = manifest

    @property
    def verb(self) -> str:
        """The job's verb."""
        return str(self.manifest["verb"])

    @property
    def counts(self) -> dict[str, int]:
        """Items per status (as of the last manifest update)."""
        return dict(self.manifest.get("counts", {}))

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Every item's status: index, key, seed, status, error, attempts, seconds, worker."""
        return list(self.manifest.get("items", []))

    def done(self) -> list[int]:
        """Indices of the finished items."""
        return [int(e["index"]) for e in self.entries if e.get("status") == "done"]

    def failed(self) -> list[dict[str, Any]]:
        """The failed items with their errors."""
        return [e for e in self.entries if e.get("status") == "failed"]

    def item(self, index: int) -> ItemResult:
        """Read item ``index``.

        Raises
        ------
        InputError
            The item is not done, or its file is damaged (running the job again redoes it).
        """
        import pyarrow.parquet as pq

        path = self.path / ITEMS / item_name(index)
        if not path.is_file():
            raise InputError(f"item {index} of {self.path} is not done (no {path.name})")
        try:
            table = pq.read_table(path)
            meta = json.loads(table.schema.metadata[META_KEY])
        except Exception as exc:
            raise self._damaged(path, exc) from None
        shape = tuple(self.manifest["layout"]["input_shape"])
        cols = {name: table.column(name).to_numpy() for name in COLUMNS[self.verb]}
        x, y = (self._matrix(table, name) for name in ("x", "y"))
        return ItemResult(
            index, meta["key"], meta["seed"], x.reshape(x.shape[0], *shape), y, cols,
            meta["result"],
        )  # fmt: skip

    @staticmethod
    def _matrix(table: Any, name: str) -> np.ndarray:
        col = table.column(name).combine_chunks()
        width = col.type.list_size
        return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)

    def table(self) -> Any:
        """Every finished item as one ``pyarrow.Table`` (column ``item`` tells them apart).

        Raises
        ------
        InputError
            No item is finished, or an item file is missing or damaged (running the job again
            redoes it).
        """
        import pyarrow.dataset as ds

        files = [str(self.path / ITEMS / item_name(i)) for i in self.done()]
        if not files:
            raise InputError(f"the store {self.path} has no finished items yet")
        try:
            return ds.dataset(files, format="parquet").to_table()
        except Exception as exc:
            raise self._damaged(None, exc) from None

    def _damaged(self, path: Path | None, exc: BaseException) -> InputError:
        what = f"the item file {path.name}" if path is not None else "an item file"
        why = " ".join(str(exc).split())[:160] or type(exc).__name__
        return InputError(
            f"{what} of the store {self.path} is missing or damaged ({why}); run the job "
            "again: it redoes damaged items"
        )

    def __iter__(self) -> Iterator[ItemResult]:
        for i in self.done():
            yield self.item(i)


def open_store(path: str | Path) -> StoreReader:
    """Open a job's store for reading.

    Parameters
    ----------
    path : str or pathlib.Path
        The store folder.

    Returns
    -------
    StoreReader
        Manifest, per-item results (:meth:`StoreReader.item`) and one table of every item
        (:meth:`StoreReader.table`).

    Examples
    --------
    >>> import fiberscope as fs  # doctest: +SKIP
    >>> store = fs.jobs.open_store("results/")  # doctest: +SKIP
    >>> store.counts, store.item(0).x.shape  # doctest: +SKIP
    """
    return StoreReader(path)


__all__ = [
    "FORMAT",
    "ITEMS",
    "MANIFEST",
    "STORE_FORMAT",
    "Entry",
    "ItemResult",
    "Store",
    "StoreReader",
    "check_store_path",
    "item_name",
    "open_store",
    "precheck",
    "read_manifest",
    "versions",
]
