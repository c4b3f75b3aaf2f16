"""CLI commands that move across classes: ``explore``, ``preimage``, ``sample``.

Registered on the main ``fiberscope`` app when :mod:`fiberscope.cli.main` is imported. Every
command checks its output files before any work, writes CSV + JSON sidecar (+ PNG for 2-D
inputs with ``--plot``) only after the computation succeeded, and reports bad input as one
line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputError
from .main import (
    app,
    out_console,
    parse_bounds,
    parse_floats,
    summary_table,
    with_progress,
)

_OUTPUT_HELP = (
    "Which outputs count (output map), e.g. 'logits[3]', 'softmax[1]', 'logit-diff 3 5'. "
    "Needed for vector-output models."
)


def _check_outputs(out: Path, plot: Path | None, force: bool) -> None:
    from ..io.atomic import check_writable
    from ..io.results import sidecar_path

    check_writable(out, force=force)
    check_writable(sidecar_path(out), force=force)
    if plot is not None:
        check_writable(plot, force=force)


def _plot(res: Any, **kwargs: Any) -> Any:
    from ..plot import plot

    return plot(res, **kwargs)


def _resolve(output: str | None) -> Any:
    from ..outputs import resolve_output

    return resolve_output(output) if output else None


def _fmt_vec(v: Any) -> str:
    vals = v.reshape(-1).tolist() if hasattr(v, "reshape") else list(v)
    if len(vals) == 1:
        return f"{vals[0]:.12g}"
    return "(" + ", ".join(f"{x:.8g}" for x in vals[:8]) + (", ..." if len(vals) > 8 else "") + ")"


def _written(out: Path, plot: Path | None) -> str:
    from ..io.results import sidecar_path

    return "wrote " + ", ".join([str(out), str(sidecar_path(out))] + ([str(plot)] if plot else []))


@app.command("explore")
def explore_cmd(
    model: Annotated[str, typer.Argument(help="Model file, bundled network name, or module:attr.")],
    at: Annotated[str, typer.Option("--at", help="Start point, comma-separated: 0.25,0.25.")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Target output level to reach exactly (m values for m outputs)."),
    ] = None,
    epsilon: Annotated[
        float | None, typer.Option(help="Output change to reach instead of a target level.")
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(help="With --epsilon: up | down (paper mode also forward | backward)."),
    ] = None,
    flip: Annotated[
        bool,
        typer.Option(
            "--flip",
            help="Classifier walk: to the decision boundary and past it (see --threshold).",
        ),
    ] = False,
    threshold: Annotated[
        float | None, typer.Option(help="With --flip: the score at which the decision flips.")
    ] = None,
    beyond: Annotated[
        float | None,
        typer.Option(help="With --flip: how far past the threshold to go (default: mirror x0)."),
    ] = None,
    output: Annotated[str | None, typer.Option("--output", help=_OUTPUT_HELP)] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="CSV file to write.")] = Path(
        "explore.csv"
    ),
    step: Annotated[float, typer.Option(help="Largest step (paper: the fixed step).")] = 0.01,
    max_steps: Annotated[int, typer.Option(help="Step cap.")] = 10_000,
    bounds: Annotated[
        list[str] | None, typer.Option(help="Box LO,HI: once for all axes or once per axis.")
    ] = None,
    method: Annotated[str, typer.Option(help="corrected | paper (the authors' SiMExp-1D)")] = (
        "corrected"
    ),
    tol: Annotated[float, typer.Option(help="Residual tolerance on the reached level.")] = 1e-12,
    plot: Annotated[Path | None, typer.Option(help="PNG plot to write (2-D inputs).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
) -> None:
    """Walk from a point across classes to an exact output level (or across a decision boundary)."""
    from ..algorithms.boundary import boundary_walk
    from ..algorithms.explore import explore
    from ..models import load_model
    from ..plot.plots import save_figure

    x0 = parse_floats(at, "--at")
    box = parse_bounds(bounds, len(x0))
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
    _check_outputs(out, plot, force)
    net = load_model(model)
    omap = _resolve(output)
    two_d = len(x0) == 2
    if flip and threshold is None:
        from ..outputs import output_threshold

        if output_threshold(omap) is None:
            raise InputError(
                "--flip needs --threshold T (the score at which the decision flips, e.g. 0.5 "
                "for a probability), or an --output that flips at 0 such as 'logit-diff 3 5'"
            )
    if flip:
        res = with_progress(
            "walking to the decision boundary",
            lambda cb: boundary_walk(
                net,
                x0,
                output=omap,
                threshold=threshold,
                beyond=beyond,
                step=step,
                max_steps=max_steps,
                bounds=box,
                tol=tol,
                progress=cb,
            ),
        )
        fig = _plot(res, model=net, output=omap) if plot is not None and two_d else None
        from ..io.results import save_boundary_walk

        save_boundary_walk(res, out, force=force, extra={"model": model})
        rows = {
            "score at x0": f"{res.y0:.12g} (decision {res.decision_start})",
            "threshold": f"{res.threshold:g}",
            "boundary point": _fmt_vec(res.boundary_point),
            "path length to boundary": f"{res.boundary_length:.6g}",
            "closest boundary point": _fmt_vec(res.closest_point),
            "smallest perturbation": f"{res.closest_distance:.6g} (kkt {res.closest_kkt:.1e})",
            "flipped point": _fmt_vec(res.flip_point),
            "score there": f"{res.flip_output:.12g} (decision {res.decision_flip})",
            "path length": f"{res.path.length:.6g}",
            "Jacobian evaluations": str(res.stats.jacobian_evals),
        }
        title = f"fiberscope explore --flip {model}"
    else:
        res = with_progress(
            f"exploring ({method})",
            lambda cb: explore(
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
                progress=cb,
            ),
        )
        fig = _plot(res, model=net, output=omap) if plot is not None and two_d else None
        from ..io.results import save_explore

        save_explore(res, out, force=force, extra={"model": model})
        rows = {
            "method": res.method,
            "N(x0)": _fmt_vec(res.y0),
            "target": "-" if res.target is None else _fmt_vec(res.target),
            "reached output": _fmt_vec(res.end_output),
            "residual": "-" if res.target is None else f"{res.residual:.3e}",
            "end point": _fmt_vec(res.end),
            "path length": f"{res.length:.6g}",
            "straight distance": f"{res.distance:.6g}",
            "points": str(len(res)),
            "steps / rejected": f"{res.stats.steps} / {res.stats.rejected}",
        }
        title = f"fiberscope explore {model}"
    if fig is not None and plot is not None:
        save_figure(fig, plot, force=force)
    out_console.print(summary_table(title, rows))
    out_console.print(_written(out, plot if fig is not None else None))


@app.command("preimage")
def preimage_cmd(
    model: Annotated[str, typer.Argument(help="Model file, bundled network name, or module:attr.")],
    at: Annotated[str, typer.Option("--at", help="Start point; N(x0) must lie in the interval.")],
    interval: Annotated[str, typer.Option("--interval", help="Output interval A,B.")],
    bounds: Annotated[
        list[str] | None, typer.Option(help="Box LO,HI (required): once or once per axis.")
    ] = None,
    levels: Annotated[int, typer.Option(help="Corrected: levels spaced over [A, B].")] = 11,
    step: Annotated[float, typer.Option(help="Largest step (paper: SiMEC-1D's delta).")] = 0.01,
    max_steps: Annotated[int, typer.Option(help="Steps per trace branch.")] = 10_000,
    method: Annotated[str, typer.Option(help="corrected | paper (the authors' driver)")] = (
        "corrected"
    ),
    nst: Annotated[int, typer.Option(help="Paper: levels per sweep.")] = 100,
    exp_step: Annotated[
        float | None, typer.Option(help="Paper: SiMExp-1D step (default step/100).")
    ] = None,
    exp_max_steps: Annotated[int, typer.Option(help="Paper: SiMExp-1D step cap.")] = 10_000,
    partial: Annotated[
        bool, typer.Option("--partial", help="Trace the reachable levels; list the others.")
    ] = False,
    resolution: Annotated[int, typer.Option(help="Grid points per axis for the region.")] = 400,
    output: Annotated[str | None, typer.Option("--output", help=_OUTPUT_HELP)] = None,
    tol: Annotated[float, typer.Option(help="Residual tolerance of every level.")] = 1e-12,
    out: Annotated[Path, typer.Option("-o", "--out", help="CSV file to write.")] = Path(
        "preimage.csv"
    ),
    plot: Annotated[Path | None, typer.Option(help="PNG plot to write (2-D inputs).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
) -> None:
    """Trace the family of classes filling the preimage of an output interval [A, B]."""
    from ..algorithms.preimage import preimage
    from ..io.results import save_preimage
    from ..models import load_model
    from ..plot.plots import save_figure

    x0 = parse_floats(at, "--at")
    ab = parse_floats(interval, "--interval")
    if len(ab) != 2:
        raise InputError(f"--interval takes A,B (two numbers), got {len(ab)}")
    box = parse_bounds(bounds, len(x0))
    if box is None:
        raise InputError("preimage needs --bounds LO,HI: open levels are traced to the box")
    _check_outputs(out, plot, force)
    net = load_model(model)
    omap = _resolve(output)
    res = with_progress(
        f"preimage ({method})",
        lambda cb: preimage(
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
            progress=cb,
        ),
    )
    fig = _plot(res, model=net, output=omap) if plot is not None and len(x0) == 2 else None
    save_preimage(res, out, force=force, extra={"model": model})
    if fig is not None and plot is not None:
        save_figure(fig, plot, force=force)
    lo_c, hi_c = res.covered
    rows: dict[str, Any] = {
        "method": res.method,
        "interval": f"[{ab[0]:.10g}, {ab[1]:.10g}]",
        "N(x0)": _fmt_vec(res.y0),
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
    out_console.print(summary_table(f"fiberscope preimage {model}", rows))
    out_console.print(_written(out, plot if fig is not None else None))


@app.command("sample")
def sample_cmd(
    model: Annotated[str, typer.Argument(help="Model file, bundled network name, or module:attr.")],
    at: Annotated[str, typer.Option("--at", help="A point of the class to sample.")],
    n: Annotated[int, typer.Option("-n", "--n", help="Number of samples.")] = 100,
    step: Annotated[float, typer.Option(help="Largest trace step.")] = 0.01,
    max_steps: Annotated[int, typer.Option(help="Steps per trace branch.")] = 10_000,
    bounds: Annotated[
        list[str] | None, typer.Option(help="Box LO,HI: once for all axes or once per axis.")
    ] = None,
    output: Annotated[str | None, typer.Option("--output", help=_OUTPUT_HELP)] = None,
    tol: Annotated[float, typer.Option(help="Residual tolerance of every sample.")] = 1e-12,
    out: Annotated[Path, typer.Option("-o", "--out", help="CSV file to write.")] = Path(
        "samples.csv"
    ),
    plot: Annotated[Path | None, typer.Option(help="PNG plot to write (2-D inputs).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
) -> None:
    """Write N inputs with the same output as a point, spread evenly along its class."""
    from ..algorithms.sampling import sample_class
    from ..io.results import save_samples
    from ..models import load_model
    from ..plot.plots import save_figure

    x0 = parse_floats(at, "--at")
    box = parse_bounds(bounds, len(x0))
    _check_outputs(out, plot, force)
    net = load_model(model)
    omap = _resolve(output)
    res = with_progress(
        "sampling the class",
        lambda cb: sample_class(
            net,
            x0,
            n,
            step=step,
            max_steps=max_steps,
            bounds=box,
            tol=tol,
            output=omap,
            progress=cb,
        ),
    )
    fig = _plot(res, model=net, output=omap) if plot is not None and len(x0) == 2 else None
    save_samples(res, out, force=force, extra={"model": model})
    if fig is not None and plot is not None:
        save_figure(fig, plot, force=force)
    s = res.summary()
    rows = {
        "samples": str(len(res)),
        "N(x0)": _fmt_vec(res.y0),
        "class": "closed loop" if res.closed else "open curve",
        "length": f"{res.length:.6g}",
        "spacing (arclength)": f"{res.spacing:.6g}",
        "gaps min / max": f"{s['gap_min']:.6g} / {s['gap_max']:.6g}",
        "max|N(x)-N(x0)|": f"{res.residual:.3e}",
    }
    out_console.print(summary_table(f"fiberscope sample {model}", rows))
    out_console.print(_written(out, plot if fig is not None else None))
