"""``fiberscope app``: a local web app on the library.

Click a point of a 2-D network's map to trace its class, drag to see the preimage band of an
output interval, walk the class of an image and scrub through the samples. The app is a front
end: it calls the library (``fs.trace``, ``fs.preimage``, ``fs.boundary_walk``, ``fs.walk``,
``fs.traverse``) and the library never imports it.

It needs the ``app`` extra (FastAPI, uvicorn, Plotly): ``pip install 'fiberscope[app]'``.

>>> from fiberscope.app import build_catalog, create_app   # doctest: +SKIP
>>> app = create_app(build_catalog(["surface_1"]))          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

from ..errors import FiberscopeError, InputError

#: Packages of the ``app`` extra, by import name.
REQUIRED = ("fastapi", "uvicorn", "plotly", "PIL")


class MissingExtraError(FiberscopeError):
    """The app's optional dependencies are not installed."""


def check_installed() -> None:
    """Refuse to start without the ``app`` extra, naming the install command.

    Raises
    ------
    MissingExtraError
        When FastAPI, uvicorn, Plotly or Pillow cannot be imported.
    """
    import importlib.util

    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"the app needs {', '.join(missing)}: pip install 'fiberscope[app]'"
        )


def build_catalog(specs: list[str], **options: Any) -> Any:
    """Load the models the app serves (see :func:`fiberscope.app.catalog.build_catalog`)."""
    from .catalog import build_catalog as _build

    return _build(specs, **options)


def create_app(catalog: Any, runner: Any = None, *, allowed_hosts: Any = None) -> Any:
    """The FastAPI application (see :func:`fiberscope.app.server.create_app`)."""
    from .server import create_app as _create

    return _create(catalog, runner, allowed_hosts=allowed_hosts)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an interface to listen on) is this machine only."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def setup_logging() -> logging.Logger:
    """One-line log records of the app on stderr (runs started, finished, refused)."""
    log = logging.getLogger("fiberscope.app")
    if not any(getattr(h, "_fiberscope", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("fiberscope app: %(message)s"))
        handler._fiberscope = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken before the server starts (one line, not a traceback).

    Raises
    ------
    InputError
        When nothing can listen on ``host:port``.
    """
    if not 0 < port < 65536:
        raise InputError(f"--port must be from 1 to 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise InputError(
                f"cannot listen on {host}:{port} ({reason}); pick another port with --port"
            ) from None


def serve(catalog: Any, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the app until Ctrl-C (or SIGTERM); a run going then is cancelled.

    Parameters
    ----------
    catalog : dict
        Models by name.
    host : str
        Interface to listen on (127.0.0.1: this machine only; the server then answers only
        to requests for 127.0.0.1, localhost or ::1).
    port : int
        TCP port.
    """
    import uvicorn

    from .server import LOOPBACK_NAMES

    # on a loopback interface, answer only to loopback names (no DNS rebinding)
    allowed = (LOOPBACK_NAMES | {host.strip("[]").lower()}) if is_loopback(host) else None
    app = create_app(catalog, allowed_hosts=allowed)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()


__all__ = [
    "MissingExtraError",
    "build_catalog",
    "check_installed",
    "check_port",
    "create_app",
    "is_loopback",
    "serve",
    "setup_logging",
]
