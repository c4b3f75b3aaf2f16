"""``fiberscope demo``: the circle class of the paper's network 1, both methods, one figure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    ForceOpt,
    app,
    out_console,
    report_plot_failure,
    save_result,
    summary_table,
    with_progress,
    write_plot,
    wrote,
)
from .trace_cmd import trace_rows


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[
        str,
        typer.Option("--out-dir", metavar="DIR", help="Folder for the demo files."),
    ] = "fiberscope-demo",
    force: ForceOpt = False,
) -> None:
    """Trace the circle class of the paper's network 1 from (0.25, 0.25); write CSV and PNG.

    The corrected method is compared with the authors' SiMEC-1D (delta = 0.0125, 200 steps),
    which spirals outward. Existing files are kept unless --force.
    """
    from ..errors import OutputFileError
    from ..io.atomic import display_name
    from ..io.paths import plan_outputs

    if out_dir.strip() == "":
        raise OutputFileError("--out-dir is empty; give a folder name")
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputFileError(
            f"--out-dir {display_name(folder)} is a file, not a folder; give a folder"
        )
    plan = plan_outputs(
        folder / "class.csv",
        option="--out-dir",
        plot=folder / "class.png",
        create_folders=True,
    )
    with plan.locked(force=force):
        from ..algorithms.trace import trace
        from ..io.results import save_trace
        from ..models import load_model

        net = load_model("surface_1")
        x0 = [0.25, 0.25]
        box = ([-1.0, -1.0], [1.0, 1.0])
        res = with_progress(
            "corrected", lambda cb: trace(net, x0, step=0.0125, bounds=box, progress=cb)
        )
        ref = with_progress(
            "paper",
            lambda cb: trace(
                net,
                x0,
                step=0.0125,
                max_steps=200,
                direction="forward",
                method="paper",
                progress=cb,
            ),
        )
        save_result(
            lambda: save_trace(res, plan["result"], force=True, extra={"model": "surface_1"}),
            plan,
        )

        def draw():  # noqa: ANN202 - a matplotlib Figure
            from ..plot.plots import overlay_curve, plot_trace

            fig = plot_trace(res, model=net, title="surface_1 from (0.25, 0.25): equivalence class")
            ax = fig.axes[0]
            overlay_curve(ax, ref.points, ls=":", label="paper SiMEC-1D (drifts)")
            ax.legend(loc="upper right", fontsize=8)
            ax.set_xlim(-0.6, 0.6)
            ax.set_ylim(-0.6, 0.6)
            return fig

        failed = write_plot(draw, plan["plot"])
    table = trace_rows(res)
    table["paper mode drift (200 steps)"] = f"{ref.drift:.3e}"
    out_console.print(summary_table("fiberscope demo: surface_1 from (0.25, 0.25)", table))
    saved = [plan["result"], plan["sidecar"]]
    wrote(saved + ([plan["plot"]] if failed is None else []))
    if failed is not None:
        report_plot_failure(plan["plot"], failed, saved)
