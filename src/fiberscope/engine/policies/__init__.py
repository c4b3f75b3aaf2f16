"""The registered direction policies (importing this package registers them)."""

from . import closest, paper, tangent, target, top_eigen, walk
from .closest import Closest
from .paper import Simec, Simexp, eigen2x2, eigenvector
from .tangent import Tangent
from .target import Target
from .top_eigen import TopEigen
from .walk import PaperWalk, RandomWalk, Uniform

__all__ = [
    "PaperWalk",
    "RandomWalk",
    "Uniform",
    "walk",
    "Closest",
    "closest",
    "Simec",
    "Simexp",
    "Tangent",
    "Target",
    "TopEigen",
    "eigen2x2",
    "eigenvector",
    "paper",
    "tangent",
    "target",
    "top_eigen",
]
