"""Result files, checkpoints, atomic writes, and start points read from files.

``fiberscope.io.save(result, path)`` writes any result (CSV + JSON sidecar; a walk or a
traversal as ``.npz`` + JSON sidecar + CSV table; a confusion search as ``.npz`` + JSON),
``fiberscope.io.load_walk(path)`` reads a walk back, and
``fiberscope.io.inputs.read_point(path)`` reads a start point (``.npy``, ``.pt``, images, text).
"""

from .atomic import atomic_write, check_writable
from .inputs import read_point
from .results import (
    load_trace_csv,
    load_walk,
    save,
    save_confusion,
    save_trace,
    save_traverse,
    save_walk,
    sidecar_path,
)

__all__ = [
    "atomic_write",
    "check_writable",
    "load_trace_csv",
    "load_walk",
    "read_point",
    "save",
    "save_confusion",
    "save_trace",
    "save_traverse",
    "save_walk",
    "sidecar_path",
]
