"""The web server of ``fiberscope app``: FastAPI routes over the catalog and the runner.

The page (``static/``) draws with Plotly.js, served from the installed ``plotly`` package (no
CDN). Every answer the page gets is JSON with either data or ``{"error": "one line"}``; no
traceback ever reaches the browser or the server log.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..errors import FiberscopeError, InputError
from . import images, views
from .catalog import ModelEntry
from .tasks import AppError, Runner

log = logging.getLogger("fiberscope.app")

STATIC = Path(str(resources.files("fiberscope.app") / "static"))

#: Uploaded images kept (oldest forgotten first).
KEEP_UPLOADS = 32
#: Largest walk kept in memory for the page, in numbers (chains x samples x inputs).
MAX_KEPT = 16_000_000
#: An upload over the limit is still read (and dropped) up to this size, to answer cleanly.
DRAIN_LIMIT = 64 * 1024 * 1024


# --------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointRequest(_Body):
    """Trace the class of a clicked point (2-D models)."""

    model: str
    point: list[float]
    step: float = 0.01
    paper: bool = False
    threshold: float | None = None


class PreimageRequest(_Body):
    """Preimage band of an output interval (2-D models)."""

    model: str
    a: float | None = None
    b: float | None = None
    p1: list[float] | None = None
    p2: list[float] | None = None
    levels: int = 9
    step: float = 0.01


class InputRef(_Body):
    """An input of the walk view: a bundled digit, an upload, or coordinates."""

    digit: int | None = None
    upload: str | None = None
    values: list[float] | None = None


class WalkRequest(_Body):
    """A walk on the class of an input (``fs.walk``), or a traversal toward a target
    (``fs.traverse``)."""

    model: str
    start: InputRef
    target: InputRef | None = None
    samples: int = Field(40, ge=1, le=5000)
    chains: int = Field(2, ge=1, le=8)
    step: float = Field(1.0, gt=0)
    seed: int = Field(0, ge=0, lt=2**63)
    method: Literal["corrected", "uniform"] = "corrected"
    max_steps: int = Field(300, ge=1, le=100_000)


# ---------------------------------------------------------------------------- the app
class AppState:
    """Everything the routes share: the models, the runner, the uploads."""

    def __init__(self, catalog: dict[str, ModelEntry], runner: Runner) -> None:
        self.catalog = catalog
        self.runner = runner
        self.uploads: OrderedDict[str, tuple[str, torch.Tensor]] = OrderedDict()

    def entry(self, name: str) -> ModelEntry:
        entry = self.catalog.get(name)
        if entry is None:
            known = ", ".join(self.catalog)
            raise AppError(f"no model named {name!r} in this app (it serves: {known})", 404)
        return entry

    def input_tensor(self, entry: ModelEntry, ref: InputRef, what: str) -> tuple[Any, str]:
        """The input ``ref`` points to, in ``entry``'s input shape, and a label for it."""
        given = [k for k in ("digit", "upload", "values") if getattr(ref, k) is not None]
        if len(given) != 1:
            raise InputError(f"choose the {what}: a test digit, an uploaded image or coordinates")
        if ref.digit is not None:
            if not entry.takes_digits:
                raise InputError(
                    f"the test digits are 28x28 greyscale images; {entry.name} takes inputs of "
                    f"shape {tuple(entry.input_shape)}"
                )
            x = images.digit(ref.digit)
            label = images.digit_labels()[ref.digit]
            return x.reshape(entry.input_shape), f"test digit {ref.digit} (a {label})"
        if ref.upload is not None:
            kept = self.uploads.get(ref.upload)
            if kept is None:
                raise AppError(
                    f"the uploaded image for the {what} is no longer on the server (it was "
                    "restarted); upload it again",
                    404,
                )
            model, x = kept
            if model != entry.name:
                raise InputError(f"that image was uploaded for {model}; upload it again")
            return x.reshape(entry.input_shape), f"upload {ref.upload}"
        values = ref.values or []
        if len(values) != entry.n_inputs:
            raise InputError(
                f"the {what} has {len(values)} coordinates but {entry.name} takes {entry.n_inputs}"
            )
        return torch.tensor(values, dtype=torch.float64).reshape(entry.input_shape), "point"

    def keep_upload(self, model: str, x: torch.Tensor) -> str:
        upload_id = secrets.token_hex(6)
        self.uploads[upload_id] = (model, x)
        while len(self.uploads) > KEEP_UPLOADS:
            self.uploads.popitem(last=False)
        return upload_id


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "bad request: " + "; ".join(parts)


def _plotly_js() -> Path:
    try:
        import plotly
    except ImportError:  # pragma: no cover - the app extra installs it
        raise AppError("plotly is not installed: pip install 'fiberscope[app]'", 500) from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():  # pragma: no cover - every plotly wheel ships it
        raise AppError("this plotly package has no plotly.min.js; reinstall plotly", 500)
    return path


#: Host names a server listening on a loopback interface answers to.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def request_host(header: str) -> str:
    """The host name of a ``Host:`` header, without the port (``[::1]:8765`` -> ``::1``)."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def create_app(
    catalog: dict[str, ModelEntry],
    runner: Runner | None = None,
    *,
    allowed_hosts: frozenset[str] | set[str] | None = None,
) -> FastAPI:
    """The FastAPI application serving ``catalog``.

    Parameters
    ----------
    catalog : dict
        Models by name (see :func:`fiberscope.app.catalog.build_catalog`).
    runner : Runner, optional
        Where runs go (a fresh one by default; closed when the server stops).
    allowed_hosts : set of str, optional
        Host names (without port) a request's ``Host:`` header may name; others get a 400
        before any route runs. A server on 127.0.0.1 answers only to its loopback names, so
        a web page that rebinds its own domain name to 127.0.0.1 (DNS rebinding) cannot
        drive it. None answers to any name (a server given ``--host``).

    Returns
    -------
    fastapi.FastAPI
        The application (serve it with uvicorn).
    """
    state = AppState(catalog, runner or Runner())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.runner.close()

    app = FastAPI(title="fiberscope", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)  # fmt: skip
    app.state.fiberscope = state

    @app.middleware("http")
    async def one_line_errors(request: Request, call_next: Any) -> Response:
        try:
            return await call_next(request)
        except FiberscopeError as exc:  # pragma: no cover - handled below; kept as a net
            return _error(getattr(exc, "status", 400), str(exc))
        except Exception as exc:  # noqa: BLE001 - no traceback to the page or the log
            text = " ".join(str(exc).split())[:300]
            log.error("internal error on %s: %s: %s", request.url.path, type(exc).__name__, text)
            return _error(500, f"internal error: {type(exc).__name__}: {text}")

    if allowed_hosts is not None:
        allowed = frozenset(h.lower() for h in allowed_hosts)

        @app.middleware("http")
        async def only_named_hosts(request: Request, call_next: Any) -> Response:
            host = request_host(request.headers.get("host", ""))
            if host not in allowed:
                log.warning("refused a request for host %r", host[:80])
                names = ", ".join(sorted(allowed))
                return _error(
                    400,
                    f"this fiberscope app answers only to {names}; open it at "
                    "http://127.0.0.1:PORT/",
                )
            return await call_next(request)

    @app.exception_handler(FiberscopeError)
    async def _fiberscope_error(_request: Request, exc: FiberscopeError) -> JSONResponse:
        return _error(getattr(exc, "status", 400), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    # ------------------------------------------------------------------- page and files
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(_plotly_js(), media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------------- models
    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        current = state.runner.current()
        return {
            "models": [e.describe() for e in state.catalog.values()],
            "running": current.status() if current is not None else None,
        }

    @app.get("/api/models/{name}/grid")
    def grid(name: str, resolution: int = 160) -> dict[str, Any]:
        return views.heatmap(state.entry(name), resolution)

    @app.get("/api/digits/{k}.png", include_in_schema=False)
    def digit(k: int) -> Response:
        return Response(images.digit_png(k), media_type="image/png")

    @app.post("/api/models/{name}/upload")
    async def upload(name: str, request: Request) -> dict[str, Any]:
        entry = state.entry(name)
        if entry.image is None:
            raise InputError(
                f"{entry.name} does not take images (its input has shape "
                f"{tuple(entry.input_shape)}); type coordinates instead"
            )
        data = await _read_capped(request, images.MAX_UPLOAD)
        x = images.decode_image(data, entry.image, what="uploaded file")
        upload_id = state.keep_upload(entry.name, x)
        log.info("image uploaded for %s: %s", entry.name, upload_id)
        return {"id": upload_id, "model": entry.name, "url": f"/api/uploads/{upload_id}.png"}

    @app.get("/api/uploads/{upload_id}.png", include_in_schema=False)
    def upload_png(upload_id: str) -> Response:
        kept = state.uploads.get(upload_id)
        if kept is None:
            raise AppError("that uploaded image is no longer on the server; upload it again", 404)
        entry = state.entry(kept[0])
        assert entry.image is not None
        arr = images.to_uint8(kept[1], entry.image, *(entry.bounds or (0.0, 1.0)))
        return Response(images.png_bytes(arr), media_type="image/png")

    # --------------------------------------------------------------------------- runs
    def _start(kind: str, entry: ModelEntry, label: str, work: views.Work) -> dict[str, Any]:
        run = state.runner.start(kind, entry.name, label, work)
        return run.status()

    @app.post("/api/runs/point", status_code=202)
    def run_point(body: PointRequest) -> dict[str, Any]:
        entry = state.entry(body.model)
        _need(entry, "2d", "a click on the map")
        work = views.point_work(
            entry, body.point, step=body.step, paper=body.paper, threshold=body.threshold
        )
        x, y = body.point
        return _start("point", entry, f"class of ({x:.4g}, {y:.4g}) on {entry.name}", work)

    @app.post("/api/runs/preimage", status_code=202)
    def run_preimage(body: PreimageRequest) -> dict[str, Any]:
        entry = state.entry(body.model)
        _need(entry, "2d", "a preimage band")
        work = views.preimage_work(
            entry, a=body.a, b=body.b, p1=body.p1, p2=body.p2, levels=body.levels, step=body.step
        )
        return _start("preimage", entry, f"preimage band on {entry.name}", work)

    @app.post("/api/runs/walk", status_code=202)
    def run_walk(body: WalkRequest) -> dict[str, Any]:
        entry = state.entry(body.model)
        if entry.kind == "2d":
            raise InputError(
                f"{entry.name} has 2 inputs: its classes are curves; click on the map instead"
            )
        kept = body.chains * body.samples * entry.n_inputs
        if body.target is None and kept > MAX_KEPT:
            raise InputError(
                f"{body.chains} chain(s) x {body.samples} samples x {entry.n_inputs} inputs is "
                f"{kept:,} numbers; the app keeps at most {MAX_KEPT:,}: ask for fewer samples"
            )
        x0, start_label = state.input_tensor(entry, body.start, "start")
        target, target_label = None, ""
        if body.target is not None:
            target, target_label = state.input_tensor(entry, body.target, "target")
        work = views.walk_work(
            entry,
            x0,
            target=target,
            samples=body.samples,
            chains=body.chains,
            step=body.step,
            seed=body.seed,
            max_steps=body.max_steps,
            method=body.method,
            start_label=start_label,
            target_label=target_label,
        )
        if target is None:
            label = f"walk ({body.method}) from {start_label} on {entry.name}"
            return _start("walk", entry, label, work)
        label = f"traversal from {start_label} toward {target_label} on {entry.name}"
        return _start("traverse", entry, label, work)

    @app.get("/api/runs/{run_id}")
    def run_status(run_id: str) -> dict[str, Any]:
        return state.runner.get(run_id).status()

    @app.post("/api/runs/{run_id}/cancel")
    def run_cancel(run_id: str) -> dict[str, Any]:
        return state.runner.cancel(run_id).status()

    @app.get("/api/runs/{run_id}/files/{filename}", include_in_schema=False)
    def run_file(run_id: str, filename: str) -> FileResponse:
        run = state.runner.get(run_id)
        path = run.files.get(filename)
        if path is None or not path.is_file():
            raise AppError(f"run {run_id} has no file {filename!r}", 404)
        return FileResponse(path, filename=filename)

    def _walk_of(run_id: str) -> tuple[ModelEntry, Any]:
        run = state.runner.get(run_id)
        result = run.data.get("result")
        if result is None:
            raise AppError(f"run {run_id} has no samples (or they were forgotten)", 404)
        return state.entry(run.model), result

    @app.get("/api/runs/{run_id}/frame/{chain}/{k}.png", include_in_schema=False)
    def run_frame(run_id: str, chain: int, k: int, diff: int = 0) -> Response:
        entry, result = _walk_of(run_id)
        try:
            png = views.frame(entry, result, chain, k, bool(diff))
        except InputError as exc:
            raise AppError(str(exc), 404) from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=600"})

    @app.get("/api/runs/{run_id}/start.png", include_in_schema=False)
    def run_start(run_id: str) -> Response:
        entry, result = _walk_of(run_id)
        try:
            png = views.frame(entry, result, 0, None, False)
        except InputError as exc:
            raise AppError(str(exc), 404) from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=600"})

    return app


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request's body, refused (one line) when it is over ``limit`` bytes.

    A body a little over the limit is read to its end (and dropped) so that the browser gets
    the message rather than a reset connection; past :data:`DRAIN_LIMIT` the server stops
    reading.
    """
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT:
            break
    if size > limit:
        raise InputError(
            f"the uploaded file is over {limit // (1024 * 1024)} MB; upload an image under "
            f"{limit // (1024 * 1024)} MB"
        )
    return b"".join(chunks)


def _need(entry: ModelEntry, kind: str, what: str) -> None:
    if entry.kind != kind:
        raise InputError(
            f"{entry.name} has {entry.n_inputs} inputs: {what} needs a model with 2 inputs; "
            "use Walk for this model"
        )
