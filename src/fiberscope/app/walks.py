"""Walks on n-D classes for the app: one adapter between the page and the library.

The library's ``fs.walk`` (n-D classes) and ``fs.traverse`` (toward a target) are being
built. The app is written against their documented calls::

    fs.walk(model, x0, samples=..., step=..., chains=..., bounds=(lo, hi), seed=...)
        -> samples (chains, samples, *input_shape) and their outputs
    fs.traverse(model, x0, target, step=..., max_steps=..., bounds=(lo, hi))
        -> the path of points on the class of x0, toward target

:func:`walk` and :func:`traverse` below call the library's verbs when they exist
(``USE_LIBRARY``: the one switch) and otherwise a small projected walk of the app's own
(:func:`_fallback_walk`, :func:`_fallback_traverse`): a direction projected onto ker J (with
the pixels held at a bound of the box joining the constraints), a step, and Gauss-Newton back
to the level, in float64. Either way the page receives a :class:`WalkView`.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError, ModelError
from ..geometry import as_model_function

#: Use ``fiberscope.walk`` / ``fiberscope.traverse`` as soon as the library has them.
USE_LIBRARY = True

Progress = Callable[[int, int], None]
Stop = Callable[[], bool]


class WalkCancelled(Exception):
    """Raised inside a walk when the page asked to stop it."""


@dataclass
class WalkView:
    """What the page shows of a walk or a traversal.

    Attributes
    ----------
    samples : torch.Tensor
        ``(chains, K, *input_shape)`` float64 points on the class (a traversal is one chain:
        its path).
    outputs : torch.Tensor
        ``(chains, K, m)`` the model's outputs there.
    x0 : torch.Tensor
        The start, in the input shape.
    y0 : torch.Tensor
        ``(m,)`` the output at the start.
    kind : str
        ``"walk"`` or ``"traverse"``.
    engine : str
        ``"fiberscope.walk"`` / ``"fiberscope.traverse"`` (the library) or ``"app fallback"``.
    info : dict
        Numbers for the page (residual, steps, rejections, distances, stop reason...).
    result : object or None
        The library's own result object, when the library ran the walk (saved with
        ``fiberscope.io.save`` when it exists).
    """

    samples: Tensor
    outputs: Tensor
    x0: Tensor
    y0: Tensor
    kind: str
    engine: str
    info: dict[str, Any] = field(default_factory=dict)
    result: Any = None

    @property
    def residual(self) -> float:
        """Largest ``|N(x) - N(x0)|`` over every sample and output."""
        if self.outputs.numel() == 0:
            return 0.0
        return float((self.outputs - self.y0).abs().max())


def library_verb(name: str) -> Callable[..., Any] | None:
    """The library's verb ``name`` (``"walk"``, ``"traverse"``) if it exists and is enabled."""
    if not USE_LIBRARY:
        return None
    from .. import algorithms

    verb = getattr(algorithms, name, None)
    return verb if callable(verb) else None


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _with_hooks(
    fn: Callable[..., Any], kwargs: dict[str, Any], progress: Progress | None, stop: Stop | None
) -> dict[str, Any]:
    """Pass ``progress=``/``stop=`` to a verb that takes them; poll ``stop`` in ``progress``
    for a verb that only reports progress."""
    out = dict(kwargs)
    if stop is not None and _accepts(fn, "stop"):
        out["stop"] = stop
        if progress is not None and _accepts(fn, "progress"):
            out["progress"] = progress
        return out

    def polled(done: int, total: int) -> None:
        if stop is not None and stop():
            raise WalkCancelled()
        if progress is not None:
            progress(done, total)

    if _accepts(fn, "progress"):
        out["progress"] = polled
    return out


def _first_attr(obj: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    raise ModelError(f"the library's result has none of {', '.join(names)}")


def _outputs_of(fn: Any, samples: Tensor) -> Tensor:
    flat = samples.reshape(-1, fn.n).to(torch.float64)
    ys = [fn.value(x.to(fn.device)).cpu() for x in flat]
    m = fn.m
    return torch.stack(ys).reshape(*samples.shape[:2], m) if ys else torch.zeros(0, m)


# ------------------------------------------------------------------------------ public
def walk(
    model: Any,
    x0: Tensor,
    *,
    samples: int,
    step: float,
    chains: int = 1,
    bounds: tuple[float, float] | None = None,
    seed: int | None = 0,
    output: Any = None,
    progress: Progress | None = None,
    stop: Stop | None = None,
) -> WalkView:
    """Random walk on the class of ``x0``: ``chains`` chains of ``samples`` points each.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network.
    x0 : torch.Tensor
        Start, in the model's input shape (no batch dimension).
    samples : int
        Points per chain (the start is not counted).
    step : float
        Largest step (Euclidean norm, input units).
    chains : int
        Independent chains from the same start.
    bounds : tuple of float, optional
        ``(lo, hi)``: every sample stays inside (pixels: ``(0, 1)``).
    seed : int, optional
        Seed of the random directions (chain ``c`` uses ``seed + c``).
    output : callable, optional
        Output map (which outputs count as "the same").
    progress : callable, optional
        ``progress(done, total)`` with samples done.
    stop : callable, optional
        Polled between steps; True cancels the walk (:class:`WalkCancelled`, or the
        library's interruption).

    Returns
    -------
    WalkView
        The samples, their outputs and numbers for the page.
    """
    samples = _positive_int(samples, "samples", 100_000)
    chains = _positive_int(chains, "chains", 64)
    step = _positive_float(step, "step")
    verb = library_verb("walk")
    if verb is not None:
        kwargs = {"samples": samples, "step": step, "chains": chains, "bounds": bounds}
        kwargs["seed"] = seed
        if output is not None:
            kwargs["output"] = output
        res = verb(model, x0, **_with_hooks(verb, kwargs, progress, stop))
        pts = torch.as_tensor(_first_attr(res, ("samples", "points"))).to(torch.float64)
        fn = as_model_function(model, x0.to(torch.float64), output=output)
        outs = getattr(res, "outputs", None)
        outs = _outputs_of(fn, pts) if outs is None else torch.as_tensor(outs).to(torch.float64)
        outs = outs.reshape(*pts.shape[:2], -1)
        y0 = fn.value(x0.reshape(-1).to(fn.device, torch.float64)).cpu()
        info = _library_info(res)
        return WalkView(pts.cpu(), outs.cpu(), x0.cpu(), y0, "walk", "fiberscope.walk", info, res)
    return _fallback_walk(model, x0, samples, step, chains, bounds, seed, output, progress, stop)


def traverse(
    model: Any,
    x0: Tensor,
    target: Tensor,
    *,
    step: float,
    max_steps: int = 500,
    bounds: tuple[float, float] | None = None,
    output: Any = None,
    progress: Progress | None = None,
    stop: Stop | None = None,
) -> WalkView:
    """Walk on the class of ``x0`` toward ``target`` (the point of the class closest to it).

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network.
    x0, target : torch.Tensor
        Start and target, both in the model's input shape.
    step : float
        Largest step.
    max_steps : int
        Step cap.
    bounds : tuple of float, optional
        ``(lo, hi)`` box.
    output : callable, optional
        Output map.
    progress, stop : callable, optional
        As for :func:`walk`.

    Returns
    -------
    WalkView
        The path as one chain, with the distance to the target in ``info``.
    """
    if tuple(target.shape) != tuple(x0.shape):
        raise InputError(
            f"the target has shape {tuple(target.shape)} but the start has {tuple(x0.shape)}; "
            "pick a target of the same size"
        )
    step = _positive_float(step, "step")
    max_steps = _positive_int(max_steps, "max_steps", 1_000_000)
    verb = library_verb("traverse")
    if verb is not None:
        kwargs: dict[str, Any] = {"step": step, "max_steps": max_steps, "bounds": bounds}
        if output is not None:
            kwargs["output"] = output
        res = verb(model, x0, target, **_with_hooks(verb, kwargs, progress, stop))
        path = torch.as_tensor(_first_attr(res, ("path", "points", "samples"))).to(torch.float64)
        if path.dim() == x0.dim() + 1:
            path = path.unsqueeze(0)
        fn = as_model_function(model, x0.to(torch.float64), output=output)
        outs = getattr(res, "outputs", None)
        outs = _outputs_of(fn, path) if outs is None else torch.as_tensor(outs).to(torch.float64)
        outs = outs.reshape(*path.shape[:2], -1)
        y0 = fn.value(x0.reshape(-1).to(fn.device, torch.float64)).cpu()
        info = _library_info(res)
        d = (path[0, -1] - target.to(path)).reshape(-1)
        info.setdefault("distance_to_target", float(torch.linalg.vector_norm(d)))
        return WalkView(
            path.cpu(), outs.cpu(), x0.cpu(), y0, "traverse", "fiberscope.traverse", info, res
        )
    return _fallback_traverse(model, x0, target, step, max_steps, bounds, output, progress, stop)


def _library_info(res: Any) -> dict[str, Any]:
    summary = getattr(res, "summary", None)
    if callable(summary):
        try:
            data = summary()
        except Exception:  # noqa: BLE001 - a summary is a nicety, the samples are what matter
            data = {}
        return {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool, dict))}
    return {}


def _positive_int(value: Any, name: str, limit: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number, got {value!r}") from None
    if number != value or not 1 <= number <= limit:
        raise InputError(f"{name} must be a whole number from 1 to {limit}, got {value!r}")
    return number


def _positive_float(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return number


# ------------------------------------------------------------------- the app's fallback
@dataclass
class _Walker:
    """One float64 walker on the class ``{N(x) = y0}`` inside an optional box."""

    fn: Any
    y0: Tensor
    lo: float | None
    hi: float | None
    tol: float
    newton_max: int = 12
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "steps": 0,
            "rejected_corrector": 0,
            "rejected_box": 0,
            "jacobian_evals": 0,
            "value_evals": 0,
        }
    )

    def at_bound(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n = x.shape[0]
        low = x <= self.lo if self.lo is not None else torch.zeros(n, dtype=torch.bool)
        high = x >= self.hi if self.hi is not None else torch.zeros(n, dtype=torch.bool)
        return low.to(x.device), high.to(x.device)

    def project(self, jac: Tensor, v: Tensor, free: Tensor) -> Tensor:
        """``v`` restricted to ``free`` coordinates, projected onto ker J (there)."""
        jf = jac[:, free]
        vf = v[free]
        gram = jf @ jf.T
        coef = torch.linalg.lstsq(gram, jf @ vf.unsqueeze(1)).solution.squeeze(1)
        out = torch.zeros_like(v)
        out[free] = vf - jf.T @ coef
        return out

    def direction(self, x: Tensor, jac: Tensor, v: Tensor) -> Tensor:
        """Project ``v`` onto ker J with the coordinates held at a bound that it would push
        outward joining the constraints (a few active-set rounds)."""
        low, high = self.at_bound(x)
        free = ~((low & (v < 0)) | (high & (v > 0)))
        d = torch.zeros_like(v)
        for _ in range(6):
            if int(free.sum()) <= self.y0.numel():
                return torch.zeros_like(v)
            d = self.project(jac, v, free)
            out = free & ((low & (d < 0)) | (high & (d > 0)))
            if not bool(out.any()):
                return d
            free = free & ~out
        return d

    def correct(self, x: Tensor, free: Tensor) -> Tensor | None:
        """Gauss-Newton back to the level, moving only ``free`` coordinates."""
        for _ in range(self.newton_max):
            y, jac = self.fn.value_and_jacobian(x)
            self.stats["jacobian_evals"] += 1
            r = y - self.y0
            if not bool(torch.isfinite(r).all()):
                return None
            if float(r.abs().max()) <= self.tol:
                return x
            jf = jac[:, free]
            delta = torch.linalg.lstsq(jf @ jf.T, r.unsqueeze(1)).solution.squeeze(1)
            x = x.clone()
            x[free] = x[free] - jf.T @ delta
        y = self.fn.value(x)
        self.stats["value_evals"] += 1
        return x if float((y - self.y0).abs().max()) <= self.tol else None

    def inside(self, x: Tensor) -> bool:
        slack = 1e-12
        if self.lo is not None and float(x.min()) < self.lo - slack:
            return False
        return not (self.hi is not None and float(x.max()) > self.hi + slack)

    def clip(self, x: Tensor) -> Tensor:
        if self.lo is None and self.hi is None:
            return x
        return x.clamp(self.lo, self.hi)

    def step(self, x: Tensor, v: Tensor, h: float) -> Tensor | None:
        """One step of length at most ``h`` along ``v`` projected on the class, or None.

        The predicted point is projected onto the box (coordinates that cross a face stop on
        it), and the corrector then moves only the coordinates strictly inside the box, so
        the accepted point is on the class *and* in the box.
        """
        _, jac = self.fn.value_and_jacobian(x)
        self.stats["jacobian_evals"] += 1
        d = self.direction(x, jac, v)
        norm = float(torch.linalg.vector_norm(d))
        if norm == 0.0 or not math.isfinite(norm):
            return None
        cand = self.clip(x + d * (min(h, norm) / norm))
        for _round in range(4):
            low, high = self.at_bound(cand)
            free = ~(low | high)
            if int(free.sum()) <= self.y0.numel():
                break
            corrected = self.correct(cand, free)
            if corrected is None:
                self.stats["rejected_corrector"] += 1
                return None
            if self.inside(corrected):
                self.stats["steps"] += 1
                return self.clip(corrected)
            cand = self.clip(corrected)
        self.stats["rejected_box"] += 1
        return None


def _setup(
    model: Any, x0: Tensor, bounds: tuple[float, float] | None, output: Any
) -> tuple[Any, Tensor, Tensor, float | None, float | None]:
    x = x0.detach().to(torch.float64)
    fn = as_model_function(model, x, output=output)
    xf = x.reshape(-1).to(fn.device)
    lo, hi = (None, None) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if lo is not None and hi is not None and not lo < hi:
        raise InputError(f"empty box: lower bound {lo:g} is not below upper bound {hi:g}")
    if (lo is not None and float(xf.min()) < lo) or (hi is not None and float(xf.max()) > hi):
        raise InputError(
            f"the start is outside the box [{lo:g}, {hi:g}] (its values run from "
            f"{float(xf.min()):.4g} to {float(xf.max()):.4g}); rescale the input"
        )
    if fn.m >= fn.n:
        raise ModelError(
            f"the model has {fn.m} outputs for {fn.n} inputs: its classes are points, there is "
            "nothing to walk on"
        )
    y0 = fn.value(xf)
    return fn, xf, y0, lo, hi


def _tolerance(y0: Tensor) -> float:
    return max(1e-10, 64 * torch.finfo(torch.float64).eps * float(y0.abs().max()))


def _fallback_walk(
    model: Any,
    x0: Tensor,
    samples: int,
    step: float,
    chains: int,
    bounds: tuple[float, float] | None,
    seed: int | None,
    output: Any,
    progress: Progress | None,
    stop: Stop | None,
) -> WalkView:
    t0 = time.perf_counter()
    fn, xf, y0, lo, hi = _setup(model, x0, bounds, output)
    walker = _Walker(fn, y0, lo, hi, _tolerance(y0))
    out_pts = torch.empty(chains, samples, fn.n, dtype=torch.float64)
    stopped = []
    total = chains * samples
    for c in range(chains):
        gen = torch.Generator().manual_seed((0 if seed is None else int(seed)) + c)
        x, h, reason = xf.clone(), step, "done"
        for k in range(samples):
            if reason == "done":
                for _attempt in range(40):
                    if stop is not None and stop():
                        raise WalkCancelled()
                    v = torch.randn(fn.n, generator=gen, dtype=torch.float64).to(fn.device)
                    nxt = walker.step(x, v, h)
                    if nxt is not None:
                        x, h = nxt, min(step, 1.5 * h)
                        break
                    h *= 0.5
                else:
                    # no step of any length stays on the class and in the box: the chain
                    # keeps its last point for the rest of its samples
                    reason = f"stuck after {k} samples"
            out_pts[c, k] = x.cpu()
            if progress is not None:
                progress(c * samples + k + 1, total)
        stopped.append(reason)
    shape = tuple(x0.shape)
    pts = out_pts.reshape(chains, samples, *shape)
    outs = _outputs_of(fn, pts)
    distance = (out_pts - xf.cpu()).norm(dim=-1)
    info = {
        **walker.stats,
        "tolerance": walker.tol,
        "stop_reasons": stopped,
        "largest_distance_from_start": float(distance.max()),
        "wall_time": time.perf_counter() - t0,
    }
    return WalkView(pts, outs, x0.detach().cpu(), y0.cpu(), "walk", "app fallback", info)


def _fallback_traverse(
    model: Any,
    x0: Tensor,
    target: Tensor,
    step: float,
    max_steps: int,
    bounds: tuple[float, float] | None,
    output: Any,
    progress: Progress | None,
    stop: Stop | None,
) -> WalkView:
    t0 = time.perf_counter()
    fn, xf, y0, lo, hi = _setup(model, x0, bounds, output)
    tf = target.detach().to(torch.float64).reshape(-1).to(fn.device)
    walker = _Walker(fn, y0, lo, hi, _tolerance(y0))
    path = [xf.clone()]
    x, h, reason = xf.clone(), step, "max_steps"
    start_distance = float(torch.linalg.vector_norm(tf - xf))
    for k in range(max_steps):
        if stop is not None and stop():
            raise WalkCancelled()
        dist = float(torch.linalg.vector_norm(tf - x))
        nxt = None
        while h > step * 1e-6:
            nxt = walker.step(x, tf - x, min(h, dist))
            if nxt is not None and float(torch.linalg.vector_norm(tf - nxt)) < dist - 1e-12:
                break
            nxt = None
            h *= 0.5
        if nxt is None:
            reason = "closest point (the distance stops decreasing on the class)"
            break
        x, h = nxt, min(step, 1.5 * h)
        path.append(x.clone())
        if progress is not None:
            progress(k + 1, max_steps)
    pts = torch.stack(path).cpu().reshape(1, len(path), *tuple(x0.shape))
    outs = _outputs_of(fn, pts)
    end_distance = float(torch.linalg.vector_norm(tf.cpu() - path[-1].cpu()))
    info = {
        **walker.stats,
        "tolerance": walker.tol,
        "stop_reason": reason,
        "start_distance_to_target": start_distance,
        "distance_to_target": end_distance,
        "wall_time": time.perf_counter() - t0,
    }
    return WalkView(pts, outs, x0.detach().cpu(), y0.cpu(), "traverse", "app fallback", info)
