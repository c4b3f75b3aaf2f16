"""``fiberscope reproduce``: regenerate the experiments of paper II with both methods.

Registered on the main typer app when :mod:`fiberscope.cli.main` imports this module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError, OutputFileError
from .main import app, err_console, out_console


def _parse_networks(text: str) -> list[str]:
    if text == "both":
        return ["paper", "trained"]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in ("paper", "trained")]
    if bad or not parts:
        raise InputError(
            f"--networks: unknown network kind {bad[0] if bad else text!r}; "
            "use paper, trained or both"
        )
    return parts


def _check_out_dir(out: Path, names: list[str], force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputFileError(f"{out} exists and is not a folder; give a folder for --out")
    parent = out.parent if str(out.parent) else Path(".")
    if not out.exists() and not parent.is_dir():
        raise OutputFileError(f"cannot create {out}: folder {parent} does not exist")
    if out.is_dir() and not force:
        clash = [n for n in names if (out / n).exists()]
        if clash:
            raise OutputFileError(
                f"{out / clash[0]} already exists ({len(clash)} of the files to write do); "
                "use --force to overwrite them"
            )


@app.command("reproduce")
def reproduce_cmd(
    experiments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Experiments by name or number: 1 compact, 2 noncompact, 3 thermo, 4 annulus, "
            "5 isotherms, 6 classifier (default: all six).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the figures and tables.")
    ] = Path("reproduction"),
    networks: Annotated[
        str, typer.Option(help="paper (the authors' weights), trained (ours) or both.")
    ] = "both",
    seed: Annotated[int, typer.Option(help="Seed of the generated data and of training.")] = 0,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs (default: the recipe's).")
    ] = None,
    fast: Annotated[
        bool,
        typer.Option(help="Small step counts and short training (for tests; not the paper's)."),
    ] = False,
    dpi: Annotated[int, typer.Option(help="Resolution of the PNG figures.")] = 100,
    force: Annotated[bool, typer.Option(help="Overwrite existing files in --out.")] = False,
) -> None:
    """Reproduce paper II: the authors' algorithm vs the corrected one, figures and error table.

    Writes exp*.png, overview.png, table.md, table.csv and reproduction.json into --out.
    """
    from ..experiments.reproduce import report_files, run_experiments, write_report
    from ..experiments.specs import resolve_experiments

    specs = resolve_experiments(experiments)
    kinds = _parse_networks(networks)
    if epochs is not None and epochs < 1:
        raise InputError(f"--epochs must be positive, got {epochs}")
    if dpi < 20 or dpi > 600:
        raise InputError(f"--dpi must be between 20 and 600, got {dpi}")
    names = report_files(specs)
    _check_out_dir(out, names, force)
    t0 = time.perf_counter()
    rep = run_experiments(
        specs,
        fast=fast,
        seed=seed,
        networks=kinds,
        epochs=epochs,
        on_event=lambda msg: err_console.print(msg, highlight=False),
    )
    out.mkdir(parents=True, exist_ok=True)
    written = write_report(rep, out, dpi=dpi)
    from ..experiments.reproduce import table_markdown

    out_console.print(table_markdown(rep), highlight=False, markup=False)
    out_console.print(
        f"wrote {len(written)} files to {out} in {time.perf_counter() - t0:.1f} s",
        highlight=False,
    )
