"""Atomic file writes: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import OutputFileError


def check_writable(path: str | Path, *, force: bool) -> Path:
    """Refuse an existing file (unless ``force``) or a destination that cannot be written.

    Parameters
    ----------
    path : str or pathlib.Path
        Destination.
    force : bool
        Allow overwriting.

    Returns
    -------
    pathlib.Path
        The path.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputFileError(f"{p} is a directory; give a file name")
    if p.exists() and not force:
        raise OutputFileError(f"{p} already exists; use --force to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputFileError(f"cannot write {p}: folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputFileError(f"cannot write {p}: {parent} is a file, not a folder")
    # Try it: os.access says yes to root on read-only mounts and /sys, and a run that finds out
    # only when it saves has lost its work.
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise OutputFileError(
            f"cannot write {p}: folder {parent} is not writable ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return p


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it over ``path`` only on success.

    Parameters
    ----------
    path : str or pathlib.Path
        Final destination.
    mode : str
        ``"w"`` (text) or ``"wb"`` (binary).

    Yields
    ------
    file object
        The temporary file; if the block raises, it is deleted and ``path`` is untouched.
    """
    p = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
    except OSError as exc:
        raise OutputFileError(f"cannot write {p}: {exc.strerror or exc}") from None
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:
        pass
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
