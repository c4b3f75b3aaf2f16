"""One worker's side of a job: load the model once, run the verb on one item after another.

The same :class:`ItemRunner` runs items in this process and inside every Ray actor, so the
three backends compute exactly the same thing. A failing item never raises: it comes back as
an :class:`Outcome` with its one-line error.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FiberscopeError


@dataclass
class Task:
    """One item sent to a worker.

    Attributes
    ----------
    index : int
        The item's index.
    x : numpy.ndarray
        The input (float64, the item shape).
    options : dict
        The verb's keyword arguments for this item (its seed, its interval).
    """

    index: int
    x: np.ndarray
    options: dict[str, Any]


@dataclass
class Outcome:
    """What a worker sends back for one item.

    Attributes
    ----------
    index : int
        The item's index.
    ok : bool
        The verb finished.
    columns : dict or None
        Table columns of the result (``x`` and ``y`` as 2-D arrays, others 1-D).
    meta : dict or None
        The result's summary (JSON-ready, deterministic: no timings).
    error : str or None
        One line: why the item failed.
    seconds : float
        Time the item took on the worker.
    worker : str
        ``host:pid`` of the worker.
    """

    index: int
    ok: bool
    columns: dict[str, np.ndarray] | None
    meta: dict[str, Any] | None
    error: str | None
    seconds: float
    worker: str


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def one_line(exc: BaseException) -> str:
    """An exception as one line (its type added unless it is a fiberscope error)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, FiberscopeError):
        return text
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _jsonable(obj: Any) -> Any:
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    return repr(obj)


def _np(t: Any) -> np.ndarray:
    return t.detach().to("cpu").numpy()


def _summary(result: Any) -> dict[str, Any]:
    meta = dict(result.summary())
    stats = getattr(result, "stats", None)
    if stats is not None:
        meta["stats"] = stats.counters()  # counters only: wall times differ between runs
    meta["complete"] = bool(getattr(result, "complete", True))
    return meta


def walk_columns(result: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Rows of a :class:`~fiberscope.WalkResult`: one per valid sample of every chain."""
    chains = result.chains
    n = int(np.prod(result.samples.shape[2:])) if result.samples.dim() > 2 else 1
    pts = _np(result.samples).reshape(chains, -1, n)
    outs = _np(result.outputs)
    chain, sample, xs, ys = [], [], [], []
    for c in range(chains):
        k = int(result.counts[c])
        chain.append(np.full(k, c, dtype=np.int32))
        sample.append(np.arange(k, dtype=np.int32))
        xs.append(pts[c, :k])
        ys.append(outs[c, :k])
    cols = {
        "chain": np.concatenate(chain),
        "sample": np.concatenate(sample),
        "x": np.concatenate(xs).astype(np.float64),
        "y": np.concatenate(ys).astype(np.float64),
    }
    meta = _summary(result)
    meta["y0"] = _np(result.y0).tolist()
    meta["input_shape"] = list(result.x0.shape)
    return cols, meta


def _trace_parts(t: Any) -> dict[str, np.ndarray]:
    k = len(t)
    return {
        "row": np.arange(k, dtype=np.int32),
        "branch": _np(t.branch).astype(np.int8),
        "arclength": _np(t.arclength).astype(np.float64),
        "x": _np(t.points).reshape(k, -1).astype(np.float64),
        "y": _np(t.outputs).astype(np.float64),
    }


def trace_columns(result: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Rows of a :class:`~fiberscope.TraceResult`: its points in order along the class."""
    cols = _trace_parts(result)
    meta = _summary(result)
    meta.update(
        {
            "y0": _np(result.y0).tolist(),
            "start_index": result.start_index,
            "stop_points": result.stop_points,
            "messages": result.messages,
            "energy": result.energy,
            "input_shape": list(result.points.shape[1:]),
        }
    )
    return cols, meta


def preimage_columns(result: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Rows of a :class:`~fiberscope.PreimageResult`: every level's trace (``level`` 0, 1,
    ...) and the exploration path across them (``level`` -1)."""
    parts = []
    for level, t in enumerate(result.traces):
        cols = _trace_parts(t)
        cols["level"] = np.full(len(t), level, dtype=np.int32)
        parts.append(cols)
    path = _np(result.path)
    p = path.shape[0]
    flat = path.reshape(p, -1).astype(np.float64)
    steps = np.linalg.norm(np.diff(flat, axis=0), axis=1) if p > 1 else np.zeros(0)
    parts.append(
        {
            "row": np.arange(p, dtype=np.int32),
            "branch": np.zeros(p, dtype=np.int8),
            "arclength": np.concatenate([[0.0], np.cumsum(steps)])[:p],
            "x": flat,
            "y": _np(result.path_outputs).astype(np.float64),
            "level": np.full(p, -1, dtype=np.int32),
        }
    )
    cols = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    meta = _summary(result)
    shape = list(result.path.shape[1:]) if result.path.dim() > 1 else [flat.shape[1]]
    meta["input_shape"] = shape
    return cols, meta


_COLUMNS = {"walk": walk_columns, "trace": trace_columns, "preimage": preimage_columns}


def _pick_device(model: Any, device: str | None) -> Any:
    import torch

    if device not in (None, "auto"):
        return torch.device(device)
    if device == "auto" and torch.cuda.is_available():
        return torch.device("cuda")
    params = getattr(model, "parameters", None)
    if callable(params):
        try:
            first = next(iter(params()), None)
        except Exception:
            first = None
        if first is not None:
            return first.device
    return torch.device("cpu")


class ItemRunner:
    """Runs a job's verb on items, with the model loaded once.

    Parameters
    ----------
    model : ModelSpec, dict or callable
        A spec (loaded here), a spec payload with its files (from a driver on another
        machine), or a model object.
    verb : str
        ``"walk"``, ``"trace"`` or ``"preimage"``.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or ``"auto"`` (CUDA when there is one); default:
        where the model's weights are (CPU for specs).
    threads : int, optional
        ``torch.set_num_threads`` for this process.
    """

    def __init__(
        self,
        model: Any,
        verb: str,
        *,
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        import torch

        from .spec import ModelSpec, load_payload, verb_function

        if threads is not None:
            torch.set_num_threads(int(threads))
        if isinstance(model, ModelSpec):
            model = model.load()
        elif isinstance(model, dict):
            model = load_payload(model)
        self.device = _pick_device(model, device)
        if hasattr(model, "to") and hasattr(model, "parameters"):
            model = model.to(self.device)
        self.model = model
        self.verb = verb
        self.fn = verb_function(verb)
        self.columns = _COLUMNS[verb]
        self.name = worker_name()

    def info(self) -> dict[str, Any]:
        """Where this runner is: ``host:pid``, device and torch threads."""
        import torch

        return {"worker": self.name, "device": str(self.device), "threads": torch.get_num_threads()}

    def run(self, task: Task, stop: Callable[[], bool] | None = None) -> Outcome:
        """Run the verb on one item; errors come back in the outcome, never raised.

        Parameters
        ----------
        task : Task
            The item.
        stop : callable, optional
            Passed to the verb (``Interrupted`` is the one exception that is raised).

        Returns
        -------
        Outcome
            The item's columns and summary, or its one-line error.
        """
        import torch

        from ..errors import Interrupted

        start = time.perf_counter()
        try:
            x = torch.from_numpy(np.ascontiguousarray(task.x, dtype=np.float64)).to(self.device)
            kwargs = dict(task.options)
            if self.verb != "preimage":
                kwargs["batched"] = False
            if self.verb == "preimage":
                interval = kwargs.pop("interval")
                result = self.fn(self.model, x, interval, stop=stop, **kwargs)
            else:
                result = self.fn(self.model, x, stop=stop, **kwargs)
            cols, meta = self.columns(result)
        except Interrupted:
            raise
        except KeyboardInterrupt:
            raise
        except (Exception, RecursionError) as exc:
            return Outcome(
                task.index, False, None, None, one_line(exc), time.perf_counter() - start,
                self.name,
            )  # fmt: skip
        return Outcome(
            task.index, True, cols, _jsonable(meta), None, time.perf_counter() - start, self.name
        )


class RayWorker:
    """The Ray actor of a job (wrapped with ``ray.remote`` by the Ray backend).

    Parameters
    ----------
    payload : dict
        The model spec with its files (:meth:`~fiberscope.jobs.spec.ModelSpec.payload`).
    verb : str
        The verb.
    device : str or None
        Device; ``None`` picks the GPU Ray gave this actor, if any.
    threads : int
        Torch threads (the CPUs this actor asked for).
    """

    def __init__(self, payload: dict[str, Any], verb: str, device: str | None, threads: int):
        if device is None:
            try:
                import ray

                device = "cuda" if ray.get_gpu_ids() else "cpu"
            except Exception:  # pragma: no cover - outside Ray
                device = "cpu"
        self.runner: ItemRunner | None = None
        self.error: str | None = None
        try:  # a model that cannot be loaded is reported by info(), not by a dead actor
            self.runner = ItemRunner(payload, verb, device=device, threads=threads)
        except (Exception, RecursionError) as exc:
            self.error = one_line(exc)

    def info(self) -> dict[str, Any]:
        """``host:pid``, device and threads of this actor, or ``{"error": ...}``."""
        if self.runner is None:
            return {"worker": worker_name(), "error": self.error}
        return self.runner.info()

    def run(self, task: Task) -> Outcome:
        """Run one item."""
        if self.runner is None:
            return Outcome(task.index, False, None, None, self.error, 0.0, worker_name())
        return self.runner.run(task)


__all__ = ["ItemRunner", "Outcome", "RayWorker", "Task", "one_line", "worker_name"]
