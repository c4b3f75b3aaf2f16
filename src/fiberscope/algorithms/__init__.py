"""Algorithms built on the geometry layer: tracing (corrected and the authors' paper mode)."""

from .result import TraceResult, TraceStats
from .trace import trace

__all__ = ["TraceResult", "TraceStats", "trace"]
