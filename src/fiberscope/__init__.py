"""fiberscope: see what a trained neural network cannot tell apart.

Given a network N and an input x0, fiberscope reconstructs the equivalence class
N^{-1}(N(x0)) through x0 (Benfenati & Marta, arXiv 2112.10583 and 2404.06104).

>>> import fiberscope as fs
>>> net = fs.load_model("surface_1")            # a bundled paper network
>>> res = fs.trace(net, [0.25, 0.25], step=0.0125)
>>> res.closed
True
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    CheckpointError,
    FiberscopeError,
    InputError,
    ModelError,
    ModelLoadError,
    OutputFileError,
    OutputSelectionError,
    SingularPointError,
    TargetNotReachedError,
    TraceInterrupted,
    UnsafeModelError,
)

# The verbs, results, models and output maps import torch: they load on first use, so that
# ``import fiberscope`` (and ``fiberscope --help``) stays fast.
_LAZY = {
    "TraceResult": ".algorithms",
    "TraceStats": ".algorithms",
    "trace": ".algorithms",
    "BoundaryWalkResult": ".algorithms.boundary",
    "boundary_walk": ".algorithms.boundary",
    "ExploreResult": ".algorithms.explore",
    "explore": ".algorithms.explore",
    "BandRegion": ".algorithms.preimage",
    "PreimageResult": ".algorithms.preimage",
    "preimage": ".algorithms.preimage",
    "SampleResult": ".algorithms.sampling",
    "sample_class": ".algorithms.sampling",
    "jacobian": ".geometry",
    "kernel_basis": ".geometry",
    "oriented_tangent": ".geometry",
    "pullback_metric": ".geometry",
    "value_and_jacobian": ".geometry",
    "bundled_networks": ".models",
    "load_model": ".models",
    "output_map": ".models",
    "save_model": ".models",
    "BinaryScore": ".outputs",
    "ClassMargin": ".outputs",
    "ClassProbability": ".outputs",
    "LogitDifference": ".outputs",
    "OutputComponent": ".outputs",
    "Softmax": ".outputs",
}

if TYPE_CHECKING:
    from .algorithms import TraceResult, TraceStats, trace
    from .algorithms.boundary import BoundaryWalkResult, boundary_walk
    from .algorithms.explore import ExploreResult, explore
    from .algorithms.preimage import BandRegion, PreimageResult, preimage
    from .algorithms.sampling import SampleResult, sample_class
    from .geometry import (
        jacobian,
        kernel_basis,
        oriented_tangent,
        pullback_metric,
        value_and_jacobian,
    )
    from .models import bundled_networks, load_model, output_map, save_model
    from .outputs import (
        BinaryScore,
        ClassMargin,
        ClassProbability,
        LogitDifference,
        OutputComponent,
        Softmax,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fiberscope' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FiberscopeError",
    "InputError",
    "ModelError",
    "ModelLoadError",
    "OutputFileError",
    "SingularPointError",
    "TraceResult",
    "TraceStats",
    "__version__",
    "bundled_networks",
    "jacobian",
    "kernel_basis",
    "load_model",
    "oriented_tangent",
    "pullback_metric",
    "trace",
    "value_and_jacobian",
]

# Walks across classes (explore, preimage, classifier boundary walks, class sampling).
__all__ += [
    "BandRegion",
    "BinaryScore",
    "BoundaryWalkResult",
    "ClassMargin",
    "ClassProbability",
    "ExploreResult",
    "LogitDifference",
    "OutputComponent",
    "PreimageResult",
    "SampleResult",
    "Softmax",
    "TargetNotReachedError",
    "boundary_walk",
    "explore",
    "preimage",
    "sample_class",
]

# Model files, output selections and durable runs (docs/models.md, outputs.md, durable-runs.md).
__all__ += [
    "CheckpointError",
    "OutputSelectionError",
    "TraceInterrupted",
    "UnsafeModelError",
    "output_map",
    "save_model",
]
