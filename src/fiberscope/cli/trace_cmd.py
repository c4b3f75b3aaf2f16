"""``fiberscope trace``: the 1-D class of a point, durable (checkpoints, --resume, signals)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import (
    ArchOpt,
    AtOpt,
    BoundsOpt,
    DeviceOpt,
    DtypeOpt,
    ForceOpt,
    FormatOpt,
    ModelArg,
    OutOpt,
    OutputOpt,
    PlotOpt,
    app,
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


def trace_rows(res: Any) -> dict[str, Any]:
    """The summary table of a trace."""
    return {
        "method": res.method,
        "points": str(len(res)),
        "closed": str(res.closed),
        "stop reasons": ", ".join(f"{k}={v}" for k, v in res.stop_reasons.items()),
        "drift max|N(x)-N(x0)|": f"{res.drift:.3e}",
        "length": f"{res.length:.6g}",
        "steps / rejected": f"{res.stats.steps} / {res.stats.rejected}",
        "Jacobian evaluations": str(res.stats.jacobian_evals),
        "time": f"{res.stats.wall_time:.3f} s",
    }


@app.command("trace")
def trace_cmd(
    model: ModelArg,
    at: AtOpt,
    out: OutOpt = "trace.csv",
    step: Annotated[
        float, typer.Option(metavar="STEP", help="Step (largest step for corrected).")
    ] = 0.01,
    max_steps: Annotated[int, typer.Option(metavar="N", help="Steps per branch.")] = 10_000,
    bounds: BoundsOpt = None,
    method: Annotated[str, typer.Option(metavar="NAME", help="corrected | paper")] = "corrected",
    direction: Annotated[
        str, typer.Option(metavar="WHICH", help="both | forward | backward")
    ] = "both",
    tol: Annotated[
        float, typer.Option(metavar="TOL", help="Corrector tolerance on |N(x)-N(x0)|.")
    ] = 1e-12,
    paper_box: Annotated[
        str, typer.Option(metavar="VARIANT", help="Paper mode box variant: stop | clamp")
    ] = "stop",
    plot: PlotOpt = None,
    force: ForceOpt = False,
    output: OutputOpt = None,
    arch: ArchOpt = None,
    model_format: FormatOpt = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted run from its checkpoint OUT.ckpt."),
    ] = False,
    checkpoint_every: Annotated[
        int,
        typer.Option(metavar="N", help="Steps between checkpoints (0: only when interrupted)."),
    ] = 1000,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Trace the 1-D equivalence class of a point and write it as CSV (+ JSON sidecar).

    Long runs checkpoint every --checkpoint-every steps; Ctrl-C or SIGTERM saves the points so
    far (marked incomplete) and a checkpoint, and --resume continues exactly where it stopped.
    A second Ctrl-C or SIGTERM stops at once, even inside a slow model evaluation.
    """
    from .durable import DurableRun, model_identity

    x0 = parse_floats(at, "--at")
    box = parse_bounds(bounds, len(x0))
    x0 = place(x0, device)
    durable = DurableRun(
        out,
        plot=plot,
        force=force,
        resume=resume,
        checkpoint_every=checkpoint_every,
        inputs=model_inputs(model, arch),
    )
    selection = output_selection(output)
    with durable:
        from ..algorithms.trace import trace
        from ..io.results import save_trace

        net = load_cli_model(model, arch, model_format)
        durable.check_model(model_identity(model, arch, model_format, output))
        res = with_progress(
            f"tracing ({method})",
            lambda cb: durable.trace(
                trace,
                net,
                x0,
                step=step,
                max_steps=max_steps,
                bounds=box,
                direction=direction,
                method=method,
                tol=tol,
                paper_box=paper_box,
                output=selection,
                dtype=dtype,
                progress=cb,
            ),
        )
        save_result(
            lambda: save_trace(res, durable.out, force=True, extra=durable.identity),
            durable.plan,
            kept=durable.kept_after_failed_save(),
        )
        durable.finish()
        saved = [durable.plan["result"], durable.plan["sidecar"]]
        failed = None
        if durable.plot is not None:
            from ..plot.plots import plot_trace

            failed = write_plot(lambda: plot_trace(res, model=net, output=selection), durable.plot)
    out_console.print(summary_table(f"fiberscope trace {model}", trace_rows(res)))
    wrote(saved + ([durable.plot] if durable.plot is not None and failed is None else []))
    if failed is not None and durable.plot is not None:
        report_plot_failure(durable.plot, failed, saved)
