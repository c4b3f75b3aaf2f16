"""``fiberscope.confuse``: the shortest change of an input that changes a classifier's decision.

For a classifier ``N: R^n -> R^m`` (``m >= 2`` scores, decision ``c(x) = argmax N(x)``), the
decision boundary of the start's class ``c0`` is the level ``s(x) = 0`` of its margin
``s(x) = N_c0(x) - max_{j != c0} N_j(x)`` (:class:`~fiberscope.outputs.ClassMargin`). The
smallest change that flips the decision is the point of that level nearest ``x0``:

1. **Seeds on the boundary.** Along the straight segment from ``x0`` to a candidate input whose
   decision differs, the margin changes sign; bisection finds the crossing to machine
   precision. The candidates: the first points decided otherwise along the steepest-descent
   rays of the margins against the ``rays`` runner-up classes (clipped to the box), and
   ``toward=`` inputs (e.g. images of other classes; by default the constant inputs at the
   box's lower and upper faces and its centre). The segments lie in the box, so the seeds do.
2. **Descent on the boundary.** From the ``seeds`` nearest crossings the engine's ``"closest"``
   policy walks on the level ``s = 0`` toward ``x0`` (every point corrected back to the level,
   the box faces as constraints), to a local minimum of ``|x - x0|`` on the boundary inside the
   box. The result is the nearest one found, with its first-order residual (the part of
   ``x0 - x`` tangent to the boundary, over ``|x0 - x|``; 0 at an exact minimiser), the class
   on the other side (the runner-up at the boundary point) and a point just past the boundary
   that the classifier decides as that class.

This answers the same question as DeepFool or a minimal-norm PGD attack, but the answer lies on
the boundary to the corrector's tolerance and comes with its optimality residual.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..engine import Context, Members, Session, Snapshot, Stats, StepControl
from ..engine.box import hold_faces
from ..engine.policies import Closest
from ..engine.policies.walk import project_tangent
from ..errors import FiberscopeError, InputError, Interrupted, TargetNotReachedError
from ..outputs import (
    ClassMargin,
    LogitDifference,
    OutputMap,
    bind_output,
    describe_output,
    resolve_output,
)
from ._progress import progress_callback
from .problem import (
    Problem,
    as_start_point,
    check_positive,
    check_step,
    level_tolerance,
    prepare,
)
from .results import ConfusionResult

#: Bisection halvings of a segment (2^-60 of its length: below float64 resolution).
_BISECT = 60
#: Points of the confusion path ``x0 -> boundary point`` (then the flipped point).
_LINE = 16


class _Composed:
    """``margin(select(y))``: the start class's margin among the selected outputs."""

    def __init__(self, select: Callable[[Tensor], Tensor], margin: ClassMargin) -> None:
        self.select, self.margin = select, margin
        self.spec = f"{describe_output(margin)} of {describe_output(select)}"

    def __call__(self, y: Tensor) -> Tensor:
        return self.margin(self.select(y))


def _margin_fn(fn: Any, cls: int) -> Callable[[Tensor], float]:
    def margin(x: Tensor) -> float:
        y = fn.value(x)
        others = torch.cat((y[:cls], y[cls + 1 :]))
        return float(y[cls] - others.max())

    return margin


def _crossing(margin: Callable[[Tensor], float], x0: Tensor, x1: Tensor) -> Tensor:
    """The last point of ``x0 -> x1`` still decided as the start's class, next to the flip."""
    a, b = 0.0, 1.0  # margin(a) > 0 >= margin(b)
    d = x1 - x0
    for _ in range(_BISECT):
        mid = 0.5 * (a + b)
        if mid in (a, b):
            break
        if margin(x0 + mid * d) > 0:
            a = mid
        else:
            b = mid
    return x0 + a * d


def _candidates(toward: Any, problem: Any) -> Tensor:
    """Candidate inputs ``(K, n)``: the user's, or the box's constant inputs."""
    n = problem.n
    if toward is not None:
        t = as_start_point(toward, name="toward")
        shape = problem.fn.input_shape
        if tuple(t.shape) == tuple(shape):
            t = t.unsqueeze(0)
        if tuple(t.shape[1:]) != tuple(shape):
            raise InputError(
                f"toward= has shape {tuple(t.shape)}; give inputs of the start's shape {shape} "
                f"or a batch of them (K, {', '.join(str(s) for s in shape)})"
            )
        t = t.reshape(t.shape[0], n).to(problem.xs.device)
        if problem.box is not None:
            lo, hi = problem.box
            outside = ((t < lo) | (t > hi)).any(dim=1)
            if bool(outside.any()):
                k = int(outside.nonzero()[0])
                raise InputError(
                    f"toward input {k} lies outside the box; give inputs inside the bounds"
                )
        return t
    if problem.box is None:
        raise InputError(
            "confuse needs somewhere to look for another decision: give bounds= (a box, e.g. "
            "(0, 1) for pixels) or toward= (inputs of other classes)"
        )
    lo, hi = problem.box
    return torch.stack((lo, hi, 0.5 * (lo + hi)))


def _ray_candidates(
    model: Any, raw: Any, select: Any, problem: Any, c0: int, rays: int, dtype: Any
) -> Tensor:
    """First inputs decided otherwise along the steepest-descent rays of the pair margins.

    For the ``rays`` runner-up classes ``j`` (largest scores at the start), the ray
    ``x0 - s g / |g|`` with ``g`` the gradient of ``N_c0 - N_j`` at ``x0`` (projected on the box:
    coordinates are clipped), from the linear estimate ``s = (N_c0 - N_j) / |g|`` on in steps of
    25 %; the first point of each ray with another decision is a candidate.
    """
    y0 = raw.y0
    order = [int(j) for j in torch.argsort(y0, descending=True).tolist() if int(j) != c0]
    x0 = problem.x0
    box = problem.box
    if box is not None:
        reach = float(torch.linalg.vector_norm(box[1] - box[0]))
    else:
        reach = 1e3 * (1.0 + float(torch.linalg.vector_norm(x0)))
    found = []
    for j in order[:rays]:
        pair = LogitDifference(c0, j)
        out = pair if select is None else _Composed(select, pair)
        pj = prepare(model, x0.reshape(problem.fn.input_shape), output=out, batched=False,
                     dtype=dtype)  # fmt: skip
        g = pj.js[0].reshape(-1)
        ng = float(torch.linalg.vector_norm(g))
        if ng == 0.0 or not torch.isfinite(g).all():
            continue
        s = max(float(pj.y0[0]) / ng, 1e-9 * max(reach, 1.0))
        while s <= reach:
            x = x0 - (s / ng) * g
            if box is not None:
                x = torch.minimum(torch.maximum(x, box[0]), box[1])
            if int(raw.fn.value(x).argmax()) != c0:
                found.append(x)
                break
            s *= 1.25
    if not found:
        return x0.new_zeros((0, x0.numel()))
    return torch.stack(found)


def confuse(
    model: Callable[..., Any],
    x0: Any,
    *,
    toward: Any = None,
    seeds: int = 3,
    rays: int = 9,
    bounds: Any = None,
    output: OutputMap | str | None = None,
    step: float = 0.2,
    max_steps: int = 2000,
    tol: float = 1e-12,
    rtol: float = 1e-8,
    dtype: Any = None,
    batched: bool | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    checkpoint: Callable[[Snapshot], None] | None = None,
    checkpoint_every: int = 1000,
    resume: Snapshot | None = None,
) -> ConfusionResult | list[ConfusionResult]:
    """The nearest input to ``x0`` on the decision boundary of its class (see the module doc).

    Parameters
    ----------
    model : callable or torch.nn.Module
        A classifier with ``m >= 2`` outputs (logits or probabilities; decision = argmax).
    x0 : tensor or array-like
        The input, in the model's input shape (an image, ...), or a batch of inputs (leading
        dimension; see ``batched``): the descents of every start's seeds are members of one
        engine run per start class, each stopping on its own.
    toward : tensor or array-like, optional
        Inputs ``(K, *shape)`` (or one input) to look toward for another decision, e.g. images
        of other classes. By default the constant inputs at the lower face, the upper face and
        the centre of the box. With a batch of ``B`` starts: one input ``shape`` for all of
        them, one per start ``(B, *shape)``, or ``K`` per start ``(B, K, *shape)``.
    seeds : int
        How many boundary crossings (the nearest ones) the descent starts from.
    rays : int
        Also look along the steepest-descent rays of the margins against this many runner-up
        classes (at most ``m - 1``; clipped to the box; 0: only ``toward`` or the box's
        constant inputs). Each costs one gradient and some forward evaluations.
    bounds : tuple, optional
        Box ``(lo, hi)``, e.g. ``(0, 1)`` for pixels; the answer stays inside it.
    output : callable or str, optional
        Which outputs are the class scores (e.g. ``"[0:5]"``: the decision among the first
        five); default all of them.
    step : float
        Largest step of the descent on the boundary.
    max_steps : int
        Accepted steps of the descent (per seed).
    tol : float
        Residual tolerance ``|s(x)|`` of every point on the boundary.
    rtol : float
        The descent stops when the part of ``x0 - x`` tangent to the boundary is below
        ``rtol * |x0 - x|``.
    dtype : torch.dtype or str, optional
        Precision of the Jacobians (outputs stay float64).
    batched : bool, optional
        ``x0`` holds a batch of starts along its first dimension (default: decided from the
        model when its input size is known).
    progress : bool or callable, optional
        True for a progress bar or lines on stderr, or ``progress(done, total)``.
    stop : callable, optional
        Polled between steps; True raises :class:`~fiberscope.errors.Interrupted`.
    checkpoint : callable, optional
        ``checkpoint(snapshot)`` every ``checkpoint_every`` steps.
    checkpoint_every : int
        Steps between checkpoints.
    resume : Snapshot, optional
        Continue an interrupted search exactly.

    Returns
    -------
    ConfusionResult or list of ConfusionResult
        The boundary point, its distance from ``x0``, its first-order residual, the classes on
        both sides, a point just past the boundary, and the descent's path; a list for a batch
        of starts (each result's ``options`` with its ``x0`` and ``batch_index``).

    Raises
    ------
    InputError
        A model with one output, bad ``toward`` inputs (in a batch: of another count), no box
        and no ``toward``, bad options; in a batch the message names the start.
    TargetNotReachedError
        No candidate input is decided differently from ``x0`` (the decision may not change
        anywhere in the box); the message says what was tried (and which start of a batch).
    Interrupted
        Ctrl-C or ``stop``; for a batch its ``result`` is a list of partial results.

    Examples
    --------
    >>> import torch, fiberscope as fs
    >>> lin = lambda x: torch.stack((x.sum(-1), -x.sum(-1)), -1)   # class 0 where sum(x) > 0
    >>> res = fs.confuse(lin, [0.3, 0.1], bounds=([-1, -1], [1, 1]))
    >>> round(res.distance, 6), res.decision_start, res.decision_flip
    (0.282843, 0, 1)
    """
    seeds = check_positive(seeds, "seeds", integer=True)
    if isinstance(rays, bool) or not isinstance(rays, int) or rays < 0:
        raise InputError(f"rays must be 0 or a positive integer, got {rays!r}")
    max_steps = check_positive(max_steps, "max_steps", integer=True)
    tol = check_positive(tol, "tol")
    rtol = check_positive(rtol, "rtol")
    lead = prepare(model, x0, bounds=bounds, batched=batched, jacobian=False)
    common = (seeds, rays, bounds, output, step, max_steps, tol, rtol, dtype)
    if not lead.batched:
        plans = [_plan(model, x0, toward, *common)]
    else:
        towards = _towards(toward, lead)
        plans = []
        for i in range(lead.size):
            x0_i = lead.xs[i].reshape(lead.fn.input_shape)
            try:
                plan = _plan(model, x0_i, towards[i], *common)
            except (InputError, TargetNotReachedError) as exc:
                raise type(exc)(f"start {i} of the batch: {exc}") from None
            plan.options = dict(plan.options) | {"batch_index": i}
            plans.append(plan)
    return _descend(
        plans,
        lead.batched,
        step=plans[0].step,
        max_steps=max_steps,
        rtol=rtol,
        tol=tol,
        progress=progress,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )


class _Plan:
    """One start's search before the descent: its problem, class and boundary seeds."""

    def __init__(
        self,
        problem: Problem,
        raw: Problem,
        c0: int,
        starts: Tensor,
        seed_distances: Tensor,
        step: float,
        options: dict[str, Any],
    ) -> None:
        self.problem, self.raw, self.c0 = problem, raw, c0
        self.starts, self.seed_distances = starts, seed_distances
        self.step, self.options = step, options


def _towards(toward: Any, lead: Problem) -> list[Any]:
    """``toward=`` of a batch, one entry per start: shared, one per start or ``K`` per start."""
    size, shape = lead.size, tuple(lead.fn.input_shape)
    if toward is None:
        return [None] * size
    t = as_start_point(toward, name="toward")
    if tuple(t.shape) == shape:
        return [t] * size
    if tuple(t.shape[:1]) == (size,) and tuple(t.shape[1:]) == shape:
        return list(t)
    if tuple(t.shape[:1]) == (size,) and tuple(t.shape[2:]) == shape and t.ndim == len(shape) + 2:
        return list(t)
    dims = ", ".join(str(d) for d in shape)
    raise InputError(
        f"toward= has shape {tuple(t.shape)} for a batch of {size} starts of shape {shape}; "
        f"give one input {shape} for all of them, one per start ({size}, {dims}) or K per "
        f"start ({size}, K, {dims})"
    )


def _plan(
    model: Any,
    x0: Any,
    toward: Any,
    seeds: int,
    rays: int,
    bounds: Any,
    output: Any,
    step: float,
    max_steps: int,
    tol: float,
    rtol: float,
    dtype: Any,
) -> _Plan:
    """Class, candidates and the ``seeds`` nearest boundary crossings of one start."""
    select = resolve_output(output)
    if select is not None:
        select = bind_output(select, prepare(model, x0, batched=False, jacobian=False).y0)
    raw = prepare(model, x0, bounds=bounds, output=select, batched=False, jacobian=False)
    if raw.m < 2:
        raise InputError(
            f"confuse needs a classifier with at least 2 outputs (the decision is their argmax), "
            f"the model has {raw.m}; for a scalar score use boundary_walk(..., threshold=...)"
        )
    c0 = int(raw.y0.argmax())
    margin_map: Callable[[Tensor], Tensor] = ClassMargin(c0)
    if select is not None:
        margin_map = _Composed(select, ClassMargin(c0))
    problem = prepare(model, x0, bounds=bounds, output=margin_map, batched=False, dtype=dtype)
    step = check_step(step, problem)
    if float(problem.y0[0]) <= 0.0:
        raise InputError(
            f"the start is on the decision boundary (class {c0} ties with another); start "
            "inside a class"
        )
    cands = _candidates(toward, problem)
    n_given = int(cands.shape[0])
    if rays:
        cands = torch.cat((_ray_candidates(model, raw, select, problem, c0, rays, dtype), cands))
    decisions = [int(raw.fn.value(c).argmax()) for c in cands]
    other = [k for k, d in enumerate(decisions) if d != c0]
    if not other:
        what = (
            f"all {n_given} toward inputs"
            if toward is not None
            else "the box's lower, upper and centre inputs"
        )
        if rays:
            what += (
                f" and along the steepest-descent rays against {min(rays, raw.m - 1)} "
                "runner-up classes"
            )
        raise TargetNotReachedError(
            f"the decision is {c0} at the start and at {what}: found no input decided "
            "otherwise; give toward= inputs the classifier decides as another class"
        )
    margin = _margin_fn(raw.fn, c0)
    x0f = problem.x0
    crossings = torch.stack([_crossing(margin, x0f, cands[k]) for k in other])
    dist0 = torch.linalg.vector_norm(crossings - x0f, dim=1)
    order = torch.argsort(dist0)[:seeds]
    options: dict[str, Any] = {
        "kind": "confuse",
        "class": c0,
        "output": describe_output(select),
        "seeds": seeds,
        "rays": rays,
        "toward": None if toward is None else n_given,
        "step": step,
        "max_steps": max_steps,
        "bounds": problem.box_list(),
        "tol": tol,
        "rtol": rtol,
        "dtype": str(problem.fn.jac_dtype).removeprefix("torch."),
        "x0": x0f.tolist(),
        "input_shape": list(problem.fn.input_shape),
    }
    return _Plan(problem, raw, c0, crossings[order], dist0[order], step, options)


def _descend(
    plans: list[_Plan],
    batched: bool,
    *,
    step: float,
    max_steps: int,
    rtol: float,
    tol: float,
    progress: Any,
    stop: Any,
    checkpoint: Any,
    checkpoint_every: int,
    resume: Snapshot | None,
) -> ConfusionResult | list[ConfusionResult]:
    """The descents of every start's seeds: one engine run per start class, then the picks.

    The margin held at 0 is that of a start's class, so the seeds of the starts of one class
    are members of one run (one ``"closest"`` phase); a batch with starts of several classes
    runs one phase per class, in order of first appearance.
    """
    groups: dict[int, list[int]] = {}
    for i, plan in enumerate(plans):
        groups.setdefault(plan.c0, []).append(i)
    runs = []  # (class, starts of the class, member offset of each start, seeds, ys, js)
    stats = Stats()
    for c, members in groups.items():
        starts = torch.cat([plans[i].starts for i in members])
        offsets, at = {}, 0
        for i in members:
            offsets[i] = at
            at += int(plans[i].starts.shape[0])
        ys, js = plans[members[0]].problem.fn.values_and_jacobians(starts)
        stats.jacobian_evals += int(starts.shape[0])
        runs.append((c, members, offsets, starts, ys, js))
    if batched:
        options = dict(plans[0].options) | {
            key: [p.options[key] for p in plans] for key in ("class", "toward", "x0")
        }
        options.pop("batch_index", None)
    else:
        options = plans[0].options
    callback, close = progress_callback(progress, "confuse")
    session = Session(
        "confuse",
        options,
        torch.cat([r[4] for r in runs]),
        stats=stats,
        total=max_steps * len(plans),
        progress=callback,
        stop=stop,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        n=plans[0].problem.n,
    )
    policy = Closest(rtol=rtol, constrain_box=True)
    out: list[ConfusionResult | None] = [None] * len(plans)
    try:
        try:
            for c, members, offsets, starts, ys, js in runs:
                problem = plans[members[0]].problem
                aims = torch.cat(
                    [plans[i].problem.x0.expand_as(plans[i].starts) for i in members]
                ).clone()
                fresh = functools.partial(_members, starts, ys, js, aims, step, tol)
                ctx = Context(fn=problem.fn, box=problem.box, stats=stats)
                name = "closest" if len(runs) == 1 else f"closest class {c}"
                state = session.phase(
                    name, ctx, policy, StepControl(step=step, max_steps=max_steps), fresh
                )
                mem = state.mem
                for i in members:
                    k, seeds_i = offsets[i], plans[i].starts.shape[0]
                    out[i] = _result(
                        plans[i],
                        mem.x[k : k + seeds_i],
                        state.rec,
                        k,
                        mem.reasons[k : k + seeds_i],
                        mem.messages[k : k + seeds_i],
                        stats,
                        complete=True,
                    )
        except KeyboardInterrupt:
            snapshot = session.snapshot()  # before the partial result evaluates the model
            partial = _partial(plans, runs, out, session)
            if not batched and isinstance(partial, list):
                partial = partial[0]
            raise Interrupted(partial, snapshot) from None
    finally:
        close()
    session.finish()
    done = [r for r in out if r is not None]
    return done if batched else done[0]


def _members(
    starts: Tensor, ys: Tensor, js: Tensor, aims: Tensor, step: float, tol: float
) -> Members:
    """The descents of one run: from the seeds on the level 0 toward their starts."""
    goal = torch.zeros_like(ys)
    mem = Members.start(starts, ys, js, goal, step, level_tolerance(tol, goal))
    Closest.init(mem, aims)
    return mem


def _partial(
    plans: list[_Plan],
    runs: list[Any],
    out: list[ConfusionResult | None],
    session: Session,
) -> list[ConfusionResult] | None:
    """The search as of its last committed step (``complete=False``): the nearest point so far.

    Every descent stays on the boundary, so where each had got to is a boundary point; the
    nearest of them is reported (not yet a local minimiser: ``stop_reason`` is
    ``"interrupted"``). Starts of a class whose run had finished keep their complete result;
    starts of a class whose run had not begun report their nearest seed. None when nothing can
    be assembled (a second Ctrl-C meanwhile).
    """
    try:
        states = session.states()
        if not states:
            return None
        results = list(out)
        for g, (_, members, offsets, _, _, _) in enumerate(runs):
            rec = states[g][1].rec if g < len(states) else None
            for i in members:
                if results[i] is not None:
                    continue
                plan = plans[i]
                k, seeds_i = offsets[i], plan.starts.shape[0]
                ends = plan.starts.clone()
                for j in range(seeds_i):
                    rows = None if rec is None else rec.rows(k + j, "x")
                    if rows is not None and rows.shape[0]:
                        ends[j] = rows[-1].reshape(-1)
                results[i] = _result(
                    plan,
                    ends,
                    rec,
                    k,
                    ["interrupted"] * seeds_i,
                    ["interrupted before the descents converged"] * seeds_i,
                    session.stats,
                    complete=False,
                )
        return [r for r in results if r is not None]
    except (KeyboardInterrupt, FiberscopeError):
        return None


def _result(
    plan: _Plan,
    ends: Tensor,
    rec: Any,
    offset: int,
    reasons: list[str | None],
    messages: list[str],
    stats: Stats,
    *,
    complete: bool,
) -> ConfusionResult:
    """The nearest of one start's descent ends (members ``offset``, ...), the point past it."""
    problem, raw, c0, starts = plan.problem, plan.raw, plan.c0, plan.starts
    x0f = problem.x0
    d_end = torch.linalg.vector_norm(ends - x0f, dim=1)
    best = int(torch.argmin(d_end))
    rows = None if rec is None else rec.rows(offset + best, "x")
    path = starts[best : best + 1] if rows is None else torch.cat((starts[best : best + 1], rows))
    xb = ends[best]
    yb_raw = raw.fn.value(xb)
    sb = float(problem.fn.value(xb)[0])
    flip_class = int(
        torch.cat((yb_raw[:c0], torch.tensor([-torch.inf]), yb_raw[c0 + 1 :])).argmax()
    )
    flip = _past(raw.fn, problem.box, x0f, xb, c0)
    ts = torch.linspace(0.0, 1.0, _LINE, dtype=torch.float64, device=x0f.device).unsqueeze(1)
    line = torch.cat((x0f + ts * (xb - x0f), flip.unsqueeze(0)))
    line_outputs = torch.stack([raw.fn.value(p) for p in line])
    return ConfusionResult(
        start=problem.unflatten(x0f.unsqueeze(0))[0],
        point=problem.unflatten(xb.unsqueeze(0))[0],
        flipped=problem.unflatten(flip.unsqueeze(0))[0],
        distance=float(d_end[best]),
        kkt=_kkt(problem, x0f, xb),
        boundary_residual=abs(sb),
        decision_start=c0,
        decision_flip=flip_class,
        decision_flipped=int(raw.fn.value(flip).argmax()),
        outputs_start=raw.y0,
        outputs_point=yb_raw,
        outputs_flipped=raw.fn.value(flip),
        path=problem.unflatten(path),
        line=problem.unflatten(line),
        line_outputs=line_outputs,
        seed_distances=plan.seed_distances.tolist(),
        end_distances=d_end.tolist(),
        stop_reason=reasons[best] or "max_steps",
        message=messages[best] or "",
        options=plan.options,
        stats=stats,
        complete=complete,
    )


def _past(fn: Any, box: Any, x0: Tensor, xb: Tensor, c0: int) -> Tensor:
    """A point just past the boundary (along ``xb - x0``, in the box) decided otherwise."""
    d = xb - x0
    nd = float(torch.linalg.vector_norm(d))
    for s in (1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2):
        x = xb + (s * max(nd, 1.0) / max(nd, 1e-300)) * d
        if box is not None:
            x = torch.minimum(torch.maximum(x, box[0]), box[1])
        if int(fn.value(x).argmax()) != c0:
            return x
    return xb


def _kkt(problem: Any, x0: Tensor, x: Tensor) -> float:
    """``|P (x0 - x)| / |x0 - x|`` at ``x``: the part of the way back tangent to the boundary.

    With a box, coordinates on a face that the way back pushes out of the box are held (the
    descent's growing active set, :func:`~fiberscope.engine.box.hold_faces`).
    """
    _, jac = problem.fn.values_and_jacobians(x.unsqueeze(0))
    want = (x0 - x).unsqueeze(0)
    if problem.box is None:
        d = project_tangent(jac, want)
    else:  # the same growing active set of faces as the descent's direction
        d, _ = hold_faces(
            x.unsqueeze(0), problem.box, lambda free: project_tangent(jac, want, free)
        )
    nw = float(torch.linalg.vector_norm(want))
    return 0.0 if nw == 0.0 else float(torch.linalg.vector_norm(d)) / nw
