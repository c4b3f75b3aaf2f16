"""Result files and atomic writes."""

from .atomic import atomic_write, check_writable
from .results import load_trace_csv, save_trace, sidecar_path

__all__ = ["atomic_write", "check_writable", "load_trace_csv", "save_trace", "sidecar_path"]
