"""``fiberscope.plot.plot``: draw any fiberscope result."""

from __future__ import annotations

from typing import Any


def plot(result: Any, model: Any = None, **kwargs: Any) -> Any:
    """Draw any fiberscope result (2-D inputs over a heat map of ``model``).

    Parameters
    ----------
    result : TraceResult, ExploreResult, PreimageResult, BoundaryWalkResult or SampleResult
        The result.
    model : callable, optional
        The network, for the heat map behind 2-D results.
    **kwargs
        Passed to the result's plot function (``title=``, ``ax=``, ...).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    InputError
        For an object that is not a fiberscope result.
    """
    from ..algorithms.results import (
        BoundaryWalkResult,
        ExploreResult,
        PreimageResult,
        SampleResult,
        TraceResult,
    )
    from ..errors import InputError
    from . import plots

    table = {
        TraceResult: plots.plot_trace,
        ExploreResult: plots.plot_explore,
        PreimageResult: plots.plot_preimage,
        BoundaryWalkResult: plots.plot_boundary_walk,
        SampleResult: plots.plot_samples,
    }
    for kind, fn in table.items():
        if isinstance(result, kind):
            return fn(result, model=model, **kwargs)
    raise InputError(
        f"cannot plot a {type(result).__name__}: fiberscope.plot.plot takes the result of a "
        "fiberscope verb"
    )
