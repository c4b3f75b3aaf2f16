"""``fiberscope.explore``: move from a point across classes, to an exact output level.

The corrected method follows the curve along which the output changes fastest and reaches the
requested output *exactly* (the engine's ``"target"`` policy): with a target output ``y*`` it
continues the homotopy ``N(x) = y0 + lam (y* - y0)`` from ``lam = 0`` to ``lam = 1``; each
step predicts along the minimum-norm direction ``J^+ (y* - y0)`` (for one output: the gradient,
signed up or down) and corrects back to the level ``y0 + lam (y* - y0)``. Every point lies on a
level to the tracing tolerance, the path is the gradient line (perpendicular to the classes it
crosses) up to the discretisation, and the last point is on the target level to ``tol``. With
``epsilon`` and several outputs it follows the top eigenvector of the pullback metric
``J^T G J`` until ``||N(x) - N(x0)||_G = epsilon`` exactly (policy ``"top_eigen"``).

The paper method is the authors' SiMExp-1D (policy ``"simexp"``: fixed steps along the top
eigenvector until the output has changed by ``epsilon``), with their sign behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..engine import Context, Members, RunState, Session, Snapshot, Stats, StepControl
from ..engine.policies import Simexp, Target, TopEigen, eigenvector
from ..engine.policies.tangent import fmt_point as _fmt
from ..engine.policies.target import fmt_output as _fmt_y
from ..errors import InputError, Interrupted, ModelError, SingularPointError, TargetNotReachedError
from ..geometry.metric import metric_from_jacobian
from ..outputs import OutputMap, describe_output
from ._progress import progress_callback
from .problem import Problem, check_positive, check_step, level_tolerance, prepare
from .results import ExploreResult

METHODS = ("corrected", "paper")
DIRECTIONS = ("up", "down")
PAPER_DIRECTIONS = ("forward", "backward", "up", "down")
REASONS = ("reached", "boundary", "singular", "max_steps")


def explore(
    model: Callable[..., Any],
    x0: Any,
    *,
    target: Any = None,
    epsilon: float | None = None,
    direction: str | None = None,
    step: float = 0.01,
    max_steps: int = 10_000,
    bounds: Any = None,
    method: str = "corrected",
    metric: Any = None,
    tol: float = 1e-12,
    output: OutputMap | str | None = None,
    max_angle: float = 0.3,
    sing_tol: float = 1e-8,
    dtype: Any = None,
    batched: bool | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> ExploreResult | list[ExploreResult]:
    """Move from ``x0`` across classes, along the direction in which the output changes fastest.

    Answers "what is the smallest move along the gradient that changes the output to y?".

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network.
    x0 : tensor or array-like
        Start point (any shape; points come back in the same shape), or a batch of starts.
    target : float or sequence of float, optional
        Output level to reach exactly (``m`` values for ``m`` outputs). Whether the walk goes
        up or down follows from it. Give either ``target`` or ``epsilon``.
    epsilon : float, optional
        Output change to reach: the target is ``N(x0) +- epsilon`` for one output; for several
        outputs the walk follows the top eigenvector of ``J^T G J`` until
        ``||N(x) - N(x0)||_G = epsilon``. Paper mode: the authors' stop criterion
        ``|N(x) - N(x0)| >= epsilon``.
    direction : {"up", "down", "forward", "backward"}, optional
        With ``epsilon``: ``"up"`` (default) or ``"down"`` (several outputs: the first output
        increases or decreases along the first step). Paper mode also takes the authors'
        ``"forward"`` (``x + delta v``, the default) and ``"backward"`` (``x - delta v``);
        ``"up"``/``"down"`` there choose the sign of the *first* step only: later steps use
        the eigen-solver's sign, as in the original.
    step : float
        Corrected: the largest step. Paper: the fixed step ``delta``.
    max_steps : int
        Accepted steps.
    bounds : tuple, optional
        Box ``(lo, hi)`` containing ``x0``; the corrected walk stops where it leaves it
        (paper mode, like the original, ignores it).
    method : {"corrected", "paper"}
        Exact walk (default) or the authors' SiMExp-1D.
    metric : array-like, optional
        SPD output metric ``G`` (identity by default).
    tol : float
        Residual tolerance of every point on its level (corrected).
    output : callable or str, optional
        Output map (which outputs count; e.g. ``fiberscope.outputs.ClassMargin()``).
    max_angle : float
        Corrected: largest turn of the direction per step (radians).
    sing_tol : float
        Corrected: relative drop of the smallest singular value of J that counts as singular.
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
    ExploreResult or list of ExploreResult
        The path, the output along it, its length, the end point (a list for a batch, where
        unreached targets are reported by ``reached=False`` instead of an error).

    Raises
    ------
    InputError
        Bad start, bounds, target or options (e.g. a scalar target for a vector output).
    SingularPointError
        The output does not change to first order at the start.
    TargetNotReachedError
        The walk left the box, met a local extremum of the output or ran out of steps before
        reaching the target; the error names the closest output reached and where, and carries
        the partial result as ``.result``.
    Interrupted
        Ctrl-C or ``stop``.

    Examples
    --------
    >>> import fiberscope as fs
    >>> net = fs.load_model("surface_1")
    >>> res = fs.explore(net, [0.25, 0.25], target=0.16, step=0.01)
    >>> res.reached, res.residual < 1e-12
    (True, True)
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if (target is None) == (epsilon is None):
        raise InputError("give exactly one of target= (an output level) or epsilon= (a change)")
    if epsilon is not None:
        epsilon = check_positive(epsilon, "epsilon")
    allowed = PAPER_DIRECTIONS if method == "paper" else DIRECTIONS
    if direction is not None and direction not in allowed:
        raise InputError(f"unknown direction {direction!r}; use one of {', '.join(allowed)}")
    if direction is not None and target is not None and method == "corrected":
        raise InputError(
            "direction= goes with epsilon=; with target= the direction follows from it"
        )
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    max_angle = check_positive(max_angle, "max_angle")
    sing_tol = check_positive(sing_tol, "sing_tol")
    problem = prepare(
        model,
        x0,
        bounds=bounds,
        metric=metric,
        output=output,
        require_m=_require_m_le_n,
        batched=batched,
        dtype=dtype,
    )
    step = check_step(step, problem)
    tgt = parse_target(target, problem.m, problem.x0.device) if target is not None else None
    for i in range(problem.size):
        check_start_gradient(_single(problem, i))
    options: dict[str, Any] = {
        "method": method,
        "target": None if tgt is None else tgt.tolist(),
        "epsilon": epsilon,
        "direction": direction,
        "step": step,
        "max_steps": max_steps,
        "bounds": problem.box_list(),
        "tol": tol,
        "metric": None if problem.metric is None else problem.metric.tolist(),
        "output": describe_output(problem.fn.output_map),
        "max_angle": max_angle,
        "sing_tol": sing_tol,
        "dtype": str(problem.fn.jac_dtype).removeprefix("torch."),
        "x0": problem.starts_list(),
        "input_shape": list(problem.fn.input_shape),
    }
    b = problem.size
    want_up = direction != "down"
    targets: Tensor | None = None
    if method == "paper":
        if epsilon is None:
            assert tgt is not None
            eps_all = (tgt - problem.ys).abs().amax(dim=-1)
            if bool((eps_all == 0).any()):
                raise InputError("the target equals N(x0); nothing to explore")
        else:
            eps_all = torch.full((b,), float(epsilon), dtype=torch.float64)
        direction = direction or "forward"
        inverts = [paper_invert_for(_single(problem, i), direction) for i in range(b)]
        options["epsilon"] = epsilon if epsilon is not None else float(eps_all[0])
        options["invert"] = inverts[0] if b == 1 else inverts
        policy: Any = Simexp()
        ctl = StepControl(step=step, max_steps=max_steps, adaptive=False)
    else:
        if tgt is None and problem.m == 1:
            assert epsilon is not None
            tgt = problem.y0 + (epsilon if want_up else -epsilon)
            targets = problem.ys + (epsilon if want_up else -epsilon)
            options["target"] = tgt.tolist() if b == 1 else targets.tolist()
        elif tgt is not None:
            targets = tgt.expand(b, -1).clone()
        if targets is not None:
            policy = Target(max_angle=max_angle, sing_tol=sing_tol)
        else:
            assert epsilon is not None
            policy = TopEigen(epsilon=epsilon, max_angle=max_angle, sing_tol=sing_tol)
        ctl = StepControl(step=step, max_steps=max_steps)
    level = targets if targets is not None else problem.ys
    tol_all = torch.maximum(level_tolerance(tol, problem.ys), level_tolerance(tol, level))
    stats = Stats()
    callback, close = progress_callback(progress, f"explore ({method})")
    session = Session(
        "explore",
        options,
        problem.ys,
        stats=stats,
        total=max_steps * b,
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=problem.n,
    )
    ctx = Context(fn=problem.fn, box=problem.box, stats=stats, metric=problem.metric)

    def fresh() -> Members:
        mem = Members.start(problem.xs, problem.ys, problem.js, problem.ys, step, tol_all)
        if method == "paper":
            sign = torch.tensor([-1.0 if inv else 1.0 for inv in inverts], dtype=torch.float64)
            Simexp.init(mem, sign, eps_all, torch.ones(b, dtype=torch.int64))
        elif targets is not None:
            Target.init(mem, targets.unsqueeze(1))
        else:
            lam = TopEigen.init(mem, want_up, problem.metric)
            if bool((lam == 0).any()):
                raise SingularPointError("the Jacobian vanishes at the start")
        return mem

    box_ctx = (
        ctx
        if method == "corrected"
        else Context(fn=problem.fn, box=None, stats=stats, metric=problem.metric)
    )
    try:
        try:
            state = session.phase("walk", box_ctx, policy, ctl, fresh)
        except KeyboardInterrupt:
            states = session.states()
            partial: Any = None
            if states:
                partial = _results(
                    problem,
                    states[-1][1],
                    method,
                    tgt,
                    targets,
                    epsilon,
                    options,
                    stats,
                    complete=False,
                )
                if not problem.batched:
                    partial = partial[0]
            raise Interrupted(partial, session.snapshot()) from None
    finally:
        close()
    session.finish()
    results = _results(problem, state, method, tgt, targets, epsilon, options, stats, complete=True)
    if problem.batched:
        return results
    res = results[0]
    if not res.reached:
        raise_not_reached(res, res.target, epsilon)
    return res


def _single(problem: Problem, i: int) -> Problem:
    """The ``i``-th start of a batch as a problem of its own."""
    return Problem(
        fn=problem.fn,
        xs=problem.xs[i : i + 1],
        ys=problem.ys[i : i + 1],
        js=problem.js[i : i + 1],
        box=problem.box,
        metric=problem.metric,
    )


def assemble_path(
    problem: Problem, i: int, points: Tensor | None, outputs: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """The start of member ``i`` followed by its recorded points, with arclength.

    Parameters
    ----------
    problem : Problem
        The problem.
    i : int
        Which start.
    points, outputs : torch.Tensor or None
        Recorded rows (flat), or None.

    Returns
    -------
    points, outputs, arclength : torch.Tensor
        ``(K, *input_shape)``, ``(K, m)``, ``(K,)``.
    """
    x0, y0 = problem.xs[i], problem.ys[i]
    pts = x0.unsqueeze(0) if points is None else torch.cat((x0.unsqueeze(0), points))
    outs = y0.unsqueeze(0) if outputs is None else torch.cat((y0.unsqueeze(0), outputs))
    seg = torch.linalg.vector_norm(pts[1:] - pts[:-1], dim=1)
    arc = torch.cat((seg.new_zeros(1), torch.cumsum(seg, 0)))
    return problem.unflatten(pts), outs.reshape(pts.shape[0], -1), arc


def _results(
    problem: Problem,
    state: RunState,
    method: str,
    tgt: Tensor | None,
    targets: Tensor | None,
    epsilon: float | None,
    options: dict[str, Any],
    stats: Stats,
    *,
    complete: bool,
) -> list[ExploreResult]:
    mem, rec = state.mem, state.rec
    out = []
    for i in range(problem.size):
        pts, outs, arc = assemble_path(problem, i, rec.rows(i, "x"), rec.rows(i, "y"))
        reason = mem.reasons[i] or "interrupted"
        stop = mem.stop_points[i] or pts[-1].reshape(-1).tolist()
        message = mem.messages[i] or f"interrupted after {int(mem.k[i])} steps"
        if method == "paper" and reason == "reached":
            message = "output changed by epsilon"
        target_i = targets[i] if targets is not None else tgt
        opts = dict(options)
        if problem.batched:
            opts["x0"] = problem.xs[i].tolist()
            opts["batch_index"] = i
        out.append(
            ExploreResult(
                points=pts,
                outputs=outs,
                arclength=arc,
                y0=problem.ys[i],
                target=target_i,
                epsilon=epsilon,
                reached=reason == "reached",
                stop_reason=reason,
                stop_point=stop,
                message=message,
                method=method,
                options=opts,
                stats=stats,
                energy=float(mem.vars["energy"][i]) if method == "paper" else None,
                complete=complete,
            )
        )
    return out


def parse_target(target: Any, m: int, device: torch.device) -> Tensor:
    """Validate a target output: a number (one output) or ``m`` numbers.

    Parameters
    ----------
    target : float or sequence of float or torch.Tensor
        The requested output.
    m : int
        Output dimension of the model (after the output map).
    device : torch.device
        Where the target should live.

    Returns
    -------
    torch.Tensor
        ``(m,)`` float64.
    """
    try:
        t = torch.as_tensor(target, dtype=torch.float64).reshape(-1).to(device)
    except Exception:
        raise InputError(
            f"the target must be a number or a list of numbers, got {target!r}"
        ) from None
    if t.numel() != m:
        if t.numel() == 1:
            raise InputError(
                f"a single target level needs a scalar output, but the model has {m} outputs; "
                "choose one with an output map (e.g. output=OutputComponent(3) or ClassMargin(); "
                "CLI: --output) "
                f"or give a target with {m} values"
            )
        raise InputError(f"the target has {t.numel()} values but the model has {m} outputs")
    if not bool(torch.isfinite(t).all()):
        raise InputError("the target must be finite")
    return t


def check_start_gradient(problem: Problem, what: str = "explore") -> tuple[float, float]:
    """Refuse a start where the Jacobian has no full row rank (no direction to move in).

    Parameters
    ----------
    problem : Problem
        The validated problem.
    what : str
        The command, for the message.

    Returns
    -------
    tuple of float
        Smallest and largest singular values of J at the start.

    Raises
    ------
    SingularPointError
        If ``s_min(J) <= 1e-12 s_max(J)``.
    """
    s = torch.linalg.svdvals(problem.J0)
    s_min, s_max = float(s[-1]), float(s[0])
    if s_max == 0.0 or s_min <= 1e-12 * s_max or s_min <= 1e-300:
        raise SingularPointError(
            f"the output does not change to first order at the start (s_min={s_min:.3g}, "
            f"s_max={s_max:.3g}): {what} has no direction to move in; start at a nearby point"
        )
    return s_min, s_max


def _require_m_le_n(n: int, m: int) -> str | None:
    if m <= n:
        return None
    return (
        f"the model maps R^{n} -> R^{m}: with more outputs than inputs a walk cannot reach "
        "arbitrary output levels; pick fewer outputs with an output map"
    )


def raise_not_reached(res: ExploreResult, tgt: Tensor | None, epsilon: float | None) -> None:
    """Raise :class:`TargetNotReachedError` for an unfinished walk, naming the closest output.

    Parameters
    ----------
    res : ExploreResult
        The partial walk (attached to the error as ``.result``).
    tgt : torch.Tensor or None
        The target output; None for an ``epsilon`` walk with several outputs.
    epsilon : float or None
        The requested output change (when there is no target).

    Raises
    ------
    TargetNotReachedError
        Always; the message names the closest output reached, where, and why the walk stopped.
    """
    y0 = res.y0
    if tgt is not None:
        gap = (res.outputs - tgt).abs().max(dim=1).values
        what = f"the target level {_fmt_y(tgt)}"
    else:
        gap = -torch.linalg.vector_norm(res.outputs - y0, dim=1)
        what = f"an output change of {epsilon:g}"
    i = int(torch.argmin(gap))
    best_y = res.outputs[i]
    best_x = res.points[i].reshape(-1)
    where = {
        "boundary": "inside the box",
        "singular": "from the start (the output has a local extremum or saddle on the way)",
        "max_steps": f"within max_steps={res.options.get('max_steps')}",
    }.get(res.stop_reason, "")
    hint = {
        "boundary": "; widen the bounds or choose a level closer to N(x0)",
        "singular": "; choose a level closer to N(x0)",
        "max_steps": "; raise max_steps or the step",
    }.get(res.stop_reason, "")
    raise TargetNotReachedError(
        f"cannot reach {what} {where}: the closest output reached is {_fmt_y(best_y)} at "
        f"{_fmt(best_x)}{hint}",
        closest_output=best_y.tolist(),
        closest_point=best_x.tolist(),
        reason=res.stop_reason,
        result=res,
    )


def paper_invert_for(problem: Problem, direction: str) -> bool:
    """The authors' ``invert`` flag for a direction (up/down: the sign of the first step).

    Parameters
    ----------
    problem : Problem
        The validated problem (start, Jacobian, metric).
    direction : {"forward", "backward", "up", "down"}
        Authors' flag, or the wanted sign of the first output change.

    Returns
    -------
    bool
        True to move ``x - delta v``.
    """
    if direction in ("forward", "backward"):
        return direction == "backward"
    g = metric_from_jacobian(problem.J0, problem.metric)
    v = eigenvector(g, lowest=False)  # the very vector the first SiMExp step uses
    rises = float((problem.J0 @ v)[0]) > 0
    return rises != (direction == "up")


def require_scalar(problem: Problem, what: str) -> None:
    """Refuse a vector-output model for a scalar-only command (one-line fix in the message).

    Parameters
    ----------
    problem : Problem
        The validated problem.
    what : str
        The command, for the message.

    Raises
    ------
    ModelError
        If the model (after its output map) has more than one output.
    """
    if problem.m != 1:
        raise ModelError(
            f"{what} needs one scalar output, but the model has {problem.m} outputs; choose one "
            "with an output map (e.g. output=OutputComponent(k), LogitDifference(i, j) or "
            "ClassMargin(); CLI: --output)"
        )
