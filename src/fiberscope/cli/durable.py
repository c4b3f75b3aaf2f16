"""Durable runs of every command: checkpoints, ``--resume``, and clean Ctrl-C / SIGTERM.

The library raises :class:`~fiberscope.errors.Interrupted` (a ``KeyboardInterrupt``)
when its ``stop`` flag is set; this module owns the signal handlers that set the flag, and on
an interruption saves what was done: the checkpoint (to resume exactly) and the partial
result, marked ``"complete": false`` in its JSON sidecar. The exit code is ``128 + signal``
(130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, FiberscopeError, InputError, Interrupted, OutputFileError


class StopFlag:
    """Set by SIGINT/SIGTERM; polled by the tracer between steps.

    The first signal asks the run to stop after the current step; a second one (SIGINT or
    SIGTERM) while the run is still tracing raises :class:`KeyboardInterrupt` at once, even in
    the middle of a slow model evaluation (the tracer still keeps everything up to its last
    completed step). While results are being saved, signals are only recorded, so the files
    are always completed.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.saving = False

    def __call__(self) -> bool:
        """True once a stop was requested."""
        return self.signum is not None

    def handle(self, signum: int, _frame: Any) -> None:
        """Signal handler."""
        again = self.signum is not None
        if self.signum is None:
            self.signum = signum
        if again and not self.saving:
            raise KeyboardInterrupt

    @property
    def name(self) -> str:
        """Name of the signal received (SIGINT when none was)."""
        return signal.Signals(self.signum or signal.SIGINT).name

    @property
    def exit_code(self) -> int:
        """``128 + signal number``."""
        return 128 + int(self.signum or signal.SIGINT)


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """Install SIGINT/SIGTERM handlers that set a :class:`StopFlag` (main thread only).

    Yields
    ------
    StopFlag
        The flag; the previous handlers are restored on exit.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, flag.handle)
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (model identity for ``--resume``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(spec: str, arch: str | None, fmt: str | None, output: str | None) -> dict:
    """What identifies the model of a run: spec, architecture, format, output, file hash."""
    from ..models.python_spec import is_python_spec
    from ..models.registry import resolve_path

    ident: dict[str, Any] = {"model": spec, "arch": arch, "format": fmt, "output": output}
    path = Path(spec).expanduser()
    try:
        if is_python_spec(spec) and not path.exists():
            path = Path(spec.rpartition(":")[0])  # file.py:attr -> the code; module:attr -> none
        else:
            path = resolve_path(spec)
        if path.suffix and path.is_file():
            ident["model_sha256"] = file_sha256(path)
        if arch and is_python_spec(arch) and Path(arch.rpartition(":")[0]).is_file():
            ident["arch_sha256"] = file_sha256(Path(arch.rpartition(":")[0]))
    except (FiberscopeError, OSError):
        pass
    return ident


def _size(result: Any) -> str:
    """How much a partial result holds, in words (``"57 points"``, ``"4 levels, 90 points"``)."""
    traces = getattr(result, "traces", None)
    if isinstance(traces, list):  # a preimage: its levels and their points
        return f"{len(traces)} levels, {sum(len(t) for t in traces)} points"
    path = getattr(result, "path", None)
    if hasattr(path, "points"):  # a boundary walk: its path
        return f"{len(path)} points"
    if hasattr(result, "counts") or hasattr(result, "spacing"):
        return f"{len(result)} samples"
    return f"{len(result)} points"


class DurableRun:
    """Output checks, locks, checkpoints and interruption handling for one ``trace`` command.

    The constructor checks the arguments and plans every file of the run (result, sidecar,
    plot, checkpoint, stream, locks; see :func:`fiberscope.io.paths.plan_outputs`) without
    touching the disk; ``with run:`` takes the locks, then checks what exists (an interrupted
    run's checkpoint, existing results) and loads the checkpoint for ``--resume``.

    Parameters
    ----------
    out : str or pathlib.Path
        Result CSV.
    plot : str or pathlib.Path or None
        Optional figure.
    force : bool
        Overwrite existing outputs (and discard an old checkpoint).
    resume : bool
        Continue from the checkpoint of ``out``.
    checkpoint_every : int
        Steps between checkpoints; 0 writes one only when interrupted.
    inputs : sequence of (str, path)
        Files the run reads (model, ``--arch``): no output may be one of them.
    table : bool
        The result also has a CSV table next to it (a walk's ``.npz``).
    figures : sequence of (str, path)
        More figures (``("--grid", path)``, ``("--gif", path)``), planned like ``--plot``.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        plot: str | Path | None,
        force: bool,
        resume: bool,
        checkpoint_every: int,
        inputs: Sequence[tuple[str, str | Path]] = (),
        table: bool = False,
        figures: Sequence[tuple[str, str | Path]] = (),
    ) -> None:
        from ..io.paths import plan_outputs

        if resume and force:
            raise InputError(
                "--resume continues an interrupted run and --force starts it over; give one"
            )
        if isinstance(checkpoint_every, bool) or checkpoint_every < 0:
            raise InputError(
                f"--checkpoint-every must be 0 (only when interrupted) or a positive number of "
                f"steps, got {checkpoint_every}"
            )
        self.plan = plan_outputs(
            out, plot=plot, checkpoint=True, inputs=inputs, table=table, figures=figures
        )
        #: ``(option, path)`` of the figures beyond ``--plot`` (``--grid``, ``--gif``)
        self.figures = [(f.option, f.path) for f in self.plan.files if f.role == "figure"]
        self.out = self.plan["result"]
        self.plot = self.plan.get("plot")
        self.force, self.resume = force, resume
        self.every = checkpoint_every
        self.ckpt_path, self.stream_path = self.plan["checkpoint"], self.plan["stream"]
        self.loaded = None
        self.identity: dict[str, Any] = {}

    def __enter__(self) -> DurableRun:
        self.plan.acquire()
        try:
            self._check_existing()
        except BaseException:
            self.plan.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.plan.release()

    def _check_existing(self) -> None:
        from ..io.atomic import display_name, refuse_special
        from ..io.checkpoint import load_checkpoint

        for f in self.plan.files:
            refuse_special(f.path)
        if self.resume:
            self.loaded = load_checkpoint(self.out)
            for role in ("result", "sidecar", "table"):
                p = self.plan.get(role)
                if p is not None and p.exists() and not self._is_incomplete_result():
                    raise OutputFileError(
                        f"{display_name(p)} exists and is not the incomplete result of this "
                        "run; move it away before --resume"
                    )
            self.plan.check_existing(force=False, roles=("plot", "figure"))
        else:
            if self.ckpt_path.exists() and not self.force:
                raise CheckpointError(
                    f"{display_name(self.ckpt_path)} holds an interrupted run of this output; "
                    "add --resume to continue it or --force to start over"
                )
            self.plan.check_existing(force=self.force)

    def kept_after_failed_save(self) -> str | None:
        """What survives when the final write fails (for the error message)."""
        from ..io.atomic import display_name

        if self.ckpt_path.exists():
            return (
                f"the finished run is kept in {display_name(self.ckpt_path)} (with "
                f"{display_name(self.stream_path.name)}): {{fix}} and run the same command "
                "with --resume to write the result"
            )
        return None

    def _is_incomplete_result(self) -> bool:
        from ..io.results import sidecar_path

        try:
            meta = json.loads(sidecar_path(self.out).read_text())
        except (OSError, ValueError):
            return False
        return isinstance(meta, dict) and meta.get("complete") is False

    def check_model(self, identity: dict[str, Any]) -> None:
        """Refuse to resume with a model other than the checkpoint's (spec, arch, file hash)."""
        self.identity = identity
        if self.loaded is None:
            return
        old = self.loaded.meta.get("model_identity", {})
        for key in ("model", "arch", "format", "output", "model_sha256", "arch_sha256"):
            if old.get(key) != identity.get(key):
                what = {
                    "model_sha256": "the model file changed",
                    "arch_sha256": "the architecture file changed",
                }.get(key, f"{key} differs")
                raise CheckpointError(
                    f"cannot resume: {what} since the checkpoint was written "
                    f"({old.get(key)!r} then, {identity.get(key)!r} now)"
                )

    def run(
        self,
        verb: Callable[..., Any],
        *args: Any,
        save_partial: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run any fiberscope verb with checkpoints, resume and signal handling.

        On SIGINT/SIGTERM the checkpoint (and, when the verb has one, the partial result,
        marked incomplete) is written and ``typer.Exit(128 + signal)`` is raised. On an error
        during a fresh (not resumed) run its checkpoint files are removed.

        Parameters
        ----------
        verb : callable
            A verb of :mod:`fiberscope` (``trace``, ``explore``, ``preimage``, ...).
        *args, **kwargs
            Its arguments (``stop``, ``checkpoint``, ``resume`` are added here).
        save_partial : callable, optional
            ``save_partial(result, path, force=..., extra=...)`` for the partial result.

        Returns
        -------
        Any
            The verb's complete result.
        """
        import typer

        from ..io.checkpoint import CheckpointWriter

        meta = {"model_identity": self.identity}
        if self.loaded is not None:
            writer = CheckpointWriter.continuing(self.out, self.loaded, meta=meta)
        else:
            writer = CheckpointWriter(self.out, meta=meta)
        with stop_on_signals() as flag:
            try:
                return verb(
                    *args,
                    stop=flag,
                    checkpoint=writer if self.every else None,
                    checkpoint_every=self.every or 1,
                    resume=None if self.loaded is None else self.loaded.snapshot,
                    **kwargs,
                )
            except Interrupted as exc:
                flag.saving = True
                writer.save(exc.snapshot)  # type: ignore[arg-type]
                partial = exc.result
                from .common import note, shown

                steps = exc.snapshot.steps  # type: ignore[attr-defined]
                where = f"checkpoint {shown(self.ckpt_path)}"
                if partial is not None and save_partial is not None:
                    save_partial(
                        partial,
                        self.out,
                        force=True,
                        extra={
                            **self.identity,
                            "complete": False,
                            "interrupted_by": flag.name,
                            "checkpoint": str(self.ckpt_path),
                        },
                    )
                    where = (
                        f"{_size(partial)} to {shown(self.out)} (marked incomplete) and " + where
                    )
                note(
                    f"interrupted by {flag.name} after {steps} steps: wrote {where}; run the "
                    "same command with --resume to continue"
                )
                raise typer.Exit(code=flag.exit_code) from None
            except KeyboardInterrupt:
                # a second signal inside a model evaluation before the verb's loop began (the
                # loop turns later ones into Interrupted): there is no step to keep
                if flag.signum is None:
                    raise
                flag.saving = True
                from .common import note

                if self.loaded is None:
                    writer.remove()
                    kept = "nothing was written"
                else:
                    kept = f"the checkpoint {self.ckpt_path.name} is kept; use --resume again"
                note(f"interrupted by {flag.name} before the first step: {kept}")
                raise typer.Exit(code=flag.exit_code) from None
            except FiberscopeError:
                if self.loaded is None:
                    writer.remove()
                raise

    def trace(self, trace_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """:meth:`run` for :func:`fiberscope.trace` (the partial trace is saved as CSV).

        Parameters
        ----------
        trace_fn : callable
            :func:`fiberscope.trace`.
        *args, **kwargs
            Its arguments.

        Returns
        -------
        TraceResult
            The complete result.
        """
        from ..io.results import save_trace

        return self.run(trace_fn, *args, save_partial=save_trace, **kwargs)

    def finish(self) -> None:
        """Remove the checkpoint files once the complete result is written."""
        from ..io.checkpoint import remove_checkpoint

        remove_checkpoint(self.out)
