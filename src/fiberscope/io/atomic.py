"""Atomic file writes: write to a temporary file in the same folder, then rename.

Only regular files are ever written: an existing target that is a named pipe, a device or a
socket is refused (renaming over it would silently replace it). Temporary names are built so
that they fit the file system's name limit even when the target's name is near it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import OutputFileError

#: Fallback when the file system does not report its limits.
DEFAULT_NAME_MAX = 255
DEFAULT_PATH_MAX = 4096
_RANDOM = 8  # characters tempfile adds to a name


def name_max(folder: str | Path) -> int:
    """Longest file name (in bytes) the file system of ``folder`` accepts.

    Parameters
    ----------
    folder : str or pathlib.Path
        An existing folder (falls back to 255 when it does not exist or does not say).

    Returns
    -------
    int
        The limit in bytes.
    """
    try:
        value = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX
    return int(value) if value and value > 0 else DEFAULT_NAME_MAX


def display_name(path: str | Path) -> str:
    """A file name as it can be shown on any terminal (undecodable bytes as ``\\xNN``).

    Parameters
    ----------
    path : str or pathlib.Path
        The name.

    Returns
    -------
    str
        Printable ASCII-safe text for messages.
    """
    text = str(path)
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("ascii", "backslashreplace").decode("ascii")
    shown = raw.decode("utf-8", "backslashreplace")
    return shown if shown.isprintable() else shown.encode("unicode_escape").decode("ascii")


def check_name(path: str | Path, what: str = "the output") -> Path:
    """Refuse a file name that is empty, cannot be encoded, or is too long.

    Parameters
    ----------
    path : str or pathlib.Path
        The name as given.
    what : str
        What it is, for the message (e.g. ``"-o/--out"``).

    Returns
    -------
    pathlib.Path
        The path.
    """
    text = str(path)
    if text.strip() == "":
        raise OutputFileError(f"{what} is empty; give a file name such as result.csv")
    encoding = sys.getfilesystemencoding()
    try:
        raw = text.encode(encoding)  # strict: no surrogate-escaped (undecodable) bytes
    except UnicodeEncodeError:
        raise OutputFileError(
            f"{what} {display_name(text)!r} cannot be written under this locale's file-name "
            f"encoding ({encoding}); use an ASCII name or a UTF-8 locale (e.g. LC_ALL=C.UTF-8)"
        ) from None
    p = Path(text)
    if p.name in ("", ".", "..") or text.endswith(("/", os.sep)):
        raise OutputFileError(f"{display_name(text)} is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    limit = name_max(_existing_ancestor(parent))
    size = len(os.fsencode(p.name))
    if size > limit:
        raise OutputFileError(
            f"{what}: the file name {display_name(p.name)[:40]}... is {size} bytes long; this "
            f"file system allows at most {limit}: choose a shorter name"
        )
    if len(raw) > DEFAULT_PATH_MAX - 1:
        raise OutputFileError(
            f"{what}: the path is {len(raw)} bytes long, more than the {DEFAULT_PATH_MAX - 1} "
            "the system allows; choose a shorter path"
        )
    return p


def _existing_ancestor(folder: Path) -> Path:
    p = folder
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def temp_prefix(path: str | Path, suffix: str = ".tmp") -> str:
    """Prefix for a temporary file next to ``path`` whose full name fits the name limit.

    The name is ``.<name>.<random><suffix>``; when that would be too long, the target's name
    is cut and a hash of it keeps different targets apart.

    Parameters
    ----------
    path : str or pathlib.Path
        The target.
    suffix : str
        Suffix of the temporary file.

    Returns
    -------
    str
        The prefix to give :func:`tempfile.mkstemp`.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    limit = name_max(_existing_ancestor(parent))
    prefix = f".{p.name}."
    room = limit - _RANDOM - len(os.fsencode(suffix))
    if len(os.fsencode(prefix)) <= room:
        return prefix
    digest = hashlib.sha256(os.fsencode(p.name)).hexdigest()[:12]
    keep = os.fsencode(p.name)[: max(0, room - len(digest) - 3)]
    return "." + keep.decode("utf-8", "ignore") + "~" + digest + "."


def regular_or_absent(path: str | Path) -> bool:
    """True when ``path`` does not exist or is a regular file (symbolic links followed).

    Parameters
    ----------
    path : str or pathlib.Path
        The path.

    Returns
    -------
    bool
        Whether fiberscope may write there.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return True
    except OSError:
        return True  # a dangling link or an unreadable path: the write itself will say
    return stat.S_ISREG(mode)


def _kind(path: str | Path) -> str:
    mode = os.stat(path).st_mode
    for test, name in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def refuse_special(path: str | Path) -> None:
    """Raise :class:`OutputFileError` when ``path`` exists and is not a regular file.

    Parameters
    ----------
    path : str or pathlib.Path
        The target.
    """
    if not regular_or_absent(path):
        raise OutputFileError(
            f"{display_name(path)} exists and is {_kind(path)}; fiberscope writes only regular "
            "files (even with --force): choose another name"
        )


def check_folder(path: str | Path) -> Path:
    """Refuse a destination whose folder is missing, is a file, or cannot be written.

    Parameters
    ----------
    path : str or pathlib.Path
        The destination file.

    Returns
    -------
    pathlib.Path
        Its folder.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputFileError(
            f"cannot write {display_name(p)}: folder {display_name(parent)} does not exist"
        )
    if not parent.is_dir():
        raise OutputFileError(
            f"cannot write {display_name(p)}: {display_name(parent)} is a file, not a folder"
        )
    why = unwritable(parent, p.name)
    if why is not None:
        raise OutputFileError(
            f"cannot write {display_name(p)}: folder {display_name(parent)} is not writable ({why})"
        )
    return parent


def unwritable(folder: str | Path, name: str = "probe") -> str | None:
    """Why a file cannot be created in ``folder`` (None when it can), found by trying.

    ``os.access`` says yes to root on read-only mounts and in /sys, and a run that finds out
    only when it saves has lost its work; so a temporary file is created and removed.

    Parameters
    ----------
    folder : str or pathlib.Path
        An existing folder.
    name : str
        The name the real file will have (the probe's name is built from it).

    Returns
    -------
    str or None
        The system's reason, e.g. ``"Read-only file system"``.
    """
    try:
        fd, probe = tempfile.mkstemp(
            prefix=temp_prefix(Path(folder) / name, ".probe"), suffix=".probe", dir=folder
        )
    except OSError as exc:
        return str(exc.strerror or exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


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
    p = check_name(path)
    if p.is_dir():
        raise OutputFileError(f"{display_name(p)} is a directory; give a file name")
    refuse_special(p)
    if p.exists() and not force:
        raise OutputFileError(f"{display_name(p)} already exists; use --force to overwrite it")
    check_folder(p)
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
        Final destination (must not be an existing non-regular file).
    mode : str
        ``"w"`` (text) or ``"wb"`` (binary).

    Yields
    ------
    file object
        The temporary file; if the block raises, it is deleted and ``path`` is untouched.

    Raises
    ------
    OutputFileError
        When the destination is not a regular file, or the file system refuses the write
        (full disk, quota, read-only mount): the message names the file and the reason.
    """
    p = Path(path)
    refuse_special(p)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(p), suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputFileError(f"cannot write {display_name(p)}: {exc.strerror or exc}") from None
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
        refuse_special(p)  # something appeared there while we wrote
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputFileError(f"cannot write {display_name(p)}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
