"""``fiberscope run JOB.toml``: a verb on every item of a dataset, in this process or on Ray.

The job file names the verb, the model, the inputs, the store and the verb's options (see
``docs/cluster.md``). Running the same command again continues the job (finished items are
skipped). Exit codes: 0 every item done; 4 the job finished but some items failed (each
printed as ``error: item N (KEY): ...``, all recorded in the store's manifest); 2 the job
itself is wrong (nothing written); 130/143 interrupted (the store is consistent: run the same
command to continue).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from .common import (
    PLAIN_PROGRESS_EVERY,
    app,
    err_console,
    note,
    out_console,
    print_error,
    say,
    summary_table,
)

#: Exit code of a job that finished with failed items (the others are in the store).
EXIT_ITEMS_FAILED = 4
#: Failed items printed one per line; the rest are counted.
SHOW_FAILED = 10


def _with_item_progress(description: str, work: Callable[[Any], Any]) -> Any:
    """Run ``work(progress)``: a bar on a terminal, else a line every few seconds."""
    if err_console.is_terminal:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} items"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return work(update)
    start = time.monotonic()
    last: list[float] = []

    def plain(done: int, total: int) -> None:
        now = time.monotonic()
        if not last:  # the clock starts with the first item, not with the imports
            last.append(now)
            return
        if now - last[0] < PLAIN_PROGRESS_EVERY:
            return
        last[0] = now
        note(f"{description}: {done}/{total} items, {now - start:.0f} s")

    return work(plain)


def _report(res: Any) -> int:
    """Print the summary (stdout) and the failed items (stderr); return the exit code."""
    out_console.print(summary_table("job", res.summary()))
    for item in res.failed[:SHOW_FAILED]:
        print_error(f"item {item['index']} ({item['key']}): {item['error']}")
    more = len(res.failed) - SHOW_FAILED
    if more > 0:
        print_error(f"{more} more items failed; every error is in {res.store}/manifest.json")
    return EXIT_ITEMS_FAILED if res.failed else 0


@app.command("run")
def run_cmd(
    job: Annotated[
        str,
        typer.Argument(
            metavar="JOB.toml",
            help="Job file: verb, model, inputs, store, seed and the verb's \\[options] "
            "(docs/cluster.md).",
            show_default=False,
        ),
    ],
    store: Annotated[
        str | None,
        typer.Option(
            "-o", "--store", metavar="DIR", help="Store folder (instead of the job's store)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            help="Ray workers (default: one per CPU, or per GPU); 0 runs in this process.",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDR",
            help="Join a Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: a local "
            "Ray on this machine, or this process when Ray is not installed).",
        ),
    ] = None,
) -> None:
    """Run a verb (walk, trace, preimage) on every item of a dataset; results go to a store.

    Items run on Ray workers (a local Ray is started when no --ray-address is given) or, with
    --workers 0 or without Ray installed, in this process; the results are the same. Running
    the same command again continues the job: finished items are skipped.
    """
    from ..errors import Interrupted
    from ..jobs.run import run_many
    from ..jobs.spec import load_job_file
    from .durable import stop_on_signals

    kwargs = load_job_file(job)
    if store is not None:
        kwargs["store"] = store
    if workers is not None:
        kwargs["workers"] = workers
    if ray_address is not None:
        kwargs["ray_address"] = ray_address
    model = kwargs.pop("model")
    inputs = kwargs.pop("inputs")
    verb = kwargs.pop("verb")
    with stop_on_signals() as flag:
        try:
            res = _with_item_progress(
                f"run ({verb})",
                lambda progress: run_many(
                    model, inputs, verb, progress=progress, stop=flag, log=say, **kwargs
                ),
            )
        except Interrupted as exc:
            done = exc.result
            if done is not None:
                note(
                    f"interrupted ({flag.name}): {done.done} of {done.total} items done in "
                    f"{done.store}; run the same command again to continue"
                )
            else:
                note(f"interrupted ({flag.name}); run the same command again to continue")
            raise typer.Exit(code=flag.exit_code) from None
    code = _report(res)
    if code:
        raise typer.Exit(code=code)
