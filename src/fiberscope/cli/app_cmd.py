"""``fiberscope app``: start the local web app (see :mod:`fiberscope.app`).

Registered on the main typer app when :mod:`fiberscope.cli.main` imports this module. The
web stack (FastAPI, uvicorn, Plotly) is imported only when the command runs, so
``fiberscope --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ..errors import InputError
from .common import app, err_console, out_console, parse_floats

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _bounds_pairs(items: list[str] | None) -> list[tuple[float, float]] | None:
    if not items:
        return None
    pairs = []
    for item in items:
        pair = parse_floats(item, "--bounds")
        if len(pair) != 2:
            raise InputError(f"--bounds takes LO,HI for one axis, got {len(pair)} numbers")
        pairs.append((pair[0], pair[1]))
    return pairs


@app.command("app")
def app_cmd(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="MODEL",
            help="Models to offer: bundled names (surface_1, surface_2, thermodynamics, "
            "thermo_softplus, binary, mnist_cnn), model files or module:attr. Default: the "
            "bundled 2-D networks and mnist_cnn. The page can only use these.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Interface to listen on; anything but 127.0.0.1 is reachable from other machines."
        ),  # fmt: skip
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    input_shape: Annotated[
        str | None,
        typer.Option(
            help="Input shape of the named model files, e.g. 1,28,28 (inferred when possible)."
        ),  # fmt: skip
    ] = None,
    bounds: Annotated[
        list[str] | None,
        typer.Option(
            metavar="LO,HI",
            help="Box LO,HI of the named models: once for all axes or once per axis "
            "(2-D). Images default to 0,1.",
        ),  # fmt: skip
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            help="Which outputs define the class for the named models: "
            "'logits[3]', 'logit-diff 0 1', ... (docs/outputs.md).",
        ),  # fmt: skip
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Decision threshold of a 2-D classifier (binary: 0.5): a click also "
            "shows the shortest way to flip the decision."
        ),  # fmt: skip
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in the default web browser.")
    ] = False,
) -> None:
    """Start the local web app: click a point to see its class, drag for a preimage band,
    walk the class of an image. Ctrl-C stops it.
    """
    from ..app import MissingExtraError, check_installed

    try:
        check_installed()
    except MissingExtraError as exc:
        # printed here: the message holds "fiberscope[app]", which rich would read as markup
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    from ..app import build_catalog, check_port, serve, setup_logging
    from ..app.catalog import parse_shape

    if not 0 < port < 65536:
        raise InputError(f"--port must be from 1 to 65535, got {port}")
    shape = parse_shape(input_shape) if input_shape is not None else None
    pairs = _bounds_pairs(bounds)
    if threshold is not None and threshold != threshold:
        raise InputError("--threshold must be a number, got nan")
    catalog = build_catalog(
        list(models or []), input_shape=shape, bounds=pairs, output=output, threshold=threshold
    )
    if host not in LOCAL_HOSTS:
        err_console.print(
            f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach this machine "
            "can use the app (it has no login) and make it compute; the default 127.0.0.1 "
            "keeps it on this machine",
            highlight=False,
        )
    check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    names = ", ".join(f"{e.name} ({e.kind})" for e in catalog.values())
    out_console.print(f"fiberscope app on {url} serving {names}; Ctrl-C stops it", highlight=False)
    setup_logging()
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    serve(catalog, host=host, port=port)
