"""Running a job's items on Ray: connect (or start a local Ray), one actor per worker, retries.

Every actor loads the model once (from a spec whose files travel with it, so workers need no
shared file system) and runs items one after another; the driver keeps two items queued per
actor, writes every result into the store as it arrives, and replaces an actor whose process
died, running its items again (an item is given ``retries`` more tries after the attempt that
a worker died in). Ray is optional (``pip install 'fiberscope[ray]'``): this module imports it
only when called.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, ModelLoadError

#: Items queued per actor (one running, one waiting), so that workers never wait for the driver.
QUEUE_PER_WORKER = 2
#: Seconds to wait for a TCP connection when checking a cluster address.
CONNECT_TIMEOUT = 5.0
#: Default port of a Ray cluster's GCS.
DEFAULT_PORT = 6379
RAY_MISSING = "Ray is not installed: pip install 'fiberscope[ray]'"


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _host_port(address: str) -> tuple[str, int] | None:
    """Host and port of a cluster address (None for ``auto``)."""
    if address == "auto":
        return None
    rest = address.split("://", 1)[1] if "://" in address else address
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):  # [::1]:6379
        host, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not host:
        raise InputError(
            f"--ray-address {address!r} is not an address; give HOST:PORT (the head node's "
            "address that `ray start --head` printed), ray://HOST:10001, or auto"
        )
    if not port:
        return host, 10001 if address.startswith("ray://") else DEFAULT_PORT
    try:
        value = int(port)
    except ValueError:
        raise InputError(f"--ray-address {address!r}: the port {port!r} is not a number") from None
    if not 0 < value < 65536:
        raise InputError(f"--ray-address {address!r}: the port {value} is out of range")
    return host, value


def check_reachable(address: str) -> None:
    """Fail fast, with one line, when nothing answers at a cluster address.

    Parameters
    ----------
    address : str
        ``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``.

    Raises
    ------
    InputError
        Malformed address, unknown host, or no answer.
    """
    target = _host_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except socket.gaierror:
        raise InputError(
            f"cannot reach the Ray cluster at {address}: unknown host {host!r}; check the "
            "address (`ray status` on the head node prints it), or leave --ray-address out to "
            "run on this machine"
        ) from None
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InputError(
            f"cannot reach the Ray cluster at {address} ({why.lower()}); check the address "
            "(`ray status` on the head node prints it), or leave --ray-address out to run on "
            "this machine"
        ) from None


@dataclass
class Connection:
    """A Ray connection made for a job (shut down at the end if the job started Ray)."""

    ray: Any
    started: bool
    address: str
    description: str

    def close(self) -> None:
        """Shut down a Ray that this job started."""
        if self.started:
            with contextlib.suppress(Exception):
                self.ray.shutdown()


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Send what native code writes on file descriptor 2 to a discarded file meanwhile."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def connect(address: str | None, cpus: int | None) -> Connection:
    """Join a cluster, reuse this process's Ray, or start a local one.

    Parameters
    ----------
    address : str or None
        Cluster address, ``"auto"``, or None (this process's Ray if it has one, else a new
        local Ray on this machine).
    cpus : int or None
        CPUs of a local Ray (default: all of this machine's).

    Returns
    -------
    Connection
        The connection.

    Raises
    ------
    InputError
        Ray is missing, or the cluster cannot be reached.
    """
    if address is not None:
        check_reachable(address)
    if not ray_available():
        raise InputError(RAY_MISSING)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        ctx = ray.get_runtime_context()
        return Connection(ray, False, str(getattr(ctx, "gcs_address", "")), "this process's Ray")
    kwargs: dict[str, Any] = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if address is None:
        kwargs.update(num_cpus=cpus, include_dashboard=False)
        where = "a local Ray on this machine"
    else:
        where = f"the Ray cluster at {address}"
    try:
        if address is None:
            ray.init(address=address, **kwargs)
        else:  # Ray's C++ client logs every failed retry on fd 2: one line is ours to print
            with _quiet_fd2():
                ray.init(address=address, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        first = " ".join(str(exc).split())[:200]
        if address == "auto":
            hint = (
                "start one with `ray start --head`, or leave --ray-address out to run on this "
                "machine"
            )
        elif os.environ.get("RAY_AUTH_MODE", "") != "token":
            hint = (
                "check the address; a cluster with token authentication (the default of Ray "
                "2.59 and later) also needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, "
                "or the file of `ray get-auth-token`) here"
            )
        else:
            hint = "check the address and the token, or leave --ray-address out"
        raise InputError(f"cannot connect to {where} ({first}); {hint}") from None
    return Connection(ray, True, address or "local", where)


def resources(ray: Any) -> tuple[float, float]:
    """CPUs and GPUs of the cluster."""
    res = ray.cluster_resources()
    return float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))


def plan_workers(
    workers: int | None,
    cpus: float,
    gpus: float,
    cpus_per_worker: float | None,
    gpus_per_worker: float | None,
) -> tuple[int, float, float]:
    """How many actors, and the CPUs and GPUs each asks for.

    Parameters
    ----------
    workers : int or None
        Asked for (None: as many as the cluster's CPUs allow, one per GPU on GPU clusters).
    cpus, gpus : float
        The cluster's resources.
    cpus_per_worker, gpus_per_worker : float or None
        Asked for (None: 1 CPU; on a cluster with GPUs, a share of them).

    Returns
    -------
    tuple
        ``(workers, cpus_per_worker, gpus_per_worker)``.
    """
    cpw = 1.0 if cpus_per_worker is None else float(cpus_per_worker)
    if workers is None:
        if gpus >= 1 and (gpus_per_worker is None or gpus_per_worker > 0):
            per = 1.0 if gpus_per_worker is None else float(gpus_per_worker)
            workers = max(1, int(gpus / per))
        else:
            workers = max(1, int(cpus // cpw) if cpw > 0 else 1)
    if gpus_per_worker is None:
        gpw = min(1.0, gpus / workers) if gpus > 0 else 0.0
        gpw = float(int(gpw * 100) / 100)  # Ray takes fractions in hundredths
    else:
        gpw = float(gpus_per_worker)
    return workers, cpw, gpw


def check_fit(workers: int, cpus_per_worker: float, gpus_per_worker: float, cpus: float,
              gpus: float) -> None:  # fmt: skip
    """Refuse workers that the cluster cannot hold all at once (they would wait forever).

    Raises
    ------
    InputError
        More CPUs or GPUs asked for than the cluster has.
    """
    for what, per, total in (("CPU", cpus_per_worker, cpus), ("GPU", gpus_per_worker, gpus)):
        if per > 0 and workers * per > total + 1e-9:
            raise InputError(
                f"{workers} workers of {per:g} {what} each need {workers * per:g} {what}s but "
                f"the Ray cluster has {total:g}; ask for fewer workers or fewer "
                f"{what.lower()}s_per_worker"
            )


def _is_worker_failure(exc: BaseException, ray: Any) -> bool:
    exceptions = ray.exceptions
    kinds = tuple(
        getattr(exceptions, name)
        for name in (
            "RayActorError",
            "ActorDiedError",
            "ActorUnavailableError",
            "WorkerCrashedError",
            "ObjectLostError",
            "OwnerDiedError",
            "NodeDiedError",
            "LocalRayletDiedError",
        )
        if hasattr(exceptions, name)
    )
    return isinstance(exc, kinds)


@dataclass
class _Actor:
    handle: Any
    queue: deque = field(default_factory=deque)  # item indices, the running one first
    alive: bool = True


class RayPool:
    """Actors of one job and the items queued on them.

    Parameters
    ----------
    conn : Connection
        The Ray connection.
    payload : dict
        The model spec with its files.
    verb : str
        The verb.
    workers : int
        Actors.
    cpus, gpus : float
        Resources per actor (``threads`` = CPUs, at least 1).
    device : str or None
        Device in the actors (None: the GPU Ray gives them, if any).
    """

    def __init__(
        self,
        conn: Connection,
        payload: dict[str, Any],
        verb: str,
        workers: int,
        cpus: float,
        gpus: float,
        device: str | None,
    ) -> None:
        from .worker import RayWorker

        ray = conn.ray
        self.ray = ray
        self.payload_ref = ray.put(payload)
        self.verb = verb
        self.device = device
        self.threads = max(1, int(cpus))
        self.remote = ray.remote(RayWorker).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=0, max_task_retries=0
        )
        self.actors = [self._new() for _ in range(workers)]
        self.inflight: dict[Any, tuple[int, int]] = {}  # ref -> (actor slot, item)
        self.replaced = 0

    def _new(self) -> _Actor:
        return _Actor(self.remote.remote(self.payload_ref, self.verb, self.device, self.threads))

    def check_started(self) -> list[dict[str, Any]]:
        """Wait for every actor to load the model; raise its one-line error if it cannot."""
        infos = self.ray.get([a.handle.info.remote() for a in self.actors])
        for info in infos:
            if info.get("error"):
                raise ModelLoadError(f"the model cannot be loaded on the workers: {info['error']}")
        return infos

    def submit(self, next_item: Callable[[], Any | None]) -> None:
        """Give every actor items until it has :data:`QUEUE_PER_WORKER` queued."""
        for slot, actor in enumerate(self.actors):
            while len(actor.queue) < QUEUE_PER_WORKER:
                task = next_item()
                if task is None:
                    return
                ref = actor.handle.run.remote(task)
                actor.queue.append(task.index)
                self.inflight[ref] = (slot, task.index)

    def wait(self, timeout: float) -> Iterator[tuple[str, int, Any]]:
        """Wait up to ``timeout`` seconds for an item; yield what happened to items.

        Yields
        ------
        tuple
            ``("done", item, outcome)``; ``("error", item, exc)`` when the task raised (a bug:
            workers return item errors as outcomes); ``("crash", item, exc)`` for the item
            a worker died running; ``("requeue", item, None)`` for the items that were
            queued behind it (run them again without counting a try).
        """
        if not self.inflight:
            return
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        for ref in ready:
            if ref not in self.inflight:
                continue
            slot, index = self.inflight.pop(ref)
            actor = self.actors[slot]
            try:
                outcome = self.ray.get(ref)
            except Exception as exc:
                if not _is_worker_failure(exc, self.ray):
                    with contextlib.suppress(ValueError):
                        actor.queue.remove(index)
                    yield "error", index, exc
                    continue
                # the actor's process died: keep what it finished, blame the first item it
                # had not finished (items run in queue order), send the others back
                refs = {i: r for r, (s, i) in self.inflight.items() if s == slot}
                refs[index] = ref
                for r in refs.values():
                    self.inflight.pop(r, None)
                finished, unfinished = [], []
                for i in list(actor.queue):
                    if i not in refs:
                        continue
                    try:
                        finished.append((i, self.ray.get(refs[i], timeout=0)))
                    except Exception:
                        unfinished.append(i)
                unfinished += [i for i in refs if i not in actor.queue]  # (never: a safety net)
                with contextlib.suppress(Exception):
                    self.ray.kill(actor.handle, no_restart=True)
                self.actors[slot] = self._new()
                self.replaced += 1
                for i, out in finished:
                    yield "done", i, out
                if unfinished:
                    yield "crash", unfinished[0], exc
                for i in unfinished[1:]:
                    yield "requeue", i, None
                continue
            with contextlib.suppress(ValueError):
                actor.queue.remove(index)
            yield "done", index, outcome

    def close(self) -> None:
        """Stop every actor (items still queued stay pending in the store)."""
        for ref in list(self.inflight):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self.inflight.clear()
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor.handle, no_restart=True)


def worker_failure_line(exc: BaseException) -> str:
    """One line for a worker that died (the first sentence of Ray's message)."""
    text = " ".join(str(exc).split())
    for stop in (". ", "; "):
        if stop in text:
            text = text.split(stop, 1)[0]
    return f"{type(exc).__name__}: {text[:160]}"


__all__ = [
    "RAY_MISSING",
    "Connection",
    "RayPool",
    "check_fit",
    "check_reachable",
    "connect",
    "plan_workers",
    "ray_available",
    "resources",
    "worker_failure_line",
]
