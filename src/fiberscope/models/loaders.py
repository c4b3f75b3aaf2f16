"""Model file formats beyond the paper's CSV: ONNX, torch.export, TorchScript, safetensors.

Every loader reads the file into memory once (regular files only), checks that the content is
what the suffix says, and only then hands the bytes to the library that parses them, so a
file cannot change between the check and the load. Nothing in a user's file runs:

* **ONNX** (``.onnx``): a protobuf graph, parsed by ``onnx`` and converted to a
  ``torch.fx.GraphModule`` by onnx2torch. External weight files must be regular files in the
  model's folder; fiberscope reads them itself.
* **torch.export** (``.pt2``): fiberscope reads the archive itself, entry by entry against a
  fixed layout: the graph is JSON (its names, operator targets and shape expressions are
  checked, then it goes to torch's own deserializer), the weights and constants are raw
  bytes turned into tensors here, the sample inputs load with ``weights_only=True``.
  Pickled weights, custom objects and AOTInductor code are refused. ``torch.export.load``
  (which falls back to full unpickling) is never called.
* **TorchScript** (``.pt``/``.ts``): every entry is checked (pickles may name only torch
  types and storages that exist with the right size); then ``torch.jit.load``, whose C++
  unpickler builds only tensors and TorchScript classes.
* **state dicts** (``.pt``/``.pth``/``.bin`` from ``torch.save(model.state_dict())``) and
  **safetensors**: weights only (``torch.load(weights_only=True)``); the architecture comes
  from ``arch=`` / ``--arch``.
* **pickles** (``torch.save(model)``, ``.pkl``): refused. Unpickling runs arbitrary code.

Every parse of a user's bytes runs under :func:`~fiberscope.models.safety.no_unpickling`, in
which any unpickling with ``weights_only=False`` raises whatever library asks for it. Zip
archives are verified by :func:`~fiberscope.models.safety.open_zip` (no duplicate, renamed
or overlapping entries). Every file model is returned as a float64 module in eval mode.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import struct
import sys
import types
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError, UnsafeModelError
from .safety import (
    PickleScan,
    ZipEntry,
    looks_like_pickle,
    no_unpickling,
    open_zip,
    read_regular_file,
    scan_pickle,
    single_root,
)

_SAFE_EXPORTS = (
    "export it with torch.export.save (.pt2), torch.onnx.export (.onnx) or torch.jit.save "
    "(.pt), or save model.state_dict() with safetensors and pass --arch module:Factory"
)


# --------------------------------------------------------------------------- content sniffing
def read_model_bytes(path: Path) -> bytes:
    """Read a model file, with one-line errors for missing, unreadable, odd or huge files.

    Parameters
    ----------
    path : pathlib.Path
        The file; it must be a regular file (not a pipe, a device or a socket).

    Returns
    -------
    bytes
        Its contents.
    """
    return read_regular_file(path, "model file")


def sniff(data: bytes) -> str:
    """Guess what a model file holds from its first bytes.

    Parameters
    ----------
    data : bytes
        The file contents.

    Returns
    -------
    str
        ``"empty"``, ``"zip"``, ``"pickle"``, ``"safetensors"``, ``"text"`` or ``"binary"``
        (anything else, e.g. an ONNX protobuf).
    """
    if not data:
        return "empty"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "pickle"
    if len(data) >= 10:
        (n,) = struct.unpack("<Q", data[:8])
        if 2 <= n <= len(data) - 8 and data[8:9] == b"{":
            return "safetensors"
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the 4096-byte boundary is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "binary"
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
    return "text" if printable >= 0.95 * max(1, len(text)) else "binary"


_KIND_WORDS = {
    "empty": "an empty file",
    "zip": "a zip archive (TorchScript, torch.export or torch.save)",
    "pickle": "a Python pickle",
    "safetensors": "a safetensors weights file",
    "text": "a text file",
    "binary": "binary data",
}


def describe_kind(kind: str) -> str:
    """A few words for a :func:`sniff` result, for error messages."""
    return _KIND_WORDS.get(kind, kind)


def _zip_kind(names: list[str]) -> str:
    """What a zip archive written by torch holds: torchscript, pt2, torch-save or unknown."""
    rel = [n.split("/", 1)[1] if "/" in n else n for n in names]
    if any(r == "archive_format" or r.startswith("models/") for r in rel):
        return "pt2"
    if any(n == "serialized_exported_program.json" for n in names):
        return "pt2-legacy"
    if any(r == "constants.pkl" or r.startswith("code/") for r in rel):
        return "torchscript"
    if any(r == "data.pkl" for r in rel):
        return "torch-save"
    return "unknown"


@contextlib.contextmanager
def _quiet_library_logs(prefixes: tuple[str, ...] = ("torch", "onnx", "onnx2torch")) -> Any:
    """Silence third-party loggers while a parser runs on a user's file.

    torch logs a full traceback before it raises on some corrupt archives; the failure
    reaches the user as one line anyway, so the log must not.
    """
    names = {n for n in logging.root.manager.loggerDict if n.split(".")[0] in prefixes}
    loggers = [logging.getLogger(n) for n in names | set(prefixes)]
    saved = [(lg, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in saved:
            lg.disabled = was


@contextlib.contextmanager
def _parsing(label: str) -> Any:
    """The context every library parse of a user's bytes runs in.

    No unpickling beyond ``weights_only=True`` (:func:`~.safety.no_unpickling`), no library
    logs, no warnings.
    """
    with no_unpickling(label), warnings.catch_warnings(), _quiet_library_logs():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------- pickles
_TORCH_PICKLE_PREFIXES = ("torch.", "__torch__.", "collections.OrderedDict", "builtins.set")


def pickle_globals(data: bytes) -> list[str]:
    """Python objects a pickle refers to (``module.name``), without unpickling it.

    Parameters
    ----------
    data : bytes
        The pickle.

    Returns
    -------
    list of str
        Referenced globals in order of appearance, followed by ``"<unreadable pickle>"`` if
        the opcode stream is malformed.
    """
    try:
        return [str(g) for g in scan_pickle(data).globals]
    except ValueError:
        found: list[str] = []
        with contextlib.suppress(Exception):
            import pickletools

            for op, arg, _pos in pickletools.genops(data):
                if op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
        return [*found, "<unreadable pickle>"]


#: Globals that ``torch.save`` writes for plain tensors and containers.
_WEIGHT_GLOBALS = (
    "torch._utils._rebuild_",
    "torch._tensor._rebuild_",
    "torch.serialization._get_layout",
    "collections.OrderedDict",
    "torch.Size",
    "torch.device",
    "builtins.set",
    "__builtin__.set",
    "builtins.frozenset",
)


def _foreign(found: list[str], allowed: tuple[str, ...]) -> list[str]:
    return [
        g
        for g in found
        if not g.startswith(allowed) and not (g.startswith("torch.") and g.endswith("Storage"))
    ]


def _foreign_globals(data: bytes, allowed: tuple[str, ...] = _TORCH_PICKLE_PREFIXES) -> list[str]:
    return _foreign(pickle_globals(data), allowed)


def _weights_only_load(data: bytes, path: Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` from memory, refusing anything that needs more."""
    try:
        with _parsing(path.name):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except UnsafeModelError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())
        if "weights_only" in text or "Unsupported global" in text or "Unpickl" in text:
            raise UnsafeModelError(_pickle_refusal(path, what, data)) from None
        raise ModelLoadError(f"{path.name}: cannot read {what} ({type(exc).__name__})") from None


def _pickle_refusal(path: Path, what: str, data: bytes | None = None) -> str:
    names: list[str] = []
    if data is not None:
        inner = data
        if sniff(data) == "zip":
            with contextlib.suppress(Exception):
                zf = zipfile.ZipFile(io.BytesIO(data))
                pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                inner = zf.read(pkl)
        names = _foreign_globals(inner, _WEIGHT_GLOBALS)
    refs = f" (it refers to {', '.join(dict.fromkeys(names).keys())})" if names else ""
    refs = refs if len(refs) < 160 else refs[:157] + "...)"
    return (
        f"{path.name}: {what} is a pickled Python object{refs}; loading it would run "
        f"arbitrary code, so fiberscope refuses it: {_SAFE_EXPORTS}"
    )


# --------------------------------------------------------------------------- torch zip archives
#: Bytes per element of the storage types torch writes in persistent ids.
_STORAGE_BYTES = {
    "torch.DoubleStorage": 8,
    "torch.FloatStorage": 4,
    "torch.HalfStorage": 2,
    "torch.BFloat16Storage": 2,
    "torch.LongStorage": 8,
    "torch.IntStorage": 4,
    "torch.ShortStorage": 2,
    "torch.CharStorage": 1,
    "torch.ByteStorage": 1,
    "torch.BoolStorage": 1,
    "torch.ComplexDoubleStorage": 16,
    "torch.ComplexFloatStorage": 8,
    "torch.UntypedStorage": 1,
    "torch.storage.UntypedStorage": 1,
}
_DIGITS_ENTRIES = ("version", ".data/version", ".format_version", ".storage_alignment")


def _check_text_entry(label: str, rel: str, blob: bytes) -> None:
    """The small text entries of a torch archive hold exactly what torch writes."""
    if rel == "byteorder":
        ok = blob in (b"little", b"big")
    elif rel == ".data/serialization_id":
        ok = re.fullmatch(rb"\d{1,64}", blob) is not None
    else:
        ok = re.fullmatch(rb"\d{1,9}\n?", blob) is not None
    if not ok:
        raise ModelLoadError(f"{label}: entry {rel} does not hold what torch writes there")


def check_torch_zip(zf: zipfile.ZipFile, entries: list[ZipEntry], label: str, kind: str) -> None:
    """Check every entry of a TorchScript or ``torch.save`` archive before torch reads it.

    Each entry must be one torch writes: pickles (``data.pkl`` and, in TorchScript,
    ``constants.pkl``, ``traced_inputs.pkl`` and ``code/**.debug_pkl``) must parse as one
    complete pickle that names only torch types; every storage they refer to must exist with
    exactly the declared size; every raw storage entry must be referred to; TorchScript code
    must be text; the version/byte-order entries must hold what torch writes. Anything else
    is refused.

    Parameters
    ----------
    zf : zipfile.ZipFile
        The archive, verified by :func:`~.safety.open_zip`.
    entries : list of ZipEntry
        Its entries.
    label : str
        Name for messages.
    kind : str
        ``"torchscript"`` or ``"torch-save"``.

    Raises
    ------
    UnsafeModelError
        For pickles that name anything but torch types.
    ModelLoadError
        For any other entry that is not what torch writes.
    """
    names = [e.name for e in entries]
    root = single_root(names, label)
    sizes = {e.name[len(root) + 1 :]: e.size for e in entries}
    pickles = (
        ("data.pkl", "constants.pkl", "traced_inputs.pkl")
        if kind == "torchscript"
        else ("data.pkl",)
    )
    folders = tuple(p.removesuffix(".pkl") for p in pickles)
    raw_pattern = re.compile(rf"({'|'.join(re.escape(f) for f in folders)})/\d+")
    scans: dict[str, PickleScan] = {}
    raw: set[str] = set()
    for rel in sizes:
        full = f"{root}/{rel}"
        if rel in _DIGITS_ENTRIES or rel in ("byteorder", ".data/serialization_id"):
            _check_text_entry(label, rel, zf.read(full))
        elif rel in pickles or (
            kind == "torchscript" and rel.startswith("code/") and rel.endswith(".py.debug_pkl")
        ):
            blob = zf.read(full)
            try:
                scan = scan_pickle(blob)
            except ValueError as exc:
                raise ModelLoadError(f"{label}: {rel} is not a valid pickle ({exc})") from None
            allowed = _TORCH_PICKLE_PREFIXES if kind == "torchscript" else _WEIGHT_GLOBALS
            foreign = _foreign([str(g) for g in scan.globals], allowed)
            if foreign:
                if kind == "torchscript":
                    raise UnsafeModelError(
                        f"{label}: {rel.split('/')[-1]} refers to {_short_list(foreign, 3)}, "
                        "which TorchScript never writes; refusing a crafted file"
                    )
                raise UnsafeModelError(_pickle_refusal(Path(label), _what(rel), blob))
            if rel.endswith(".debug_pkl") and scan.storages:
                raise ModelLoadError(f"{label}: {rel} refers to tensor storages")
            scans[rel] = scan
        elif kind == "torchscript" and rel.startswith("code/") and rel.endswith(".py"):
            blob = zf.read(full)
            try:
                blob.decode("utf-8")
            except UnicodeDecodeError:
                raise ModelLoadError(f"{label}: {rel} is not TorchScript source text") from None
            if looks_like_pickle(blob):
                raise UnsafeModelError(f"{label}: {rel} holds a pickle, not TorchScript code")
        elif raw_pattern.fullmatch(rel):
            raw.add(rel)
        else:
            fmt = "TorchScript" if kind == "torchscript" else "torch.save"
            raise ModelLoadError(
                f"{label} contains an entry {rel!r} that fiberscope does not accept in a {fmt} "
                "archive (extra files are not read; save the model without them)"
            )
    if "data.pkl" not in scans:
        raise ModelLoadError(f"{label}: the archive has no data.pkl")
    used: set[str] = set()
    for pkl, scan in scans.items():
        folder = pkl.removesuffix(".pkl")
        for key, stype, numel in scan.storages:
            entry = f"{folder}/{key}"
            width = _STORAGE_BYTES.get(stype)
            if width is None or numel < 0:
                raise ModelLoadError(f"{label}: {pkl} refers to an unknown storage {stype}")
            if entry not in raw:
                raise ModelLoadError(f"{label}: {pkl} refers to a missing storage {entry}")
            size = sizes[entry]
            if size != numel * width and not (folder == "traced_inputs" and size == 0):
                raise ModelLoadError(
                    f"{label}: storage {entry} holds {size} bytes but {pkl} declares "
                    f"{numel * width}"
                )
            used.add(entry)
    unused = sorted(raw - used)
    if unused:
        raise ModelLoadError(f"{label}: entry {unused[0]} is not used by the archive's pickles")


def _what(rel: str) -> str:
    return "the file" if rel == "data.pkl" else rel


# --------------------------------------------------------------------------- state dicts
def _build_arch(arch: Any) -> nn.Module:
    """The architecture module named by ``arch`` (spec string, class, factory or module)."""
    from .python_spec import load_python_spec

    if isinstance(arch, str):
        model = load_python_spec(arch)
    elif isinstance(arch, nn.Module):
        model = arch
    elif callable(arch):
        from .python_spec import call_user_factory

        model = call_user_factory(arch, "building the architecture")
    else:
        raise ModelLoadError(
            f"arch must be 'module:Factory', 'file.py:Factory', a class or a module, "
            f"got {type(arch).__name__}"
        )
    if not isinstance(model, nn.Module):
        raise ModelLoadError(
            f"the architecture {arch!r} built a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _short_list(items: list[str], limit: int = 4) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _storage_key(name: str, value: torch.Tensor) -> Any:
    return value.data_ptr() if value.numel() else ("empty", name)


def apply_state_dict(model: nn.Module, tensors: dict[str, Any], source: str) -> nn.Module:
    """Load ``tensors`` into ``model`` strictly, with one-line errors; return it float64/eval.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture.
    tensors : dict
        Weights by name.
    source : str
        File name for messages.

    Returns
    -------
    torch.nn.Module
        ``model`` with the weights, converted to float64, in eval mode.
    """
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise ModelLoadError(f"{source} does not hold a dict of named tensors (a state_dict)")
    expected = model.state_dict()
    # tied weights (one storage, several names) may be stored once
    groups: dict[Any, list[str]] = {}
    for name, value in expected.items():
        groups.setdefault(_storage_key(name, value), []).append(name)

    def partner(name: str) -> str | None:
        group = groups[_storage_key(name, expected[name])]
        return next((alt for alt in group if alt in tensors), None)

    missing = [n for n in expected if n not in tensors and partner(n) is None]
    unexpected = sorted(n for n in tensors if n not in expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_short_list(missing)}")
        if unexpected:
            parts.append(f"unexpected {_short_list(unexpected)}")
        raise ModelLoadError(
            f"{source} does not fit the architecture: {'; '.join(parts)} "
            f"(the architecture has {len(expected)} tensors, the file {len(tensors)})"
        )
    for name, want in expected.items():  # the architecture's order: reproducible messages
        if name not in tensors:
            continue
        value = tensors[name]
        if tuple(value.shape) != tuple(want.shape):
            raise ModelLoadError(
                f"{source}: weight {name} has shape {tuple(value.shape)} but the architecture "
                f"expects {tuple(want.shape)}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelLoadError(f"{source}: weight {name} contains NaN or inf")
    full = dict(tensors)
    for name in expected:
        if name not in full:
            full[name] = tensors[partner(name)]  # type: ignore[index]
    try:
        model.load_state_dict(full, strict=True)
    except Exception as exc:
        first = " ".join(str(exc).split())[:200]
        raise ModelLoadError(f"{source}: loading the weights failed ({first})") from None
    return _finish(model)


# --------------------------------------------------------------------------- safetensors
def load_safetensors(path: Path | str, *, arch: Any = None) -> nn.Module:
    """Load safetensors weights into the architecture ``arch``.

    Parameters
    ----------
    path : pathlib.Path or str
        The ``.safetensors`` file.
    arch : str, class, callable or torch.nn.Module
        The architecture: ``"package.module:Factory"``, ``"file.py:Factory"``, a class or a
        factory called without arguments, or a module instance to fill.

    Returns
    -------
    torch.nn.Module
        The model, float64, eval mode.

    Raises
    ------
    ModelLoadError
        Without ``arch``, on a malformed file, or if the weights do not fit the architecture.
    """
    path = Path(path)
    data = read_model_bytes(path)
    kind = sniff(data)
    if kind != "safetensors":
        raise ModelLoadError(
            f"{path.name} is not a safetensors file: it looks like {describe_kind(kind)}"
        )
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n])
    except (ValueError, UnicodeDecodeError):
        raise ModelLoadError(f"{path.name}: the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name}: the safetensors header is not a JSON object")
    meta = header.get("__metadata__") if isinstance(header.get("__metadata__"), dict) else {}
    if arch is None:
        hint = meta.get("fiberscope.arch")
        named = (
            f"; the file names its architecture as {hint!r}, pass it if you trust it"
            if hint
            else ""
        )
        raise ModelLoadError(
            f"{path.name} holds only weights: give the architecture with --arch "
            f"module:Factory or file.py:Factory (Python: load_model(path, arch=...)){named}"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        with _parsing(path.name):
            tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError, RuntimeError, OverflowError) as exc:
        first = " ".join(str(exc).split())[:160]
        raise ModelLoadError(f"{path.name} is a corrupt safetensors file ({first})") from None
    model = _build_arch(arch)
    return apply_state_dict(model, tensors, path.name)


# --------------------------------------------------------------------------- TorchScript / .pt
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _is_legacy_torch_save(data: bytes) -> bool:
    """Whether ``data`` starts like torch.save's pre-1.6 format (a pickled magic number)."""
    import pickletools

    with contextlib.suppress(Exception):
        for op, arg, _pos in pickletools.genops(data):
            if op.name in ("LONG1", "LONG4", "LONG", "INT"):
                return int(arg) == _LEGACY_MAGIC
            if op.name not in ("PROTO", "FRAME"):
                return False
    return False


def load_torch_file(path: Path | str, *, arch: Any = None) -> nn.Module:
    """Load a TorchScript archive, or a weights-only state_dict with ``arch``.

    ``.pt`` files are either TorchScript (``torch.jit.save``: a zip with ``code/`` and
    ``constants.pkl``) or ``torch.save`` archives. Every entry is checked first
    (:func:`check_torch_zip`). TorchScript is then loaded with ``torch.jit.load``; a
    ``torch.save`` archive is read with ``torch.load(weights_only=True)``, which succeeds only
    for plain tensors (a state_dict) and then needs ``arch``. Pickled modules
    (``torch.save(model)``), raw pickles and torch.save's pre-1.6 format are refused.

    Parameters
    ----------
    path : pathlib.Path or str
        The file.
    arch : str, class, callable or torch.nn.Module, optional
        Architecture for a state_dict file (see :func:`load_safetensors`).

    Returns
    -------
    torch.nn.Module
        The model, float64, eval mode.

    Raises
    ------
    UnsafeModelError
        For pickled Python objects.
    ModelLoadError
        For anything malformed or mismatched.
    """
    path = Path(path)
    data = read_model_bytes(path)
    kind = sniff(data)
    if kind == "pickle":
        if _is_legacy_torch_save(data):
            raise ModelLoadError(
                f"{path.name} uses torch.save's old format (before torch 1.6), which fiberscope "
                "does not read: save it again with a current torch.save or with safetensors"
            )
        raise UnsafeModelError(_pickle_refusal(path, "the file", data))
    if kind != "zip":
        raise ModelLoadError(
            f"{path.name} is not a TorchScript or PyTorch file: it looks like {describe_kind(kind)}"
        )
    zf, entries = open_zip(data, path.name)
    zkind = _zip_kind(zf.namelist())
    if zkind in ("pt2", "pt2-legacy"):
        raise ModelLoadError(
            f"{path.name} is a torch.export archive, not TorchScript: name it .pt2 or pass "
            "--format pt2"
        )
    if zkind == "unknown":
        raise ModelLoadError(
            f"{path.name} is a zip archive but neither TorchScript nor torch.save output"
        )
    if zkind == "torchscript" and arch is not None:
        raise ModelLoadError(
            f"{path.name} is a complete TorchScript model; --arch is only for "
            "weights files (safetensors or a state_dict)"
        )
    check_torch_zip(zf, entries, path.name, zkind)
    if zkind == "torchscript":
        try:
            with _parsing(path.name):
                module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        except UnsafeModelError:
            raise
        except Exception as exc:
            first = " ".join(str(exc).split())[:160]
            raise ModelLoadError(
                f"{path.name} is not a loadable TorchScript archive ({first})"
            ) from None
        return _finish(module)
    obj = _weights_only_load(data, path, "the file")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # a training checkpoint {"state_dict": ..., "epoch": ...}
    if not isinstance(obj, dict):
        raise ModelLoadError(
            f"{path.name} holds a {type(obj).__name__}, not a model or a state_dict; "
            f"{_SAFE_EXPORTS}"
        )
    if arch is None:
        raise ModelLoadError(
            f"{path.name} is a state_dict (weights only): give the architecture with --arch "
            "module:Factory or file.py:Factory (Python: load_model(path, arch=...))"
        )
    return apply_state_dict(_build_arch(arch), obj, path.name)


def refuse_pickle(path: Path | str, **_: Any) -> nn.Module:
    """Refuse a pickle file (``.pkl``, ``.pickle``, ``.joblib``, ...) with the safe options.

    Parameters
    ----------
    path : pathlib.Path or str
        The file.

    Returns
    -------
    torch.nn.Module
        Never returns.

    Raises
    ------
    UnsafeModelError
        Always.
    """
    path = Path(path)
    if path.suffix.lower() not in PICKLE_SUFFIXES:  # chosen with format="pickle" (--format)
        raise UnsafeModelError(
            f"--format pickle refused for {path.name}: unpickling runs arbitrary code, so "
            f"fiberscope never loads pickles; leave --format out for a file of another kind, or "
            f"{_SAFE_EXPORTS}"
        )
    raise UnsafeModelError(
        f"{path.name} is a pickle; unpickling runs arbitrary code, so fiberscope never loads "
        f"pickles: {_SAFE_EXPORTS}"
    )


#: Suffixes of the files the ``pickle`` format refuses by name.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".sav")


# --------------------------------------------------------------------------- torch.export
_PT2_TEXT = {
    "archive_format": rb"pt2",
    "archive_version": rb"\d{1,9}",
    "byteorder": rb"little|big",
    ".data/version": rb"\d{1,9}\n?",
    ".data/serialization_id": rb"\d{1,64}",
    ".format_version": rb"\d{1,9}\n?",
    ".storage_alignment": rb"\d{1,9}\n?",
}
_PT2_MODEL = "models/model.json"
_PT2_WEIGHTS = "data/weights/model_weights_config.json"
_PT2_CONSTANTS = "data/constants/model_constants_config.json"
_PT2_SAMPLES = "data/sample_inputs/model.pt"
_PT2_RAW = {"data/weights/": "weight_", "data/constants/": "tensor_"}
_OPERATOR_TARGETS = frozenset(
    f"_operator.{name}"
    for name in (
        "getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
        "abs", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "invert",
        "lshift", "rshift",
    )
) | frozenset(
    {
        "math.ceil", "math.floor", "math.trunc", "math.sqrt", "torch.sym_int", "torch.sym_float",
        "torch.sym_max", "torch.sym_min", "torch.sym_not", "torch.sym_ite", "torch.sym_sum",
        "torch.sym_sqrt", "torch._sym_sqrt", "torch.sym_fresh_size",
    }
)  # fmt: skip


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _pt2_json(zf: zipfile.ZipFile, root: str, rel: str, label: str) -> Any:
    try:
        return json.loads(zf.read(f"{root}/{rel}"), object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelLoadError(f"{label}: {rel} is not valid JSON ({exc})"[:300]) from None


def _check_pt2_graph(obj: Any, label: str) -> None:
    """Check the names, operator targets and shape expressions of a serialized graph.

    torch's deserializer turns names into Python identifiers of generated code, resolves
    targets by attribute lookup under ``torch``/``operator``/``math``, and evaluates shape
    expressions with ``sympy.sympify``: only what ``torch.export.save`` writes passes.
    """
    from .safety import check_shape_expression

    def name_ok(value: Any) -> bool:
        return isinstance(value, str) and value.isidentifier() and len(value) <= 256

    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key in ("name", "as_name") and isinstance(value, str) and not name_ok(value):
                raise UnsafeModelError(
                    f"{label}: the graph uses the name {value[:60]!r}, which is not a Python "
                    "identifier; torch.export never writes one"
                )
            if key.endswith("_values") and isinstance(value, dict):
                bad = next((k for k in value if not name_ok(k)), None)
                if bad is not None:
                    raise UnsafeModelError(
                        f"{label}: the graph uses the name {bad[:60]!r}, which is not a "
                        "Python identifier; torch.export never writes one"
                    )
            if key == "expr_str" and isinstance(value, str):
                try:
                    check_shape_expression(value)
                except UnsafeModelError as exc:
                    raise UnsafeModelError(f"{label}: {exc}") from None
            if key == "target" and isinstance(value, str) and "inputs" in item:
                parts = value.split(".")
                torch_op = (
                    value.startswith("torch.ops.")
                    and 4 <= len(parts) <= 5
                    and all(p.isidentifier() for p in parts)
                )
                if not torch_op and value not in _OPERATOR_TARGETS:
                    raise UnsafeModelError(
                        f"{label}: the graph calls {value[:80]!r}, which is not a torch "
                        "operator; fiberscope loads only graphs of torch operators"
                    )
            if isinstance(value, dict | list):
                stack.append(value)


def _check_loaded_graph(module: nn.Module, label: str) -> None:
    """After loading: every call in every graph is a torch operator or plain arithmetic."""
    import operator

    allowed_modules = {"_operator", "operator", "math"}
    for sub in module.modules():
        graph = getattr(sub, "graph", None)
        if not isinstance(graph, torch.fx.Graph):
            continue
        for node in graph.nodes:
            if node.op != "call_function":
                continue
            target = node.target
            if isinstance(
                target,
                torch._ops.OpOverload
                | torch._ops.OpOverloadPacket
                | torch._ops.HigherOrderOperator,
            ):
                continue
            owner = getattr(target, "__module__", None)
            name = getattr(target, "__name__", "")
            if owner in allowed_modules or target is operator.getitem:
                continue
            if (
                owner is not None
                and owner.startswith("torch")
                and name.startswith(("sym_", "_sym_", "_assert"))
            ):
                continue
            raise UnsafeModelError(
                f"{label}: the loaded graph calls {name or target!r}, which is not a torch "
                "operator; refusing it"
            )


def _pt2_tensors(
    zf: zipfile.ZipFile, root: str, sizes: dict[str, int], rel: str, label: str, byteorder: str
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """Build the weights (or constants) of a .pt2 from its config and raw entries.

    Returns the tensors by name and the raw entries they used. Pickled payloads, custom
    objects and anything torch would unpickle are refused; every raw entry must be exactly
    as large as the tensors that view it need.
    """
    from torch._export.serde.schema import Layout
    from torch._export.serde.serialize import deserialize_scalar_type

    folder = rel.rsplit("/", 1)[0] + "/"
    prefix = _PT2_RAW[folder]
    config = _pt2_json(zf, root, rel, label)
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ModelLoadError(f"{label}: {rel} is not a torch.export payload config")
    metas: dict[str, tuple[str, bool, torch.dtype, list[int], list[int], int, bool]] = {}
    for fqn, meta in config["config"].items():
        if not isinstance(meta, dict):
            raise ModelLoadError(f"{label}: {rel} entry {fqn!r} is not an object")
        pname = meta.get("path_name")
        if meta.get("use_pickle") or (
            isinstance(pname, str) and pname.startswith(("custom_obj", "opaque"))
        ):
            raise UnsafeModelError(
                f"{label}: weight/constant {fqn!r} is stored as a pickled object; "
                "fiberscope accepts only raw tensors in .pt2 files"
            )
        if not isinstance(pname, str) or not re.fullmatch(rf"{prefix}\d{{1,9}}", pname):
            raise ModelLoadError(f"{label}: {rel} names an odd payload {str(pname)[:40]!r}")
        tm = meta.get("tensor_meta")
        try:
            dtype = deserialize_scalar_type(int(tm["dtype"]))
            shape = [int(d["as_int"]) for d in tm["sizes"]]
            strides = [int(d["as_int"]) for d in tm["strides"]]
            offset = int(tm["storage_offset"]["as_int"])
            layout = int(tm["layout"])
            requires_grad = bool(tm.get("requires_grad", False))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ModelLoadError(
                f"{label}: {rel} entry {fqn!r} has no usable tensor metadata (symbolic or "
                "missing sizes)"
            ) from None
        if (
            layout != Layout.Strided.value
            or len(shape) != len(strides)
            or min([offset, *shape, *strides], default=0) < 0
        ):
            raise ModelLoadError(f"{label}: {rel} entry {fqn!r} is not a plain dense tensor")
        is_param = bool(meta.get("is_param", False))
        metas[fqn] = (pname, is_param, dtype, shape, strides, offset, requires_grad)
    # one base tensor per raw entry (several names may view it: aliasing is kept)
    bases: dict[str, torch.Tensor] = {}
    extents: dict[str, int] = {}
    for pname, _p, dtype, shape, strides, offset, _rg in metas.values():
        entry = folder + pname
        if entry not in sizes:
            raise ModelLoadError(f"{label}: {rel} refers to a missing entry {entry}")
        width = torch.empty(0, dtype=dtype).element_size()
        need = (
            0
            if 0 in shape
            else offset + sum((n - 1) * st for n, st in zip(shape, strides, strict=True)) + 1
        )
        extents[entry] = max(extents.get(entry, 0), need * width)
        if entry in bases:
            if bases[entry].dtype != dtype:
                raise ModelLoadError(f"{label}: {entry} is viewed with two dtypes")
            continue
        blob = zf.read(f"{root}/{entry}")
        if len(blob) % width:
            raise ModelLoadError(
                f"{label}: {entry} holds {len(blob)} bytes, not a whole number of {dtype}"
            )
        base = (
            torch.frombuffer(bytearray(blob), dtype=dtype) if blob else torch.empty(0, dtype=dtype)
        )
        if byteorder != sys.byteorder and width > 1:
            base = base.view(torch.uint8).view(-1, width).flip(-1).reshape(-1).view(dtype).clone()
        bases[entry] = base
    for entry, need in extents.items():
        if sizes[entry] != need:
            raise ModelLoadError(
                f"{label}: {entry} holds {sizes[entry]} bytes but its tensors use {need}"
            )
    tensors: dict[str, torch.Tensor] = {}
    for fqn, (pname, is_param, _dtype, shape, strides, offset, rg) in metas.items():
        view = torch.as_strided(bases[folder + pname], shape, strides, offset)
        if view.is_floating_point() and not bool(torch.isfinite(view).all()):
            raise ModelLoadError(f"{label}: weight {fqn} contains NaN or inf")
        tensors[fqn] = nn.Parameter(view, requires_grad=rg) if is_param else view
    return tensors, {folder + m[0] for m in metas.values()}


def _read_pt2(zf: zipfile.ZipFile, entries: list[ZipEntry], path: Path) -> tuple[Any, ...]:
    """Check every entry of a .pt2 archive and read its pieces without torch's loader.

    Returns ``(model JSON bytes, state_dict, constants, example inputs)``.
    """
    label = path.name
    names = [e.name for e in entries]
    if "serialized_exported_program.json" in names:
        raise UnsafeModelError(
            f"{label} uses the pre-2.8 torch.export format, which torch loads with "
            "pickle; re-export it with the current torch.export.save"
        )
    root = single_root(names, label)
    sizes = {e.name[len(root) + 1 :]: e.size for e in entries}
    for rel in sizes:
        if rel.startswith("data/aotinductor/") or rel.endswith((".so", ".dll", ".dylib")):
            raise UnsafeModelError(
                f"{label} contains compiled AOTInductor code; fiberscope loads only the "
                "portable graph: re-export without torch._inductor.aoti_compile_and_package"
            )
    for rel in ("archive_format", "archive_version", "byteorder", _PT2_MODEL, _PT2_WEIGHTS):
        if rel not in sizes:
            raise ModelLoadError(f"{label} is not a complete torch.export archive (no {rel})")
    for rel, pattern in _PT2_TEXT.items():
        if rel in sizes and not re.fullmatch(pattern, zf.read(f"{root}/{rel}")):
            raise ModelLoadError(f"{label}: entry {rel} does not hold what torch writes there")
    from torch.export.pt2_archive.constants import ARCHIVE_VERSION_VALUE

    version = zf.read(f"{root}/archive_version").decode()
    if version != ARCHIVE_VERSION_VALUE:
        raise ModelLoadError(
            f"{label} is a torch.export archive of version {version}; this torch reads "
            f"version {ARCHIVE_VERSION_VALUE}: export it again with this torch"
        )
    byteorder = zf.read(f"{root}/byteorder").decode()
    weights, used = _pt2_tensors(zf, root, sizes, _PT2_WEIGHTS, label, byteorder)
    constants: dict[str, torch.Tensor] = {}
    if _PT2_CONSTANTS in sizes:
        constants, used_c = _pt2_tensors(zf, root, sizes, _PT2_CONSTANTS, label, byteorder)
        used |= used_c
    known = set(_PT2_TEXT) | {_PT2_MODEL, _PT2_WEIGHTS, _PT2_CONSTANTS, _PT2_SAMPLES} | used
    for rel in sizes:
        if rel not in known:
            raise ModelLoadError(
                f"{label} contains an entry {rel!r} that fiberscope does not accept in a "
                "torch.export archive (one model, raw weights and constants, sample inputs)"
            )
    model_json = zf.read(f"{root}/{_PT2_MODEL}")
    _check_pt2_graph(_pt2_json(zf, root, _PT2_MODEL, label), label)
    examples = None
    if _PT2_SAMPLES in sizes:
        blob = zf.read(f"{root}/{_PT2_SAMPLES}")
        inner = f"{label}: {_PT2_SAMPLES}"
        if sniff(blob) != "zip":
            if looks_like_pickle(blob) or sniff(blob) == "pickle":
                raise UnsafeModelError(_pickle_refusal(path, _PT2_SAMPLES, blob))
            raise ModelLoadError(f"{inner} is not a torch.save archive")
        szf, sentries = open_zip(blob, inner)
        if _zip_kind(szf.namelist()) != "torch-save":
            raise ModelLoadError(f"{inner} is not a torch.save archive")
        try:
            check_torch_zip(szf, sentries, inner, "torch-save")
        except UnsafeModelError:
            raise UnsafeModelError(_pickle_refusal(path, _PT2_SAMPLES, blob)) from None
        examples = _weights_only_load(blob, path, _PT2_SAMPLES)
        if not (
            isinstance(examples, tuple)
            and len(examples) == 2
            and isinstance(examples[0], tuple)
            and isinstance(examples[1], dict)
        ):
            raise ModelLoadError(f"{inner} does not hold (args, kwargs) sample inputs")
    return model_json, weights, constants, examples


def load_pt2(path: Path | str) -> nn.Module:
    """Load a ``torch.export`` program (``torch.export.save``) as a module.

    The archive is read here, not by ``torch.export.load`` (which unpickles with
    ``weights_only=False`` when a piece does not load otherwise): every entry is checked
    against the layout torch writes, the weights are built from raw bytes, the graph JSON is
    checked and then rebuilt by torch's own deserializer under
    :func:`~.safety.no_unpickling`.

    Parameters
    ----------
    path : pathlib.Path or str
        The ``.pt2`` file.

    Returns
    -------
    torch.nn.Module
        ``ExportedProgram.module()``, float64, eval mode.

    Raises
    ------
    UnsafeModelError
        If loading would unpickle Python objects, evaluate code or load compiled code.
    ModelLoadError
        For anything malformed.
    """
    path = Path(path)
    data = read_model_bytes(path)
    kind = sniff(data)
    if kind != "zip":
        raise ModelLoadError(
            f"{path.name} is not a torch.export archive: it looks like {describe_kind(kind)}"
        )
    zf, entries = open_zip(data, path.name)
    zkind = _zip_kind(zf.namelist())
    if zkind == "torchscript":
        raise ModelLoadError(
            f"{path.name} is a TorchScript archive, not torch.export: name it .pt or pass "
            "--format torch"
        )
    if zkind == "torch-save":
        raise ModelLoadError(
            f"{path.name} is a torch.save file, not torch.export: name it .pt or pass "
            "--format torch"
        )
    model_json, weights, constants, examples = _read_pt2(zf, entries, path)
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass

    try:
        with _parsing(path.name):
            serialized = _bytes_to_dataclass(schema.ExportedProgram, model_json)
            program = ExportedProgramDeserializer().deserialize(
                serialized, weights, constants, examples
            )
            module = program.module()
    except UnsafeModelError:
        raise
    except (Exception, RecursionError) as exc:
        first = " ".join(str(exc).split())[:160]
        raise ModelLoadError(
            f"{path.name} is not a loadable torch.export program ({type(exc).__name__}: {first})"
        ) from None
    _check_loaded_graph(module, path.name)
    return _finish(module)


# --------------------------------------------------------------------------- ONNX
#: How to install the ONNX converter without touching the user's torch (no brackets: the
#: hint must survive any markup a front end applies).
ONNX_INSTALL_HINT = (
    "pip install 'onnx>=1.16' && pip install --no-deps 'onnx2torch>=1.5' (--no-deps keeps "
    "your torch: onnx2torch declares torchvision, which would replace it)"
)


def _onnx_modules() -> tuple[Any, Any]:
    """Import ``onnx`` and ``onnx2torch`` (optional dependencies)."""
    try:
        import onnx
    except ImportError:
        raise ModelLoadError(
            f"loading ONNX files needs the onnx and onnx2torch packages: {ONNX_INSTALL_HINT}"
        ) from None
    try:
        import onnx2torch
    except ImportError as exc:
        if exc.name != "torchvision":
            raise ModelLoadError(
                f"loading ONNX files needs onnx2torch: {ONNX_INSTALL_HINT}"
            ) from None
        onnx2torch = _import_onnx2torch_without_torchvision()
    except Exception:
        # torchvision is installed but broken (e.g. built for another torch)
        onnx2torch = _import_onnx2torch_without_torchvision()
    return onnx, onnx2torch


def _import_onnx2torch_without_torchvision() -> Any:
    """Import onnx2torch when torchvision is missing or broken.

    onnx2torch imports torchvision only for the NonMaxSuppression and RoiAlign converters.
    A placeholder module stands in during the import (and is removed right after), so every
    other operator works and those two raise a clear error.
    """

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise ModelLoadError(
            "this ONNX model uses NonMaxSuppression/RoiAlign, which need torchvision"
        )

    saved = {
        k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")
    }
    for key in saved:
        del sys.modules[key]
    stub = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.nms = ops.box_convert = ops.roi_align = unavailable  # type: ignore[attr-defined]
    stub.ops = ops  # type: ignore[attr-defined]
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = stub, ops
    try:
        for key in [k for k in sys.modules if k.startswith("onnx2torch")]:
            del sys.modules[key]
        import onnx2torch
    except Exception:
        raise ModelLoadError(f"loading ONNX files needs onnx2torch: {ONNX_INSTALL_HINT}") from None
    finally:
        sys.modules.pop("torchvision", None)
        sys.modules.pop("torchvision.ops", None)
        sys.modules.update(saved)
    return onnx2torch


def _load_external_data(model: Any, path: Path) -> None:
    """Read a model's external weights into it, from regular files in the model's folder.

    fiberscope reads each file itself (:func:`~.safety.read_regular_file`: no pipes, devices
    or links out of the folder) and stores the bytes in the graph, so onnx never opens a path.
    """
    from onnx import TensorProto

    base = path.resolve().parent
    cache: dict[Path, bytes] = {}
    for tensor in _onnx_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if not location or Path(location).is_absolute() or base not in target.parents:
            raise UnsafeModelError(
                f"{path.name}: tensor {tensor.name!r} points to external data {location!r} "
                "outside the model's folder; refusing to read it"
            )
        if not target.exists():
            raise ModelLoadError(f"{path.name}: external data file {location!r} is missing")
        if target not in cache:
            cache[target] = read_regular_file(target, "external data file")
        blob = cache[target]
        try:
            offset = int(info.get("offset") or 0)
            length = int(info["length"]) if info.get("length") else len(blob) - offset
        except ValueError:
            raise ModelLoadError(
                f"{path.name}: tensor {tensor.name!r} has a malformed external data offset"
            ) from None
        if offset < 0 or length < 0 or offset + length > len(blob):
            raise ModelLoadError(
                f"{path.name}: tensor {tensor.name!r} reads past the end of {location!r}"
            )
        tensor.raw_data = blob[offset : offset + length]
        tensor.data_location = TensorProto.DEFAULT
        del tensor.external_data[:]


def _onnx_tensors(model: Any) -> list[Any]:
    """Every tensor of an ONNX model that can hold data (initializers, attributes, subgraphs)."""
    out: list[Any] = []
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        out.extend(graph.initializer)
        out.extend(s.values for s in graph.sparse_initializer)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    out.append(attr.t)
                out.extend(attr.tensors)
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
    return out


def load_onnx(path: Path | str) -> nn.Module:
    """Load an ONNX model and convert it to a PyTorch module with onnx2torch.

    Parameters
    ----------
    path : pathlib.Path or str
        The ``.onnx`` file (external data, if any, must lie in the same folder).

    Returns
    -------
    torch.nn.Module
        The converted ``torch.fx.GraphModule``, float64, eval mode.

    Raises
    ------
    ModelLoadError
        On a malformed file, several inputs/outputs, or an operator onnx2torch cannot convert.
    """
    path = Path(path)
    data = read_model_bytes(path)
    kind = sniff(data)
    if kind in ("empty", "zip", "pickle", "safetensors", "text"):
        raise ModelLoadError(
            f"{path.name} is not an ONNX model: it looks like {describe_kind(kind)}"
        )
    onnx, onnx2torch = _onnx_modules()
    try:
        model = onnx.load_model_from_string(data)
    except Exception:
        raise ModelLoadError(
            f"{path.name} is not a valid ONNX model (truncated or corrupt protobuf)"
        ) from None
    graph = model.graph
    if model.ir_version <= 0 or not model.opset_import or not len(graph.output):
        raise ModelLoadError(f"{path.name} is not a valid ONNX model (no graph, opset or outputs)")
    _load_external_data(model, path)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = " ".join(str(exc).split())[:200]
        raise ModelLoadError(f"{path.name} is not a valid ONNX model: {first}") from None
    initializers = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelLoadError(
            f"{path.name} has {len(inputs)} inputs ({_short_list(inputs)}); fiberscope needs a "
            "model with one input tensor"
        )
    if len(graph.output) != 1:
        outs = [o.name for o in graph.output]
        raise ModelLoadError(
            f"{path.name} has {len(outs)} outputs ({_short_list(outs)}); fiberscope needs one "
            "output tensor: re-export the model with the output you want to trace"
        )
    try:
        with _parsing(path.name):
            module = onnx2torch.convert(model)
    except NotImplementedError as exc:
        first = " ".join(str(exc).split())[:200]
        raise ModelLoadError(f"{path.name}: onnx2torch cannot convert it ({first})") from None
    except ModelLoadError:
        raise
    except Exception as exc:
        first = " ".join(str(exc).split())[:200]
        raise ModelLoadError(
            f"{path.name}: converting the ONNX graph failed ({type(exc).__name__}: {first})"
        ) from None
    return _finish(module)


def _finish(module: nn.Module) -> nn.Module:
    """float64, eval mode, frozen weights (fiberscope differentiates inputs only).

    Exported programs cannot switch mode (it is fixed at export); they are left as they are.
    """
    module = module.to(torch.float64)
    for param in module.parameters():
        param.requires_grad_(False)
    try:
        return module.eval()
    except NotImplementedError:
        return module


# --------------------------------------------------------------------------- saving
def save_model(
    model: nn.Module,
    path: Path | str,
    *,
    example: torch.Tensor | None = None,
    arch: str | None = None,
) -> Path:
    """Save a model in a format fiberscope loads safely, chosen by the suffix (atomically).

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    path : pathlib.Path or str
        ``.onnx``, ``.pt2``, ``.pt``/``.ts`` (TorchScript), ``.safetensors`` (weights only) or
        ``.csv`` (the paper's format, Linear/activation stacks only).
    example : torch.Tensor, optional
        An input, with the batch dimension the model expects; needed for ONNX, ``.pt2`` and
        TorchScript. When it has two or more dimensions, the first is the batch: ``.pt2`` and
        ONNX files are exported with a dynamic batch size, so they take any number of points
        (a grid for a plot, a batch of starts); the example's own batch size does not matter.
    arch : str, optional
        Safetensors only: the architecture spec to record in the file's metadata (shown as a
        hint when the file is loaded without ``--arch``; never imported automatically).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from ..io.atomic import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".pt2", ".pt", ".ts", ".safetensors", ".csv"):
        raise ModelLoadError(
            f"cannot save {path.name}: use .onnx, .pt2, .pt, .ts, .safetensors or .csv"
        )
    if suffix in (".onnx", ".pt2", ".pt", ".ts") and example is None:
        raise ModelLoadError(f"saving {suffix} needs an example input (example=...)")
    buf = io.BytesIO()
    notes: list[str] = []
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), _quiet_library_logs():
            warnings.simplefilter("ignore")
            if suffix == ".safetensors":
                from safetensors.torch import save as st_save

                state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
                seen: dict[int, str] = {}
                for key in list(state):
                    ptr = state[key].data_ptr()
                    if state[key].numel() and ptr in seen:
                        del state[key]  # tied weight: stored once
                    else:
                        seen[ptr] = key
                meta = {"format": "pt", "fiberscope.arch": arch} if arch else {"format": "pt"}
                buf.write(st_save(state, metadata=meta))
            elif suffix == ".pt2":
                torch.export.save(_export_program(model, example, notes), buf)
            elif suffix in (".pt", ".ts"):
                torch.jit.save(torch.jit.trace(model, example), buf)
            elif suffix == ".onnx":
                buf.write(_export_onnx(model, example, notes))
            else:
                from .paper_csv import save_paper_csv

                tmp = path.with_name(f".{path.name}.csvtmp")
                try:
                    save_paper_csv(model, tmp)  # type: ignore[arg-type]
                    buf.write(tmp.read_bytes())
                finally:
                    tmp.unlink(missing_ok=True)
    finally:
        model.train(was_training)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


def _batch_dims(example: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """An example of batch size >= 2 and the dynamic shape of its batch dimension.

    torch.export specialises a dimension of size 1 to a constant, so a batch of one is
    repeated to two for tracing; the exported program then takes any batch size >= 1.
    """
    if example.ndim < 2:
        return example, None
    if example.shape[0] < 2:
        example = example.expand(2, *example.shape[1:]).clone()
    return example, ({0: torch.export.Dim("batch", min=1)},)


def _export_program(model: nn.Module, example: torch.Tensor, notes: list[str]) -> Any:
    """``torch.export.export`` with a dynamic batch dimension where the model allows one."""
    batched, dynamic = _batch_dims(example)
    if dynamic is not None:
        try:
            return torch.export.export(model, (batched,), dynamic_shapes=dynamic)
        except Exception as exc:
            notes.append(
                f"the model could not be exported with a dynamic batch size "
                f"({type(exc).__name__}); the .pt2 file takes batch size {example.shape[0]} only"
            )
    return torch.export.export(model, (example,))


def _export_onnx(model: nn.Module, example: torch.Tensor, notes: list[str]) -> bytes:
    """``torch.onnx.export`` (dynamo) with a dynamic batch dimension where possible."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ModelLoadError(
            "saving .onnx needs the onnx and onnxscript packages: "
            "pip install 'onnx>=1.16' 'onnxscript>=0.2'"
        ) from None
    batched, dynamic = _batch_dims(example)
    if dynamic is not None:
        try:
            program = torch.onnx.export(
                model, (batched,), dynamo=True, verbose=False, dynamic_shapes=dynamic
            )
            return program.model_proto.SerializeToString()
        except Exception as exc:
            notes.append(
                f"the model could not be exported with a dynamic batch size "
                f"({type(exc).__name__}); the .onnx file takes batch size {example.shape[0]} "
                "only"
            )
    program = torch.onnx.export(model, (example,), dynamo=True, verbose=False)
    return program.model_proto.SerializeToString()


LOADERS: dict[str, Callable[..., nn.Module]] = {
    "onnx": load_onnx,
    "pt2": load_pt2,
    "torch": load_torch_file,
    "safetensors": load_safetensors,
    "pickle": refuse_pickle,
}
