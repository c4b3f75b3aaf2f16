"""fiberscope: see what a trained neural network cannot tell apart.

Given a network N and an input x0, fiberscope reconstructs the equivalence class
N^{-1}(N(x0)) through x0 (Benfenati & Marta, arXiv 2112.10583 and 2404.06104).

>>> import fiberscope as fs
>>> net = fs.load_model("surface_1")            # a bundled paper network
>>> res = fs.trace(net, [0.25, 0.25], step=0.0125)
>>> res.closed
True
"""

from ._version import __version__
from .algorithms import TraceResult, TraceStats, trace
from .algorithms.boundary import BoundaryWalkResult, boundary_walk
from .algorithms.explore import ExploreResult, explore
from .algorithms.preimage import BandRegion, PreimageResult, preimage
from .algorithms.sampling import SampleResult, sample_class
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
from .geometry import jacobian, kernel_basis, oriented_tangent, pullback_metric, value_and_jacobian
from .models import bundled_networks, load_model, output_map, save_model
from .outputs import (
    BinaryScore,
    ClassMargin,
    ClassProbability,
    LogitDifference,
    OutputComponent,
    Softmax,
)

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
