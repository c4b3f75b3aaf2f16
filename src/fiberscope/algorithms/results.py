"""Result objects: plain dataclasses holding tensors plus metadata.

They neither save nor plot themselves: :func:`fiberscope.io.save` writes any of them and
:func:`fiberscope.plot.plot` draws any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..engine.stats import Stats

#: Solver statistics (the engine's counters), under the name earlier releases used.
TraceStats = Stats


@dataclass
class TraceResult:
    """A traced equivalence class (one connected curve through the start).

    Attributes
    ----------
    points : torch.Tensor
        ``(K, *input_shape)`` points ordered along the curve, the start included.
    outputs : torch.Tensor
        ``(K, m)`` model outputs at the points.
    branch : torch.Tensor
        ``(K,)`` int: ``-1`` backward branch, ``0`` the start, ``+1`` forward branch.
    arclength : torch.Tensor
        ``(K,)`` signed arclength from the start along the curve (negative on the backward
        branch), increasing along ``points``.
    start_index : int
        Row of ``points`` that is the start.
    y0 : torch.Tensor
        Output at the start, ``(m,)``.
    closed : bool
        The class is a closed loop that was traced once around; ``points`` is then a closed
        polygon (the last point connects back to the first).
    stop_reasons : dict
        Why each branch stopped: ``"closed"``, ``"boundary"``, ``"singular"``,
        ``"max_steps"``, ``"nonfinite"`` (the model returns NaN/inf just ahead), or
        ``"interrupted"`` (partial result of a stopped trace).
    stop_points : dict
        Where each branch stopped (flat list of floats).
    messages : dict
        Human-readable details per branch (e.g. why a point was judged singular).
    drift : float
        ``max_k |N(x_k) - N(x0)|`` over all points and outputs.
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        Every parameter of the run (JSON-serialisable).
    stats : Stats
        Solver statistics.
    energy : dict
        Paper mode only: the authors' "energy" per branch.
    conditioning : torch.Tensor or None
        ``(K,)`` ``s_min / s_max`` of J (for ``m = 1``: ``|grad N|``) at each point.
    complete : bool
        False for the partial result of an interrupted trace (a branch then has the stop
        reason ``"interrupted"``).
    """

    points: Tensor
    outputs: Tensor
    branch: Tensor
    arclength: Tensor
    start_index: int
    y0: Tensor
    closed: bool
    stop_reasons: dict[str, str]
    stop_points: dict[str, list[float]]
    drift: float
    method: str
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    messages: dict[str, str] = field(default_factory=dict)
    energy: dict[str, float] = field(default_factory=dict)
    conditioning: Tensor | None = None
    complete: bool = True

    @property
    def length(self) -> float:
        """Total arclength of the traced curve (including the closing segment of a loop)."""
        total = float(self.arclength[-1] - self.arclength[0])
        if self.closed and self.points.shape[0] > 1:
            flat = self.points.reshape(self.points.shape[0], -1)
            total += float(torch.linalg.vector_norm(flat[-1] - flat[0]))
        return total

    @property
    def start(self) -> Tensor:
        """The start point."""
        return self.points[self.start_index]

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict (what the CLI prints and the JSON sidecar holds)."""
        return {
            "method": self.method,
            "points": len(self),
            "closed": self.closed,
            "stop_reasons": dict(self.stop_reasons),
            "drift": self.drift,
            "length": self.length,
            "stats": self.stats.as_dict(),
        }


@dataclass
class ExploreResult:
    """A walk from a start across classes (the gradient line, or the authors' SiMExp-1D).

    Attributes
    ----------
    points : torch.Tensor
        ``(K, *input_shape)`` points along the path, the start first.
    outputs : torch.Tensor
        ``(K, m)`` outputs at the points.
    arclength : torch.Tensor
        ``(K,)`` arclength from the start (polyline through the points).
    y0 : torch.Tensor
        Output at the start ``(m,)``.
    target : torch.Tensor or None
        The requested output ``(m,)`` (``y0 +- epsilon`` for one output with ``epsilon``);
        None for several outputs with ``epsilon``.
    epsilon : float or None
        The requested output change, when given.
    reached : bool
        The target (or the ``epsilon`` change) was reached.
    stop_reason : str
        ``"reached"``, ``"boundary"``, ``"singular"`` or ``"max_steps"``.
    stop_point : list of float
        The last point (flat).
    message : str
        Human-readable detail.
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        Every parameter (JSON-ready).
    stats : Stats
        Solver statistics.
    energy : float or None
        Paper mode: the authors' energy ``sum delta v^T g v``.
    """

    points: Tensor
    outputs: Tensor
    arclength: Tensor
    y0: Tensor
    target: Tensor | None
    epsilon: float | None
    reached: bool
    stop_reason: str
    stop_point: list[float]
    message: str
    method: str
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    energy: float | None = None
    complete: bool = True

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def start(self) -> Tensor:
        """The start point."""
        return self.points[0]

    @property
    def end(self) -> Tensor:
        """The last point of the path."""
        return self.points[-1]

    @property
    def end_output(self) -> Tensor:
        """The output at the last point ``(m,)``."""
        return self.outputs[-1]

    @property
    def length(self) -> float:
        """Arclength of the path (sum of its segments)."""
        return float(self.arclength[-1])

    @property
    def distance(self) -> float:
        """Straight-line distance from the start to the last point."""
        d = (self.end - self.start).reshape(-1)
        return float(torch.linalg.vector_norm(d))

    @property
    def residual(self) -> float:
        """``max |N(end) - target|`` (NaN without a target)."""
        if self.target is None:
            return math.nan
        return float((self.end_output - self.target).abs().max())

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "method": self.method,
            "points": len(self),
            "reached": self.reached,
            "stop_reason": self.stop_reason,
            "y0": self.y0.tolist(),
            "target": None if self.target is None else self.target.tolist(),
            "end_output": self.end_output.tolist(),
            "residual": self.residual,
            "length": self.length,
            "distance": self.distance,
            "end": self.end.reshape(-1).tolist(),
            "stats": self.stats.as_dict(),
        }


@dataclass
class BandRegion:
    """The band ``low <= N <= high`` inside a 2-D box, measured on a grid and by polygon.

    Attributes
    ----------
    xs, ys : numpy.ndarray
        Grid axes ``(R,)``.
    values : numpy.ndarray
        ``(R, R)`` network values, ``values[i, j]`` at ``(xs[j], ys[i])``.
    mask : numpy.ndarray
        ``(R, R)`` bool: grid nodes in the band *and* in a connected component that a traced
        level touches (the region reachable from the start).
    band_mask : numpy.ndarray
        ``(R, R)`` bool: every grid node with ``low <= N <= high``.
    low, high : float
        Output range of the band.
    area : float
        Area of ``mask`` (trapezoid weights on the grid nodes).
    band_area : float
        Area of ``band_mask`` (all components inside the box).
    polygon : list of numpy.ndarray or None
        Rings ``(P, 2)`` bounding the region from the traced extreme levels: ``[outer,
        inner]`` for two nested closed levels, one ring stitched with the box boundary for
        two open levels; None when the extreme levels do not bound a simple region.
    polygon_area : float or None
        Area enclosed by ``polygon`` (outer minus inner).
    boundary_distance : dict
        For the lowest and highest traced levels: ``max`` and ``mean`` distance of their
        points to the network's own contour (marching squares on this grid) at the requested
        interval's ends: ``{"low": {...}, "high": {...}}``.
    resolution : int
        Grid points per axis.
    """

    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    mask: np.ndarray
    band_mask: np.ndarray
    low: float
    high: float
    area: float
    band_area: float
    polygon: list[np.ndarray] | None
    polygon_area: float | None
    boundary_distance: dict[str, dict[str, float]]
    resolution: int

    def summary(self) -> dict[str, Any]:
        """Areas and distances as a plain dict."""
        return {
            "low": self.low,
            "high": self.high,
            "area": self.area,
            "band_area": self.band_area,
            "polygon_area": self.polygon_area,
            "boundary_distance": self.boundary_distance,
            "resolution": self.resolution,
        }


@dataclass
class PreimageResult:
    """A family of traced classes filling the preimage of an output interval.

    Attributes
    ----------
    interval : torch.Tensor
        ``(2, m)``: the requested ends ``a`` and ``b``.
    y0 : torch.Tensor
        Output at the start ``(m,)``.
    levels : torch.Tensor
        ``(L, m)`` output of each traced level (corrected: the targets, reached exactly;
        paper: the output at each level's start).
    traces : list of TraceResult
        One trace per level, in the order of ``levels``.
    starts : torch.Tensor
        ``(L, *input_shape)`` where each level was entered.
    path : torch.Tensor
        ``(P, *input_shape)`` the exploration path across the levels, ordered from the lowest
        output to the highest (corrected: the gradient line through ``x0``; paper: the SiMExp
        steps of both sweeps).
    path_outputs : torch.Tensor
        ``(P, m)`` outputs along ``path``.
    region : BandRegion or None
        The band and its area (2-D inputs only).
    method : str
        ``"corrected"`` or ``"paper"``.
    options : dict
        Every parameter (JSON-ready).
    stats : Stats
        Statistics of the walks and traces together.
    unreached : list of dict
        Corrected with ``partial=True``: requested levels that could not be reached, with
        the reason.
    sweeps : list of int
        Paper mode: the sweep (0 or 1) of each level.
    final_points : torch.Tensor or None
        Paper mode: where each sweep ended (the last level reached, never traced).
    final_outputs : torch.Tensor or None
        Paper mode: outputs at ``final_points``.
    complete : bool
        False for the partial result of an interrupted run (``fs.Interrupted.result``):
        ``path`` is the part walked so far; once the levels are being traced, ``traces`` holds
        every level with the part of its class traced so far (each marked incomplete), and
        before that none.
    """

    interval: Tensor
    y0: Tensor
    levels: Tensor
    traces: list[TraceResult]
    starts: Tensor
    path: Tensor
    path_outputs: Tensor
    region: BandRegion | None
    method: str
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    unreached: list[dict[str, Any]] = field(default_factory=list)
    sweeps: list[int] = field(default_factory=list)
    final_points: Tensor | None = None
    final_outputs: Tensor | None = None
    complete: bool = True

    def __len__(self) -> int:
        return len(self.traces)

    @property
    def covered(self) -> tuple[float, float]:
        """Lowest and highest traced level (first output; NaN before any is traced)."""
        if self.levels.shape[0] == 0:
            return math.nan, math.nan
        lv = self.levels[:, 0]
        return float(lv.min()), float(lv.max())

    @property
    def drift(self) -> float:
        """Largest ``|N(x) - level|`` over every traced point."""
        return max((t.drift for t in self.traces), default=0.0)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        out: dict[str, Any] = {
            "kind": "preimage",
            "method": self.method,
            "interval": self.interval.tolist(),
            "y0": self.y0.tolist(),
            "levels": self.levels.tolist(),
            "covered": list(self.covered),
            "closed": [t.closed for t in self.traces],
            "stop_reasons": [t.stop_reasons for t in self.traces],
            "points": [len(t) for t in self.traces],
            "drift": self.drift,
            "unreached": self.unreached,
            "stats": self.stats.as_dict(),
        }
        if self.region is not None:
            out["region"] = self.region.summary()
        if self.final_outputs is not None:
            out["final_outputs"] = self.final_outputs.tolist()
            out["sweeps"] = self.sweeps
        return out


@dataclass
class BoundaryWalkResult:
    """A walk from a start to the decision boundary and past it.

    Attributes
    ----------
    path : ExploreResult
        The whole gradient path, start -> boundary -> flipped point.
    boundary_index : int
        Row of ``path.points`` that lies on the boundary.
    threshold : float
        Score at which the decision flips.
    beyond : float
        How far past the threshold (in score units) the path goes.
    side : int
        ``+1`` if the start's score is above the threshold, ``-1`` below.
    decision_start, decision_flip : int or None
        The decision (class) at the start and at the flipped point, when the output map
        defines one (for a bare scalar score: 1 above the threshold, 0 below).
    closest_point : torch.Tensor
        The boundary point closest to the start (input shape).
    closest_distance : float
        ``||closest_point - x0||``: the smallest perturbation that reaches the boundary
        (locally; never more than ``boundary_distance``).
    closest_kkt : float
        ``sin`` of the angle between ``closest_point - x0`` and the score's gradient there
        (0 at an exact local minimiser).
    closest_converged : bool
        The projection iteration met its tolerance.
    options : dict
        Every parameter (JSON-ready).
    stats : Stats
        Solver statistics.
    complete : bool
        False for the partial result of an interrupted walk (``fs.Interrupted.result``):
        ``path`` is the path walked so far; when it has not reached the boundary yet,
        ``boundary_index`` and ``closest_point`` are None and the distances NaN; before the
        closest-point search has converged, ``closest_point`` is where it had got to (on the
        boundary) and ``closest_converged`` is False; when the path has not reached the
        flipped level, ``decision_flip`` is None.
    """

    path: ExploreResult
    boundary_index: int | None
    threshold: float
    beyond: float
    side: int
    decision_start: int | None
    decision_flip: int | None
    closest_point: Tensor | None
    closest_distance: float
    closest_kkt: float
    closest_converged: bool
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    complete: bool = True

    @property
    def y0(self) -> float:
        """Score at the start."""
        return float(self.path.y0[0])

    @property
    def boundary_point(self) -> Tensor | None:
        """Where the gradient path meets the boundary (input shape; None before it does)."""
        if self.boundary_index is None:
            return None
        return self.path.points[self.boundary_index]

    @property
    def boundary_output(self) -> float:
        """Score at the boundary point (the threshold, to ``tol``; NaN before it is reached)."""
        if self.boundary_index is None:
            return math.nan
        return float(self.path.outputs[self.boundary_index, 0])

    @property
    def boundary_length(self) -> float:
        """Arclength of the gradient path from the start to the boundary (NaN before it)."""
        if self.boundary_index is None:
            return math.nan
        return float(self.path.arclength[self.boundary_index])

    @property
    def boundary_distance(self) -> float:
        """Straight-line distance from the start to the path's boundary point (NaN before it)."""
        if self.boundary_index is None:
            return math.nan
        d = (self.path.points[self.boundary_index] - self.path.start).reshape(-1)
        return float(torch.linalg.vector_norm(d))

    @property
    def flip_point(self) -> Tensor:
        """The end of the path, decided the other way (input shape)."""
        return self.path.end

    @property
    def flip_output(self) -> float:
        """Score at the flipped point."""
        return float(self.path.end_output[0])

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "kind": "boundary_walk",
            "y0": self.y0,
            "threshold": self.threshold,
            "side": self.side,
            "decision_start": self.decision_start,
            "decision_flip": self.decision_flip,
            "boundary_point": None
            if self.boundary_index is None
            else self.path.points[self.boundary_index].reshape(-1).tolist(),
            "boundary_output": self.boundary_output,
            "boundary_length": self.boundary_length,
            "boundary_distance": self.boundary_distance,
            "flip_point": self.flip_point.reshape(-1).tolist(),
            "flip_output": self.flip_output,
            "flip_length": self.path.length,
            "closest_point": None
            if self.closest_point is None
            else self.closest_point.reshape(-1).tolist(),
            "closest_distance": self.closest_distance,
            "closest_kkt": self.closest_kkt,
            "closest_converged": self.closest_converged,
            "points": len(self.path),
            "stats": self.stats.as_dict(),
        }


@dataclass
class SampleResult:
    """Points spread evenly by arclength along one class.

    Attributes
    ----------
    points : torch.Tensor
        ``(N, *input_shape)`` samples in order along the class.
    outputs : torch.Tensor
        ``(N, m)`` outputs (all equal to ``y0`` to ``tol``).
    arclength : torch.Tensor
        ``(N,)`` nominal arclength of each sample along the traced class (from its first end,
        or from the start for a closed class).
    y0 : torch.Tensor
        The class's output ``(m,)``.
    closed : bool
        The class is a loop (samples go once around it).
    length : float
        Length of the traced class.
    spacing : float
        Nominal arclength between neighbouring samples.
    trace : TraceResult
        The trace the samples were taken from.
    options : dict
        Every parameter (JSON-ready).
    stats : Stats
        Statistics of the trace and the projections.
    complete : bool
        False for the partial result of an interrupted run (``fs.Interrupted.result``): the
        samples are spread along the part of the class traced so far (``trace``, itself
        marked incomplete).
    """

    points: Tensor
    outputs: Tensor
    arclength: Tensor
    y0: Tensor
    closed: bool
    length: float
    spacing: float
    trace: TraceResult
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    complete: bool = True

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def residual(self) -> float:
        """``max |N(x) - y0|`` over the samples."""
        return float((self.outputs - self.y0).abs().max())

    @property
    def gaps(self) -> Tensor:
        """``(N-1,)`` straight-line distances between neighbouring samples (``N`` for a loop)."""
        flat = self.points.reshape(len(self), -1)
        if self.closed:
            flat = torch.cat((flat, flat[:1]))
        return torch.linalg.vector_norm(flat[1:] - flat[:-1], dim=1)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        g = self.gaps
        return {
            "kind": "samples",
            "points": len(self),
            "closed": self.closed,
            "length": self.length,
            "spacing": self.spacing,
            "gap_min": float(g.min()) if g.numel() else 0.0,
            "gap_max": float(g.max()) if g.numel() else 0.0,
            "residual": self.residual,
            "y0": self.y0.tolist(),
            "stop_reasons": dict(self.trace.stop_reasons),
            "stats": self.stats.as_dict(),
        }


@dataclass
class WalkResult:
    """Samples of the class of one start: inputs the model cannot tell from it.

    Attributes
    ----------
    samples : torch.Tensor
        ``(chains, S, *input_shape)`` saved samples of each chain (the start is not included;
        a chain that stopped early has fewer valid rows, see ``counts``).
    outputs : torch.Tensor
        ``(chains, S, m)`` their outputs.
    counts : list of int
        Valid samples per chain.
    x0 : torch.Tensor
        The start (input shape).
    y0 : torch.Tensor
        Output at the start ``(m,)``.
    residual : float
        ``max |N(x) - N(x0)|`` over every saved sample.
    accepted : list of int
        Accepted steps per chain.
    rejections : dict
        Per reason (``"projection"``, ``"metropolis"``, ``"reverse"``, ``"box"``,
        ``"step"``): rejected proposals per chain.
    path_length : list of float
        Length of each chain's path through the inputs.
    rank_changes : list of int
        Changes of the numerical rank of ``J`` met by each chain (ReLU regions, ...).
    seeds : list of int
        The seed of each chain.
    stop_reasons : list of str
        Why each chain stopped (``"max_steps"`` when it took all its steps).
    method : str
        ``"corrected"``, ``"uniform"`` or ``"paper"``.
    options : dict
        Every parameter (JSON-ready).
    stats : Stats
        Solver statistics.
    pseudolength : list of float or None
        Paper mode: the authors' pseudolength per chain.
    complete : bool
        False for the partial result of an interrupted walk.
    """

    samples: Tensor
    outputs: Tensor
    counts: list[int]
    x0: Tensor
    y0: Tensor
    residual: float
    accepted: list[int]
    rejections: dict[str, list[int]]
    path_length: list[float]
    rank_changes: list[int]
    seeds: list[int]
    stop_reasons: list[str]
    method: str
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    pseudolength: list[float] | None = None
    complete: bool = True

    @property
    def chains(self) -> int:
        """Number of chains."""
        return int(self.samples.shape[0])

    def __len__(self) -> int:
        return int(sum(self.counts))

    def flat(self) -> tuple[Tensor, Tensor]:
        """All valid samples and outputs of every chain, stacked: ``(N, *shape)``, ``(N, m)``."""
        pts = [self.samples[c, : self.counts[c]] for c in range(self.chains)]
        outs = [self.outputs[c, : self.counts[c]] for c in range(self.chains)]
        return torch.cat(pts), torch.cat(outs)

    @property
    def acceptance(self) -> float:
        """Fraction of proposals accepted (all chains)."""
        acc = sum(self.accepted)
        rej = sum(sum(v) for v in self.rejections.values())
        return acc / max(1, acc + rej)

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "kind": "walk",
            "method": self.method,
            "chains": self.chains,
            "samples": list(self.counts),
            "residual": self.residual,
            "acceptance": self.acceptance,
            "accepted": list(self.accepted),
            "rejections": {k: list(v) for k, v in self.rejections.items()},
            "path_length": list(self.path_length),
            "rank_changes": list(self.rank_changes),
            "seeds": list(self.seeds),
            "stop_reasons": list(self.stop_reasons),
            "pseudolength": self.pseudolength,
            "stats": self.stats.as_dict(),
        }


@dataclass
class TraverseResult:
    """A walk on the class of a start toward a target: the class point nearest the target.

    Attributes
    ----------
    points : torch.Tensor
        ``(K, *input_shape)`` the path, the start first; every point is on the class of the
        start (and in the box).
    outputs : torch.Tensor
        ``(K, m)`` outputs along the path (all ``y0`` to the tolerance).
    distance : torch.Tensor
        ``(K,)`` distance from each point to the target (decreasing).
    target : torch.Tensor
        The target (input shape).
    y0 : torch.Tensor
        Output at the start ``(m,)``.
    target_output : torch.Tensor
        The model's output at the target ``(m,)``.
    stop_reason : str
        ``"minimum"`` (a local minimum of the distance on the class), ``"singular"`` (the
        Jacobian lost rank), ``"boundary"`` (the box, when its faces are not constraints),
        ``"max_steps"``.
    message : str
        Details.
    kkt : float
        ``|P (target - end)| / |target - end|``: the part of the way to the target that is still
        tangent to the class at the end (0 at an exact minimum; with a box: of the free
        coordinates).
    residual : float
        ``max |N(x) - y0|`` over the path.
    options : dict
        Every parameter (JSON-ready).
    stats : Stats
        Solver statistics.
    complete : bool
        False for the partial result of an interrupted walk.
    """

    points: Tensor
    outputs: Tensor
    distance: Tensor
    target: Tensor
    y0: Tensor
    target_output: Tensor
    stop_reason: str
    message: str
    kkt: float
    residual: float
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    complete: bool = True

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def start(self) -> Tensor:
        """The start."""
        return self.points[0]

    @property
    def end(self) -> Tensor:
        """The class point nearest the target that the walk found."""
        return self.points[-1]

    @property
    def start_distance(self) -> float:
        """Distance from the start to the target."""
        return float(self.distance[0])

    @property
    def end_distance(self) -> float:
        """Distance from the end to the target."""
        return float(self.distance[-1])

    @property
    def length(self) -> float:
        """Length of the path."""
        flat = self.points.reshape(len(self), -1)
        return float(torch.linalg.vector_norm(flat[1:] - flat[:-1], dim=1).sum())

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "kind": "traverse",
            "points": len(self),
            "start_distance": self.start_distance,
            "end_distance": self.end_distance,
            "length": self.length,
            "stop_reason": self.stop_reason,
            "kkt": self.kkt,
            "residual": self.residual,
            "y0": self.y0.tolist(),
            "target_output": self.target_output.tolist(),
            "stats": self.stats.as_dict(),
        }


@dataclass
class ConfusionResult:
    """The shortest change of an input that changes a classifier's decision (``fs.confuse``).

    Attributes
    ----------
    start : torch.Tensor
        The input ``x0`` (input shape).
    point : torch.Tensor
        The nearest point of the decision boundary found (input shape, inside the box).
    flipped : torch.Tensor
        A point just past ``point`` (along ``point - x0``, in the box) that the classifier
        decides as ``decision_flipped``.
    distance : float
        ``|point - x0|``: the size of the smallest change found.
    kkt : float
        First-order optimality residual at ``point``: ``|P (x0 - point)| / |x0 - point|`` with
        ``P`` the projection on the boundary's tangent space (free coordinates of the box);
        0 at an exact local minimiser.
    boundary_residual : float
        ``|s(point)|``, the start class's margin at ``point`` (0 on the boundary).
    decision_start : int
        The class of ``x0`` (argmax of the outputs).
    decision_flip : int
        The class that ties with it at ``point`` (the runner-up): the class across.
    decision_flipped : int
        The decision at ``flipped``.
    outputs_start, outputs_point, outputs_flipped : torch.Tensor
        Raw outputs ``(m,)`` at the three points.
    path : torch.Tensor
        ``(K, *input_shape)``: the descent on the boundary that found ``point``, from its seed.
    line : torch.Tensor
        ``(L, *input_shape)``: the confusion path, the straight way ``x0 -> point`` in even
        steps, then ``flipped``.
    line_outputs : torch.Tensor
        ``(L, m)`` raw outputs along ``line``.
    seed_distances : list of float
        Distances from ``x0`` of the boundary crossings the descents started from.
    end_distances : list of float
        Distances from ``x0`` where each descent ended.
    stop_reason : str
        Why the winning descent stopped (``"minimum"``, ``"max_steps"``, ``"singular"``;
        ``"interrupted"`` in a partial result).
    message : str
        The same, in words.
    options : dict
        Every parameter (JSON-ready).
    stats : Stats
        Solver statistics.
    complete : bool
        False for the partial result of an interrupted search (``fs.Interrupted.result``):
        ``point`` is the nearest boundary point the descents had reached, not yet a local
        minimiser.
    """

    start: Tensor
    point: Tensor
    flipped: Tensor
    distance: float
    kkt: float
    boundary_residual: float
    decision_start: int
    decision_flip: int
    decision_flipped: int
    outputs_start: Tensor
    outputs_point: Tensor
    outputs_flipped: Tensor
    path: Tensor
    line: Tensor
    line_outputs: Tensor
    seed_distances: list[float]
    end_distances: list[float]
    stop_reason: str
    message: str
    options: dict[str, Any]
    stats: Stats = field(default_factory=Stats)
    complete: bool = True

    def __len__(self) -> int:
        return int(self.path.shape[0])

    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict."""
        return {
            "kind": "confuse",
            "distance": self.distance,
            "kkt": self.kkt,
            "boundary_residual": self.boundary_residual,
            "decision_start": self.decision_start,
            "decision_flip": self.decision_flip,
            "decision_flipped": self.decision_flipped,
            "outputs_start": self.outputs_start.tolist(),
            "outputs_point": self.outputs_point.tolist(),
            "outputs_flipped": self.outputs_flipped.tolist(),
            "seed_distances": list(self.seed_distances),
            "end_distances": list(self.end_distances),
            "stop_reason": self.stop_reason,
            "message": self.message,
            "path_points": len(self),
            "stats": self.stats.as_dict(),
        }
