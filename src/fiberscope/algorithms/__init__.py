"""The verbs, built on the engine: trace, explore, preimage, boundary_walk, sample_class, walk,
traverse, confuse."""

from .boundary import boundary_walk
from .confuse import confuse
from .explore import explore
from .preimage import preimage
from .results import (
    BandRegion,
    BoundaryWalkResult,
    ConfusionResult,
    ExploreResult,
    PreimageResult,
    SampleResult,
    TraceResult,
    TraceStats,
    TraverseResult,
    WalkResult,
)
from .sampling import sample_class
from .trace import trace
from .traverse import traverse
from .walk import walk

__all__ = [
    "BandRegion",
    "BoundaryWalkResult",
    "ConfusionResult",
    "ExploreResult",
    "PreimageResult",
    "SampleResult",
    "TraceResult",
    "TraceStats",
    "boundary_walk",
    "confuse",
    "explore",
    "preimage",
    "sample_class",
    "trace",
    "traverse",
    "TraverseResult",
    "walk",
    "WalkResult",
]
