"""CLI commands that move across classes: ``explore``, ``preimage``, ``sample``.

Registered on the ``fiberscope`` app of :mod:`fiberscope.cli.common` when the package
``fiberscope.cli`` is imported. Every command plans and checks all its output files and takes
their locks before any work, writes CSV + JSON sidecar only after the computation succeeded,
then the figure (``--plot``; a failed plot keeps the result and exits 3), and reports bad
input as one line with exit code 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import InputError
from .common import (
    ArchOpt,
    AtOpt,
    BoundsOpt,
    DeviceOpt,
    DtypeOpt,
    EveryOpt,
    ForceOpt,
    FormatOpt,
    ModelArg,
    OutOpt,
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


def _durable(
    out: str,
    plot: str | None,
    model: str,
    arch: str | None,
    *,
    force: bool,
    resume: bool,
    every: int,
) -> Any:
    from .durable import DurableRun

    return DurableRun(
        out,
        plot=plot,
        force=force,
        resume=resume,
        checkpoint_every=every,
        inputs=model_inputs(model, arch),
    )


def _identity(model: str, arch: str | None, fmt: str | None, output: str | None) -> Any:
    from .durable import model_identity

    return model_identity(model, arch, fmt, output)


def _finish(durable: Any, save: Any, draw: Any, title: str, rows: dict[str, Any]) -> None:
    """Save the result, then draw the plot; print the summary; a failed plot exits 3."""
    plan = durable.plan
    save_result(save, plan, kept=durable.kept_after_failed_save())
    durable.finish()
    plot = plan.get("plot")
    failed = write_plot(draw, plot) if plot is not None else None
    out_console.print(summary_table(title, rows))
    saved = [plan["result"], plan["sidecar"]]
    wrote(saved + ([plot] if plot is not None and failed is None else []))
    if failed is not None and plot is not None:
        report_plot_failure(plot, failed, saved)


@app.command("explore")
def explore_cmd(
    model: ModelArg,
    at: AtOpt,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="LEVEL",
            help="Target output level to reach exactly (m values for m outputs).",
        ),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(metavar="E", help="Output change to reach instead of a target level."),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(
            metavar="WHICH", help="With --epsilon: up | down (paper mode also forward | backward)."
        ),
    ] = None,
    flip: Annotated[
        bool,
        typer.Option(
            "--flip",
            help="Classifier walk: to the decision boundary and past it (see --threshold).",
        ),
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(metavar="T", help="With --flip: the score at which the decision flips."),
    ] = None,
    beyond: Annotated[
        float | None,
        typer.Option(
            metavar="D", help="With --flip: how far past the threshold to go (default: mirror x0)."
        ),
    ] = None,
    output: OutputOpt = None,
    out: OutOpt = "explore.csv",
    step: Annotated[
        float, typer.Option(metavar="STEP", help="Largest step (paper: the fixed step).")
    ] = 0.01,
    max_steps: Annotated[int, typer.Option(metavar="N", help="Step cap.")] = 10_000,
    bounds: BoundsOpt = None,
    method: Annotated[
        str, typer.Option(metavar="NAME", help="corrected | paper (the authors' SiMExp-1D)")
    ] = "corrected",
    tol: Annotated[
        float, typer.Option(metavar="TOL", help="Residual tolerance on the reached level.")
    ] = 1e-12,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    arch: ArchOpt = None,
    model_format: FormatOpt = None,
    resume: ResumeOpt = False,
    checkpoint_every: EveryOpt = 1000,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Walk from a point across classes to an exact output level (or across a decision boundary).

    Ctrl-C or SIGTERM saves a checkpoint (and the path so far, marked incomplete); --resume
    continues exactly where it stopped.
    """
    x0 = parse_floats(at, "--at")
    box = parse_bounds(bounds, len(x0))
    x0 = place(x0, device)
    target = parse_floats(to, "--to") if to is not None else None
    if flip:
        if target is not None or epsilon is not None or direction is not None:
            raise InputError(
                "--flip walks to the decision boundary; drop --to/--epsilon/--direction"
            )
        if method != "corrected":
            raise InputError("--flip uses the corrected walk; drop --method paper")
    else:
        if threshold is not None or beyond is not None:
            raise InputError("--threshold and --beyond go with --flip")
        if target is None and epsilon is None:
            raise InputError("give --to LEVEL (an exact output level), --epsilon E, or --flip")
    durable = _durable(out, plot, model, arch, force=force, resume=resume, every=checkpoint_every)
    omap = output_selection(output)
    if flip and threshold is None:
        from ..outputs import output_threshold

        if output_threshold(omap) is None:
            raise InputError(
                "--flip needs --threshold T (the score at which the decision flips, e.g. 0.5 "
                "for a probability), or an --output that flips at 0 such as 'logit-diff 3 5'"
            )
    extra = {"model": model, "arch": arch, "format": model_format, "output": output}
    with durable:
        net = load_cli_model(model, arch, model_format)
        durable.check_model(_identity(model, arch, model_format, output))
        extra = {**extra, **durable.identity}
        if flip:
            from ..algorithms.boundary import boundary_walk
            from ..io.results import save_boundary_walk

            res = with_progress(
                "walking to the decision boundary",
                lambda cb: durable.run(
                    boundary_walk,
                    net,
                    x0,
                    output=omap,
                    threshold=threshold,
                    beyond=beyond,
                    step=step,
                    max_steps=max_steps,
                    bounds=box,
                    tol=tol,
                    dtype=dtype,
                    batched=False,
                    progress=cb,
                    save_partial=save_boundary_walk,
                ),
            )
            rows = {
                "score at x0": f"{res.y0:.12g} (decision {res.decision_start})",
                "threshold": f"{res.threshold:g}",
                "boundary point": fmt_vec(res.boundary_point),
                "path length to boundary": f"{res.boundary_length:.6g}",
                "closest boundary point": fmt_vec(res.closest_point),
                "smallest perturbation": f"{res.closest_distance:.6g} (kkt {res.closest_kkt:.1e})",
                "flipped point": fmt_vec(res.flip_point),
                "score there": f"{res.flip_output:.12g} (decision {res.decision_flip})",
                "path length": f"{res.path.length:.6g}",
                "Jacobian evaluations": str(res.stats.jacobian_evals),
            }

            def draw() -> Any:
                from ..plot.plots import plot_boundary_walk

                return plot_boundary_walk(res, model=net, output=omap)

            _finish(
                durable,
                lambda: save_boundary_walk(res, durable.out, force=True, extra=extra),
                draw,
                f"fiberscope explore --flip {model}",
                rows,
            )
            return
        from ..algorithms.explore import explore
        from ..io.results import save_explore

        res = with_progress(
            f"exploring ({method})",
            lambda cb: durable.run(
                explore,
                net,
                x0,
                target=target,
                epsilon=epsilon,
                direction=direction,
                step=step,
                max_steps=max_steps,
                bounds=box,
                method=method,
                tol=tol,
                output=omap,
                dtype=dtype,
                progress=cb,
                save_partial=save_explore,
            ),
        )
        rows = {
            "method": res.method,
            "N(x0)": fmt_vec(res.y0),
            "target": "-" if res.target is None else fmt_vec(res.target),
            "reached output": fmt_vec(res.end_output),
            "residual": "-" if res.target is None else f"{res.residual:.3e}",
            "end point": fmt_vec(res.end),
            "path length": f"{res.length:.6g}",
            "straight distance": f"{res.distance:.6g}",
            "points": str(len(res)),
            "steps / rejected": f"{res.stats.steps} / {res.stats.rejected}",
        }

        def draw_explore() -> Any:
            from ..plot.plots import plot_explore

            return plot_explore(res, model=net, output=omap)

        _finish(
            durable,
            lambda: save_explore(res, durable.out, force=True, extra=extra),
            draw_explore,
            f"fiberscope explore {model}",
            rows,
        )


@app.command("preimage")
def preimage_cmd(
    model: ModelArg,
    at: Annotated[
        str,
        typer.Option(
            "--at", metavar="X0,X1,...", help="Start point; N(x0) must lie in the interval."
        ),
    ],
    interval: Annotated[
        str, typer.Option("--interval", metavar="A,B", help="Output interval A,B.")
    ],
    bounds: Annotated[
        list[str] | None,
        typer.Option(metavar="LO,HI", help="Box LO,HI (required): once or once per axis."),
    ] = None,
    levels: Annotated[
        int, typer.Option(metavar="N", help="Corrected: levels spaced over [A, B].")
    ] = 11,
    step: Annotated[
        float, typer.Option(metavar="STEP", help="Largest step (paper: SiMEC-1D's delta).")
    ] = 0.01,
    max_steps: Annotated[int, typer.Option(metavar="N", help="Steps per trace branch.")] = 10_000,
    method: Annotated[
        str, typer.Option(metavar="NAME", help="corrected | paper (the authors' driver)")
    ] = "corrected",
    nst: Annotated[int, typer.Option(metavar="N", help="Paper: levels per sweep.")] = 100,
    exp_step: Annotated[
        float | None,
        typer.Option(metavar="STEP", help="Paper: SiMExp-1D step (default step/100)."),
    ] = None,
    exp_max_steps: Annotated[
        int, typer.Option(metavar="N", help="Paper: SiMExp-1D step cap.")
    ] = 10_000,
    partial: Annotated[
        bool, typer.Option("--partial", help="Trace the reachable levels; list the others.")
    ] = False,
    resolution: Annotated[
        int, typer.Option(metavar="N", help="Grid points per axis for the region.")
    ] = 400,
    output: OutputOpt = None,
    tol: Annotated[
        float, typer.Option(metavar="TOL", help="Residual tolerance of every level.")
    ] = 1e-12,
    out: OutOpt = "preimage.csv",
    plot: PlotOpt = None,
    force: ForceOpt = False,
    arch: ArchOpt = None,
    model_format: FormatOpt = None,
    resume: ResumeOpt = False,
    checkpoint_every: EveryOpt = 1000,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Trace the family of classes filling the preimage of an output interval [A, B].

    Ctrl-C or SIGTERM saves a checkpoint; --resume continues exactly where it stopped.
    """
    x0 = parse_floats(at, "--at")
    ab = parse_floats(interval, "--interval")
    if len(ab) != 2:
        raise InputError(f"--interval takes A,B (two numbers), got {len(ab)}")
    box = parse_bounds(bounds, len(x0))
    if box is None:
        raise InputError("preimage needs --bounds LO,HI: open levels are traced to the box")
    x0 = place(x0, device)
    durable = _durable(out, plot, model, arch, force=force, resume=resume, every=checkpoint_every)
    omap = output_selection(output)
    extra = {"model": model, "arch": arch, "format": model_format, "output": output}
    with durable:
        from ..algorithms.preimage import preimage
        from ..io.results import save_preimage

        net = load_cli_model(model, arch, model_format)
        durable.check_model(_identity(model, arch, model_format, output))
        extra = {**extra, **durable.identity}
        res = with_progress(
            f"preimage ({method})",
            lambda cb: durable.run(
                preimage,
                net,
                x0,
                (ab[0], ab[1]),
                levels=levels,
                bounds=box,
                step=step,
                max_steps=max_steps,
                method=method,
                tol=tol,
                output=omap,
                partial=partial,
                resolution=resolution,
                nst=nst,
                exp_step=exp_step,
                exp_max_steps=exp_max_steps,
                dtype=dtype,
                progress=cb,
                save_partial=save_preimage,
            ),
        )
        lo_c, hi_c = res.covered
        rows: dict[str, Any] = {
            "method": res.method,
            "interval": f"[{ab[0]:.10g}, {ab[1]:.10g}]",
            "N(x0)": fmt_vec(res.y0),
            "levels traced": str(len(res)),
            "levels covered": f"[{lo_c:.10g}, {hi_c:.10g}]",
            "closed levels": str(sum(t.closed for t in res.traces)),
            "drift max|N(x)-level|": f"{res.drift:.3e}",
        }
        if res.final_outputs is not None:
            rows["last levels (never traced)"] = ", ".join(
                f"{float(v):.10g}" for v in res.final_outputs[:, 0]
            )
        if res.unreached:
            rows["unreached levels"] = ", ".join(f"{u['level'][0]:.6g}" for u in res.unreached)
        reg = res.region
        if reg is not None:
            rows["band area (grid)"] = f"{reg.area:.6g}"
            if reg.polygon_area is not None:
                rows["band area (polygon)"] = f"{reg.polygon_area:.6g}"
            for side, d in reg.boundary_distance.items():
                rows[f"{side} boundary distance"] = f"max {d['max']:.3e}, mean {d['mean']:.3e}"
        rows["Jacobian evaluations"] = str(res.stats.jacobian_evals)

        def draw() -> Any:
            from ..plot.plots import plot_preimage

            return plot_preimage(res, model=net, output=omap)

        _finish(
            durable,
            lambda: save_preimage(res, durable.out, force=True, extra=extra),
            draw,
            f"fiberscope preimage {model}",
            rows,
        )


@app.command("sample")
def sample_cmd(
    model: ModelArg,
    at: Annotated[
        str, typer.Option("--at", metavar="X0,X1,...", help="A point of the class to sample.")
    ],
    n: Annotated[int, typer.Option("-n", "--n", metavar="N", help="Number of samples.")] = 100,
    step: Annotated[float, typer.Option(metavar="STEP", help="Largest trace step.")] = 0.01,
    max_steps: Annotated[int, typer.Option(metavar="N", help="Steps per trace branch.")] = 10_000,
    bounds: BoundsOpt = None,
    output: OutputOpt = None,
    tol: Annotated[
        float, typer.Option(metavar="TOL", help="Residual tolerance of every sample.")
    ] = 1e-12,
    out: OutOpt = "samples.csv",
    plot: PlotOpt = None,
    force: ForceOpt = False,
    arch: ArchOpt = None,
    model_format: FormatOpt = None,
    resume: ResumeOpt = False,
    checkpoint_every: EveryOpt = 1000,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Write N inputs with the same output as a point, spread evenly along its class.

    Ctrl-C or SIGTERM saves a checkpoint; --resume continues exactly where it stopped.
    """
    x0 = parse_floats(at, "--at")
    box = parse_bounds(bounds, len(x0))
    x0 = place(x0, device)
    durable = _durable(out, plot, model, arch, force=force, resume=resume, every=checkpoint_every)
    omap = output_selection(output)
    extra = {"model": model, "arch": arch, "format": model_format, "output": output}
    with durable:
        from ..algorithms.sampling import sample_class
        from ..io.results import save_samples

        net = load_cli_model(model, arch, model_format)
        durable.check_model(_identity(model, arch, model_format, output))
        extra = {**extra, **durable.identity}
        res = with_progress(
            "sampling the class",
            lambda cb: durable.run(
                sample_class,
                net,
                x0,
                n,
                step=step,
                max_steps=max_steps,
                bounds=box,
                tol=tol,
                output=omap,
                dtype=dtype,
                batched=False,
                progress=cb,
                save_partial=save_samples,
            ),
        )
        s = res.summary()
        rows = {
            "samples": str(len(res)),
            "N(x0)": fmt_vec(res.y0),
            "class": "closed loop" if res.closed else "open curve",
            "length": f"{res.length:.6g}",
            "spacing (arclength)": f"{res.spacing:.6g}",
            "gaps min / max": f"{s['gap_min']:.6g} / {s['gap_max']:.6g}",
            "max|N(x)-N(x0)|": f"{res.residual:.3e}",
        }

        def draw() -> Any:
            from ..plot.plots import plot_samples

            return plot_samples(res, model=net, output=omap)

        _finish(
            durable,
            lambda: save_samples(res, durable.out, force=True, extra=extra),
            draw,
            f"fiberscope sample {model}",
            rows,
        )
