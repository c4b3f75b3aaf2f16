"""A verb's run as a sequence of engine phases, with one snapshot for all of them.

Multi-phase verbs (trace: forward then backward branches; preimage: walk to the levels, then
trace them; ...) run each phase through :func:`~fiberscope.engine.loop.run`. The session owns
the progress callback, the ``stop`` flag and the checkpoints across phases, builds the
:class:`~fiberscope.engine.state.Snapshot` of the whole run, and on ``resume=`` restores
finished phases and continues the live one exactly where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..errors import CheckpointError, InputError
from .control import StepControl
from .loop import Hooks, RunState, run
from .policy import Context, Policy
from .recorder import Recorder
from .state import Members, Snapshot
from .stats import Stats


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return repr(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_resume(snapshot: Any, verb: str, options: dict[str, Any], y0: Tensor) -> Snapshot:
    """Refuse to resume ``snapshot`` with another verb, other options or another model.

    Parameters
    ----------
    snapshot : Snapshot
        The snapshot to continue.
    verb : str
        The verb of the new call.
    options : dict
        Options of the new call.
    y0 : torch.Tensor
        Output of the new call's model at the start(s).

    Returns
    -------
    Snapshot
        The snapshot.

    Raises
    ------
    CheckpointError
        On any difference.
    """
    if not isinstance(snapshot, Snapshot):
        raise CheckpointError(f"resume= takes a Snapshot, got {type(snapshot).__name__}")
    if snapshot.verb != verb:
        raise CheckpointError(
            f"the checkpoint is of a {snapshot.verb} run, not {verb}; resume it with "
            f"{snapshot.verb}"
        )
    for key in sorted(set(options) | set(snapshot.options)):
        new, old = options.get(key), snapshot.options.get(key)
        if _plain(new) != _plain(old):
            raise CheckpointError(
                f"the checkpoint was written with {key}={_short(old)}, this run has "
                f"{key}={_short(new)}; resume with the same options"
            )
    if [float(v) for v in snapshot.y0] != y0.reshape(-1).tolist():
        raise CheckpointError(
            "the model's output at the start differs from the checkpoint's "
            f"({_short(snapshot.y0)} vs {_short(y0.reshape(-1).tolist())}): is it the same model?"
        )
    return snapshot


class Session:
    """Phases, progress, interruption and checkpoints of one verb call.

    Parameters
    ----------
    verb : str
        The verb's name (recorded in snapshots).
    options : dict
        The call's options (JSON-ready; a resume must match them).
    y0 : torch.Tensor
        Output(s) at the start(s) (recorded; a resume must match it).
    stats : Stats
        Counters of the whole call.
    total : int
        Progress scale (steps).
    progress : callable or None
        ``progress(done, total)``.
    stop : callable or None
        Polled between steps.
    checkpoint : callable or None
        ``checkpoint(snapshot)`` every ``checkpoint_every`` steps and after each phase.
    checkpoint_every : int
        Steps between checkpoints.
    resume : Snapshot or None
        Continue this snapshot.
    device : torch.device
        Where restored tensors go.
    n : int, optional
        Input size (a resumed snapshot must match it).
    """

    def __init__(
        self,
        verb: str,
        options: dict[str, Any],
        y0: Tensor,
        *,
        stats: Stats,
        total: int,
        progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
        checkpoint: Callable[[Snapshot], None] | None = None,
        checkpoint_every: int = 1000,
        resume: Snapshot | None = None,
        device: torch.device | None = None,
        n: int | None = None,
    ) -> None:
        if checkpoint is not None and (
            isinstance(checkpoint_every, bool)
            or not isinstance(checkpoint_every, int)
            or checkpoint_every < 1
        ):
            raise InputError(
                f"checkpoint_every must be a positive integer, got {checkpoint_every!r}"
            )
        self.verb = verb
        self.options = options
        self.y0 = y0
        self.stats = stats
        self.total = max(1, int(total))
        self.progress = progress
        self.stop = stop
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.device = device if device is not None else y0.device
        self.n = n
        self.resume = None
        if resume is not None:
            self.resume = check_resume(resume, verb, options, y0)
            stats.restore(resume.stats)
        self.done: list[tuple[str, RunState]] = []
        self.live: tuple[str, RunState] | None = None
        self.steps_before = 0
        self.t_start = time.perf_counter()

    # ------------------------------------------------------------------ phases
    def phase(
        self,
        name: str,
        ctx: Context,
        policy: Policy,
        ctl: StepControl,
        fresh: Callable[[], Members],
    ) -> RunState:
        """Run one phase to its end (or restore it from the snapshot being resumed).

        Parameters
        ----------
        name : str
            Phase name (for snapshots).
        ctx : Context
            The run context (its ``stats`` should be this session's).
        policy : Policy
            The direction policy.
        ctl : StepControl
            Step control.
        fresh : callable
            Builds the phase's members when it is not being resumed.

        Returns
        -------
        RunState
            The finished members and their recorder.
        """
        p = len(self.done)
        snap = self.resume
        state: RunState | None = None
        if snap is not None and p < snap.phase:
            state = self._restore(snap, p)
            self.done.append((name, state))
            self.steps_before += int(state.mem.k.sum())
            return state
        if snap is not None and p == snap.phase:
            state = self._restore(snap, p)
            self.resume = None
        if state is None:
            mem = fresh()
            state = RunState(mem=mem, rec=Recorder(members=len(mem)))
        self.live = (name, state)
        hooks = Hooks(
            progress=self.progress,
            stop=self.stop,
            checkpoint=self._save if self.checkpoint is not None else None,
            checkpoint_every=self.checkpoint_every,
            done=self.steps_before,
            total=self.total,
        )
        run(ctx, policy, state, ctl, hooks)
        self.live = None
        state.rec = state.committed_recorder()
        self.done.append((name, state))
        self.steps_before += int(state.mem.k.sum())
        if self.progress is not None:
            self.progress(min(self.steps_before, self.total), self.total)
        if self.checkpoint is not None:
            self._save()
        return state

    def finish(self) -> None:
        """Final progress report and wall time."""
        self.stats.wall_time = time.perf_counter() - self.t_start
        if self.progress is not None:
            self.progress(self.total, self.total)

    def states(self) -> list[tuple[str, RunState]]:
        """Finished phases, then the live one as of its last commit (for partial results)."""
        out = [(n, s) for n, s in self.done]
        if self.live is not None:
            name, st = self.live
            out.append((name, RunState(mem=st.mem, rec=st.committed_recorder())))
        return out

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> Snapshot:
        """The whole run as of the last commit.

        Returns
        -------
        Snapshot
            Plain tensors and JSON-ready facts.
        """
        tensors: dict[str, Tensor] = {}
        meta: dict[str, Any] = {"phases": []}
        for p, (name, st) in enumerate(self.states()):
            mt, mm = st.mem.export()
            rt, rm = st.committed_recorder().export()
            tensors.update({f"p{p}.mem.{k}": v for k, v in mt.items()})
            tensors.update({f"p{p}.rec.{k}": v for k, v in rt.items()})
            meta["phases"].append({"name": name, "mem": mm, "rec": rm})
        phase = len(self.done) if self.live is not None else len(self.done)
        return Snapshot(
            verb=self.verb,
            options=self.options,
            y0=self.y0.reshape(-1).tolist(),
            phase=phase,
            tensors=tensors,
            meta=meta,
            stats=self.stats.counters(),
        )

    def _save(self) -> None:
        assert self.checkpoint is not None
        self.checkpoint(self.snapshot())

    def _restore(self, snap: Snapshot, p: int) -> RunState:
        try:
            info = snap.meta["phases"][p]
            mt = {
                k[len(f"p{p}.mem.") :]: v
                for k, v in snap.tensors.items()
                if k.startswith(f"p{p}.mem.")
            }
            rt = {
                k[len(f"p{p}.rec.") :]: v
                for k, v in snap.tensors.items()
                if k.startswith(f"p{p}.rec.")
            }
            mem = Members.restore(mt, info["mem"], self.device)
            rec = Recorder.restore(rt, info["rec"], self.device)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"the checkpoint's phase {p} is malformed ({type(exc).__name__}: {exc})"
            ) from None
        mem.nrec = len(rec.chunks)
        m = int(self.y0.shape[-1])
        b = int(mem.x.shape[0]) if mem.x.ndim == 2 else -1
        n = int(mem.x.shape[1]) if mem.x.ndim == 2 else -1
        fits = (
            b > 0
            and (self.n is None or n == self.n)
            and tuple(mem.y.shape) == (b, m)
            and tuple(mem.goal.shape) == (b, m)
            and tuple(mem.jac.shape) == (b, m, n)
            and all(t.shape[:1] == (b,) for t in (mem.tol, mem.h, mem.k, mem.active, mem.rejected))
            and all(v.shape[:1] == (b,) for v in mem.vars.values())
            and len(mem.reasons) == b
            and math.isfinite(float(mem.h.sum()))
        )
        if fits and rec.chunks:
            chunk = rec.chunks[0]
            rows = chunk["member"].shape[0]
            fits = (
                tuple(chunk["x"].shape) == (rows, n)
                and tuple(chunk["y"].shape) == (rows, m)
                and all(t.shape[:1] == (rows,) for t in chunk.values())
                and bool(((chunk["member"] >= 0) & (chunk["member"] < b)).all())
            )
        if not fits:
            raise CheckpointError(
                f"the checkpoint's phase {p} does not fit this run ({b} members of "
                f"{n} inputs and {m} outputs, or inconsistent tables)"
            )
        return RunState(mem=mem, rec=rec)
