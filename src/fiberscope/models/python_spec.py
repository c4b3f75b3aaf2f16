"""Models given as Python objects: ``package.module:attr`` or ``path/to/file.py:attr``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ModelLoadError


def is_python_spec(spec: str) -> bool:
    """Whether ``spec`` looks like ``module:attr`` or ``file.py:attr``."""
    if ":" not in spec:
        return False
    left, _, right = spec.rpartition(":")
    if not left or not right or (len(left) == 1 and left.isalpha()):  # C:\ on Windows
        return False
    return right.replace(".", "").replace("_", "").isalnum()


def load_python_spec(spec: str) -> Any:
    """Import the object named by ``spec`` and build the model from it.

    The object may be an ``nn.Module`` instance, a callable model, an ``nn.Module`` subclass
    or a factory function; classes and factories are called without arguments.

    Parameters
    ----------
    spec : str
        ``package.module:attr`` or ``path/to/file.py:attr`` (``attr`` may be dotted).

    Returns
    -------
    callable
        The model.

    Raises
    ------
    ModelLoadError
        If the module cannot be imported, the attribute is missing or building it fails.
    """
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ModelLoadError(f"no such Python file: {target}")
        name = f"_fiberscope_user_{abs(hash(path.resolve()))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ModelLoadError(f"cannot import {target} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise ModelLoadError(
                f"importing {target} raised {exc.__class__.__name__}: {exc}"
            ) from None
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise ModelLoadError(f"cannot import module {target!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelLoadError(f"{target} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        return obj
    if inspect.isclass(obj) or (callable(obj) and _takes_no_arguments(obj)):
        try:
            built = obj()
        except Exception as exc:
            raise ModelLoadError(
                f"calling {spec}() raised {exc.__class__.__name__}: {exc}"
            ) from None
        if not callable(built):
            raise ModelLoadError(f"{spec}() returned {type(built).__name__}, not a model")
        return built
    if callable(obj):
        return obj
    raise ModelLoadError(f"{spec} is a {type(obj).__name__}, not a model or a factory")


def _takes_no_arguments(fn: Any) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in sig.parameters.values()
    )
