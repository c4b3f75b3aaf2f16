"""The verbs, built on the engine: trace, explore, preimage, boundary_walk, sample_class."""

from .boundary import boundary_walk
from .explore import explore
from .preimage import preimage
from .results import (
    BandRegion,
    BoundaryWalkResult,
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
    "ExploreResult",
    "PreimageResult",
    "SampleResult",
    "TraceResult",
    "TraceStats",
    "boundary_walk",
    "explore",
    "preimage",
    "sample_class",
    "trace",
    "traverse",
    "TraverseResult",
    "walk",
    "WalkResult",
]
