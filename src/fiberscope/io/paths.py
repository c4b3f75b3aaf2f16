"""Every file a run will write, planned and checked before the run does any work.

A run of ``fiberscope trace model -o t.csv --plot t.png`` writes ``t.csv``, its sidecar
``t.json``, ``t.png``, and while it works the checkpoint ``t.csv.ckpt``, the stream
``t.csv.partial`` and the locks ``t.csv.lock`` (one per result file). :func:`plan_outputs`
lists them all, refuses names that are empty, too long or not encodable, two outputs that are
the same file (after resolving ``./``, ``..`` and symbolic links), an output that is one of the
run's inputs (the model file, the ``--arch`` file), folders that are missing or read-only, and
existing targets that are not regular files. :meth:`OutputPlan.locked` then takes an OS lock
(``fcntl.flock``) on each result file, so that two runs never write the same output at once;
the lock of a process that died is released by the kernel, so it never blocks a later run.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputFileError
from .atomic import (
    check_folder,
    check_name,
    display_name,
    refuse_special,
    unwritable,
)

try:  # POSIX only; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Roles of the files a run writes, in the order they are checked and reported.
ROLES = ("result", "sidecar", "table", "plot", "figure", "checkpoint", "stream", "lock")
_FINAL = ("result", "sidecar", "table", "plot", "figure")
_WHAT = {
    "result": "result",
    "sidecar": "JSON sidecar",
    "table": "CSV table",
    "plot": "plot",
    "figure": "figure",
    "checkpoint": "checkpoint",
    "stream": "checkpoint stream",
    "lock": "lock file",
}


@dataclass(frozen=True)
class PlannedFile:
    """One file a run will write.

    Attributes
    ----------
    role : str
        One of :data:`ROLES`.
    path : pathlib.Path
        The path as the user will see it.
    option : str
        The option that names it (for messages), e.g. ``"-o"`` or ``"--plot"``.
    """

    role: str
    path: Path
    option: str

    @property
    def label(self) -> str:
        """How messages name it, e.g. ``"the JSON sidecar t.json (of -o)"``."""
        return f"{_WHAT.get(self.role, self.role)} {display_name(self.path)}"


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class OutputPlan:
    """The checked list of files of one run; see :func:`plan_outputs`.

    Parameters
    ----------
    files : list of PlannedFile
        The files (already checked against each other and the inputs).
    create : list of pathlib.Path
        Folders to create when the run takes its locks.
    """

    def __init__(self, files: list[PlannedFile], create: list[Path] | None = None) -> None:
        self.files = files
        self.create = create or []
        self._held: list[tuple[Path, int]] = []

    def get(self, role: str) -> Path | None:
        """The path of ``role`` (the first one), or None."""
        return next((f.path for f in self.files if f.role == role), None)

    def __getitem__(self, role: str) -> Path:
        path = self.get(role)
        if path is None:
            raise KeyError(role)
        return path

    @property
    def final(self) -> list[PlannedFile]:
        """The result files (result, sidecar, table, plot) in order."""
        return [f for f in self.files if f.role in _FINAL]

    def check_existing(self, *, force: bool, roles: Sequence[str] = _FINAL) -> None:
        """Refuse existing result files without ``force`` (call it under the lock).

        Parameters
        ----------
        force : bool
            Allow overwriting.
        roles : sequence of str
            Which roles to check.
        """
        for f in self.files:
            if f.role not in roles:
                continue
            refuse_special(f.path)
            if f.path.exists() and not force:
                raise OutputFileError(
                    f"{display_name(f.path)} already exists; use --force to overwrite it"
                )

    # ------------------------------------------------------------------ locking
    def acquire(self) -> None:
        """Create the folders to create, then lock every result file (non-blocking).

        Raises
        ------
        OutputFileError
            When another run holds one of the locks (naming its process id).
        """
        for folder in self.create:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputFileError(
                    f"cannot create folder {display_name(folder)}: {exc.strerror or exc}"
                ) from None
        try:
            for f in self.files:
                if f.role == "lock":
                    self._held.append((f.path, _lock(f.path)))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Remove and unlock every lock this plan holds."""
        while self._held:
            path, fd = self._held.pop()
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still holding it: a waiting run then sees a new file
            with contextlib.suppress(OSError):
                os.close(fd)

    @contextlib.contextmanager
    def locked(self, *, force: bool | None = None) -> Iterator[OutputPlan]:
        """Hold the locks for a block; with ``force`` given, check existing files first.

        Parameters
        ----------
        force : bool, optional
            When not None, :meth:`check_existing` runs under the lock.

        Yields
        ------
        OutputPlan
            This plan.
        """
        self.acquire()
        try:
            if force is not None:
                self.check_existing(force=force)
            yield self
        finally:
            self.release()


def _lock(path: Path) -> int:
    """Take an exclusive ``flock`` on ``path`` (created if needed) and write our pid into it."""
    if fcntl is None:  # pragma: no cover - Windows
        return -1
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise OutputFileError(
                f"cannot create the lock file {display_name(path)}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return fd  # the file system has no locks (some network mounts): go on unlocked
            try:
                pid = os.read(fd, 32).decode("ascii", "replace").strip()
            except OSError:
                pid = ""
            os.close(fd)
            target = path.with_name(path.name[: -len(".lock")])
            who = f" (process {pid})" if pid.isdigit() else ""
            raise OutputFileError(
                f"{display_name(target)} is being written by another fiberscope run{who}; wait "
                "for it to finish or choose another output name"
            ) from None
        # the run that held it may have removed the file just before we locked it
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except OSError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)


def plan_outputs(
    result: str | Path | None,
    *,
    option: str = "-o/--out",
    sidecar: bool = True,
    plot: str | Path | None = None,
    checkpoint: bool = False,
    inputs: Sequence[tuple[str, str | Path]] = (),
    create_folders: bool = False,
    table: bool = False,
    figures: Sequence[tuple[str, str | Path]] = (),
) -> OutputPlan:
    """Plan and check every file of a run before it does any work.

    Parameters
    ----------
    result : str or pathlib.Path or None
        The result file (CSV) as given on the command line (``""`` is refused).
    option : str
        The option that named it, for messages.
    sidecar : bool
        The result has a JSON sidecar (``result`` with suffix ``.json``).
    plot : str or pathlib.Path, optional
        The figure (``--plot``).
    checkpoint : bool
        The run keeps a checkpoint and a stream next to the result (``.ckpt``, ``.partial``).
    inputs : sequence of (str, path)
        Files the run reads, as ``(what, path)``, e.g. ``("the model file", "m.onnx")``; no
        output may be one of them.
    create_folders : bool
        Create a missing result folder (its nearest existing parent must be writable)
        instead of refusing it.
    table : bool
        The result also has a CSV table (``result`` with suffix ``.csv``; a walk's ``.npz``).
    figures : sequence of (str, path)
        More figures, as ``(option, path)``, e.g. ``("--grid", "grid.png")``,
        ``("--gif", "walk.gif")``.

    Returns
    -------
    OutputPlan
        The plan; take its locks with :meth:`OutputPlan.locked` before writing.

    Raises
    ------
    OutputFileError
        For the first problem found, as one line naming the options involved and the fix.
    """
    files: list[PlannedFile] = []
    if result is not None:
        out = check_name(result, option)
        files.append(PlannedFile("result", out, option))
        if sidecar:
            if out.suffix.lower() == ".json":
                raise OutputFileError(
                    f"{option} {display_name(out)}: the result's JSON sidecar would be the same "
                    "file; give the result a .csv name"
                )
            files.append(PlannedFile("sidecar", out.with_suffix(".json"), option))
        if table and out.suffix.lower() != ".csv":
            files.append(PlannedFile("table", out.with_suffix(".csv"), option))
    if plot is not None:
        files.append(PlannedFile("plot", check_name(plot, "--plot"), "--plot"))
    for option, given in figures:
        files.append(PlannedFile("figure", check_name(given, option), option))
    if checkpoint and result is not None:
        out = files[0].path
        files.append(PlannedFile("checkpoint", out.with_name(out.name + ".ckpt"), option))
        files.append(PlannedFile("stream", out.with_name(out.name + ".partial"), option))
    for f in [f for f in files if f.role in _FINAL]:
        files.append(PlannedFile("lock", _lock_path(f.path), f.option))
    for f in files:
        if f.role not in ("result", "plot", "figure"):
            check_name(f.path, f"{f.option} (its {_WHAT[f.role]})")
    # two outputs that are one file
    seen: dict[Path, PlannedFile] = {}
    for f in files:
        key = _resolved(f.path)
        if key.is_dir() or str(f.path).endswith(os.sep):
            raise OutputFileError(f"{display_name(f.path)} is a directory; give a file name")
        other = seen.get(key)
        if other is not None:
            raise OutputFileError(_clash(other, f))
        seen[key] = f
    # an output that is an input
    for what, given in inputs:
        key = _resolved(Path(given))
        f = seen.get(key)
        if f is not None:
            raise OutputFileError(
                f"{f.option} {display_name(f.path)} would overwrite {what} "
                f"{display_name(given)}; choose another output name"
            )
    # folders, and targets that are not regular files (refused even with --force)
    create: list[Path] = []
    for f in files:
        parent = f.path.parent if str(f.path.parent) else Path(".")
        if create_folders and not parent.exists():
            anchor = parent
            while not anchor.exists() and anchor != anchor.parent:
                anchor = anchor.parent
            if not anchor.is_dir():
                raise OutputFileError(
                    f"cannot create folder {display_name(parent)}: {display_name(anchor)} is a "
                    "file, not a folder"
                )
            why = unwritable(anchor)
            if why is not None:
                raise OutputFileError(
                    f"cannot create folder {display_name(parent)}: {display_name(anchor)} is not "
                    f"writable ({why})"
                )
            if parent not in create:
                create.append(parent)
            continue
        if parent.exists() and not parent.is_dir():
            raise OutputFileError(
                f"cannot write {display_name(f.path)}: {display_name(parent)} is a file, not a "
                "folder"
            )
        refuse_special(f.path)
    checked: set[Path] = set()
    for f in files:
        parent = f.path.parent if str(f.path.parent) else Path(".")
        if parent in create or parent in checked:
            continue
        check_folder(f.path)
        checked.add(parent)
    return OutputPlan(files, create)


def _clash(a: PlannedFile, b: PlannedFile) -> str:
    if b.role in ("plot", "figure"):
        return (
            f"{b.option} {display_name(b.path)} is the same file as the {a.label} (from "
            f"{a.option}); give the {_WHAT[b.role]} its own name, e.g. ending in .png"
        )
    return (
        f"{a.option} and {b.option} name the same file {display_name(b.path)} (as the "
        f"{_WHAT[a.role]} and the {_WHAT[b.role]}); give each output its own name"
    )
