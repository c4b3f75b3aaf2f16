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
        Model, box, tolerances, counters.
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
    while True:
        mem = state.mem
        act = mem.active.nonzero().squeeze(-1)
        if act.numel() == 0:
            break
        capped = mem.k[act] >= ctl.max_steps
        if bool(capped.any()):
            mem = mem.copy()
            for i in act[capped].tolist():
                mem.stop(i, "max_steps", f"stopped after max_steps={ctl.max_steps} steps")
            state.mem = mem
            act = act[~capped]
            if act.numel() == 0:
                break
        if hooks.stop is not None and hooks.stop():
            raise RunInterrupted
        state.mem = _iterate(ctx, policy, mem, state.rec, ctl, act)
        it += 1
        if hooks.progress is not None:
            now = time.monotonic()
            if now - last_progress >= 0.1:
                last_progress = now
                hooks.progress(hooks.done + int(state.mem.k.sum()), hooks.total)
        if hooks.checkpoint is not None and it % hooks.checkpoint_every == 0:
            hooks.checkpoint()


def _iterate(
    ctx: Context, policy: Policy, old: Members, rec: Recorder, ctl: StepControl, act: Tensor
) -> Members:
    """One iteration; returns the new members (``old`` is left untouched)."""
    stats = ctx.stats
    mem = old.copy()
    rec.chunks = rec.chunks[: old.nrec]
    k = int(act.numel())
    dev = mem.x.device
    act_dev = act.to(dev)
    prop: Proposal = policy.propose(ctx, mem, act)
    clamp_stop = torch.zeros(k, dtype=torch.bool)
    if ctx.box is not None and policy.box_mode in ("clamp", "stop_clamp"):
        out = outside(prop.x, ctx.box)
        if bool(out.any()):
            prop.x = clamp(prop.x, ctx.box)
            if policy.box_mode == "stop_clamp":
                clamp_stop = out.cpu()
    tol = ctx.tol[act_dev]
    if policy.corrects:
        cor = correct(
            ctx.fn, prop.x, prop.goal, tol, max_iter=policy.max_newton, jac=prop.jac, stats=stats
        )
    else:
        cor = evaluate(ctx.fn, prop.x, stats)
    verdict: Verdict = policy.judge(ctx, mem, act, prop, cor)
    accept = verdict.accept
    h_new = mem.h.clone()
    if policy.adaptive:
        rej = ~accept
        if bool(rej.any()):
            stats.rejected += int(rej.sum())
            r_local = rej.nonzero().squeeze(-1)
            h_r = prop.h[r_local] * ctl.shrink
            scale = mem.x[act_dev[r_local.to(dev)]].abs().amax(dim=-1).cpu()
            below = h_r < ctl.floor(scale)
            for j, i in enumerate(act[r_local].tolist()):
                if bool(below[j]):
                    reason, message = policy.at_floor(ctx, mem, i, prop.x[int(r_local[j])])
                    mem.stop(i, reason, message)
                else:
                    h_new[i] = h_r[j]
        moving = accept.nonzero().squeeze(-1)
    else:
        stats.rejected += int((~accept).sum())
        moving = torch.arange(k)
    mem.h = h_new
    if moving.numel() == 0:
        mem.nrec = len(rec.chunks)
        return mem
    if moving.numel() != k:
        prop, cor, verdict = take(prop, moving, k), take(cor, moving, k), take(verdict, moving, k)
        clamp_stop = clamp_stop[moving]
    idx = act[moving]
    stats.steps += int(idx.numel())
    if ctx.box is not None and policy.box_mode in ("exit_on_class", "exit_on_chord"):
        out = outside(cor.x, ctx.box).cpu()
        if bool(out.any()):
            for j in out.nonzero().squeeze(-1).tolist():
                _exit(ctx, policy, mem, rec, int(idx[j]), cor, j)
            keep = (~out).nonzero().squeeze(-1)
            if keep.numel() == 0:
                mem.nrec = len(rec.chunks)
                return mem
            kk = int(idx.numel())
            prop, cor, verdict = take(prop, keep, kk), take(cor, keep, kk), take(verdict, keep, kk)
            clamp_stop = clamp_stop[keep]
            idx = idx[keep]
    adv = policy.advance(ctx, mem, idx, prop, cor, verdict)
    idx_dev = idx.to(dev)
    record = adv.record
    if bool(record.any()):
        r = record.nonzero().squeeze(-1)
        r_dev = r.to(dev)
        extra = {key: v[r_dev] for key, v in adv.extra.items()}
        rec.append(idx[r], adv.rec_x[r_dev], adv.rec_y[r_dev], **extra)
    # commit: the members' new state in one go
    x, y, jac = mem.x.clone(), mem.y.clone(), mem.jac.clone()
    x[idx_dev], y[idx_dev], jac[idx_dev] = adv.x, adv.y, adv.jac
    new_vars = dict(mem.vars)
    for key, v in adv.vars.items():
        full = new_vars[key].clone()
        full[idx_dev if full.device == dev else idx] = (
            v if v.device == full.device else v.to(full.device)
        )
        new_vars[key] = full
    goal = mem.goal
    if adv.goal is not None:
        goal = goal.clone()
        goal[idx_dev] = adv.goal
    kk_new = mem.k.clone()
    kk_new[idx] += 1
    if policy.adaptive:
        easy = verdict.easy
        h_acc = mem.h[idx]
        h_acc = torch.where(easy, ctl.grown(h_acc), h_acc)
        h_new = mem.h.clone()
        h_new[idx] = h_acc
    else:
        h_new = mem.h
    mem.x, mem.y, mem.jac, mem.vars, mem.goal, mem.k, mem.h = (
        x,
        y,
        jac,
        new_vars,
        goal,
        kk_new,
        h_new,
    )
    for s in adv.stops:
        mem.stop(int(idx[s.index]), s.reason, s.message, s.point)
    if bool(clamp_stop.any()):
        for j in clamp_stop.nonzero().squeeze(-1).tolist():
            i = int(idx[j])
            if mem.active[i]:
                mem.stop(i, "boundary", "reached the box (stop-at-boundary variant)")
    mem.nrec = len(rec.chunks)
    return mem


def _exit(
    ctx: Context, policy: Policy, mem: Members, rec: Recorder, i: int, cor: Correction, j: int
) -> None:
    """Member ``i`` stepped out of the box: record where it leaves and stop it."""
    assert ctx.box is not None
    x_in, x_out = mem.x[i], cor.x[j]
    if policy.box_mode == "exit_on_class":
        tol = float(ctx.tol[i])
        found = exit_on_class(ctx.fn, x_in, x_out, mem.goal[i], ctx.box, tol, ctx.stats)
        if found is None:
            mem.stop(i, "boundary", "left the box; the exit point could not be located exactly")
            return
        xe, ye = found
    else:
        xe = chord_exit(x_in, x_out, ctx.box)
        ye = ctx.fn.value(xe)
        ctx.stats.value_evals += 1
    extra = policy_exit_extra(policy, ctx, mem, i, xe)
    if float(torch.linalg.vector_norm(xe - x_in)) > 0:
        rec.append(torch.tensor([i]), xe.unsqueeze(0), ye.unsqueeze(0), **extra)
    ys = ", ".join(f"{v:.6g}" for v in ye.reshape(-1)[:6].tolist())
    mem.stop(i, "boundary", f"left the box at {_fmt(xe)} with output ({ys})", xe)


def policy_exit_extra(
    policy: Policy, ctx: Context, mem: Members, i: int, xe: Tensor
) -> dict[str, Tensor]:
    """Per-row extras of an exit point (the policy's ``exit_extra`` hook, if it has one)."""
    hook = getattr(policy, "exit_extra", None)
    return hook(ctx, mem, i, xe) if callable(hook) else {}
