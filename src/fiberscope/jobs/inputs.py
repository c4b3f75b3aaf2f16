"""The inputs of a dataset job: a folder of ``.npy``/``.png`` files, one ``.npy`` array, or an
array in memory.

Items are listed on the driver when the job starts (names and shapes only, from the file
headers) and read one at a time when they are handed to a worker, so a file that is missing
or unreadable in the middle of a dataset fails that item alone, with a one-line reason.

- ``.npy``: read with ``allow_pickle=False`` (object arrays are refused); values are taken as
  they are (cast to float64).
- ``.png``: grayscale becomes ``(1, H, W)``, colour ``(3, H, W)`` (channels first, as torch
  models take images; an opaque alpha channel is dropped, transparent pixels are refused);
  8-bit values are divided by 255 and 16-bit by 65535, so pixels lie in ``[0, 1]``.
- one ``.npy`` array ``(N, *shape)``: item ``i`` is row ``i`` (memory-mapped, not loaded whole).

Item files are read by :func:`fiberscope.io.inputs.read_point`, the reader of ``--at`` files
(the same checks: regular files only, no pickles, no transparent pixels, no NaN or inf).
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.inputs import PointFileError, not_a_regular_file, read_point

#: Suffixes of item files in an input folder.
ITEM_SUFFIXES = (".npy", ".png")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: PNG colour types: number of channels kept (alpha dropped).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 1, 6: 3}


class ItemReadError(Exception):
    """One item cannot be read (its message is one line, without the item's name)."""


@dataclass(frozen=True)
class Item:
    """One input of a dataset job.

    Attributes
    ----------
    index : int
        Position in the dataset (0-based); seeds and file names derive from it.
    key : str
        What the user calls it: the file name, or ``row 5`` of an array.
    shape : tuple of int or None
        Shape read from the header (None when the header could not be read).
    problem : str or None
        Why the item cannot be used (read from its header), or None.
    """

    index: int
    key: str
    shape: tuple[int, ...] | None
    problem: str | None = None


@dataclass
class InputSet:
    """The items of a job and how to read them.

    Attributes
    ----------
    source : str
        The folder or file (absolute), or ``"<array>"``.
    kind : {"folder", "array-file", "array"}
        Where items come from.
    items : list of Item
        In order.
    shape : tuple of int
        The item shape every item must have.
    ignored : int
        Files in the folder that are not items (other suffixes).
    """

    source: str
    kind: str
    items: list[Item]
    shape: tuple[int, ...]
    ignored: int = 0
    _array: Any = field(default=None, repr=False)
    _folder: Path | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    def read(self, index: int) -> np.ndarray:
        """The item ``index`` as a float64 array of :attr:`shape`.

        Parameters
        ----------
        index : int
            Item index.

        Returns
        -------
        numpy.ndarray
            The input.

        Raises
        ------
        ItemReadError
            The file is missing, unreadable, or the item has another shape.
        """
        item = self.items[index]
        if item.problem is not None:
            raise ItemReadError(item.problem)
        if self.kind == "folder":
            assert self._folder is not None
            x = read_file(self._folder / item.key)
        else:
            x = np.asarray(self._array[index])
        x = _as_float(x)
        if tuple(x.shape) != self.shape:
            raise ItemReadError(_shape_problem(tuple(x.shape), self.shape))
        return x

    def digest(self, index: int) -> str | None:
        """SHA-256 of item ``index``'s file (folders only; None for arrays, whose data the
        job's identity covers whole, and for files that cannot be read).

        A store records it with each finished item, so that an item whose file changed since
        is run again instead of being kept as the result of other data.
        """
        if self.kind != "folder" or self._folder is None:
            return None
        path = self._folder / self.items[index].key
        if not_a_regular_file(path) is not None:
            return None
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return None
        return digest.hexdigest()

    def identity(self) -> dict[str, Any]:
        """What identifies these inputs in a store's manifest (a resume must match it)."""
        keys = hashlib.sha256("\n".join(i.key for i in self.items).encode()).hexdigest()
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "count": len(self.items),
            "shape": list(self.shape),
            "keys_sha256": keys,
        }
        if self.kind == "array":
            out["data_sha256"] = hashlib.sha256(
                np.ascontiguousarray(self._array, dtype=np.float64).tobytes()
            ).hexdigest()
        elif self.kind == "array-file":
            digest = hashlib.sha256()
            with open(self.source, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            out["data_sha256"] = digest.hexdigest()
        return out


def _shape_problem(got: tuple[int, ...], want: tuple[int, ...]) -> str:
    return (
        f"shape {_fmt(got)} differs from the other items' {_fmt(want)}; give every item the "
        "same shape (or set shape in the job)"
    )


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _as_float(x: np.ndarray) -> np.ndarray:
    if x.dtype == object:
        raise ItemReadError("it holds Python objects, not numbers")
    if x.dtype.kind == "c":
        raise ItemReadError("it holds complex numbers; give real values")
    if x.dtype.kind not in "biuf":
        raise ItemReadError(f"it holds {x.dtype} values, not numbers")
    return np.array(x, dtype=np.float64)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def read_file(path: Path) -> np.ndarray:
    """Read one ``.npy`` or ``.png`` item file with :func:`fiberscope.io.inputs.read_point`.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    numpy.ndarray
        Its values, float64 (``.png``: in ``[0, 1]``, channels first).

    Raises
    ------
    ItemReadError
        Missing, not a regular file (a named pipe would block), unreadable, malformed, pickled
        objects, transparent pixels, NaN or inf.
    """
    try:
        return read_point(path)
    except PointFileError as exc:
        raise ItemReadError(exc.reason) from None


def _header_shape(path: Path) -> tuple[tuple[int, ...] | None, str | None]:
    """Shape of an item file from its header, or a problem."""
    why = not_a_regular_file(path)
    if why is not None:
        return None, why
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
            if path.suffix.lower() == ".png":
                if not head.startswith(_PNG_MAGIC) or head[12:16] != b"IHDR":
                    return None, "not a readable PNG image (bad signature)"
                width, height = struct.unpack(">II", head[16:24])
                channels = _PNG_CHANNELS.get(head[25])
                if channels is None:
                    return None, f"not a readable PNG image (colour type {head[25]})"
                return (channels, height, width), None
            fh.seek(0)
            try:
                version = np.lib.format.read_magic(fh)
                reader = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _fortran, dtype = reader(fh)
            except Exception as exc:
                return None, f"not a valid .npy file ({_one_line(exc)})"
            if dtype.hasobject:
                return None, (
                    "it holds Python objects (pickles are never loaded); save a numeric array"
                )
            return tuple(int(s) for s in shape), None
    except FileNotFoundError:
        return None, "the file does not exist (any more)"
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror or exc}"


def _majority(shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    counts = Counter(shapes)
    best = max(counts.values())
    return next(s for s in shapes if counts[s] == best)


def _parse_shape(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be a list of positive integers, got {shape!r}") from None
    if not out or any(s < 1 for s in out):
        raise InputError(f"shape must be a list of positive integers, got {shape!r}")
    return out


def open_inputs(inputs: Any, *, shape: Any = None) -> InputSet:
    """List the items of ``inputs``.

    Parameters
    ----------
    inputs : str, pathlib.Path, numpy.ndarray, torch.Tensor or sequence of arrays
        A folder of ``.npy``/``.png`` files (sorted by name), one ``.npy`` file holding an array
        ``(N, *shape)``, or the items in memory (``(N, *shape)`` or a list of arrays).
    shape : sequence of int, optional
        The shape every item must have (default: the most common shape among the items).

    Returns
    -------
    InputSet
        The items.

    Raises
    ------
    InputError
        The path does not exist, holds no items, or the array is not numeric.
    """
    want = _parse_shape(shape)
    if isinstance(inputs, (str, Path)):
        path = Path(inputs).expanduser()
        if not path.exists():
            raise InputError(
                f"the inputs {path} do not exist; give a folder of .npy/.png files or one .npy "
                "array (N, *shape)"
            )
        path = path.resolve()
        if path.is_dir():
            return _open_folder(path, want)
        if not_a_regular_file(path) is not None:  # a named pipe would block, a device is endless
            raise InputError(
                f"the inputs {path.name} are not a regular file or folder (a pipe, socket or "
                "device); give a folder of .npy/.png files or one .npy array (N, *shape)"
            )
        if path.suffix.lower() != ".npy":
            raise InputError(
                f"the inputs {path.name} are neither a folder nor a .npy file; give a folder of "
                ".npy/.png files or one .npy array (N, *shape)"
            )
        return _open_array_file(path, want)
    return _open_memory(inputs, want)


def _open_folder(path: Path, want: tuple[int, ...] | None) -> InputSet:
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise InputError(f"cannot list the inputs folder {path}: {exc.strerror or exc}") from None
    files = [p for p in entries if p.suffix.lower() in ITEM_SUFFIXES]
    if not files:
        raise InputError(
            f"the inputs folder {path} holds no .npy or .png files; put one file per item there"
        )
    shapes: list[tuple[int, ...] | None] = []
    problems: list[str | None] = []
    for p in files:
        s, why = _header_shape(p)
        shapes.append(s)
        problems.append(why)
    known = [s for s in shapes if s is not None]
    target = want or (_majority(known) if known else None)
    if target is None:
        raise InputError(f"none of the {len(files)} files in {path} can be read as an item")
    items = []
    for i, (p, s, why) in enumerate(zip(files, shapes, problems, strict=True)):
        if why is None and s is not None and s != target:
            why = _shape_problem(s, target)
        items.append(Item(i, p.name, s, why))
    return InputSet(
        str(path), "folder", items, target, ignored=len(entries) - len(files), _folder=path
    )


def _open_array_file(path: Path, want: tuple[int, ...] | None) -> InputSet:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise InputError(
                f"{path.name} holds Python objects (pickles are never loaded); save a numeric "
                "array (N, *shape)"
            ) from None
        raise InputError(f"{path.name} is not a valid .npy file ({_one_line(exc)})") from None
    except OSError as exc:
        raise InputError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise InputError(f"{path.name} is not a valid .npy file ({_one_line(exc)})") from None
    return _from_array(arr, want, str(path), "array-file", f"{path.name}")


def _open_memory(inputs: Any, want: tuple[int, ...] | None) -> InputSet:
    if hasattr(inputs, "detach"):  # a torch tensor
        inputs = inputs.detach().cpu().numpy()
    if isinstance(inputs, np.ndarray):
        arr = inputs
    else:
        try:
            rows = [np.asarray(r.detach().cpu() if hasattr(r, "detach") else r) for r in inputs]
        except TypeError:
            raise InputError(
                f"inputs must be a folder, a .npy file or an array (N, *shape), got "
                f"{type(inputs).__name__}"
            ) from None
        if not rows:
            raise InputError("inputs is empty: give at least one item")
        if len({r.shape for r in rows}) > 1:
            shapes = sorted({_fmt(r.shape) for r in rows})
            raise InputError(
                f"the items have different shapes ({', '.join(shapes[:3])}); give every item "
                "the same shape"
            )
        arr = np.stack(rows)
    return _from_array(arr, want, "<array>", "array", "the inputs")


def _from_array(
    arr: np.ndarray, want: tuple[int, ...] | None, source: str, kind: str, what: str
) -> InputSet:
    if arr.dtype.hasobject or arr.dtype.kind not in "biuf":
        raise InputError(f"{what} hold {arr.dtype} values; give a numeric array (N, *shape)")
    if arr.ndim < 2:
        raise InputError(
            f"{what} have shape {_fmt(arr.shape)}: give an array (N, *shape) with one item per "
            "row (a single point is (1, n))"
        )
    if arr.shape[0] == 0:
        raise InputError(f"{what} hold no items (shape {_fmt(arr.shape)})")
    shape = tuple(int(s) for s in arr.shape[1:])
    if want is not None and want != shape:
        raise InputError(
            f"{what} have items of shape {_fmt(shape)} but the job asks for shape {_fmt(want)}"
        )
    if kind == "array":
        arr = np.array(arr, dtype=np.float64)
    items = [Item(i, f"row {i}", shape) for i in range(arr.shape[0])]
    return InputSet(source, kind, items, shape, _array=arr)


__all__ = ["ITEM_SUFFIXES", "InputSet", "Item", "ItemReadError", "open_inputs", "read_file"]
