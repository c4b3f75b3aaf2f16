"""The ``fiberscope`` command line (typer + rich).

``main(argv) -> int`` runs a command without a subprocess (for tests); ``run()`` is the
console-script entry point. Every error a user can cause prints one line on stderr and exits
with code 2; no output file is written in that case.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import __version__
from ..errors import FiberscopeError, InputError

try:  # typer >= 0.20 vendors click; older releases depend on it
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_exc

_EXIT = tuple(c for c in (getattr(_click_exc, "Exit", None), typer.Exit) if c is not None)
_ABORT = tuple(c for c in (getattr(_click_exc, "Abort", None), typer.Abort) if c is not None)

app = typer.Typer(
    name="fiberscope",
    help="See what a trained network cannot tell apart: trace equivalence classes.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)


def parse_floats(text: str, what: str) -> list[float]:
    """Parse ``"0.25,0.25"`` into floats, with a one-line error naming ``what``."""
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    if not parts or any(p == "" for p in parts):
        raise InputError(f"{what}: expected comma-separated numbers, got {text!r}")
    values = []
    for p in parts:
        try:
            values.append(float(p))
        except ValueError:
            raise InputError(f"{what}: {p!r} is not a number") from None
    return values


def parse_bounds(items: Sequence[str] | None, n: int) -> tuple[list[float], list[float]] | None:
    """Parse ``--bounds LO,HI`` given once (all axes) or once per axis."""
    if not items:
        return None
    pairs = [parse_floats(item, "--bounds") for item in items]
    for pair in pairs:
        if len(pair) != 2:
            raise InputError(f"--bounds takes LO,HI for one axis, got {len(pair)} numbers")
    if len(pairs) == 1:
        pairs = pairs * n
    if len(pairs) != n:
        raise InputError(
            f"--bounds given {len(pairs)} times but the point has {n} coordinates; give it once "
            "(same box on every axis) or once per axis"
        )
    return [p[0] for p in pairs], [p[1] for p in pairs]


def progress_bar(description: str) -> Progress:
    """A rich progress bar on stderr (transient: it disappears when done)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def with_progress(description: str, work: Callable[[Callable[[int, int], None]], Any]) -> Any:
    """Run ``work(progress_callback)`` under a progress bar."""
    with progress_bar(description) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return work(update)


def summary_table(title: str, rows: dict[str, Any]) -> Table:
    """A two-column rich table."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(key, value if isinstance(value, str) else repr(value))
    return table


def _trace_rows(res: Any) -> dict[str, Any]:
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
    model: Annotated[str, typer.Argument(help="Model file, bundled network name, or module:attr.")],
    at: Annotated[str, typer.Option("--at", help="Start point, comma-separated: 0.25,0.25.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="CSV file to write.")] = Path(
        "trace.csv"
    ),
    step: Annotated[float, typer.Option(help="Step (largest step for corrected).")] = 0.01,
    max_steps: Annotated[int, typer.Option(help="Steps per branch.")] = 10_000,
    bounds: Annotated[
        list[str] | None,
        typer.Option(help="Box LO,HI: once for all axes or once per axis."),
    ] = None,
    method: Annotated[str, typer.Option(help="corrected | paper")] = "corrected",
    direction: Annotated[str, typer.Option(help="both | forward | backward")] = "both",
    tol: Annotated[float, typer.Option(help="Corrector tolerance on |N(x)-N(x0)|.")] = 1e-12,
    paper_box: Annotated[str, typer.Option(help="Paper mode box variant: stop | clamp")] = "stop",
    plot: Annotated[Path | None, typer.Option(help="PNG plot to write.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="Which model outputs define the class: 'logits[3]', '[0:2]', 'softmax[1]', "
            "'logit-diff 3 5', 'sum', ... (docs/outputs.md). Not the file: that is -o/--out.",
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="Architecture for a weights file (.safetensors, state_dict .pt): "
            "package.module:Factory or file.py:Factory (imported: only name code you trust)."
        ),
    ] = None,
    model_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Force the model format: paper-csv, onnx, pt2, torch, safetensors.",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run from its checkpoint OUT.ckpt.")
    ] = False,
    checkpoint_every: Annotated[
        int,
        typer.Option(help="Steps between checkpoints (0: only when interrupted)."),
    ] = 1000,
) -> None:
    """Trace the 1-D equivalence class of a point and write it as CSV (+ JSON sidecar).

    Long runs checkpoint every --checkpoint-every steps; Ctrl-C or SIGTERM saves the points so
    far (marked incomplete) and a checkpoint, and --resume continues exactly where it stopped.
    """
    from ..algorithms.trace import trace
    from ..io.results import save_trace, sidecar_path
    from ..models import load_model
    from ..outputs import output_map
    from ..plot.plots import plot_trace, save_figure
    from .durable import DurableRun, model_identity

    x0 = parse_floats(at, "--at")
    box = parse_bounds(bounds, len(x0))
    durable = DurableRun(
        out, plot=plot, force=force, resume=resume, checkpoint_every=checkpoint_every
    )
    selection = output_map(output) if output is not None else None
    net = load_model(model, format=model_format, arch=arch)
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
            progress=cb,
        ),
    )
    plot_net = net if len(x0) == 2 and selection is None else None
    fig = plot_trace(res, model=plot_net) if plot is not None else None
    save_trace(res, out, force=True, extra=durable.identity)
    durable.finish()
    if fig is not None:
        save_figure(fig, plot, force=True)
    out_console.print(summary_table(f"fiberscope trace {model}", _trace_rows(res)))
    written = [str(out), str(sidecar_path(out))] + ([str(plot)] if plot else [])
    out_console.print("wrote " + ", ".join(written))


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the demo files.")] = Path(
        "fiberscope-demo"
    ),
) -> None:
    """Trace the circle class of the paper's network 1 from (0.25, 0.25); write CSV and PNG.

    The corrected method is compared with the authors' SiMEC-1D (delta = 0.0125, 200 steps),
    which spirals outward.
    """
    from ..algorithms.trace import trace
    from ..io.results import save_trace
    from ..models import load_model
    from ..plot.plots import plot_trace, save_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    net = load_model("surface_1")
    x0 = [0.25, 0.25]
    box = ([-1.0, -1.0], [1.0, 1.0])
    res = with_progress(
        "corrected", lambda cb: trace(net, x0, step=0.0125, bounds=box, progress=cb)
    )
    ref = with_progress(
        "paper",
        lambda cb: trace(
            net, x0, step=0.0125, max_steps=200, direction="forward", method="paper", progress=cb
        ),
    )
    fig = plot_trace(res, model=net, title="surface_1 from (0.25, 0.25): equivalence class")
    ax = fig.axes[0]
    pts = ref.points.cpu().numpy()
    ax.plot(pts[:, 0], pts[:, 1], color="red", lw=1, ls=":", label="paper SiMEC-1D (drifts)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(-0.6, 0.6)
    ax.set_ylim(-0.6, 0.6)
    csv_path, json_path = save_trace(res, out_dir / "class.csv", extra={"model": "surface_1"})
    png = save_figure(fig, out_dir / "class.png")
    table = _trace_rows(res)
    table["paper mode drift (200 steps)"] = f"{ref.drift:.3e}"
    out_console.print(summary_table("fiberscope demo: surface_1 from (0.25, 0.25)", table))
    out_console.print(f"wrote {csv_path}, {json_path}, {png}")


def _version_callback(value: bool) -> None:
    if value:
        out_console.print(f"fiberscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """fiberscope: equivalence classes of neural networks."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _show_warning(message: Any, category: Any, *_args: Any, **_kwargs: Any) -> None:
    """Print a warning as one line on stderr (no source line, no file name)."""
    name = getattr(category, "__name__", "Warning")
    kind = "warning" if name in ("UserWarning", "RuntimeWarning") else name
    err_console.print(f"[yellow]{kind}:[/yellow] {_one_line(str(message))}", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name); return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        0 on success, 2 for any bad input, 1 for an unexpected internal error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            # without standalone mode click returns (not raises) the code of typer.Exit
            code = app(args=args, prog_name="fiberscope", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            return code
    except FiberscopeError as exc:
        err_console.print(f"[red]error:[/red] {_one_line(str(exc))}", highlight=False)
        return 2
    except _EXIT as exc:
        return int(exc.exit_code or 0)
    except _ABORT:
        err_console.print("aborted", highlight=False)
        return 130
    except _click_exc.ClickException as exc:
        err_console.print(f"[red]error:[/red] {_one_line(exc.format_message())}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        return 130
    except Exception as exc:  # a bug in fiberscope: still one line, but exit 1
        err_console.print(
            f"[red]internal error:[/red] {exc.__class__.__name__}: {_one_line(str(exc))[:300]}",
            highlight=False,
        )
        return 1
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


from . import across as _across  # noqa: E402,F401  (registers explore, preimage, sample)
