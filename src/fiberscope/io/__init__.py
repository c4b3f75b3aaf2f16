"""Result files, checkpoints and atomic writes.

``fiberscope.io.save(result, path)`` writes any result (CSV + JSON sidecar).
"""

from .atomic import atomic_write, check_writable
from .results import load_trace_csv, save, save_trace, sidecar_path

__all__ = ["atomic_write", "check_writable", "load_trace_csv", "save", "save_trace", "sidecar_path"]
