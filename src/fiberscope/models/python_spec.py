"""Models given as Python objects: ``package.module:attr`` or ``path/to/file.py:attr``."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ModelLoadError
from .safety import check_regular_file, read_regular_file


def is_python_spec(spec: str) -> bool:
    """Whether ``spec`` looks like ``module:attr`` or ``file.py:attr``."""
    if ":" not in spec:
        return False
    left, _, right = spec.rpartition(":")
    if not left or not right or (len(left) == 1 and left.isalpha()):  # C:\ on Windows
        return False
    return right.replace(".", "").replace("_", "").isalnum()


def _failure(what: str, exc: BaseException) -> ModelLoadError:
    """One-line error for user code that raised (or tried to end the program) while loading."""
    if isinstance(exc, SystemExit):
        return ModelLoadError(
            f"{what} called sys.exit({exc.code!r}); a model or architecture may not end the program"
        )
    return ModelLoadError(f"{what} raised {exc.__class__.__name__}: {exc}")


@contextlib.contextmanager
def _on_import_path(folder: Path) -> Iterator[None]:
    """Put ``folder`` first on ``sys.path`` for the duration, then take it off again."""
    entry = str(folder)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)  # the first occurrence: the one added here


def _import_file(path: Path, target: str) -> Any:
    """Run a Python file as a fresh module (its folder on the import path while it runs)."""
    source = read_regular_file(path, "Python file")
    name = f"_fiberscope_user_{abs(hash(path.resolve()))}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        code = compile(source, str(path), "exec")
        exec(code, module.__dict__)  # the user's own model file, named by the user
    except KeyboardInterrupt:
        sys.modules.pop(name, None)
        raise
    except BaseException as exc:  # SystemExit included: user code may not end the program
        sys.modules.pop(name, None)
        raise _failure(f"importing {target}", exc) from None
    return module


def call_user_factory(factory: Any, what: str) -> Any:
    """Call a user's class or factory without arguments, with one-line errors.

    Parameters
    ----------
    factory : callable
        The class or factory.
    what : str
        How to name it in messages (``"calling nets.py:build()"``).

    Returns
    -------
    object
        What it returned.

    Raises
    ------
    ModelLoadError
        If it raised anything but ``KeyboardInterrupt`` (``SystemExit`` included).
    """
    try:
        return factory()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise _failure(what, exc) from None


def load_python_spec(spec: str) -> Any:
    """Import the object named by ``spec`` and build the model from it.

    The object may be an ``nn.Module`` instance, a callable model, an ``nn.Module`` subclass
    or a factory function; classes and factories are called without arguments. For
    ``file.py:attr`` the file's folder is first on the import path while the file runs and
    the factory is called (so it can import its sibling modules), and is taken off again
    afterwards. User code that raises, or calls ``sys.exit``, ends in a
    :class:`~fiberscope.errors.ModelLoadError`.

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
        if not path.exists():
            raise ModelLoadError(f"no such Python file: {target}")
        check_regular_file(path, "Python file")
        scope: Any = _on_import_path(path.resolve().parent)
    else:
        scope = contextlib.nullcontext()
    with scope:
        if target.endswith(".py"):
            module = _import_file(path, target)
        else:
            try:
                module = importlib.import_module(target)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                if isinstance(exc, SystemExit):
                    raise _failure(f"importing module {target!r}", exc) from None
                raise ModelLoadError(f"cannot import module {target!r}: {exc}") from None
        obj: Any = module
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ModelLoadError(f"{target} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if isinstance(obj, nn.Module):
            return obj
        if inspect.isclass(obj) or (callable(obj) and _takes_no_arguments(obj)):
            built = call_user_factory(obj, f"calling {spec}()")
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
