"""Fixtures of the app's tests: a tiny CNN file, one real server per session, a browser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("fastapi", reason="the app extra is not installed: pip install -e '.[test]'")
pytest.importorskip("uvicorn", reason="the app extra is not installed: pip install -e '.[test]'")

from app_server import CHROMIUM, CHROMIUM_ARGS, AppServer, tiny_cnn  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cnn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN saved as a ``torch.export`` file (a format the app loads safely)."""
    import fiberscope as fs

    path = tmp_path_factory.mktemp("models") / "tiny_cnn.pt2"
    fs.save_model(tiny_cnn(), path, example=torch.rand(1, 1, 28, 28))
    return path


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory, tiny_cnn_file: Path) -> AppServer:
    """One server for the whole session: surface_1, binary and the tiny CNN."""
    folder = tmp_path_factory.mktemp("app-server")
    server = AppServer(["surface_1", "binary", str(tiny_cnn_file)], folder)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


@pytest.fixture
def server(app_server: AppServer) -> AppServer:
    """The session's server, idle (a test never starts while another test's run goes)."""
    app_server.wait_idle()
    return app_server


def _chromium() -> str | None:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return None if "FIBERSCOPE_CHROMIUM" in os.environ else shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Any:
    """Headless Chromium (Debian's package) driven by Playwright, or a clear skip."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[test]'): browser tests skipped")
    executable = _chromium()
    if executable is None:
        pytest.skip(
            f"Debian's chromium is not installed ({CHROMIUM} missing; apt-get install -y "
            "chromium, which .ci/run does): browser tests skipped"
        )
    try:
        with sync_playwright() as pw:
            try:
                chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            except Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                pytest.skip(f"chromium does not start here ({first}): browser tests skipped")
            yield chromium
            chromium.close()
    except Error as exc:  # the Playwright driver itself cannot run
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        pytest.skip(f"Playwright cannot drive chromium here ({first}): browser tests skipped")


@pytest.fixture
def page(browser: Any, server: AppServer) -> Any:
    """A fresh page on the app; fails the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(60_000)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
