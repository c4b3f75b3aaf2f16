"""Geometry: Jacobians, pullback metrics and kernels, all computed in float64.

This layer knows nothing about tracing; the algorithms build on it.
"""

from .jacobian import ModelFunction, as_model_function, jacobian, value_and_jacobian
from .kernel import KernelInfo, kernel_basis, oriented_tangent
from .metric import check_output_metric, pullback_metric

__all__ = [
    "KernelInfo",
    "ModelFunction",
    "as_model_function",
    "check_output_metric",
    "jacobian",
    "kernel_basis",
    "oriented_tangent",
    "pullback_metric",
    "value_and_jacobian",
]
