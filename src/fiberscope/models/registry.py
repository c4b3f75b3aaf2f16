"""A small registry of model formats, so new loaders slot in without touching callers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import FiberscopeError, ModelLoadError
from .image import (
    is_library_spec,
    library_architecture,
    library_model,
    load_hf_folder,
    wrap_library_model,
)
from .python_spec import is_python_spec, load_python_spec
from .safety import check_regular_file


@dataclass(frozen=True)
class ModelFormat:
    """One model file format.

    Attributes
    ----------
    name : str
        Short name used with ``format=`` / ``--format``.
    suffixes : tuple of str
        File suffixes (lower case, with the dot) that select this format.
    load : callable
        ``load(path) -> model``.
    description : str
        One line for help texts.
    """

    name: str
    suffixes: tuple[str, ...]
    load: Callable[[Path], Any]
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


_FORMATS: dict[str, ModelFormat] = {}


def register_format(fmt: ModelFormat) -> None:
    """Add (or replace) a model format in the registry.

    Parameters
    ----------
    fmt : ModelFormat
        The format.
    """
    _FORMATS[fmt.name] = fmt


def formats() -> dict[str, ModelFormat]:
    """The registered formats, by name."""
    return dict(_FORMATS)


#: The paper's networks shipped with fiberscope: one name each, stored as ``<name>.csv``.
BUNDLED_NAMES: tuple[str, ...] = (
    "surface_1",
    "surface_2",
    "thermodynamics",
    "thermo_softplus",
    "binary",
)


#: Bundled models that are not paper CSV files: name -> factory (module:function).
BUNDLED_MODELS: dict[str, str] = {"mnist_cnn": "fiberscope.models.zoo:mnist_cnn"}


def bundled_networks() -> dict[str, Path]:
    """The paper's networks shipped with fiberscope, by name.

    Returns
    -------
    dict of str to pathlib.Path
        ``surface_1``, ``surface_2``, ``thermodynamics``, ``thermo_softplus`` and ``binary``
        (see the README in ``fiberscope/models/bundled``).
    """
    root = resources.files("fiberscope.models.bundled")
    return {name: Path(str(root / f"{name}.csv")) for name in BUNDLED_NAMES}


def resolve_path(spec: str) -> Path:
    """Path of a model file: an existing file, or the name of a bundled network.

    Parameters
    ----------
    spec : str
        A path, or one of :data:`BUNDLED_NAMES`.

    Returns
    -------
    pathlib.Path
        The file.

    Raises
    ------
    ModelLoadError
        If it is neither.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return path
    bundled = bundled_networks()
    if spec in bundled:
        return bundled[spec]
    raise ModelLoadError(
        f"no such model file: {spec} (bundled networks: "
        f"{', '.join((*BUNDLED_NAMES, *BUNDLED_MODELS))})"
    )


def _load_with(fmt: ModelFormat, path: Path, arch: Any) -> Any:
    """Call a format's loader, passing ``arch`` only to formats that take one.

    A loader reports bad files as :class:`ModelLoadError`; anything else a parser raises on a
    malformed file (third-party parsers raise what they like) becomes one too, so a bad file
    never ends in a traceback.
    """
    if arch is not None and not fmt.options.get("arch"):
        raise ModelLoadError(
            f"--arch is only used with weights files (safetensors, state_dict); {path.name} is "
            f"a complete model ({fmt.name})"
        )
    try:
        if is_library_spec(arch):  # torchvision:NAME / timm:NAME, then its preprocessing
            net, prep = library_architecture(arch)
            return wrap_library_model(fmt.load(path, arch=net), arch, prep)
        return fmt.load(path) if arch is None else fmt.load(path, arch=arch)
    except FiberscopeError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit from user code included: never a silent exit
        first = " ".join(str(exc).split())[:160]
        raise ModelLoadError(
            f"cannot load {path.name} as {fmt.name}: {type(exc).__name__}: {first}"
        ) from None


def load_model(spec: Any, *, format: str | None = None, arch: Any = None) -> Any:
    """Load a model from a file, a bundled network name or a Python object spec.

    Parameters
    ----------
    spec : str, pathlib.Path, torch.nn.Module or callable
        - a model object: returned unchanged;
        - ``"package.module:attr"`` or ``"path/to/file.py:attr"``: a module instance, a model
          callable, or a class/factory called without arguments;
        - a file path, loaded by the format registered for its suffix (see :func:`formats`);
        - ``"torchvision:NAME"`` or ``"timm:NAME"``: that library's architecture with random
          weights, taking pixels in [0, 1] (:mod:`fiberscope.models.image`; with a weights
          file, pass it as ``arch=``);
        - a local Hugging Face folder (``config.json`` + ``model.safetensors``): an image
          classifier taking pixels in [0, 1];
        - the name of a bundled network: ``surface_1``, ``surface_2``, ``thermodynamics``,
          ``thermo_softplus`` or ``binary`` (the paper's), or ``mnist_cnn`` (a digit
          classifier on pixels in [0, 1], 97.90 % on held-out MNIST digits).
    format : str, optional
        Force a registered format instead of choosing by suffix.
    arch : str, class, callable or torch.nn.Module, optional
        Architecture for weights-only files (safetensors, a ``state_dict`` saved with
        ``torch.save``): ``"package.module:Factory"``, ``"file.py:Factory"``, a class or
        factory called without arguments, or a module to fill. Importing it runs that
        Python code, so it is never taken from the weights file itself.

    Returns
    -------
    callable
        The model (an ``nn.Module`` for every file format).

    Raises
    ------
    ModelLoadError
        If the file is missing, malformed, of an unknown format, or the spec fails.
    """
    if not isinstance(spec, (str, Path)):
        if arch is not None:
            raise ModelLoadError("arch= is only used with weights files (safetensors, state_dict)")
        if callable(spec):
            return spec
        raise ModelLoadError(f"cannot load a model from a {type(spec).__name__}")
    text = str(spec)
    if text in BUNDLED_MODELS and format is None and not Path(text).exists():
        if arch is not None:
            raise ModelLoadError(f"--arch is only used with weights files; {text} is bundled")
        module, _, attr = BUNDLED_MODELS[text].partition(":")
        import importlib

        return getattr(importlib.import_module(module), attr)()
    if format is None and is_library_spec(text) and not Path(text).exists():
        if arch is not None:
            raise ModelLoadError(
                f"{text} is an architecture; give the weights file as the model and "
                f"--arch {text} (Python: load_model(path, arch={text!r}))"
            )
        return library_model(text)
    if (
        format is None
        and isinstance(spec, str)
        and is_python_spec(text)
        and not Path(text).exists()
    ):
        if arch is not None:
            raise ModelLoadError(
                f"--arch is only used with weights files (safetensors, state_dict); {text} is "
                "already a complete Python model"
            )
        return load_python_spec(text)
    path = resolve_path(text)
    if path.is_dir():
        if (path / "config.json").is_file() and format is None and arch is None:
            return load_hf_folder(path)
        raise ModelLoadError(
            f"{path} is a directory, not a model file (a Hugging Face folder needs config.json "
            "and model.safetensors)"
        )
    check_regular_file(path, "model file")  # a named pipe or a device would block a read
    if format is not None:
        if format not in _FORMATS:
            raise ModelLoadError(
                f"unknown model format {format!r}; known: {', '.join(sorted(_FORMATS))}"
            )
        return _load_with(_FORMATS[format], path, arch)
    suffix = path.suffix.lower()
    for fmt in _FORMATS.values():
        if suffix in fmt.suffixes:
            return _load_with(fmt, path, arch)
    known = ", ".join(s for f in _FORMATS.values() for s in f.suffixes)
    raise ModelLoadError(
        f"don't know how to load {path.name}: unknown suffix {suffix or '(none)'!r} "
        f"(known: {known}, or a Python spec module:attr)"
    )
