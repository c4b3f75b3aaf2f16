"""Run the ``fiberscope`` command line: ``main(argv) -> int`` and the console script ``run()``.

The commands are registered on :data:`fiberscope.cli.common.app` by the package
``fiberscope.cli`` (imported before this module). Every error a user can cause prints one line
on stderr and exits with code 2; no output file is written in that case.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer

from .._version import __version__
from ..errors import FiberscopeError
from .common import app, err_console, one_line, out_console, print_error, print_warning, say

try:  # typer >= 0.20 vendors click; older releases depend on it
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_exc

__all__ = ["app", "err_console", "main", "out_console", "run"]

_EXIT = tuple(c for c in (getattr(_click_exc, "Exit", None), typer.Exit) if c is not None)
_ABORT = tuple(c for c in (getattr(_click_exc, "Abort", None), typer.Abort) if c is not None)


def _version_callback(value: bool) -> None:
    if value:
        say(f"fiberscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """fiberscope: equivalence classes of neural networks."""


def _show_warning(message: Any, category: Any, *_args: Any, **_kwargs: Any) -> None:
    """Print a warning as one line on stderr (no source line, no file name)."""
    name = getattr(category, "__name__", "Warning")
    print_warning(str(message), "warning" if name in ("UserWarning", "RuntimeWarning") else name)


_COMMAND: Any = None


def _interrupt_reported(callback: Any) -> Any:
    """``callback``, whose Ctrl-C (one that no run's own handler saw, e.g. while the model
    loads) ends in one line: typer would turn it into a silent exit 130."""

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt:
            raise _ABORT[0]("interrupted") from None

    return wrapper


def command() -> Any:
    """The click command of the app, with flags shown without a ``<bool>`` type."""
    global _COMMAND
    if _COMMAND is None:
        cmd = typer.main.get_command(app)
        groups = [cmd, *getattr(cmd, "commands", {}).values()]
        for group in groups:
            params = list(group.params)
            ctx_help = group.get_help_option(group.context_class(group))
            if ctx_help is not None:
                params.append(ctx_help)
            for param in params:
                if getattr(param, "is_flag", False):
                    param.metavar = ""
                elif param.param_type_name == "argument" and param.nargs == -1:
                    # typer shows <list[str]> for `MODEL...`: the name already says "several"
                    param.display_type = lambda _ctx: "<str>"
        for sub in getattr(cmd, "commands", {}).values():
            if sub.callback is not None:
                sub.callback = _interrupt_reported(sub.callback)
        _COMMAND = cmd
    return _COMMAND


@contextlib.contextmanager
def _printable_streams() -> Iterator[None]:
    """Never die printing a name the terminal's encoding cannot show (``\\xNN`` instead)."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        errors = getattr(stream, "errors", None)
        if errors == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
                changed.append(stream)
            except (AttributeError, ValueError, OSError):
                pass
    try:
        yield
    finally:
        for stream in changed:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.reconfigure(errors="strict")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (without the program name); return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments; ``sys.argv[1:]`` when None. No arguments at all shows the help.

    Returns
    -------
    int
        0 on success, 2 for any bad input, 3 when the result was saved but its plot was not,
        128 + signal when interrupted, 1 for an unexpected internal error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]
    with _printable_streams():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.showwarning = _show_warning
                # without standalone mode click returns (not raises) the code of typer.Exit
                code = command().main(args=args, prog_name="fiberscope", standalone_mode=False)
            if isinstance(code, int) and not isinstance(code, bool) and code:
                return code
        except FiberscopeError as exc:
            print_error(str(exc))
            return 2
        except _EXIT as exc:
            return int(exc.exit_code or 0)
        except _ABORT as exc:
            say_err(str(exc) or "aborted")
            return 130
        except _click_exc.ClickException as exc:
            print_error(exc.format_message())
            return 2
        except KeyboardInterrupt:
            say_err("interrupted")
            return 130
        except Exception as exc:  # a bug in fiberscope: still one line, but exit 1
            print_error(f"{exc.__class__.__name__}: {one_line(str(exc))[:300]}", "internal error")
            return 1
    return 0


def say_err(message: str) -> None:
    """One plain line on stderr."""
    err_console.print(message, markup=False, highlight=False)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
