"""fiberscope: see what a trained neural network cannot tell apart.

Given a network N and an input x0, fiberscope reconstructs the equivalence class
N^{-1}(N(x0)) through x0 (Benfenati & Marta, arXiv 2112.10583 and 2404.06104).

>>> import fiberscope as fs
>>> net = fs.load_model("surface_1")            # a bundled paper network
>>> res = fs.trace(net, [0.25, 0.25], step=0.0125)
>>> res.closed
True

The top level holds the verbs, their results, ``load_model``/``save_model`` and the errors.
Namespaces: ``fiberscope.outputs`` (what counts as "the same"), ``fiberscope.geometry``
(Jacobians, kernels, metrics), ``fiberscope.io`` (saving results), ``fiberscope.plot``
(figures). Everything is imported on first use, so ``import fiberscope`` is cheap.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import TYPE_CHECKING, Any

from ._version import __version__

_VERBS = {
    "trace": "algorithms.trace",
    "explore": "algorithms.explore",
    "preimage": "algorithms.preimage",
    "boundary_walk": "algorithms.boundary",
    "sample_class": "algorithms.sampling",
    "walk": "algorithms.walk",
    "traverse": "algorithms.traverse",
    "confuse": "algorithms.confuse",
}
_RESULTS = {
    name: "algorithms.results"
    for name in (
        "TraceResult",
        "ExploreResult",
        "PreimageResult",
        "BandRegion",
        "BoundaryWalkResult",
        "SampleResult",
        "WalkResult",
        "TraverseResult",
        "ConfusionResult",
    )
}
_ERRORS = {
    name: "errors"
    for name in (
        "FiberscopeError",
        "InputError",
        "ModelError",
        "ModelLoadError",
        "UnsafeModelError",
        "OutputFileError",
        "OutputSelectionError",
        "CheckpointError",
        "SingularPointError",
        "TargetNotReachedError",
        "Interrupted",
        "TraceInterrupted",
    )
}
_OTHER = {
    "load_model": "models",
    "save_model": "models",
    "bundled_networks": "models",
    "Snapshot": "engine.state",
    "run_many": "jobs",
}
_NAMESPACES = ("outputs", "geometry", "io", "plot", "engine", "models", "algorithms")
_LAZY = {**_VERBS, **_RESULTS, **_ERRORS, **_OTHER}

__all__ = [  # noqa: F822 - names are resolved lazily by __getattr__
    "BandRegion",
    "BoundaryWalkResult",
    "CheckpointError",
    "ConfusionResult",
    "ExploreResult",
    "FiberscopeError",
    "InputError",
    "Interrupted",
    "ModelError",
    "ModelLoadError",
    "OutputFileError",
    "OutputSelectionError",
    "PreimageResult",
    "SampleResult",
    "SingularPointError",
    "Snapshot",
    "TargetNotReachedError",
    "TraceInterrupted",
    "TraceResult",
    "TraverseResult",
    "UnsafeModelError",
    "WalkResult",
    "__version__",
    "boundary_walk",
    "bundled_networks",
    "confuse",
    "explore",
    "geometry",
    "io",
    "load_model",
    "outputs",
    "plot",
    "preimage",
    "run_many",
    "sample_class",
    "save_model",
    "trace",
    "traverse",
    "walk",
]


# inputs besides x0 that may also be files (the second positional argument of traverse)
_FILE_ARGUMENTS = {"traverse": ("target",), "confuse": ("toward",)}


def _read_if_file(value: Any) -> Any:
    """A path (str or os.PathLike) read as a point; a list of paths stacked; else as given."""
    paths = value if isinstance(value, list | tuple) and value else [value]
    if not all(isinstance(v, str | os.PathLike) for v in paths):
        return value
    import numpy as np

    from .io.inputs import read_point

    points = [read_point(v) for v in paths]
    return points[0] if paths is not value else np.stack(points)


def _with_files(verb: Any, extra: tuple[str, ...]) -> Any:
    """The verb, also taking image/array files (``.png``, ``.npy``, ``.pt``, ...) as inputs.

    The computing layers take tensors only (they never import ``io``); here, at the top, a
    path given as ``x0`` (or as ``target``/``toward``) is read with
    :func:`fiberscope.io.read_point` first, as the command line's ``--at`` does.
    """

    @functools.wraps(verb)
    def with_files(model: Any, x0: Any, *args: Any, **kwargs: Any) -> Any:
        x0 = _read_if_file(x0)
        if args and extra:
            args = (_read_if_file(args[0]), *args[1:])
        for key in extra:
            if key in kwargs:
                kwargs[key] = _read_if_file(kwargs[key])
        return verb(model, x0, *args, **kwargs)

    return with_files


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        if name in _VERBS:
            value = _with_files(value, _FILE_ARGUMENTS.get(name, ()))
        globals()[name] = value
        return value
    if name in _NAMESPACES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fiberscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import geometry, io, outputs, plot
    from .algorithms.boundary import boundary_walk
    from .algorithms.confuse import confuse
    from .algorithms.explore import explore
    from .algorithms.preimage import preimage
    from .algorithms.results import (
        BandRegion,
        BoundaryWalkResult,
        ConfusionResult,
        ExploreResult,
        PreimageResult,
        SampleResult,
        TraceResult,
        TraverseResult,
        WalkResult,
    )
    from .algorithms.sampling import sample_class
    from .algorithms.trace import trace
    from .algorithms.traverse import traverse
    from .algorithms.walk import walk
    from .engine.state import Snapshot
    from .errors import (
        CheckpointError,
        FiberscopeError,
        InputError,
        Interrupted,
        ModelError,
        ModelLoadError,
        OutputFileError,
        OutputSelectionError,
        SingularPointError,
        TargetNotReachedError,
        TraceInterrupted,
        UnsafeModelError,
    )
    from .jobs import run_many
    from .models import bundled_networks, load_model, save_model
