"""``fiberscope walk``: samples of the class of a point, for classes of any dimension.

Durable like every command (checkpoints, ``--resume``, Ctrl-C and SIGTERM save the samples so
far and a checkpoint). The start is given as numbers (``--at 0.2,0.5,1``) or as a file
(``--at digit.png``, ``x0.npy``, ``x0.pt``, ``x0.txt``; see
:func:`fiberscope.io.inputs.read_point`). The result is written as ``.npz`` + JSON sidecar
(+ a CSV table for inputs with at most 16 coordinates); ``--plot`` draws the samples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import FiberscopeError, InputError, SingularPointError
from .common import (
    ArchOpt,
    BoundsOpt,
    DeviceOpt,
    DtypeOpt,
    EveryOpt,
    ForceOpt,
    FormatOpt,
    ModelArg,
    OutputOpt,
    PlotOpt,
    ResumeOpt,
    app,
    fmt_vec,
    load_cli_model,
    model_inputs,
    out_console,
    output_selection,
    parse_bounds,
    parse_floats,
    place,
    report_plot_failure,
    save_result,
    summary_table,
    with_progress,
    write_plot,
    wrote,
)

_METHODS = ("corrected", "uniform", "paper")

GridOpt = Annotated[
    str | None,
    typer.Option(
        "--grid",
        metavar="FILE",
        help="Image inputs: a grid of the images (start first) with their decision, their "
        "largest output deviation and their outputs (PNG; PDF or SVG by suffix).",
    ),
]
GifOpt = Annotated[
    str | None,
    typer.Option(
        "--gif",
        metavar="FILE",
        help="Image inputs: an animation of the images, one frame per point (.gif; .mp4 needs "
        "imageio-ffmpeg).",
    ),
]


def image_outputs(
    shape: tuple[int, ...], grid: str | None, gif: str | None
) -> list[tuple[str, str]]:
    """Check ``--grid`` / ``--gif`` before any work and return them as ``(option, path)``.

    Parameters
    ----------
    shape : tuple of int
        The start's shape.
    grid, gif : str or None
        The options' values.

    Returns
    -------
    list of (str, str)
        The figures to plan.

    Raises
    ------
    InputError
        For inputs that are not images, or a ``--gif`` name that does not end in ``.gif``.
    """
    from ..plot.plots import image_shape

    figures = [(o, v) for o, v in (("--grid", grid), ("--gif", gif)) if v is not None]
    if figures and image_shape(shape) is None:
        raise InputError(
            f"{' and '.join(o for o, _ in figures)} "
            f"{'draw' if len(figures) > 1 else 'draws'} images, but the start has shape "
            f"{shape}; start from an image (C, H, W) with 1 or 3 channels, e.g. --at digit.png, "
            "or use --plot"
        )
    if gif is not None and not gif.lower().endswith((".gif", ".mp4")):
        raise InputError(
            f"--gif {gif}: the animation is a GIF or an MP4; give a name ending in .gif or .mp4"
        )
    return figures


def write_image_figures(res: Any, figures: Sequence[tuple[str, Path]]) -> tuple[list, Any]:
    """Write ``--grid`` and ``--gif`` after the result is saved.

    Parameters
    ----------
    res : WalkResult or TraverseResult or BoundaryWalkResult
        The run.
    figures : sequence of (str, pathlib.Path)
        ``(option, path)``.

    Returns
    -------
    written : list of pathlib.Path
        The files written.
    failed : tuple or None
        ``(path, reason)`` of the first figure that failed.
    """
    from ..plot.images import image_grid

    written: list[Path] = []
    failed = None
    for option, path in figures:
        if option == "--gif":
            why = _write_gif(res, path)
        else:
            why = write_plot(lambda: image_grid(res), path)
        if why is None:
            written.append(path)
        elif failed is None:
            failed = (path, why)
    return written, failed


def _write_gif(res: Any, path: Path) -> str | None:
    from ..errors import FiberscopeError
    from ..plot.images import save_gif

    try:
        save_gif(res, path, force=True)
    except FiberscopeError as exc:
        return str(exc)
    except Exception as exc:  # Pillow: the result is saved, say why briefly
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    return None


def read_start(at: str) -> tuple[Any, str | None]:
    """The start of ``--at``: numbers, or a file read by :func:`~fiberscope.io.inputs.read_point`.

    Parameters
    ----------
    at : str
        The option's value.

    Returns
    -------
    tuple
        ``(point, path)``: a list of floats and None, or an array and the file's path.
    """
    from ..io.inputs import looks_like_point_file, read_point

    if looks_like_point_file(at):
        return read_point(at.strip()), at.strip()
    return parse_floats(at, "--at"), None


def _per_chain(values: list[Any], fmt: str, limit: int = 8) -> str:
    shown = ", ".join(format(v, fmt) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def walk_rows(res: Any) -> dict[str, str]:
    """The summary table of a walk.

    Parameters
    ----------
    res : WalkResult
        The walk.

    Returns
    -------
    dict
        Row name -> text.
    """
    rejected = {k: sum(v) for k, v in res.rejections.items()}
    if res.method == "uniform":
        rejections = ", ".join(f"{k} {v}" for k, v in rejected.items())
    else:
        rejections = f"{rejected.get('step', 0)} (steps halved and retried)"
    reasons = Counter(res.stop_reasons)
    lengths = res.path_length
    rows = {
        "method": res.method,
        "chains x samples": f"{res.chains} x {res.samples.shape[1]} (thin {res.options['thin']})",
        "samples saved": f"{len(res)} ({_per_chain(res.counts, 'd')} per chain)",
        "N(x0)": fmt_vec(res.y0),
        "residual max|N(x)-N(x0)|": f"{res.residual:.3e}",
        "acceptance": f"{res.acceptance:.3f} ({sum(res.accepted)} accepted)",
        "rejections": rejections,
        "rank changes of J": f"{sum(res.rank_changes)} ({_per_chain(res.rank_changes, 'd')})",
        "path length": f"mean {sum(lengths) / max(1, len(lengths)):.6g} "
        f"({_per_chain(lengths, '.4g')})",
        "stop reasons": ", ".join(f"{k} x{v}" for k, v in reasons.items()),
        "seed": str(res.options.get("seed")),
    }
    if res.pseudolength is not None:
        rows["pseudolength (authors')"] = _per_chain(res.pseudolength, ".4g")
    rows["Jacobian evaluations"] = str(res.stats.jacobian_evals)
    rows["time"] = f"{res.stats.wall_time:.3f} s"
    return rows


@app.command("walk")
def walk_cmd(
    model: ModelArg,
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="POINT|FILE",
            help="Start: comma-separated numbers (0.2,0.5,1) or a file: .npy, .pt (one tensor), "
            ".png/.jpg (scaled to [0, 1], shape (C, H, W)), .txt/.csv.",
        ),
    ],
    samples: Annotated[int, typer.Option(metavar="N", help="Samples saved per chain.")] = 100,
    chains: Annotated[
        int, typer.Option(metavar="C", help="Independent chains (advanced together).")
    ] = 1,
    step: Annotated[
        float,
        typer.Option(
            metavar="S",
            help="corrected: largest step; uniform: proposal scale; paper: the authors' delta.",
        ),
    ] = 0.05,
    method: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="corrected (random walk on the class) | uniform (Metropolis-Hastings, uniform "
            "measure of the class) | paper (the authors' walk, no corrector)",
        ),
    ] = "corrected",
    seed: Annotated[int, typer.Option(metavar="K", help="Seed of the chains.")] = 0,
    thin: Annotated[int, typer.Option(metavar="T", help="Save every T-th step.")] = 1,
    bounds: BoundsOpt = None,
    output: OutputOpt = None,
    tol: Annotated[
        float, typer.Option(metavar="TOL", help="Residual tolerance of every saved sample.")
    ] = 1e-12,
    max_steps: Annotated[
        int | None,
        typer.Option(metavar="N", help="Steps per chain (default samples x thin)."),
    ] = None,
    allow_singular: Annotated[
        bool,
        typer.Option(
            "--allow-singular",
            help="Walk from a start where J has rank below the number of outputs (a dead ReLU "
            "region: a full-dimensional class).",
        ),
    ] = False,
    out: Annotated[
        str,
        typer.Option(
            "-o",
            "--out",
            metavar="FILE",
            help="Result .npz (plus FILE.json, and FILE.csv for at most 16 input coordinates).",
        ),
    ] = "walk.npz",
    plot: PlotOpt = None,
    grid: GridOpt = None,
    gif: GifOpt = None,
    force: ForceOpt = False,
    arch: ArchOpt = None,
    model_format: FormatOpt = None,
    resume: ResumeOpt = False,
    checkpoint_every: EveryOpt = 1000,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Sample the class of a point (inputs the network cannot tell from it), of any dimension.

    Ctrl-C or SIGTERM saves the samples so far (marked incomplete) and a checkpoint; --resume
    continues exactly where it stopped.
    """
    from ..io.results import WALK_CSV_MAX_N, walk_paths

    if method not in _METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(_METHODS)}")
    x0, at_file = read_start(at)
    x0 = place(x0, device)
    n = len(x0) if isinstance(x0, list) else int(math.prod(x0.shape))
    walk_paths(out, n)  # refuses a name that is not .npz
    shape = (n,) if isinstance(x0, list) else tuple(x0.shape)
    figures = image_outputs(shape, grid, gif)
    box = parse_bounds(bounds, n)
    from .durable import DurableRun, model_identity

    inputs = model_inputs(model, arch)
    if at_file is not None:
        inputs.append(("the --at file", at_file))
    durable = DurableRun(
        out,
        plot=plot,
        force=force,
        resume=resume,
        checkpoint_every=checkpoint_every,
        inputs=inputs,
        table=n <= WALK_CSV_MAX_N,
        figures=figures,
    )
    omap = output_selection(output)
    extra: dict[str, Any] = {
        "model": model,
        "arch": arch,
        "format": model_format,
        "output": output,
        "at": at if at_file is None else at_file,
    }
    with durable:
        from ..algorithms.walk import walk
        from ..io.results import save_walk

        net = load_cli_model(model, arch, model_format)
        durable.check_model(model_identity(model, arch, model_format, output))
        extra = {**extra, **durable.identity}
        try:
            res = with_progress(
                f"walking ({method})",
                lambda cb: durable.run(
                    walk,
                    net,
                    x0,
                    samples=samples,
                    step=step,
                    chains=chains,
                    method=method,
                    bounds=box,
                    output=omap,
                    seed=seed,
                    thin=thin,
                    tol=tol,
                    max_steps=max_steps,
                    allow_singular=allow_singular,
                    batched=False,
                    dtype=dtype,
                    progress=cb,
                    save_partial=save_walk,
                ),
            )
        except SingularPointError as exc:  # the library names its keyword; say the option
            raise SingularPointError(
                str(exc).replace("pass allow_singular=True", "add --allow-singular")
            ) from None
        plan = durable.plan
        save_result(
            lambda: save_walk(res, durable.out, force=True, extra=extra),
            plan,
            kept=durable.kept_after_failed_save(),
        )
        durable.finish()
        saved = [f.path for f in plan.files if f.role in ("result", "sidecar", "table")]
        failed = None
        if durable.plot is not None:
            from ..plot.plots import plot_walk

            failed = write_plot(lambda: plot_walk(res, model=net, output=omap), durable.plot)
        drawn, failed_figure = write_image_figures(res, durable.figures)
    out_console.print(summary_table(f"fiberscope walk {model}", walk_rows(res)))
    plotted = [durable.plot] if durable.plot is not None and failed is None else []
    wrote(saved + plotted + drawn)
    if failed is not None and durable.plot is not None:
        report_plot_failure(durable.plot, failed, saved)
    if failed_figure is not None:
        report_plot_failure(failed_figure[0], failed_figure[1], saved)


def traverse_rows(res: Any) -> dict[str, str]:
    """The summary table of a traversal.

    Parameters
    ----------
    res : TraverseResult
        The traversal.

    Returns
    -------
    dict
        Row name -> text.
    """
    y0 = res.y0.reshape(-1)
    yt = res.target_output.reshape(-1)
    rows = {
        "points on the path": str(len(res)),
        "N(x0)": fmt_vec(res.y0),
        "N(target)": fmt_vec(res.target_output),
    }
    if y0.numel() > 1:
        rows["decision start / end / target"] = (
            f"{int(y0.argmax())} / {int(res.outputs[-1].reshape(-1).argmax())} / {int(yt.argmax())}"
        )
    rows.update(
        {
            "residual max|N(x)-N(x0)|": f"{res.residual:.3e}",
            "distance to target": f"{res.start_distance:.6g} -> {res.end_distance:.6g}",
            "path length": f"{res.length:.6g}",
            "stop reason": f"{res.stop_reason}: {res.message}",
            "first-order residual (kkt)": f"{res.kkt:.3e}",
            "Jacobian evaluations": str(res.stats.jacobian_evals),
            "time": f"{res.stats.wall_time:.3f} s",
        }
    )
    return rows


@app.command("traverse")
def traverse_cmd(
    model: ModelArg,
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="POINT|FILE",
            help="Start: numbers (0.2,0.5,1) or a file (.npy, .pt, .png/.jpg scaled to [0, 1], "
            ".txt/.csv).",
        ),
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="POINT|FILE",
            help="Target input to approach (same shape as the start), e.g. an image of another "
            "class.",
        ),
    ],
    step: Annotated[float, typer.Option(metavar="S", help="Largest step (input units).")] = 0.5,
    max_steps: Annotated[int, typer.Option(metavar="N", help="Accepted steps.")] = 2000,
    bounds: BoundsOpt = None,
    output: OutputOpt = None,
    tol: Annotated[
        float, typer.Option(metavar="TOL", help="Residual tolerance of every point.")
    ] = 1e-12,
    rtol: Annotated[
        float,
        typer.Option(
            metavar="R",
            help="Stop when the part of (target - x) tangent to the class is below R times "
            "|target - x| (a first-order minimum of the distance).",
        ),
    ] = 1e-8,
    out: Annotated[
        str,
        typer.Option(
            "-o",
            "--out",
            metavar="FILE",
            help="Result .npz (plus FILE.json, and FILE.csv for at most 16 input coordinates).",
        ),
    ] = "traverse.npz",
    plot: PlotOpt = None,
    grid: GridOpt = None,
    gif: GifOpt = None,
    force: ForceOpt = False,
    arch: ArchOpt = None,
    model_format: FormatOpt = None,
    resume: ResumeOpt = False,
    checkpoint_every: EveryOpt = 1000,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Walk on the class of --at toward --to: the nearest input the network cannot tell apart.

    The result is the point of the class of --at (every output held to --tol) closest to --to.
    The exact version of level-set traversal: all outputs (or the --output selection) are held,
    not one confidence. With --bounds the box faces are constraints (pixels stay in [0, 1]).
    """
    from ..io.results import WALK_CSV_MAX_N, save_traverse, walk_paths

    x0, at_file = read_start(at)
    target, to_file = read_start(to)
    x0 = place(x0, device)
    target = place(target, device)
    n = len(x0) if isinstance(x0, list) else int(math.prod(x0.shape))
    shape = (n,) if isinstance(x0, list) else tuple(x0.shape)
    t_shape = (len(target),) if isinstance(target, list) else tuple(target.shape)
    if t_shape != shape:
        raise InputError(
            f"--to has shape {t_shape} but --at has {shape}; give a target of the same shape "
            "(e.g. two images of the same size and channels)"
        )
    walk_paths(out, n, "a traversal")
    figures = image_outputs(shape, grid, gif)
    from ..plot.images import image_shape

    if plot is not None and image_shape(shape) is None:
        raise InputError(
            f"--plot draws the images of a traversal, but the start has shape {shape}; start "
            "from an image (C, H, W) with 1 or 3 channels, or drop --plot"
        )
    box = parse_bounds(bounds, n)
    from .durable import DurableRun, model_identity

    inputs = model_inputs(model, arch)
    for what, f in (("the --at file", at_file), ("the --to file", to_file)):
        if f is not None:
            inputs.append((what, f))
    durable = DurableRun(
        out,
        plot=plot,
        force=force,
        resume=resume,
        checkpoint_every=checkpoint_every,
        inputs=inputs,
        table=n <= WALK_CSV_MAX_N,
        figures=figures,
    )
    omap = output_selection(output)
    extra: dict[str, Any] = {
        "model": model,
        "arch": arch,
        "format": model_format,
        "output": output,
        "at": at if at_file is None else at_file,
        "to": to if to_file is None else to_file,
    }
    with durable:
        from ..algorithms.traverse import traverse

        net = load_cli_model(model, arch, model_format)
        durable.check_model(model_identity(model, arch, model_format, output))
        extra = {**extra, **durable.identity}
        res = with_progress(
            "traversing",
            lambda cb: durable.run(
                traverse,
                net,
                x0,
                target,
                step=step,
                max_steps=max_steps,
                bounds=box,
                output=omap,
                tol=tol,
                rtol=rtol,
                dtype=dtype,
                batched=False,
                progress=cb,
                save_partial=save_traverse,
            ),
        )
        plan = durable.plan
        save_result(
            lambda: save_traverse(res, durable.out, force=True, extra=extra),
            plan,
            kept=durable.kept_after_failed_save(),
        )
        durable.finish()
        saved = [f.path for f in plan.files if f.role in ("result", "sidecar", "table")]
        plotted = []
        failed = None
        if durable.plot is not None:
            from ..plot.images import image_grid

            why = write_plot(lambda: image_grid(res), durable.plot)
            if why is None:
                plotted = [durable.plot]
            else:
                failed = (durable.plot, why)
        drawn, failed_figure = write_image_figures(res, durable.figures)
        failed = failed or failed_figure
    out_console.print(summary_table(f"fiberscope traverse {model}", traverse_rows(res)))
    wrote(saved + plotted + drawn)
    if failed is not None:
        report_plot_failure(failed[0], failed[1], saved)


def confuse_rows(res: Any) -> dict[str, str]:
    """The summary table of a confusion search.

    Parameters
    ----------
    res : ConfusionResult
        The search.

    Returns
    -------
    dict
        Row name -> text.
    """
    return {
        "decision at the start": str(res.decision_start),
        "class across the boundary": str(res.decision_flip),
        "decision just past it": str(res.decision_flipped),
        "distance |x - x0|": f"{res.distance:.6g}",
        "on the boundary: |margin|": f"{res.boundary_residual:.3e}",
        "first-order residual (kkt)": f"{res.kkt:.3e}",
        "seeds (distance -> end)": ", ".join(
            f"{a:.4g} -> {b:.4g}"
            for a, b in zip(res.seed_distances, res.end_distances, strict=True)
        ),
        "stop reason": f"{res.stop_reason}: {res.message}",
        "N(x0)": fmt_vec(res.outputs_start),
        "N(boundary point)": fmt_vec(res.outputs_point),
        "Jacobian evaluations": str(res.stats.jacobian_evals),
        "time": f"{res.stats.wall_time:.3f} s",
    }


@app.command("confuse")
def confuse_cmd(
    model: ModelArg,
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="POINT|FILE",
            help="The input: numbers or a file (.npy, .pt, .png/.jpg scaled to [0, 1], .txt/.csv).",
        ),
    ],
    toward: Annotated[
        list[str] | None,
        typer.Option(
            "--toward",
            metavar="POINT|FILE",
            help="An input of another class to look toward (repeatable); default: the box's "
            "lower, upper and centre inputs.",
        ),
    ] = None,
    seeds: Annotated[
        int, typer.Option(metavar="K", help="Boundary crossings the descent starts from.")
    ] = 3,
    rays: Annotated[
        int,
        typer.Option(
            metavar="K",
            help="Also look along the steepest-descent rays against K runner-up classes (0: off).",
        ),
    ] = 9,
    step: Annotated[float, typer.Option(metavar="S", help="Largest step on the boundary.")] = 0.2,
    max_steps: Annotated[int, typer.Option(metavar="N", help="Accepted steps per seed.")] = 2000,
    bounds: BoundsOpt = None,
    output: OutputOpt = None,
    tol: Annotated[
        float, typer.Option(metavar="TOL", help="|margin| tolerance on the boundary.")
    ] = 1e-12,
    out: Annotated[
        str,
        typer.Option("-o", "--out", metavar="FILE", help="Result .npz (plus FILE.json)."),
    ] = "confuse.npz",
    plot: PlotOpt = None,
    gif: GifOpt = None,
    force: ForceOpt = False,
    arch: ArchOpt = None,
    model_format: FormatOpt = None,
    resume: ResumeOpt = False,
    checkpoint_every: EveryOpt = 1000,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """The smallest change of --at that changes the classifier's decision (argmax).

    Finds the nearest point of the decision boundary (on it to --tol), the class across, and a
    point just past it.
    """
    from ..io.results import save_confusion, walk_paths

    x0, at_file = read_start(at)
    x0 = place(x0, device)
    n = len(x0) if isinstance(x0, list) else int(math.prod(x0.shape))
    shape = (n,) if isinstance(x0, list) else tuple(x0.shape)
    others: list[Any] = []
    files: list[str] = []
    for t in toward or []:
        point, f = read_start(t)
        t_shape = (len(point),) if isinstance(point, list) else tuple(point.shape)
        if t_shape != shape:
            raise InputError(
                f"--toward {t} has shape {t_shape} but --at has {shape}; give inputs of the "
                "same shape"
            )
        others.append(point)
        if f is not None:
            files.append(f)
    walk_paths(out, 1 << 20, "a confusion search")
    figures = image_outputs(shape, None, gif)
    from ..plot.images import image_shape

    if plot is not None and image_shape(shape) is None:
        raise InputError(
            f"--plot draws the images of a confusion search, but the input has shape {shape}; "
            "start from an image (C, H, W) with 1 or 3 channels, or drop --plot"
        )
    box = parse_bounds(bounds, n)
    if box is None and not others:
        raise InputError(
            "confuse needs somewhere to look for another decision: give --bounds (e.g. 0,1 for "
            "pixels) or --toward inputs of other classes"
        )
    from .durable import DurableRun, model_identity

    inputs = model_inputs(model, arch)
    if at_file is not None:
        inputs.append(("the --at file", at_file))
    inputs += [("a --toward file", f) for f in files]
    durable = DurableRun(
        out,
        plot=plot,
        force=force,
        resume=resume,
        checkpoint_every=checkpoint_every,
        inputs=inputs,
        figures=figures,
    )
    extra: dict[str, Any] = {
        "model": model,
        "arch": arch,
        "format": model_format,
        "output": output,
        "at": at if at_file is None else at_file,
        "toward": list(toward or []),
    }
    omap = output_selection(output)
    with durable:
        import numpy as np

        from ..algorithms.confuse import confuse

        net = load_cli_model(model, arch, model_format)
        durable.check_model(model_identity(model, arch, model_format, output))
        extra = {**extra, **durable.identity}
        stack = None if not others else np.stack([np.asarray(o, dtype=float) for o in others])
        try:
            res = with_progress(
                "searching the decision boundary",
                lambda cb: durable.run(
                    confuse,
                    net,
                    x0,
                    toward=stack,
                    seeds=seeds,
                    rays=rays,
                    bounds=box,
                    output=omap,
                    step=step,
                    max_steps=max_steps,
                    tol=tol,
                    dtype=dtype,
                    batched=False,
                    progress=cb,
                    save_partial=save_confusion,
                ),
            )
        except FiberscopeError as exc:  # the library names its keywords; say the options
            text = str(exc).replace("give toward= inputs", "give --toward inputs")
            text = text.replace("boundary_walk(..., threshold=...)", "explore --flip")
            raise type(exc)(text) from None
        plan = durable.plan
        save_result(
            lambda: save_confusion(res, durable.out, force=True, extra=extra),
            plan,
            kept=durable.kept_after_failed_save(),
        )
        durable.finish()
        saved = [f.path for f in plan.files if f.role in ("result", "sidecar")]
        failed = None
        if durable.plot is not None:
            from ..plot.images import confusion_figure

            failed = write_plot(lambda: confusion_figure(res), durable.plot)
        drawn, failed_figure = write_image_figures(res, durable.figures)
    out_console.print(summary_table(f"fiberscope confuse {model}", confuse_rows(res)))
    plotted = [durable.plot] if durable.plot is not None and failed is None else []
    wrote(saved + plotted + drawn)
    if failed is not None and durable.plot is not None:
        report_plot_failure(durable.plot, failed, saved)
    if failed_figure is not None:
        report_plot_failure(failed_figure[0], failed_figure[1], saved)
