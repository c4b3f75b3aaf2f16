"""Start points read from files: NumPy arrays, torch tensors, images and text.

:func:`read_point` turns a file into a float64 NumPy array in the shape the file gives (an
image ``(C, H, W)``, a table ``(rows, cols)``, a vector ``(n,)``). Nothing in a file is ever
unpickled: ``.npy`` is read with ``allow_pickle=False`` and ``.pt`` with
``torch.load(weights_only=True)``. Every problem (a missing, unreadable or special file, a file
of another kind, content that is not numbers, NaN or inf) is one line naming the file and the
fix.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from ..errors import InputError
from .atomic import display_name

#: Suffixes :func:`read_point` reads, by kind.
POINT_SUFFIXES = {
    ".npy": "npy",
    ".pt": "torch",
    ".pth": "torch",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".txt": "text",
    ".csv": "text",
}
#: Largest start-point file read (bytes): a start point is one input, not a data set.
MAX_POINT_BYTES = 1 << 30
_SPLIT = re.compile(r"[,;\s]+")


def looks_like_point_file(text: str) -> bool:
    """Whether a ``--at`` value names a file rather than comma-separated numbers.

    Parameters
    ----------
    text : str
        The value as given.

    Returns
    -------
    bool
        False when it reads as numbers (``0.25,0.25``, ``1e-3;2``); otherwise True when it ends
        in a suffix of :data:`POINT_SUFFIXES`, contains a path separator, or names an existing
        path.
    """
    t = text.strip()
    if not t:
        return False
    try:
        [float(v) for v in t.replace(";", ",").split(",")]
        return False
    except ValueError:
        pass
    if Path(t).suffix.lower() in POINT_SUFFIXES or os.sep in t or "/" in t:
        return True
    return os.path.lexists(t)


class PointFileError(InputError):
    """A start-point file (or a dataset item file) cannot be read.

    Attributes
    ----------
    reason : str
        The problem without the file's name (``"the file is empty"``), for callers that name
        the file themselves (a dataset job names the item).
    """

    reason: str = ""


def _fail(path: Path, why: str) -> PointFileError:
    err = PointFileError(f"cannot read the start point {display_name(path)}: {why}")
    err.reason = why
    return err


def not_a_regular_file(path: str | Path) -> str | None:
    """Why ``path`` may not be opened as a file, without opening it (None when it may).

    Opening a named pipe blocks until another process writes to it, and a device can be
    endless, so readers check this before they open anything.

    Parameters
    ----------
    path : str or pathlib.Path
        The path (symbolic links are followed).

    Returns
    -------
    str or None
        ``"it is a folder; give a file"``, ``"it is not a regular file (a pipe, socket or
        device); give a file"``, or None for a regular file or a path that does not exist (the
        caller's own open reports that).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return "it is a folder; give a file"
    if not stat.S_ISREG(mode):
        return "it is not a regular file (a pipe, socket or device); give a file"
    return None


def _check_file(path: Path) -> None:
    """Refuse missing paths, folders, pipes, devices and huge files before opening them."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _fail(path, "the file does not exist") from None
    except OSError as exc:
        raise _fail(path, str(exc.strerror or exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, "it is a folder; give a file")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, "it is not a regular file (a pipe, socket or device); give a file")
    if st.st_size == 0:
        raise _fail(path, "the file is empty")
    if st.st_size > MAX_POINT_BYTES:
        raise _fail(
            path,
            f"the file is {st.st_size / 2**30:.1f} GiB, more than a start point can be "
            f"({MAX_POINT_BYTES / 2**30:.0f} GiB)",
        )
    if not os.access(path, os.R_OK):
        raise _fail(path, "permission denied")


def _numeric(path: Path, arr: Any, what: str) -> Any:
    """A float64 copy of a numeric array; refuse other dtypes, empty arrays and NaN/inf."""
    import numpy as np

    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise _fail(path, f"{what} holds {a.dtype} values; it must hold real numbers")
    if a.size == 0:
        raise _fail(path, f"{what} is empty")
    a = np.array(a, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        i = int(bad[0])
        raise _fail(
            path,
            f"it has a non-finite value ({a.reshape(-1)[i]} at flat index {i}); give finite "
            "numbers",
        )
    return a


def _read_npy(path: Path) -> Any:
    import numpy as np

    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _fail(
                path,
                "it holds Python objects, which are never unpickled; save a numeric array "
                "(np.save(path, np.asarray(x, dtype=float)))",
            ) from None
        raise _fail(path, "not a valid .npy file") from None
    except OSError as exc:
        raise _fail(path, f"not a valid .npy file ({exc.strerror or 'unreadable'})") from None
    if not isinstance(arr, np.ndarray):  # an .npz saved under a .npy name
        arr.close()
        raise _fail(path, "it is an .npz archive, not one array; save one array with np.save")
    return _numeric(path, arr, "the array")


def _read_torch(path: Path) -> Any:
    import pickle
    import zipfile

    import torch

    with path.open("rb") as fh:
        head = fh.read(1)
    if not zipfile.is_zipfile(path) and head != b"\x80":  # neither zip nor legacy pickle
        raise _fail(path, "not a valid torch file (torch.save of one tensor)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _fail(
            path,
            "it needs unpickling Python objects, which fiberscope never does; save one tensor "
            "(torch.save(x, path))",
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError):
        raise _fail(path, "not a valid torch file (torch.save of one tensor)") from None
    if not isinstance(obj, torch.Tensor):
        raise _fail(
            path, f"it holds a {type(obj).__name__}, not one tensor; save the start as one tensor"
        )
    if obj.is_complex():
        raise _fail(path, "the tensor is complex; it must hold real numbers")
    if obj.layout != torch.strided:
        obj = obj.to_dense()
    return _numeric(path, obj.detach().to(torch.float64).numpy(), "the tensor")


def _read_image(path: Path) -> Any:
    import warnings

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                mode = img.mode
                if mode == "P":
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                    mode = img.mode
                if mode == "1":
                    img = img.convert("L")
                    mode = "L"
                arr = np.asarray(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _fail(path, "not an image Pillow can read (or too large to be one input)") from None
    except (OSError, SyntaxError, ValueError):
        raise _fail(path, "the image is truncated or corrupt") from None
    if mode in ("RGBA", "LA"):
        alpha = arr[..., -1]
        if int(alpha.min()) != int(np.iinfo(arr.dtype).max):
            raise _fail(
                path,
                "the image has transparent pixels; save it as grayscale or RGB without an "
                "alpha channel",
            )
        arr = arr[..., :-1]
    elif mode not in ("L", "RGB", "I;16", "I;16B", "I;16L", "I"):
        raise _fail(path, f"images in mode {mode} are not supported; save it as grayscale or RGB")
    if arr.dtype == np.uint8:
        scale = 255.0
    elif mode.startswith("I;16") or arr.dtype == np.uint16:
        scale = 65535.0
    else:  # 32-bit integer grayscale: scale by its own type
        scale = float(np.iinfo(arr.dtype).max)
    a = np.asarray(arr, dtype=np.float64) / scale
    if a.ndim == 2:
        a = a[None]
    else:
        a = np.moveaxis(a, -1, 0)
    return _numeric(path, a, "the image")


def _read_text(path: Path) -> Any:
    import numpy as np

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(path, "it is not text (UTF-8); write the numbers as text") from None
    except OSError as exc:
        raise _fail(path, str(exc.strerror or exc)) from None
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        values = []
        for token in _SPLIT.split(body):
            if token == "":
                continue
            try:
                values.append(float(token))
            except ValueError:
                raise _fail(
                    path, f"{token[:30]!r} on line {lineno} is not a number; give numbers only"
                ) from None
        rows.append(values)
    if not rows:
        raise _fail(path, "it holds no numbers")
    widths = {len(r) for r in rows}
    if len(rows) == 1 or widths == {1}:
        a = np.asarray([v for r in rows for v in r], dtype=np.float64)
    elif len(widths) == 1:
        a = np.asarray(rows, dtype=np.float64)
    else:
        raise _fail(
            path,
            f"its rows have different lengths ({min(widths)} to {max(widths)} numbers); give "
            "one number per line, one row, or a rectangular table",
        )
    return _numeric(path, a, "the table")


def read_point(path: str | Path) -> Any:
    """Read a start point from a file.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.npy`` (read with ``allow_pickle=False``), ``.pt``/``.pth`` (one tensor, read with
        ``torch.load(weights_only=True)``), ``.png``/``.jpg``/``.jpeg`` (grayscale or RGB,
        scaled to ``[0, 1]``, returned as ``(C, H, W)``), ``.txt``/``.csv`` (numbers separated
        by commas, semicolons or white space; one row or column gives a vector, a rectangular
        table keeps its shape; ``#`` starts a comment).

    Returns
    -------
    numpy.ndarray
        float64, finite, in the file's shape.

    Raises
    ------
    PointFileError
        (an :class:`~fiberscope.errors.InputError`) A missing, unreadable, empty or non-regular
        file; an unknown suffix; content that is not one numeric array (pickled objects, a
        dict, text that is not numbers); NaN or inf.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fiberscope.io.inputs import read_point
    >>> p = os.path.join(tempfile.mkdtemp(), "x0.npy")
    >>> np.save(p, np.array([0.25, 0.5]))
    >>> read_point(p)
    array([0.25, 0.5 ])
    """
    p = Path(path)
    _check_file(p)
    kind = POINT_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(set(POINT_SUFFIXES)))
        raise _fail(p, f"unknown file type {p.suffix or '(no suffix)'!r}; use one of {known}")
    reader = {"npy": _read_npy, "torch": _read_torch, "image": _read_image, "text": _read_text}
    return reader[kind](p)


__all__ = [
    "MAX_POINT_BYTES",
    "POINT_SUFFIXES",
    "PointFileError",
    "looks_like_point_file",
    "not_a_regular_file",
    "read_point",
]
