"""Model file formats beyond the paper's CSV: ONNX, torch.export, TorchScript, safetensors.

Every loader reads the file into memory once, checks that the content is what the suffix
says, and only then hands the bytes to the library that parses them, so a file cannot change
between the check and the load. What each format may do when loaded:

* **ONNX** (``.onnx``): a protobuf graph, parsed by ``onnx`` and converted to a
  ``torch.fx.GraphModule`` by onnx2torch. No code runs; external weight files must lie in the
  model's folder.
* **torch.export** (``.pt2``): ``torch.export.load`` unpickles some members with
  ``weights_only=False``. fiberscope therefore accepts only archives whose members are on a
  whitelist (JSON graph, raw weights) and whose pickled members load with
  ``torch.load(weights_only=True)``; compiled AOTInductor code and pickled objects are refused.
* **TorchScript** (``.pt``/``.ts``): loaded with ``torch.jit.load``, whose C++ unpickler only
  builds tensors and TorchScript classes (never Python objects). The pickles are scanned first
  and anything but torch types is refused.
* **state dicts** (``.pt``/``.pth``/``.bin`` from ``torch.save(model.state_dict())``) and
  **safetensors**: weights only; the architecture comes from ``arch=`` / ``--arch``.
* **pickles** (``torch.save(model)``, ``.pkl``): refused. Unpickling runs arbitrary code.

Every file model is returned as a float64 module in eval mode.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickletools
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

#: Files larger than this are refused before they are read (bytes).
MAX_MODEL_BYTES = 8 * 2**30

_SAFE_EXPORTS = (
    "export it with torch.export.save (.pt2), torch.onnx.export (.onnx) or torch.jit.save "
    "(.pt), or save model.state_dict() with safetensors and pass --arch module:Factory"
)


# --------------------------------------------------------------------------- content sniffing
def read_model_bytes(path: Path) -> bytes:
    """Read a model file, with one-line errors for missing, unreadable or huge files.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    bytes
        Its contents.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_MODEL_BYTES:
        raise ModelLoadError(
            f"{path.name} is {size / 2**30:.1f} GiB; fiberscope reads model files of at most "
            f"{MAX_MODEL_BYTES / 2**30:.0f} GiB"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None


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


def _open_zip(data: bytes, path: Path) -> zipfile.ZipFile:
    """Open and fully verify a zip archive (CRC of every member, size sanity)."""
    # The end-of-archive record must end the file: in a truncated archive zipfile would
    # otherwise find the record of a zip stored *inside* it and open that one instead.
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if end < 0 or end + 22 + int.from_bytes(data[end + 20 : end + 22], "little") != len(data):
        raise ModelLoadError(
            f"{path.name} is a truncated or corrupt zip archive (its end record is missing)"
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, NotImplementedError("zip file version"), ...
        raise ModelLoadError(
            f"{path.name} is a truncated or corrupt zip archive ({type(exc).__name__}: {exc})"
        ) from None
    infos = zf.infolist()
    declared = sum(i.file_size for i in infos)
    if declared > 64 * len(data) + 2**20:
        raise UnsafeModelError(
            f"{path.name} declares {declared / 2**20:.0f} MiB of content in a "
            f"{len(data) / 2**10:.0f} KiB archive; refusing a possible zip bomb"
        )
    for info in infos:
        if info.filename.startswith("/") or ".." in info.filename.split("/"):
            raise UnsafeModelError(f"{path.name} contains a member with an unsafe path")
    try:
        bad = zf.testzip()
    except Exception as exc:  # zlib errors, unsupported compression, EOF
        raise ModelLoadError(f"{path.name} is a corrupt zip archive ({exc})") from None
    if bad is not None:
        raise ModelLoadError(f"{path.name} is corrupt: member {bad} fails its checksum")
    return zf


@contextlib.contextmanager
def _quiet_library_logs(prefixes: tuple[str, ...] = ("torch", "onnx", "onnx2torch")) -> Any:
    """Silence third-party loggers while a parser runs on a user's file.

    ``torch.export.load`` logs a full traceback before it raises on a corrupt archive; the
    failure reaches the user as one line anyway, so the log must not.
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
        Referenced globals in order of appearance; ``"<unreadable pickle>"`` if the opcode
        stream is malformed.
    """
    found: list[str] = []
    strings: list[Any] = []
    memo: dict[Any, Any] = {}
    try:
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif "UNICODE" in name or "STRING" in name:
                strings.append(arg)
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = strings[-1] if strings else None
            elif name == "MEMOIZE":
                memo[len(memo)] = strings[-1] if strings else None
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                strings.append(memo.get(arg))
            elif name == "STACK_GLOBAL":
                mod, attr = (strings[-2], strings[-1]) if len(strings) >= 2 else ("?", "?")
                found.append(f"{mod}.{attr}")
    except Exception:
        found.append("<unreadable pickle>")
    return found


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


def _foreign_globals(data: bytes, allowed: tuple[str, ...] = _TORCH_PICKLE_PREFIXES) -> list[str]:
    found = pickle_globals(data)
    return [
        g
        for g in found
        if not g.startswith(allowed) and not (g.startswith("torch.") and g.endswith("Storage"))
    ]


def _weights_only_load(data: bytes, path: Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` from memory, refusing anything that needs more."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4"
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = " ".join(str(exc).split())
        if "weights_only" in text or "Unsupported global" in text or "Unpickl" in text:
            raise UnsafeModelError(_pickle_refusal(path, what, data)) from None
        raise ModelLoadError(f"{path.name}: cannot read {what} ({type(exc).__name__})") from None


def _pickle_refusal(path: Path, what: str, data: bytes | None = None) -> str:
    names = []
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


# --------------------------------------------------------------------------- state dicts
def _build_arch(arch: Any) -> nn.Module:
    """The architecture module named by ``arch`` (spec string, class, factory or module)."""
    from .python_spec import load_python_spec

    if isinstance(arch, str):
        model = load_python_spec(arch)
    elif isinstance(arch, nn.Module):
        model = arch
    elif callable(arch):
        try:
            model = arch()
        except Exception as exc:
            raise ModelLoadError(
                f"building the architecture raised {type(exc).__name__}: {exc}"
            ) from None
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
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError, RuntimeError, OverflowError) as exc:
        first = " ".join(str(exc).split())[:160]
        raise ModelLoadError(f"{path.name} is a corrupt safetensors file ({first})") from None
    model = _build_arch(arch)
    return apply_state_dict(model, tensors, path.name)


# --------------------------------------------------------------------------- TorchScript / .pt
def _check_torchscript_pickles(zf: zipfile.ZipFile, path: Path) -> None:
    for name in zf.namelist():
        if not name.endswith(".pkl") or name.endswith(".debug_pkl"):
            continue
        foreign = _foreign_globals(zf.read(name))
        if foreign:
            raise UnsafeModelError(
                f"{path.name}: {name.split('/')[-1]} refers to {_short_list(foreign, 3)}, which "
                "TorchScript never writes; refusing a crafted file"
            )


def load_torch_file(path: Path | str, *, arch: Any = None) -> nn.Module:
    """Load a TorchScript archive, or a weights-only state_dict with ``arch``.

    ``.pt`` files are either TorchScript (``torch.jit.save``: a zip with ``code/`` and
    ``constants.pkl``) or ``torch.save`` pickles. TorchScript is loaded with
    ``torch.jit.load``; a ``torch.save`` file is read with ``torch.load(weights_only=True)``,
    which succeeds only for plain tensors (a state_dict) and then needs ``arch``. Pickled
    modules (``torch.save(model)``) are refused.

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
    if kind == "zip":
        zf = _open_zip(data, path)
        zkind = _zip_kind(zf.namelist())
        if zkind == "torchscript":
            if arch is not None:
                raise ModelLoadError(
                    f"{path.name} is a complete TorchScript model; --arch is only for "
                    "weights files (safetensors or a state_dict)"
                )
            _check_torchscript_pickles(zf, path)
            with warnings.catch_warnings(), _quiet_library_logs():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    module = torch.jit.load(io.BytesIO(data), map_location="cpu")
                except Exception as exc:
                    first = " ".join(str(exc).split())[:160]
                    raise ModelLoadError(
                        f"{path.name} is not a loadable TorchScript archive ({first})"
                    ) from None
            return _finish(module)
        if zkind in ("pt2", "pt2-legacy"):
            raise ModelLoadError(
                f"{path.name} is a torch.export archive, not TorchScript: name it .pt2 or pass "
                "--format pt2"
            )
        if zkind == "unknown":
            raise ModelLoadError(
                f"{path.name} is a zip archive but neither TorchScript nor torch.save output"
            )
    elif kind != "pickle":
        raise ModelLoadError(
            f"{path.name} is not a TorchScript or PyTorch file: it looks like {describe_kind(kind)}"
        )
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
    raise UnsafeModelError(
        f"{path.name} is a pickle; unpickling runs arbitrary code, so fiberscope never loads "
        f"pickles: {_SAFE_EXPORTS}"
    )


# --------------------------------------------------------------------------- torch.export
_PT2_TOP = {"archive_format", "archive_version", "byteorder", "version"}
_PT2_DIRS = (
    "models/",
    "data/weights/",
    "data/constants/",
    "data/sample_inputs/",
    "extra/",
    ".data/",
)


def _check_pt2(zf: zipfile.ZipFile, path: Path) -> None:
    """Refuse a .pt2 archive that ``torch.export.load`` would unpickle unsafely."""
    names = zf.namelist()
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or any("/" not in n for n in names):
        if "serialized_exported_program.json" in names:
            raise UnsafeModelError(
                f"{path.name} uses the pre-2.8 torch.export format, which torch loads with "
                "pickle; re-export it with the current torch.export.save"
            )
        raise ModelLoadError(f"{path.name} is not a torch.export archive (unexpected layout)")
    raw_payloads: set[str] = set()
    for name in names:
        rel = name.split("/", 1)[1]
        if rel.startswith("data/aotinductor/") or rel.endswith((".so", ".dll", ".dylib")):
            raise UnsafeModelError(
                f"{path.name} contains compiled AOTInductor code; fiberscope loads only the "
                "portable graph: re-export without torch._inductor.aoti_compile_and_package"
            )
        if rel not in _PT2_TOP and not rel.startswith(_PT2_DIRS):
            raise UnsafeModelError(f"{path.name} contains an unexpected member {rel!r}")
        if rel.endswith("_config.json") and rel.startswith(("data/weights/", "data/constants/")):
            try:
                config = json.loads(zf.read(name)).get("config", {})
            except (ValueError, AttributeError):
                raise ModelLoadError(f"{path.name}: {rel} is not valid JSON") from None
            for fqn, meta in (config or {}).items():
                pname = str((meta or {}).get("path_name", ""))
                if (meta or {}).get("use_pickle") or pname.startswith(("custom_obj", "opaque")):
                    raise UnsafeModelError(
                        f"{path.name}: weight/constant {fqn!r} is stored as a pickled object; "
                        "fiberscope accepts only raw tensors in .pt2 files"
                    )
                raw_payloads.add(os.path.dirname(rel) + "/" + pname)
    for name in names:
        rel = name.split("/", 1)[1]
        if rel in raw_payloads or rel.endswith(".json") or not rel.startswith("data/"):
            continue
        blob = zf.read(name)
        if sniff(blob) in ("zip", "pickle"):
            # torch.export.load falls back to weights_only=False when this fails
            _weights_only_load(blob, path, rel)


def load_pt2(path: Path | str) -> nn.Module:
    """Load a ``torch.export`` program (``torch.export.save``) as a module.

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
        If loading would unpickle Python objects or load compiled code.
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
    zf = _open_zip(data, path)
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
    _check_pt2(zf, path)
    try:
        with warnings.catch_warnings(), _quiet_library_logs():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
            module = program.module()
    except Exception as exc:
        first = " ".join(str(exc).split())[:160]
        if "error when deserializing" in first:
            first = "a corrupt archive, or one written by an incompatible torch version"
        raise ModelLoadError(
            f"{path.name} is not a loadable torch.export program ({type(exc).__name__}: {first})"
        ) from None
    return _finish(module)


# --------------------------------------------------------------------------- ONNX
def _onnx_modules() -> tuple[Any, Any]:
    """Import ``onnx`` and ``onnx2torch`` (optional dependencies)."""
    try:
        import onnx
    except ImportError:
        raise ModelLoadError(
            "loading ONNX files needs the onnx and onnx2torch packages: "
            "pip install 'fiberscope[onnx]'"
        ) from None
    try:
        import onnx2torch
    except ImportError as exc:
        if exc.name != "torchvision":
            raise ModelLoadError(
                "loading ONNX files needs onnx2torch: pip install 'fiberscope[onnx]'"
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
        raise ModelLoadError(
            "loading ONNX files needs onnx2torch: pip install 'fiberscope[onnx]'"
        ) from None
    finally:
        sys.modules.pop("torchvision", None)
        sys.modules.pop("torchvision.ops", None)
        sys.modules.update(saved)
    return onnx2torch


def _check_external_data(model: Any, path: Path) -> bool:
    """Refuse external-data references outside the model's folder; True if there are any."""
    from onnx import TensorProto

    base = path.resolve().parent
    found = False
    for tensor in list(model.graph.initializer):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        found = True
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (base / location).resolve()
        if not location or os.path.isabs(location) or base not in target.parents:
            raise UnsafeModelError(
                f"{path.name}: tensor {tensor.name!r} points to external data {location!r} "
                "outside the model's folder; refusing to read it"
            )
        if not target.is_file():
            raise ModelLoadError(f"{path.name}: external data file {location!r} is missing")
    return found


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
    if _check_external_data(model, path):
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(path.resolve().parent))
        except Exception as exc:
            raise ModelLoadError(f"{path.name}: cannot read its external data ({exc})") from None
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
        with warnings.catch_warnings(), _quiet_library_logs():
            warnings.simplefilter("ignore")
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
        TorchScript.
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
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
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
                torch.export.save(torch.export.export(model, (example,)), buf)
            elif suffix in (".pt", ".ts"):
                torch.jit.save(torch.jit.trace(model, example), buf)
            elif suffix == ".onnx":
                program = torch.onnx.export(model, (example,), dynamo=True, verbose=False)
                buf.write(program.model_proto.SerializeToString())
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
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


LOADERS: dict[str, Callable[..., nn.Module]] = {
    "onnx": load_onnx,
    "pt2": load_pt2,
    "torch": load_torch_file,
    "safetensors": load_safetensors,
    "pickle": refuse_pickle,
}
