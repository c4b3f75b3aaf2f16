"""Reproduce paper II from a checkout: ``python -m paper.reproduce --out DIR``.

Runs the six experiments of Benfenati & Marta, paper II (arXiv 2112.10583) with the authors'
algorithm and fiberscope's corrected one, on the authors' weights and on networks trained here,
and writes one figure per experiment, an overview figure, the error tables (Markdown, CSV) and
a JSON file with every setting and number. Progress goes to stderr as plain lines, in a
terminal or not; the Markdown table goes to stdout at the end.

Every bad argument is refused with one line (``error: ...``) and exit code 2 before any
training starts, and nothing is written.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

import fiberscope as fs

try:  # typer >= 0.20 vendors click; older releases depend on it
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_exc

_EXIT = tuple(c for c in (getattr(_click_exc, "Exit", None), typer.Exit) if c is not None)
_ABORT = tuple(c for c in (getattr(_click_exc, "Abort", None), typer.Abort) if c is not None)

__all__ = ["MAX_SEED", "app", "check_out_dir", "main", "parse_networks"]

#: Largest accepted ``--seed`` (seeds go to NumPy and torch generators; 2**32 - 1 fits both).
MAX_SEED = 2**32 - 1
#: Default ``--jobs``: one worker per core, at most two (the machines this is run on).
DEFAULT_JOBS = max(1, min(2, os.cpu_count() or 1))
#: Largest accepted ``--jobs``.
MAX_JOBS = 64
#: Accepted ``--dpi`` range.
DPI_RANGE = (50, 600)

app = typer.Typer(
    name="python -m paper.reproduce",
    help="Reproduce paper II: the authors' algorithm vs fiberscope's corrected one.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)


def parse_networks(text: str) -> list[str]:
    """``paper``, ``trained``, ``both`` or a comma-separated list, as network kinds.

    Parameters
    ----------
    text : str
        The option's value.

    Returns
    -------
    list of str
        Kinds in the order given.

    Raises
    ------
    fiberscope.InputError
        An unknown kind.
    """
    if text == "both":
        return ["paper", "trained"]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in ("paper", "trained")]
    if bad or not parts:
        raise fs.InputError(
            f"--networks: unknown network kind {bad[0] if bad else text!r}; "
            "use paper, trained or both"
        )
    return parts


def check_out_dir(out: Path, names: Sequence[str], force: bool) -> None:
    """Refuse an output folder that cannot take the files, before any work starts.

    Parameters
    ----------
    out : pathlib.Path
        The folder (created at the end if missing; its parent must exist).
    names : sequence of str
        Files that will be written into it.
    force : bool
        Overwrite existing files.

    Raises
    ------
    fiberscope.OutputFileError
        ``out`` is a file, its parent is missing or not a folder, it cannot be written, or
        (without ``force``) a file to write exists.
    """
    if out.exists() and not out.is_dir():
        raise fs.OutputFileError(f"--out {out} is a file, not a folder; give a folder for --out")
    probe_dir = out if out.is_dir() else (out.parent if str(out.parent) else Path("."))
    if not out.exists():
        if not probe_dir.exists():
            raise fs.OutputFileError(
                f"cannot create --out {out}: folder {probe_dir} does not exist; create it first"
            )
        if not probe_dir.is_dir():
            raise fs.OutputFileError(
                f"cannot create --out {out}: {probe_dir} is a file, not a folder"
            )
    try:
        fd, tmp = tempfile.mkstemp(prefix=".paper-probe-", dir=probe_dir)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise fs.OutputFileError(
            f"cannot write into {probe_dir} ({reason}); choose a writable folder for --out"
        ) from None
    os.close(fd)
    os.unlink(tmp)
    if out.is_dir() and not force:
        clash = [n for n in names if (out / n).exists()]
        if clash:
            raise fs.OutputFileError(
                f"{out / clash[0]} already exists ({len(clash)} of the files to write do); "
                "use --force to overwrite them"
            )


@app.command()
def reproduce(
    experiments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Experiments by name or number: 1 compact, 2 noncompact, 3 thermo, 4 annulus, "
            "5 isotherms, 6 classifier (default: all six).",
            metavar="EXPERIMENT",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Folder for the figures and tables."),
    ] = Path("reproduction"),
    networks: Annotated[
        str,
        typer.Option(metavar="KINDS", help="paper (the authors' weights), trained (ours) or both."),
    ] = "both",
    seed: Annotated[
        int,
        typer.Option(
            metavar="INT", help=f"Seed of the generated data and of training (0..{MAX_SEED})."
        ),
    ] = 0,
    epochs: Annotated[
        int | None,
        typer.Option(metavar="INT", help="Training epochs (default: the recipe's)."),
    ] = None,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            metavar="",
            help="Small step counts and short training (for tests; not the paper's).",
        ),
    ] = False,
    dpi: Annotated[int, typer.Option(metavar="INT", help="Resolution of the PNG figures.")] = 200,
    force: Annotated[
        bool, typer.Option("--force", metavar="", help="Overwrite existing files in --out.")
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            metavar="INT",
            help="Worker processes: each (experiment, network) runs in its own (same numbers).",
        ),
    ] = DEFAULT_JOBS,
) -> None:
    """Reproduce paper II: the authors' algorithm vs the corrected one, figures and error table.

    Writes exp*.png, overview.png, table.md, table.csv and reproduction.json into --out.
    """
    from .progress import Reporter
    from .runner import report_files, run_experiments, table_markdown, write_report
    from .specs import resolve_experiments

    specs = resolve_experiments(experiments)
    kinds = parse_networks(networks)
    if not 0 <= seed <= MAX_SEED:
        raise fs.InputError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")
    if epochs is not None and not 1 <= epochs <= 10_000_000:
        raise fs.InputError(f"--epochs must be between 1 and 10000000, got {epochs}")
    if not DPI_RANGE[0] <= dpi <= DPI_RANGE[1]:
        raise fs.InputError(f"--dpi must be between {DPI_RANGE[0]} and {DPI_RANGE[1]}, got {dpi}")
    if not 1 <= jobs <= MAX_JOBS:
        raise fs.InputError(f"--jobs must be between 1 and {MAX_JOBS}, got {jobs}")
    names = report_files(specs)
    check_out_dir(out, names, force)
    t0 = time.perf_counter()
    with Reporter(err_console) as rep:
        result = run_experiments(
            specs, fast=fast, seed=seed, networks=kinds, epochs=epochs, reporter=rep, jobs=jobs
        )
        out.mkdir(exist_ok=True)
        written = write_report(result, out, dpi=dpi, reporter=rep)
    out_console.print(table_markdown(result), highlight=False, markup=False)
    out_console.print(
        f"wrote {len(written)} files to {out} in {time.perf_counter() - t0:.1f} s",
        highlight=False,
        markup=False,
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error(kind: str, text: str) -> None:
    err_console.print(f"[red]{kind}:[/red] {escape(_one_line(text))}", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (without the program name); return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        0 on success, 2 for bad input, 130 when interrupted, 1 for an unexpected error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    old_term = _term_as_interrupt()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            code: Any = app(args=args, prog_name="python -m paper.reproduce", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            if code == 130:  # typer returns 130 after Ctrl-C (or SIGTERM, see below)
                err_console.print("interrupted", highlight=False, markup=False)
            return code
    except fs.FiberscopeError as exc:
        _error("error", str(exc))
        return 2
    except _EXIT as exc:
        code = int(exc.exit_code or 0)
        if code == 130:  # click turned Ctrl-C / SIGTERM into Abort and then into Exit(130)
            err_console.print("interrupted", highlight=False, markup=False)
        return code
    except _click_exc.ClickException as exc:
        _error("error", exc.format_message())
        return 2
    except (KeyboardInterrupt, *_ABORT):
        err_console.print("interrupted", highlight=False, markup=False)
        return 130
    except Exception as exc:  # a bug: still one line, but exit 1
        _error("internal error", f"{exc.__class__.__name__}: {_one_line(str(exc))[:300]}")
        return 1
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return 0


def _term_as_interrupt() -> Any:
    """Treat SIGTERM like Ctrl-C (worker processes stopped, nothing half-written)."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        return None


if __name__ == "__main__":  # pragma: no cover - exercised through main() in the tests
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
