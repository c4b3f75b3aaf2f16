"""The typer app of ``fiberscope`` and what every command shares.

Command modules (``trace_cmd``, ``demo_cmd``, ``across``, ...) import this module and register
their commands on :data:`app`; the package ``fiberscope.cli`` imports the command modules, and
:mod:`fiberscope.cli.main` runs the app. Nothing here imports torch or matplotlib, so
``fiberscope --help`` and ``--version`` start fast; commands import what they need when run.

Everything printed goes through :func:`print_error`, :func:`print_warning`, :func:`say` and
:func:`note`, which never interpret rich markup in the text (``pip install
'fiberscope[onnx]'`` prints as written).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from ..errors import InputError, OutputFileError

if TYPE_CHECKING:
    from ..io.paths import OutputPlan

app = typer.Typer(
    name="fiberscope",
    help="See what a trained network cannot tell apart: trace equivalence classes.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True, soft_wrap=True, emoji=False)
out_console = Console(soft_wrap=True, emoji=False)

#: Seconds between progress lines when stderr is not a terminal.
PLAIN_PROGRESS_EVERY = 3.0
#: Exit code when the result was saved but its plot could not be written.
EXIT_PLOT_FAILED = 3


# ---------------------------------------------------------------- shared options
ModelArg = Annotated[
    str,
    typer.Argument(
        metavar="MODEL",
        help="Model file (ONNX, .pt2, TorchScript, safetensors/state_dict with --arch, paper "
        "CSV), bundled network name, or module:attr / file.py:attr.",
        show_default=False,
    ),
]
ArchOpt = Annotated[
    str | None,
    typer.Option(
        "--arch",
        metavar="MODULE:FACTORY",
        help="Architecture for a weights file (.safetensors, state_dict .pt): "
        "package.module:Factory or file.py:Factory (imported: only name code you trust).",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="Force the model format: paper-csv, onnx, pt2, torch, safetensors.",
    ),
]
OutputOpt = Annotated[
    str | None,
    typer.Option(
        "--output",
        metavar="SELECTION",
        help="Which model outputs define the class: 'logits[3]', '[0:2]', 'softmax[1]', "
        "'logit-diff 3 5', 'sum', ... (docs/outputs.md). Not the file: that is -o/--out.",
    ),
]
AtOpt = Annotated[
    str,
    typer.Option("--at", metavar="X0,X1,...", help="Start point, comma-separated: 0.25,0.25."),
]
BoundsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--bounds", metavar="LO,HI", help="Box LO,HI: once for all axes or once per axis."
    ),
]
OutOpt = Annotated[
    str,
    typer.Option("-o", "--out", metavar="FILE", help="CSV file to write (plus FILE.json)."),
]
PlotOpt = Annotated[
    str | None,
    typer.Option(
        "--plot",
        metavar="FILE",
        help="Figure to write after the result (PNG; PDF or SVG by suffix). 2-D inputs over a "
        "heat map, 3-D in 3-D, more as pairwise projections.",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="Continue an interrupted run from its checkpoint OUT.ckpt."),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        metavar="DEVICE",
        help="Where the geometry runs: cpu (default), cuda, cuda:1, mps ...",
    ),
]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        metavar="DTYPE",
        help="Precision of the Jacobians: float64 (default), float32, bfloat16; outputs and "
        "residuals stay float64.",
    ),
]
EveryOpt = Annotated[
    int,
    typer.Option(metavar="N", help="Steps between checkpoints (0: only when interrupted)."),
]


# ---------------------------------------------------------------- printing
def one_line(text: Any) -> str:
    """Collapse whitespace so that a message is one line."""
    return " ".join(str(text).split())


def print_error(message: Any, kind: str = "error") -> None:
    """Print ``error: message`` on stderr as one line (the message is never markup)."""
    err_console.print(Text.assemble((f"{kind}:", "red"), " ", one_line(message)), highlight=False)


def print_warning(message: Any, kind: str = "warning") -> None:
    """Print ``warning: message`` on stderr as one line (the message is never markup)."""
    err_console.print(
        Text.assemble((f"{kind}:", "yellow"), " ", one_line(message)), highlight=False
    )


def note(message: str) -> None:
    """Print a line on stderr as it is (no markup)."""
    err_console.print(message, markup=False, highlight=False)


def say(message: str) -> None:
    """Print a line on stdout as it is (no markup)."""
    out_console.print(message, markup=False, highlight=False)


def shown(path: str | Path) -> str:
    """A file name as messages show it (never fails to print)."""
    from ..io.atomic import display_name

    return display_name(path)


def summary_table(title: str, rows: dict[str, Any]) -> Any:
    """A two-column rich table; titles and cells are plain text, never markup."""
    from rich.table import Table

    table = Table(title=Text(title), show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(Text(str(key)), Text(value if isinstance(value, str) else repr(value)))
    return table


def wrote(paths: Sequence[str | Path]) -> None:
    """Print ``wrote a, b, c``."""
    say("wrote " + ", ".join(shown(p) for p in paths))


# ---------------------------------------------------------------- parsing
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


def place(x0: Any, device: str | None) -> Any:
    """The start as a float64 tensor on ``--device`` (unchanged when no device is given).

    Parameters
    ----------
    x0 : list of float or torch.Tensor
        The start.
    device : str or None
        ``--device``.

    Returns
    -------
    list or torch.Tensor
        The start, where the run should happen.
    """
    if device is None:
        return x0
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(
            f"--device {device!r} is not a device; use cpu, cuda, cuda:1, mps ..."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: this machine has no CUDA device; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: MPS is not available here; use --device cpu")
    return torch.as_tensor(x0, dtype=torch.float64).to(dev)


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


# ---------------------------------------------------------------- models
def model_inputs(model: str, arch: str | None) -> list[tuple[str, Path]]:
    """The files a model specification reads (no output may overwrite them).

    Parameters
    ----------
    model : str
        The MODEL argument.
    arch : str or None
        ``--arch``.

    Returns
    -------
    list of (str, pathlib.Path)
        ``(what, path)`` pairs for messages.
    """
    found: list[tuple[str, Path]] = []
    for what, spec in (("the model file", model), ("the --arch file", arch)):
        if not spec:
            continue
        path = Path(spec).expanduser()
        if path.is_file():
            found.append((what, path))
        elif ":" in spec:
            code = Path(spec.rpartition(":")[0]).expanduser()
            if code.is_file():
                found.append((what, code))
    return found


def load_cli_model(model: str, arch: str | None, model_format: str | None) -> Any:
    """Load MODEL with the shared ``--arch`` and ``--format`` options."""
    from ..models import load_model

    return load_model(model, format=model_format, arch=arch)


def output_selection(output: str | None) -> Any:
    """The output map of ``--output`` (None when not given)."""
    if output is None:
        return None
    from ..outputs import output_map

    return output_map(output)


# ---------------------------------------------------------------- progress
def with_progress(description: str, work: Callable[[Callable[[int, int], None]], Any]) -> Any:
    """Run ``work(progress_callback)``, showing progress on stderr.

    On a terminal a rich progress bar (transient); otherwise one plain line every
    :data:`PLAIN_PROGRESS_EVERY` seconds (nothing for runs shorter than that), so that logs of
    long batch runs show that they are alive.
    """
    if err_console.is_terminal:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return work(update)
    start = time.monotonic()
    last = [start]

    def plain(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < PLAIN_PROGRESS_EVERY:
            return
        last[0] = now
        share = f" ({100.0 * done / total:.0f}% of the step budget)" if total else ""
        note(f"{description}: {done}/{total} steps{share}, {now - start:.0f} s")

    return work(plain)


# ---------------------------------------------------------------- saving and plotting
def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def save_result(save: Callable[[], Any], plan: OutputPlan, *, kept: str | None = None) -> None:
    """Run the final save of a result; if the file system refuses it, say what is kept.

    When the write fails part-way (a full disk: the CSV written, its sidecar not), the files
    this save replaced are removed, so that a result never sits beside a sidecar of another
    run. The error names the file, the reason and what survives.

    Parameters
    ----------
    save : callable
        Writes the result and its sidecar.
    plan : OutputPlan
        The run's files.
    kept : str, optional
        What survives a failure (e.g. the checkpoint and how to resume from it); ``{fix}``
        in it becomes "free some space" for a full disk, "fix that" otherwise.
    """
    pair = [f.path for f in plan.files if f.role in ("result", "sidecar", "table")]
    before = {p: _identity(p) for p in pair}
    try:
        save()
    except (OutputFileError, OSError) as exc:
        changed = [p for p in pair if _identity(p) != before[p]]
        if changed:
            for p in pair:
                try:
                    p.unlink()
                except OSError:
                    pass
        reason = str(exc) if isinstance(exc, OutputFileError) else _os_reason(exc)
        full = any(w in reason for w in ("No space left", "Disk quota", "File too large"))
        fix = "free some space" if full else "fix that"
        then = (kept or "nothing was saved: {fix} and run again").format(fix=fix)
        raise OutputFileError(f"{reason}; {then}") from None


def _os_reason(exc: OSError) -> str:
    name = getattr(exc, "filename", None)
    where = f" {shown(name)}" if name else ""
    return f"cannot write{where}: {exc.strerror or errno.errorcode.get(exc.errno or 0, exc)}"


def write_plot(draw: Callable[[], Any], path: Path, *, force: bool = True) -> str | None:
    """Draw a figure and save it; return None, or the one-line reason it failed.

    Called after the result is saved: a failing plot never costs the result.

    Parameters
    ----------
    draw : callable
        Returns a matplotlib figure.
    path : pathlib.Path
        Destination.
    force : bool
        Overwrite an existing file.

    Returns
    -------
    str or None
        None on success.
    """
    from ..errors import FiberscopeError

    try:
        fig = draw()
        from ..plot.plots import save_figure

        save_figure(fig, path, force=force)
    except FiberscopeError as exc:
        return str(exc)
    except Exception as exc:  # matplotlib or the model: the result is saved, say why briefly
        return f"{exc.__class__.__name__}: {one_line(exc)[:300]}"
    return None


def report_plot_failure(plot: Path, reason: str, saved: Sequence[Path]) -> None:
    """Print the one line for a plot that failed after the result was saved, and exit 3."""
    print_error(
        f"the plot {shown(plot)} was not written ({reason}); the result is saved in "
        + " and ".join(shown(p) for p in saved)
    )
    raise typer.Exit(code=EXIT_PLOT_FAILED)


def fmt_vec(v: Any) -> str:
    """A short text for a vector (one value: 12 digits)."""
    vals = v.reshape(-1).tolist() if hasattr(v, "reshape") else list(v)
    if len(vals) == 1:
        return f"{vals[0]:.12g}"
    return "(" + ", ".join(f"{x:.8g}" for x in vals[:8]) + (", ..." if len(vals) > 8 else "") + ")"
