"""Reading untrusted model files: nothing in a user's file may run.

Four mechanisms, used by every loader in :mod:`fiberscope.models.loaders`:

* :func:`read_regular_file` opens a path without blocking (``O_NONBLOCK``) and refuses
  anything that is not a regular file (a named pipe, a device, a socket, a directory), so a
  FIFO named ``model.onnx`` cannot hang the program.
* :func:`open_zip` verifies a zip archive against *both* of its indexes: every entry of the
  central directory must match its local header (name, compression), no two entries may have
  the same name after normalisation, no two entries' bytes may overlap, nothing may precede
  the first entry, and every entry must pass its checksum. Python's ``zipfile`` and torch's
  reader (miniz) then see the same files.
* :func:`scan_pickle` reads a pickle's opcodes *without unpickling it*: the globals it names
  and the tensor storages it refers to (persistent ids), and it insists that the pickle is
  well formed and fills its entry exactly.
* :func:`no_unpickling` is a scoped guard around every library call that parses a user's
  file. Inside it, in the calling thread, ``torch.load`` without ``weights_only=True``,
  ``pickle.load``/``pickle.loads``/``pickle.Unpickler``, torch's C++ object unpickler
  (``torch._C._pickle_load_obj``), ``sympy.sympify`` of a string that is not a plain
  shape expression, and ``importlib.import_module`` of a module that is neither imported
  already nor part of torch (torch's pytree decoder imports modules named in the file)
  raise :class:`~fiberscope.errors.UnsafeModelError`. A refusal is
  remembered, so a library that catches the exception and tries another way (as
  ``torch.export.load`` does) still ends in the error when the guard closes.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import pickle
import pickletools
import re
import stat
import struct
import threading
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, UnsafeModelError

#: Files larger than this are refused before they are read (bytes).
MAX_MODEL_BYTES = 8 * 2**30


# --------------------------------------------------------------------------- regular files
def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def describe_mode(mode: int) -> str:
    """A few words for what a ``st_mode`` is ("a named pipe (FIFO)", ...)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular_file(path: Path | str, what: str = "model file") -> None:
    """Refuse a path that exists but is not a regular file, without opening it.

    Parameters
    ----------
    path : pathlib.Path or str
        The path (symbolic links are followed).
    what : str
        What the file is meant to be, for the message.

    Raises
    ------
    ModelLoadError
        If the path is a named pipe, a device, a socket or a directory.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the caller's own message says so
    if not stat.S_ISREG(mode):
        raise ModelLoadError(
            f"{path} is {describe_mode(mode)}, not a regular file; {_a(what)} must be a "
            "regular file"
        )


def read_regular_file(
    path: Path | str,
    what: str = "model file",
    *,
    limit: int = MAX_MODEL_BYTES,
) -> bytes:
    """Read a whole regular file, refusing pipes, devices, sockets, directories and huge files.

    The file is opened with ``O_NONBLOCK`` (opening a FIFO then returns at once instead of
    waiting for a writer) and checked with ``fstat`` on the open descriptor, so what is read
    is what was checked.

    Parameters
    ----------
    path : pathlib.Path or str
        The file.
    what : str
        What the file is meant to be, for messages ("model file", "Python file", ...).
    limit : int
        Largest size accepted, in bytes.

    Returns
    -------
    bytes
        The contents.

    Raises
    ------
    ModelLoadError
        If the file is missing, unreadable, not a regular file or larger than ``limit``.
    """
    check_regular_file(path, what)  # before opening: opening some devices has effects
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelLoadError(
                f"{path} is {describe_mode(info.st_mode)}, not a regular file; {_a(what)} "
                "must be a regular file"
            )
        if info.st_size > limit:
            raise ModelLoadError(
                f"{Path(path).name} is {info.st_size / 2**30:.1f} GiB; fiberscope reads "
                f"{what}s of at most {limit / 2**30:.0f} GiB"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read()  # one allocation: the size is known from fstat
        if len(data) > limit:  # the file grew while it was read
            raise ModelLoadError(f"{Path(path).name} changed size while it was read")
        return data
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- zip archives
@dataclass(frozen=True)
class ZipEntry:
    """One verified entry of a zip archive.

    Attributes
    ----------
    name : str
        The name, as both the central directory and the local header give it.
    start, end : int
        Byte range of the entry in the archive: local header through compressed data.
    size : int
        Uncompressed size.
    """

    name: str
    start: int
    end: int
    size: int


def normalise_entry_name(name: str) -> str:
    """The name two zip readers could take to be the same file (for the duplicate check)."""
    text = unicodedata.normalize("NFC", name).replace("\\", "/").casefold()
    parts = [p for p in text.split("/") if p not in ("", ".")]
    return "/".join(parts)


def _zip_end_records(data: bytes, label: str) -> tuple[int, int, int]:
    """(central directory offset, number of entries, where the end records begin)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if end < 0 or end + 22 + int.from_bytes(data[end + 20 : end + 22], "little") != len(data):
        raise ModelLoadError(
            f"{label} is a truncated or corrupt zip archive (its end record is missing)"
        )
    disk, cd_disk, n_here, n_total, cd_size, cd_offset = struct.unpack(
        "<HHHHII", data[end + 4 : end + 20]
    )
    records_start = end
    loc = end - 20
    has_locator = loc >= 0 and data[loc : loc + 4] == b"PK\x06\x07"
    if has_locator or cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF or n_total == 0xFFFF:
        if not has_locator:
            raise ModelLoadError(f"{label} is a corrupt zip64 archive (no zip64 locator)")
        (z64,) = struct.unpack("<Q", data[loc + 8 : loc + 16])
        if z64 + 56 > loc or data[z64 : z64 + 4] != b"PK\x06\x06":
            raise ModelLoadError(f"{label} is a corrupt zip64 archive (bad zip64 end record)")
        (record_size,) = struct.unpack("<Q", data[z64 + 4 : z64 + 12])
        if z64 + 12 + record_size != loc:
            raise UnsafeModelError(
                f"{label}: bytes hidden between the zip64 end records; refusing an ambiguous "
                "archive"
            )
        n64_here, n64_total, cd64_size, cd64_offset = struct.unpack(
            "<QQQQ", data[z64 + 24 : z64 + 56]
        )
        for classic, wide, sentinel in (
            (n_total, n64_total, 0xFFFF),
            (cd_size, cd64_size, 0xFFFFFFFF),
            (cd_offset, cd64_offset, 0xFFFFFFFF),
        ):
            if classic not in (sentinel, wide):
                raise UnsafeModelError(
                    f"{label}: its zip and zip64 end records disagree; refusing an ambiguous "
                    "archive"
                )
        cd_size, cd_offset, n_here, n_total = cd64_size, cd64_offset, n64_here, n64_total
        records_start = z64
    if disk or cd_disk or n_here != n_total:
        raise ModelLoadError(f"{label} is a multi-part zip archive, which is not supported")
    if cd_offset + cd_size != records_start:
        raise UnsafeModelError(
            f"{label}: the zip central directory does not end where the end record says "
            "(bytes hidden between them); refusing an ambiguous archive"
        )
    return cd_offset, n_total, records_start


def open_zip(data: bytes, label: str) -> tuple[zipfile.ZipFile, list[ZipEntry]]:
    """Open a zip archive and verify that every reader sees the same, intact entries.

    Parameters
    ----------
    data : bytes
        The archive.
    label : str
        Its name in messages (a file name, or ``"m.pt2: data/sample_inputs/model.pt"``).

    Returns
    -------
    (zipfile.ZipFile, list of ZipEntry)
        The open archive and its entries in central-directory order.

    Raises
    ------
    UnsafeModelError
        For duplicate or aliasing entries (same name after normalisation, local and central
        names that differ, overlapping data), data before the first entry, encrypted
        entries, unsafe names, or a possible zip bomb.
    ModelLoadError
        For a truncated or corrupt archive.
    """
    cd_offset, count, _records = _zip_end_records(data, label)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, NotImplementedError("zip file version"), ...
        raise ModelLoadError(
            f"{label} is a truncated or corrupt zip archive ({type(exc).__name__}: {exc})"
        ) from None
    infos = zf.infolist()
    if not infos:
        raise ModelLoadError(f"{label} is an empty zip archive")
    if len(infos) != count:
        raise ModelLoadError(
            f"{label} is a corrupt zip archive (its central directory lists {len(infos)} "
            f"entries, its end record {count})"
        )
    if zf.start_dir != cd_offset:
        raise UnsafeModelError(
            f"{label} has data in front of its zip entries; refusing an ambiguous archive"
        )
    declared = sum(i.file_size for i in infos)
    if declared > 64 * len(data) + 2**20:
        raise UnsafeModelError(
            f"{label} declares {declared / 2**20:.0f} MiB of content in a "
            f"{len(data) / 2**10:.0f} KiB archive; refusing a possible zip bomb"
        )
    seen: dict[str, str] = {}
    entries: list[ZipEntry] = []
    for info in infos:
        name = info.filename
        if (
            name.startswith(("/", "\\"))
            or ".." in re.split(r"[/\\]", name)
            or any(ord(c) < 32 or c == "\\" for c in name)
            or re.match(r"^[A-Za-z]:", name)
        ):
            raise UnsafeModelError(f"{label} contains an entry with an unsafe path {name!r}")
        key = normalise_entry_name(name)
        if key in seen:
            raise UnsafeModelError(
                f"{label} contains the entry {name!r} twice"
                + ("" if seen[key] == name else f" (also as {seen[key]!r})")
                + "; zip readers disagree on which one counts, so fiberscope refuses it"
            )
        seen[key] = name
        if info.flag_bits & 0x1:
            raise UnsafeModelError(f"{label}: entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelLoadError(
                f"{label}: entry {name!r} uses an unsupported compression ({info.compress_type})"
            )
        at = info.header_offset
        if at + 30 > cd_offset or data[at : at + 4] != b"PK\x03\x04":
            raise ModelLoadError(f"{label}: entry {name!r} has no local header where it should")
        flags, method = struct.unpack("<HH", data[at + 6 : at + 10])
        name_len, extra_len = struct.unpack("<HH", data[at + 26 : at + 30])
        raw_name = data[at + 30 : at + 30 + name_len]
        central_raw = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if raw_name != central_raw:
            raise UnsafeModelError(
                f"{label}: entry {name!r} is called {raw_name[:60]!r} in its local header; "
                "refusing an archive whose two indexes disagree"
            )
        if method != info.compress_type or (flags & 0x1):
            raise UnsafeModelError(
                f"{label}: entry {name!r} has a local header that disagrees with the central "
                "directory"
            )
        data_start = at + 30 + name_len + extra_len
        data_end = data_start + info.compress_size
        if data_end > cd_offset:
            raise ModelLoadError(f"{label}: entry {name!r} runs past the end of the archive")
        entries.append(ZipEntry(name, at, data_end, info.file_size))
    ordered = sorted(entries, key=lambda e: e.start)
    if ordered[0].start != 0:
        raise UnsafeModelError(
            f"{label} has data in front of its first zip entry; refusing an ambiguous archive"
        )
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.start < before.end:
            raise UnsafeModelError(
                f"{label}: entries {before.name!r} and {after.name!r} overlap; refusing an "
                "archive whose entries alias each other"
            )
    try:
        bad = zf.testzip()
    except Exception as exc:  # zlib errors, unsupported compression, EOF
        raise ModelLoadError(f"{label} is a corrupt zip archive ({exc})") from None
    if bad is not None:
        raise ModelLoadError(f"{label} is corrupt: member {bad} fails its checksum")
    return zf, entries


def single_root(names: list[str], label: str) -> str:
    """The one top-level folder every entry of a torch archive lies in."""
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        raise ModelLoadError(f"{label}: not a torch archive (its entries are not in one folder)")
    return roots.pop()


# --------------------------------------------------------------------------- pickles
@dataclass
class PickleScan:
    """What a pickle refers to, read from its opcodes without unpickling it.

    Attributes
    ----------
    globals : list of str
        ``module.name`` of every global it names, in order.
    storages : list of tuple
        ``(key, storage type, numel)`` for every tensor storage it loads (torch's persistent
        ids ``('storage', torch.DoubleStorage, '0', 'cpu', 12)``).
    """

    globals: list[str] = field(default_factory=list)
    storages: list[tuple[str, str, int]] = field(default_factory=list)


class _Global(str):
    """A global named by a pickle (a distinct type so it is not taken for a string)."""


class _Opaque:
    """Any value the scan does not follow."""


_OPAQUE = _Opaque()
_VALUE_OPS = {
    "NONE": None,
    "NEWTRUE": True,
    "NEWFALSE": False,
}


def scan_pickle(blob: bytes) -> PickleScan:
    """Read a pickle's globals and storage references from its opcodes, never unpickling.

    Parameters
    ----------
    blob : bytes
        One pickle, which must fill ``blob`` exactly.

    Returns
    -------
    PickleScan
        Globals and storages.

    Raises
    ------
    ValueError
        If the opcode stream is malformed, does not end at the end of ``blob``, or its stack
        does not add up.
    """
    scan = PickleScan()
    stack: list[Any] = []
    marks: list[list[Any]] = []
    memo: dict[Any, Any] = {}
    end = -1
    try:
        for op, arg, pos in pickletools.genops(blob):
            name = op.name
            if name == "STOP":
                end = pos + 1
                break
            if name == "MARK":
                marks.append(stack)
                stack = []
            elif name in ("GLOBAL", "INST"):
                ref = _Global(str(arg).replace(" ", "."))
                scan.globals.append(ref)
                if name == "INST":
                    stack = marks.pop()
                    stack.append(_OPAQUE)
                else:
                    stack.append(ref)
            elif name == "STACK_GLOBAL":
                attr, mod = stack.pop(), stack.pop()
                ref = _Global(f"{mod}.{attr}")
                scan.globals.append(ref)
                stack.append(ref)
            elif name in _VALUE_OPS:
                stack.append(_VALUE_OPS[name])
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif op.stack_before == [] and len(op.stack_after) == 1 and op.arg is not None:
                stack.append(arg)  # ints, floats, strings, bytes
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                if len(stack) < k:
                    raise ValueError("stack underflow")
                items = tuple(stack[-k:])
                del stack[-k:]
                stack.append(items)
            elif name == "TUPLE":
                items = tuple(stack)
                stack = marks.pop()
                stack.append(items)
            elif name in ("BINPERSID", "PERSID"):
                pid = stack.pop() if name == "BINPERSID" else str(arg)
                if (
                    isinstance(pid, tuple)
                    and len(pid) == 5
                    and pid[0] == "storage"
                    and isinstance(pid[1], _Global)
                    and isinstance(pid[2], str)
                    and isinstance(pid[4], int)
                ):
                    scan.storages.append((pid[2], str(pid[1]), pid[4]))
                else:
                    scan.storages.append(("?", repr(pid)[:60], -1))
                stack.append(_OPAQUE)
            elif name == "DUP":
                stack.append(stack[-1])
            else:
                before = op.stack_before
                if pickletools.markobject in before:
                    stack = marks.pop()
                    plain = before.index(pickletools.markobject)
                else:
                    plain = len(before)
                if len(stack) < plain:
                    raise ValueError("stack underflow")
                if plain:
                    del stack[-plain:]
                stack.extend(_OPAQUE for _ in op.stack_after)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"malformed pickle ({exc})") from None
    except Exception as exc:  # pickletools raises what it likes on garbage
        raise ValueError(f"malformed pickle ({type(exc).__name__})") from None
    if end < 0:
        raise ValueError("malformed pickle (no STOP opcode)")
    if end != len(blob):
        raise ValueError(f"{len(blob) - end} bytes follow the end of the pickle")
    return scan


def looks_like_pickle(blob: bytes) -> bool:
    """Whether ``blob`` parses as one complete pickle of any protocol (0 to 5)."""
    try:
        scan_pickle(blob)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- shape expressions
_SYMBOL = re.compile(r"[a-z]{1,8}\d{1,9}")
_EXPR_FUNCTIONS = frozenset(
    {
        # sympy
        "Symbol", "Integer", "Rational", "Float", "Eq", "Ne", "Lt", "Le", "Gt", "Ge",
        "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Equality",
        "Unequality", "And", "Or", "Not", "Max", "Min", "Abs", "Mod", "floor", "ceiling",
        "Piecewise", "sqrt", "Pow", "Mul", "Add", "ITE", "Sum",
        # torch.utils._sympy.functions (the names torch's deserializer defines)
        "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt",
        "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow",
        "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator", "TruncToFloat",
        "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
    }
)  # fmt: skip
_EXPR_NAMES = frozenset({"oo", "zoo", "nan", "int_oo", "true", "false", "pi", "E"})
_EXPR_KEYWORDS = frozenset(
    {
        "positive", "negative", "integer", "real", "nonnegative", "nonpositive", "nonzero",
        "zero", "finite", "infinite", "even", "odd", "rational", "commutative", "evaluate",
    }
)  # fmt: skip
_EXPR_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Tuple, ast.Load,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitAnd,
    ast.BitOr, ast.BitXor, ast.LShift, ast.RShift, ast.USub, ast.UAdd, ast.Not, ast.Invert,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or,
)  # fmt: skip


def check_shape_expression(text: str) -> None:
    """Refuse a symbolic shape expression that is more than arithmetic on symbols.

    torch's deserializer hands the expression strings of a ``.pt2`` archive to
    ``sympy.sympify``, which evaluates them as Python. Only what torch writes is allowed:
    numbers, symbols such as ``s0``, arithmetic and comparisons, and calls of a fixed list of
    sympy/torch shape functions with boolean assumptions (``Symbol('s0', positive=True)``).

    Parameters
    ----------
    text : str
        The expression.

    Raises
    ------
    UnsafeModelError
        If it is anything else.
    """

    def refuse(why: str) -> UnsafeModelError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        return UnsafeModelError(
            f"the shape expression {shown!r} {why}; torch would evaluate it as Python, so "
            "fiberscope refuses the file"
        )

    if len(text) > 4000:
        raise refuse("is too long")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        raise refuse("is not an expression") from None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _EXPR_FUNCTIONS:
                raise refuse("calls something other than a shape function")
            for i, a in enumerate(node.args):
                if (
                    node.func.id == "Symbol"
                    and i == 0
                    and isinstance(a, ast.Constant)
                    and isinstance(a.value, str)
                ):
                    if not (_SYMBOL.fullmatch(a.value) or a.value in _EXPR_NAMES):
                        raise refuse("names an odd symbol")
                    continue
                visit(a)
            for kw in node.keywords:
                if kw.arg not in _EXPR_KEYWORDS or not (
                    isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, bool)
                ):
                    raise refuse("passes an unexpected argument")
            return
        if isinstance(node, ast.Name):
            if not (_SYMBOL.fullmatch(node.id) or node.id in _EXPR_NAMES):
                raise refuse(f"uses the name {node.id!r}")
            return
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool | int | float):
                return
            raise refuse("contains a string or bytes")
        if not isinstance(node, _EXPR_NODES):
            raise refuse(f"contains a {type(node).__name__}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)


# --------------------------------------------------------------------------- the guard
_local = threading.local()
_guard_lock = threading.Lock()
_guard_depth = 0
_patched: list[tuple[Any, str, Any, Any]] = []


def _active() -> str | None:
    return getattr(_local, "label", None)


def _refuse(what: str) -> UnsafeModelError:
    label = _active() or "the model file"
    err = UnsafeModelError(
        f"{label}: loading it would {what}, which can run arbitrary code; fiberscope refuses it"
    )
    if getattr(_local, "refusal", None) is None:
        _local.refusal = err
    return err


def _wrap_torch_load(original: Any) -> Any:
    def load(*args: Any, **kwargs: Any) -> Any:
        if _active() is not None and kwargs.get("weights_only") is not True:
            raise _refuse("unpickle part of it with torch.load(weights_only=False)")
        return original(*args, **kwargs)

    return load


def _wrap_refusing(original: Any, what: str) -> Any:
    def refusing(*args: Any, **kwargs: Any) -> Any:
        if _active() is not None:
            raise _refuse(what)
        return original(*args, **kwargs)

    return refusing


def _wrap_unpickler(original: type) -> type:
    class GuardedUnpickler(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if _active() is not None:
                raise _refuse("unpickle part of it with pickle.Unpickler")
            super().__init__(*args, **kwargs)

    GuardedUnpickler.__name__ = GuardedUnpickler.__qualname__ = original.__name__
    return GuardedUnpickler


def _wrap_sympify(original: Any) -> Any:
    def sympify(a: Any, *args: Any, **kwargs: Any) -> Any:
        if _active() is not None and isinstance(a, str):
            try:
                check_shape_expression(a)
            except UnsafeModelError as exc:
                if getattr(_local, "refusal", None) is None:
                    _local.refusal = UnsafeModelError(f"{_active()}: {exc}")
                raise _local.refusal from None
        return original(a, *args, **kwargs)

    return sympify


def _wrap_import_module(original: Any) -> Any:
    def import_module(name: str, package: str | None = None) -> Any:
        if _active() is not None:
            import importlib.util
            import sys

            try:
                absolute = importlib.util.resolve_name(name, package)
            except (ImportError, ValueError, TypeError):
                absolute = name
            torch_own = absolute == "torch" or absolute.startswith("torch.")
            if absolute not in sys.modules and not torch_own:
                raise _refuse(f"import the module {absolute[:80]!r}")
        return original(name, package)

    return import_module


def _patch_targets() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, wrapper factory) for everything the guard replaces."""
    import importlib

    import sympy
    import torch
    import torch.serialization

    targets: list[tuple[Any, str, Any]] = [
        (torch, "load", _wrap_torch_load),
        (torch.serialization, "load", _wrap_torch_load),
        (pickle, "load", lambda f: _wrap_refusing(f, "unpickle part of it with pickle.load")),
        (pickle, "loads", lambda f: _wrap_refusing(f, "unpickle part of it with pickle.loads")),
        (pickle, "Unpickler", _wrap_unpickler),
        (sympy, "sympify", _wrap_sympify),
        (importlib, "import_module", _wrap_import_module),
    ]
    if hasattr(torch._C, "_pickle_load_obj"):
        targets.append(
            (
                torch._C,
                "_pickle_load_obj",
                lambda f: _wrap_refusing(f, "unpickle a custom object"),
            )
        )
    return targets


def _install() -> None:
    for owner, attr, wrap in _patch_targets():
        original = getattr(owner, attr)
        wrapped = wrap(original)
        _patched.append((owner, attr, original, wrapped))
        setattr(owner, attr, wrapped)


def _uninstall() -> None:
    while _patched:
        owner, attr, original, wrapped = _patched.pop()
        if getattr(owner, attr, None) is wrapped:  # someone else replaced it since: keep theirs
            setattr(owner, attr, original)


@contextlib.contextmanager
def no_unpickling(label: str) -> Iterator[None]:
    """Make every full unpickling (and every ``sympify`` of code) raise, in this thread.

    The replacements are installed when the first guard opens and restored when the last
    one closes (a lock and a count keep concurrent guards consistent); other threads pass
    straight through to the originals. If the library under the guard catches the
    :class:`UnsafeModelError` and carries on, the refusal is raised again when the guard
    closes.

    Parameters
    ----------
    label : str
        The file's name, for messages.

    Yields
    ------
    None

    Raises
    ------
    UnsafeModelError
        If anything under the guard tried to unpickle with ``weights_only=False``, used
        ``pickle`` or torch's object unpickler, or evaluated a non-shape expression.
    """
    global _guard_depth
    with _guard_lock:
        if _guard_depth == 0:
            _install()
        _guard_depth += 1
    outer_label = getattr(_local, "label", None)
    outer_refusal = getattr(_local, "refusal", None)
    _local.label = label
    _local.refusal = None
    try:
        yield
        refusal = _local.refusal
        if refusal is not None:
            raise refusal
    except Exception:
        refusal = _local.refusal
        if refusal is not None:
            raise refusal from None
        raise
    finally:
        _local.label = outer_label
        _local.refusal = outer_refusal
        with _guard_lock:
            _guard_depth -= 1
            if _guard_depth == 0:
                _uninstall()


def guard_installed() -> bool:
    """Whether the replacements of :func:`no_unpickling` are in place (for tests)."""
    return bool(_patched)
