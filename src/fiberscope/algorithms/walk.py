"""``fiberscope.walk``: samples of the class of a point, for classes of any dimension.

Where a network has fewer outputs than inputs minus one (an image classifier with 784 inputs
and 10 outputs has 774-dimensional classes), its classes cannot be traced as curves; they are
explored by walks whose every point lies on the class (and inside the box). Three methods, all
policies of the one engine (see :mod:`fiberscope.engine.policies.walk`):

- ``"corrected"``: random directions in ``ker J``, corrected back to the class; an adaptive
  step; box faces become constraints; rank changes of ``J`` are counted;
- ``"uniform"``: the manifold Metropolis-Hastings sampler with the reverse check, which samples
  the surface measure of the class inside the box (or a user density on it);
- ``"paper"``: the authors' walk of paper III (no corrector; ``n x n`` eigen-decompositions).

Chains are members of one batch; every chain has its own counter-based random stream derived
from ``seed``, so results do not depend on how chains are batched, split or resumed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..engine import Context, Members, RunState, Session, Snapshot, Stats, StepControl
from ..engine.policies.walk import (
    PaperWalk,
    RandomWalk,
    Uniform,
    chain_seed,
    check_paper_nd_size,
    numerical_rank,
)
from ..errors import InputError, Interrupted, SingularPointError
from ..outputs import OutputMap, describe_output
from ._progress import progress_callback
from .problem import (
    Problem,
    check_budget,
    check_positive,
    check_step,
    level_tolerance,
    memory_budget,
    prepare,
)
from .results import WalkResult

METHODS = ("corrected", "uniform", "paper")


def _require_m_lt_n(n: int, m: int) -> str | None:
    if m < n:
        return None
    return (
        f"the model maps R^{n} -> R^{m}: with as many outputs as inputs or more, classes are "
        "isolated points and there is nothing to walk; choose fewer outputs with an output map"
    )


def _check_inside(xs: Tensor, box: tuple[Tensor, Tensor]) -> None:
    """Refuse uniform walks from starts on the box faces (measure zero, every move refused)."""
    lo, hi = box
    on = (xs <= lo) | (xs >= hi)
    if bool(on.any()):
        count = int(on.sum(-1).max())
        raise InputError(
            f"the uniform sampler cannot start on the faces of the box: {count} coordinates "
            "of a start lie on a bound, where the uniform measure has no mass and nearly every "
            "proposal leaves the box; start from a point of the class inside the box (e.g. an "
            "earlier corrected sample) or use method='corrected'"
        )


def walk(
    model: Callable[..., Any],
    x0: Any,
    *,
    samples: int = 100,
    step: float = 0.05,
    chains: int = 1,
    method: str = "corrected",
    bounds: Any = None,
    output: OutputMap | str | None = None,
    seed: int | None = None,
    thin: int = 1,
    tol: float = 1e-12,
    max_steps: int | None = None,
    log_density: Callable[[Tensor], Tensor] | None = None,
    null: str = "index",
    allow_singular: bool = False,
    matrix_free: bool | None = None,
    dtype: Any = None,
    batched: bool | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> WalkResult | list[WalkResult]:
    """Walk on the class of ``x0``: inputs the model cannot tell from it, of any dimension.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network ``R^n -> R^m`` with ``m < n`` (after the output map), any dtype.
    x0 : tensor or array-like
        Start, in the model's input shape (an image ``(1, 28, 28)``, a vector ...), or a batch
        of starts (``batched``).
    samples : int
        Samples saved per chain.
    step : float
        Corrected: the largest step (it adapts below). Uniform: the proposal scale ``sigma``.
        Paper: the authors' ``delta`` (their step is ``delta / 2``).
    chains : int
        Independent chains per start (advanced together as one batch).
    method : {"corrected", "uniform", "paper"}
        See the module docstring.
    bounds : tuple, optional
        Box ``(lo, hi)`` (e.g. ``(0, 1)`` for pixels): every sample stays inside it.
    output : callable or str, optional
        Output map (which outputs are held; default: all of them).
    seed : int, optional
        Seed of the chains (recorded in the result; random when omitted).
    thin : int
        Save every ``thin``-th step (uniform: every ``thin``-th iteration).
    tol : float
        Residual tolerance ``max |N(x) - N(x0)|`` of every saved sample (corrected, uniform).
    max_steps : int, optional
        Steps per chain (default ``samples * thin``; fewer means fewer samples).
    log_density : callable, optional
        Uniform only: ``log_density(x) -> (B,)`` on flat points; the target is its exponential
        times the surface measure of the class.
    null : {"index", "threshold"}
        Paper only: the authors' rule for null eigenvectors.
    allow_singular : bool
        Walk from a start where ``J`` has rank below ``m`` (e.g. a dead ReLU region, whose
        class is full-dimensional).
    matrix_free : bool, optional
        Never form the ``m x n`` Jacobians: solve with conjugate gradients on ``J J^T``
        (one vector-Jacobian and one Jacobian-vector product per iteration). Default: when
        ``m >= 256`` or the Jacobians of all chains would exceed an eighth of the memory
        budget. Corrected and uniform methods only.
    dtype : torch.dtype or str, optional
        Precision of the Jacobians (outputs stay float64).
    batched : bool, optional
        ``x0`` holds a batch of starts (default: decided from the model).
    progress : bool or callable, optional
        True for a progress bar or lines on stderr, or ``progress(done, total)``.
    stop : callable, optional
        Polled between steps; True raises :class:`~fiberscope.errors.Interrupted`.
    checkpoint : callable, optional
        ``checkpoint(snapshot)`` every ``checkpoint_every`` steps.
    checkpoint_every : int
        Steps between checkpoints.
    resume : Snapshot, optional
        Continue an interrupted walk exactly.

    Returns
    -------
    WalkResult or list of WalkResult
        Samples ``(chains, samples, *shape)``, outputs, residual, acceptance and rejection
        counts, path lengths, seeds; a list for a batch of starts.

    Raises
    ------
    InputError
        Bad options, a start outside the box, a run larger than memory allows.
    ModelError
        ``m >= n``, NaN outputs, a model that raises.
    SingularPointError
        ``J`` has rank below ``m`` at the start (unless ``allow_singular``).
    Interrupted
        Ctrl-C or ``stop``.

    Examples
    --------
    >>> import torch, fiberscope as fs
    >>> sphere = lambda x: (x**2).sum(-1, keepdim=True)
    >>> res = fs.walk(sphere, [1.0, 0.0, 0.0], samples=50, step=0.3, seed=0)
    >>> res.samples.shape, res.residual < 1e-9
    (torch.Size([1, 50, 3]), True)
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    samples = check_positive(samples, "samples", integer=True)
    chains = check_positive(chains, "chains", integer=True)
    thin = check_positive(thin, "thin", integer=True)
    tol = check_positive(tol, "tol")
    if max_steps is None:
        max_steps = samples * thin
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    if seed is None:
        seed = int.from_bytes(os.urandom(7), "little")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed < 2**63:
        raise InputError(f"seed must be between 0 and 2**63 - 1, got {seed}")
    if log_density is not None and method != "uniform":
        raise InputError("log_density= goes with method='uniform'")
    if log_density is not None and not callable(log_density):
        raise InputError("log_density must be a callable log_density(x) -> (B,) tensor")
    if matrix_free and method == "paper":
        raise InputError(
            "the authors' walk forms n x n matrices: matrix_free goes with "
            "method='corrected' or 'uniform'"
        )
    probe = prepare(
        model,
        x0,
        bounds=bounds,
        output=output,
        require_m=_require_m_lt_n,
        batched=batched,
        dtype=dtype,
        jacobian=False,
    )
    if matrix_free is None:
        dense = probe.size * chains * probe.m * probe.n * 8
        matrix_free = method != "paper" and (probe.m >= 256 or dense > memory_budget() / 8)
    problem = probe
    if not matrix_free:
        ys, js = probe.fn.values_and_jacobians(probe.xs)
        problem = Problem(
            fn=probe.fn,
            xs=probe.xs,
            ys=ys,
            js=js,
            box=probe.box,
            metric=probe.metric,
            batched=probe.batched,
        )
    step = check_step(step, problem)
    if method == "uniform" and problem.box is not None:
        _check_inside(problem.xs, problem.box)
    if method == "paper":
        check_paper_nd_size(problem.n)
    b = problem.size
    nm = b * chains
    saved = samples * (problem.n + problem.m) * 8
    jac_bytes = 0 if matrix_free else problem.m * problem.n * 8 * 4
    check_budget(
        nm * (saved + jac_bytes + problem.n * 8 * 8),
        f"{chains} chains of {samples} samples for {b} start(s)",
        "use fewer chains or samples, or a larger thin",
    )
    rank0 = (
        torch.full((b,), problem.m, dtype=torch.int64)
        if matrix_free
        else numerical_rank(problem.js)
    )
    if not allow_singular and method != "paper" and bool((rank0 < problem.m).any()):
        i = int((rank0 < problem.m).nonzero()[0])
        raise SingularPointError(
            f"the start is a singular point: J has rank {int(rank0[i])} < {problem.m} there "
            "(e.g. a dead ReLU region or a saturated unit, where the class is not a manifold "
            "of dimension n - m); start elsewhere, or pass allow_singular=True to walk it"
        )
    options: dict[str, Any] = {
        "method": method,
        "samples": samples,
        "step": step,
        "chains": chains,
        "bounds": problem.box_list(),
        "output": describe_output(problem.fn.output_map),
        "seed": seed,
        "thin": thin,
        "tol": tol,
        "max_steps": max_steps,
        "log_density": None if log_density is None else repr(log_density),
        "null": null if method == "paper" else None,
        "allow_singular": allow_singular,
        "matrix_free": bool(matrix_free),
        "dtype": str(problem.fn.jac_dtype).removeprefix("torch."),
        "x0": problem.starts_list(),
        "input_shape": list(problem.fn.input_shape),
    }
    if method == "corrected":
        policy: Any = RandomWalk(thin=thin)
    elif method == "uniform":
        policy = Uniform(step=step, thin=thin, log_density=log_density)
    else:
        policy = PaperWalk(null=null, thin=thin)
    seeds = torch.tensor(
        [chain_seed(seed, s * chains + c) for s in range(b) for c in range(chains)],
        dtype=torch.int64,
    )
    start_of = torch.arange(b).repeat_interleave(chains)
    stats = Stats()
    callback, close = progress_callback(progress, f"walk ({method})")
    session = Session(
        "walk",
        options,
        problem.ys,
        stats=stats,
        total=max_steps * nm,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    tol_all = level_tolerance(tol, problem.ys)[start_of.to(problem.ys.device)]

    def fresh() -> Members:
        d = start_of.to(problem.xs.device)
        mem = Members.start(
            problem.xs[d], problem.ys[d], problem.js[d], problem.ys[d], step, tol_all
        )
        type(policy).init(mem, seeds)
        return mem

    ctx = Context(fn=problem.fn, box=problem.box, stats=stats, matrix_free=bool(matrix_free))
    ctl = StepControl(step=step, max_steps=max_steps, adaptive=method == "corrected")
    try:
        try:
            state = session.phase("walk", ctx, policy, ctl, fresh)
        except KeyboardInterrupt:
            partial = None
            states = session.states()
            if states:
                res = _results(problem, states[-1][1], chains, samples, method, options, stats)
                for r in res:
                    r.complete = False
                partial = res if problem.batched else res[0]
            raise Interrupted(partial, session.snapshot()) from None
    finally:
        close()
    session.finish()
    out = _results(problem, state, chains, samples, method, options, stats)
    return out if problem.batched else out[0]


def _results(
    problem: Problem,
    state: RunState,
    chains: int,
    samples: int,
    method: str,
    options: dict[str, Any],
    stats: Stats,
) -> list[WalkResult]:
    mem, rec = state.mem, state.rec
    shape = problem.fn.input_shape
    dev = problem.xs.device
    out = []
    for s in range(problem.size):
        pts = torch.full((chains, samples, problem.n), math.nan, dtype=torch.float64, device=dev)
        outs = torch.full((chains, samples, problem.m), math.nan, dtype=torch.float64, device=dev)
        counts, accepted, lengths, changes, reasons = [], [], [], [], []
        rejections: dict[str, list[int]] = {}
        pseudo: list[float] = []
        for c in range(chains):
            i = s * chains + c
            xs, ys = rec.rows(i, "x"), rec.rows(i, "y")
            k = 0 if xs is None else min(samples, int(xs.shape[0]))
            if k:
                assert xs is not None and ys is not None
                pts[c, :k] = xs[:k]
                outs[c, :k] = ys[:k]
            counts.append(k)
            v = mem.vars
            lengths.append(float(v["length"][i]))
            changes.append(int(v["rank_changes"][i]) if "rank_changes" in v else 0)
            reasons.append(mem.reasons[i] or "interrupted")
            if method == "uniform":
                accepted.append(int(v["accepted"][i]))
                for name in ("projection", "metropolis", "reverse", "box"):
                    rejections.setdefault(name, []).append(int(v[f"rej_{name}"][i]))
            else:
                accepted.append(int(mem.k[i]))
                rejections.setdefault("step", []).append(int(mem.rejected[i]))
            if method == "paper":
                pseudo.append(float(v["pseudolength"][i]))
        valid = torch.cat([outs[c, : counts[c]] for c in range(chains)])
        y0 = problem.ys[s]
        residual = float((valid - y0).abs().max()) if valid.numel() else 0.0
        opts = dict(options)
        if problem.batched:
            opts["x0"] = problem.xs[s].tolist()
            opts["batch_index"] = s
        out.append(
            WalkResult(
                samples=pts.reshape(chains, samples, *shape),
                outputs=outs,
                counts=counts,
                x0=problem.xs[s].reshape(shape),
                y0=y0,
                residual=residual,
                accepted=accepted,
                rejections=rejections,
                path_length=lengths,
                rank_changes=changes,
                seeds=[int(v) for v in mem.vars["seed"][s * chains : (s + 1) * chains].tolist()],
                stop_reasons=reasons,
                method=method,
                options=opts,
                stats=stats,
                pseudolength=pseudo if method == "paper" else None,
            )
        )
    return out


__all__ = ["METHODS", "walk"]
