"""The one run loop: every walk on or across classes is a call of :func:`run`.

Each iteration the active members propose a step (policy), are corrected back to their levels
(the corrector, or only evaluated for uncorrected walks), are judged (policy), have their steps
controlled (halved on rejection down to a floor that cannot underflow, grown after easy steps),
meet the box (exact exits or the authors' clamping), trigger events (closure, reached levels,
singular points: policy), are recorded and committed. Between iterations the loop reports
progress, polls ``stop`` and writes checkpoints, so any run can be interrupted and continued
bit for bit from its :class:`~fiberscope.engine.state.Snapshot`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .box import chord_exit, clamp, exit_on_class, outside
from .control import StepControl
from .corrector import Correction, correct, evaluate
from .policy import Context, Policy, Proposal, Verdict
from .recorder import Recorder
from .state import Members


class RunInterrupted(KeyboardInterrupt):  # noqa: N818 - it is an interruption, like its base
    """Raised by :func:`run` when ``stop()`` asks for it; the state is as of the last commit."""


@dataclass
class RunState:
    """The members of a run and their recorder; ``mem`` is replaced whole at every commit.

    Attributes
    ----------
    mem : Members
        The members as of the last commit.
    rec : Recorder
        Recorded rows; only the first ``mem.nrec`` chunks belong to the committed state.
    """

    mem: Members
    rec: Recorder

    def committed_recorder(self) -> Recorder:
        """The recorder as of the last commit (chunks of an unfinished step dropped)."""
        return Recorder(members=self.rec.members, chunks=self.rec.chunks[: self.mem.nrec])


@dataclass
class Hooks:
    """Progress, interruption and checkpoints of a run.

    Attributes
    ----------
    progress : callable or None
        ``progress(done, total)`` with accepted steps, called every few iterations.
    stop : callable or None
        Polled before every iteration; True raises :class:`RunInterrupted`.
    checkpoint : callable or None
        Called without arguments every ``checkpoint_every`` iterations, after a commit.
    checkpoint_every : int
        Iterations between checkpoints.
    done : int
        Steps done before this run (progress offset).
    total : int
        Total steps of the whole verb (progress scale).
    """

    progress: Callable[[int, int], None] | None = None
    stop: Callable[[], bool] | None = None
    checkpoint: Callable[[], None] | None = None
    checkpoint_every: int = 1000
    done: int = 0
    total: int = 0


def take(obj: Any, local: Tensor, k: int) -> Any:
    """Rows ``local`` of every ``(k, ...)`` tensor in a dataclass (or dict) of step values.

    Parameters
    ----------
    obj : dataclass instance or dict
        A :class:`Proposal`, :class:`Correction` or :class:`Verdict` (or its ``info``).
    local : torch.Tensor
        Row indices (CPU).
    k : int
        Rows of the full step.

    Returns
    -------
    Any
        A copy with the rows taken.
    """

    def one(v: Any) -> Any:
        if isinstance(v, Tensor) and v.ndim and v.shape[0] == k:
            return v[local.to(v.device)]
        if isinstance(v, dict):
            return {kk: one(vv) for kk, vv in v.items()}
        return v

    if isinstance(obj, dict):
        return one(obj)
    return dataclasses.replace(
        obj, **{f.name: one(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    )


def _fmt(x: Tensor) -> str:
    vals = x.reshape(-1)[:6].tolist()
    more = ", ..." if x.numel() > 6 else ""
    return "(" + ", ".join(f"{v:.6g}" for v in vals) + more + ")"


def run(
    ctx: Context,
    policy: Policy,
    state: RunState,
    ctl: StepControl,
    hooks: Hooks | None = None,
) -> None:
    """Advance every member until it stops.

    Parameters
    ----------
    ctx : Context
        Model, box, counters.
    policy : Policy
        The direction policy.
    state : RunState
        The members and their recorder; ``state.mem`` is replaced at every commit (the stop
        reasons of the final one say why each member ended).
    ctl : StepControl
        Step bounds and adaptation.
    hooks : Hooks, optional
        Progress, stop flag and checkpoints.

    Raises
    ------
    RunInterrupted
        When ``hooks.stop()`` returns True (``state`` holds the last commit).
    """
    hooks = hooks or Hooks()
    it = 0
    last_progress = 0.0
    b = len(state.mem)
    everyone = torch.arange(b)
    while True:
        mem = state.mem
        n_active = mem.n_active
        if n_active == 0:
            break
        act = everyone if n_active == b else mem.active.nonzero().squeeze(-1)
        if mem.kmax >= ctl.max_steps:
            k_act = mem.k if n_active == b else mem.k[act]
            capped = k_act >= ctl.max_steps
            if bool(capped.any()):
                mem = mem.copy()
                for i in act[capped].tolist():
                    mem.stop(i, "max_steps", f"stopped after max_steps={ctl.max_steps} steps")
                state.mem = mem
                act = act[~capped]
                n_active = mem.n_active
                if n_active == 0:
                    break
        if hooks.stop is not None and hooks.stop():
            raise RunInterrupted
        state.mem = _iterate(ctx, policy, mem, state.rec, ctl, act, n_active, n_active == b)
        it += 1
        if hooks.progress is not None:
            now = time.monotonic()
            if now - last_progress >= 0.1:
                last_progress = now
                hooks.progress(hooks.done + int(state.mem.k.sum()), hooks.total)
        if hooks.checkpoint is not None and it % hooks.checkpoint_every == 0:
            hooks.checkpoint()


def _iterate(
    ctx: Context,
    policy: Policy,
    old: Members,
    rec: Recorder,
    ctl: StepControl,
    act: Tensor,
    k: int,
    full: bool,
) -> Members:
    """One iteration of the ``k`` members ``act``; returns the new members (``old`` stays)."""
    stats = ctx.stats
    del rec.chunks[old.nrec :]
    sub = old if full else old.take(act)
    prop: Proposal = policy.propose(ctx, sub)
    clamp_stop: Tensor | None = None
    if ctx.box is not None and policy.box_mode in ("clamp", "stop_clamp"):
        out = outside(prop.x, ctx.box)
        if bool(out.any()):
            prop.x = clamp(prop.x, ctx.box)
            if policy.box_mode == "stop_clamp":
                clamp_stop = out.cpu()
    if policy.corrects:
        cor = correct(
            ctx.fn,
            prop.x,
            prop.goal,
            sub.tol,
            max_iter=policy.max_newton,
            jac=prop.jac,
            matrix_free=ctx.matrix_free,
            stats=stats,
        )
    else:
        cor = evaluate(ctx.fn, prop.x, stats)
    verdict: Verdict = policy.judge(ctx, sub, prop, cor)
    accept = verdict.accept
    n_acc = int(accept.sum())
    mem = old.copy()
    stops: list[tuple[int, str, str, Tensor | None]] = []
    if policy.adaptive and n_acc < k:
        stats.rejected += k - n_acc
        rej = (~accept).nonzero().squeeze(-1)
        h_r = prop.h[rej] * ctl.shrink
        scale = sub.x[rej.to(sub.x.device)].abs().amax(dim=-1).cpu()
        below = h_r < ctl.floor(scale)
        h = mem.h.clone()
        h[act[rej]] = h_r
        mem.h = h
        nrej = mem.rejected.clone()
        nrej[act[rej]] += 1
        mem.rejected = nrej
        for j in rej[below].tolist():
            reason, message = policy.at_floor(ctx, sub, j, prop.x[j])
            stops.append((int(act[j]), reason, message, None))
        moving = accept.nonzero().squeeze(-1)
    else:
        if not policy.adaptive:
            stats.rejected += k - n_acc
        moving = None  # every row
    if moving is not None and moving.numel() == 0:
        _stop_all(mem, stops)
        mem.nrec = len(rec.chunks)
        return mem
    if moving is not None:
        sub, prop, cor, verdict = (
            sub.take(moving),
            take(prop, moving, k),
            take(cor, moving, k),
            take(verdict, moving, k),
        )
        if clamp_stop is not None:
            clamp_stop = clamp_stop[moving]
        ids = act[moving]
    else:
        ids = act
    km = k if moving is None else int(ids.numel())
    stats.steps += km
    if ctx.box is not None and policy.box_mode in ("exit_on_class", "exit_on_chord"):
        out = outside(cor.x, ctx.box).cpu()
        if bool(out.any()):
            for j in out.nonzero().squeeze(-1).tolist():
                stops.append(_exit(ctx, policy, sub, rec, int(ids[j]), j, cor))
            keep = (~out).nonzero().squeeze(-1)
            if keep.numel() == 0:
                _stop_all(mem, stops)
                mem.nrec = len(rec.chunks)
                return mem
            sub, prop, cor, verdict = (
                sub.take(keep),
                take(prop, keep, km),
                take(cor, keep, km),
                take(verdict, keep, km),
            )
            if clamp_stop is not None:
                clamp_stop = clamp_stop[keep]
            ids = ids[keep]
            full = False
    adv = policy.advance(ctx, sub, prop, cor, verdict)
    record = adv.record
    n_rec = km if record is None else int(record.sum())
    if n_rec == km:
        rec.append(ids, adv.rec_x, adv.rec_y, **adv.extra)
    elif n_rec:
        r = record.nonzero().squeeze(-1)
        rd = r.to(adv.rec_x.device)
        rec.append(ids[r], adv.rec_x[rd], adv.rec_y[rd], **{a: v[rd] for a, v in adv.extra.items()})
    # commit: the members' new state
    all_rows = full and moving is None
    if policy.adaptive:
        h_acc = torch.where(verdict.easy, ctl.grown(sub.h), sub.h)
    else:
        h_acc = sub.h
    if all_rows:
        mem.x, mem.y, mem.jac = adv.x, adv.y, adv.jac
        mem.vars = {**mem.vars, **adv.vars}
        if adv.goal is not None:
            mem.goal = adv.goal
        mem.k = mem.k + 1
        mem.kmax += 1
        mem.h = h_acc
    else:
        dev = mem.x.device
        idd = ids.to(dev) if dev.type != "cpu" else ids
        mem.x = _put(mem.x, idd, adv.x)
        mem.y = _put(mem.y, idd, adv.y)
        mem.jac = _put(mem.jac, idd, adv.jac)
        for key, v in adv.vars.items():
            full_v = mem.vars[key]
            mem.vars[key] = _put(full_v, idd if full_v.device == dev else ids, v)
        if adv.goal is not None:
            mem.goal = _put(mem.goal, idd, adv.goal)
        mem.k = _put(mem.k, ids, sub.k + 1)
        mem.kmax = max(mem.kmax, int(sub.k.max()) + 1)
        mem.h = _put(mem.h, ids, h_acc)
    for st in adv.stops:
        stops.append((int(ids[st.index]), st.reason, st.message, st.point))
    if clamp_stop is not None:
        for j in clamp_stop.nonzero().squeeze(-1).tolist():
            stops.append(
                (int(ids[j]), "boundary", "reached the box (stop-at-boundary variant)", None)
            )
    _stop_all(mem, stops)
    mem.nrec = len(rec.chunks)
    return mem


def _put(t: Tensor, idx: Tensor, v: Tensor) -> Tensor:
    out = t.clone()
    out[idx] = v.to(out.device) if v.device != out.device else v
    return out


def _stop_all(mem: Members, stops: list[tuple[int, str, str, Tensor | None]]) -> None:
    """Stop members (the first stop of a member wins)."""
    for i, reason, message, point in stops:
        if mem.reasons[i] is None:
            mem.stop(i, reason, message, point)


def _exit(
    ctx: Context, policy: Policy, sub: Members, rec: Recorder, i: int, j: int, cor: Correction
) -> tuple[int, str, str, Tensor | None]:
    """Row ``j`` (member ``i``) stepped out of the box: record where it leaves; its stop."""
    assert ctx.box is not None
    x_in, x_out = sub.x[j], cor.x[j]
    if policy.box_mode == "exit_on_class":
        found = exit_on_class(
            ctx.fn, x_in, x_out, sub.goal[j], ctx.box, float(sub.tol[j]), ctx.stats
        )
        if found is None:
            return (
                i,
                "boundary",
                "left the box; the exit point could not be located exactly",
                None,
            )
        xe, ye = found
    else:
        xe = chord_exit(x_in, x_out, ctx.box)
        ye = ctx.fn.value(xe)
        ctx.stats.value_evals += 1
    hook = getattr(policy, "exit_extra", None)
    extra = hook(ctx, sub, j, xe) if callable(hook) else {}
    if float(torch.linalg.vector_norm(xe - x_in)) > 0:
        rec.append(torch.tensor([i]), xe.unsqueeze(0), ye.unsqueeze(0), **extra)
    ys = ", ".join(f"{v:.6g}" for v in ye.reshape(-1)[:6].tolist())
    return (i, "boundary", f"left the box at {_fmt(xe)} with output ({ys})", xe)
