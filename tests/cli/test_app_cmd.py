"""``fiberscope app``: options, the --host warning, refusals before serving, lazy imports."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the app extra is not installed: pip install -e '.[test]'")

import fiberscope.app as app_pkg  # noqa: E402
from fiberscope.cli.main import main  # noqa: E402


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the server (and the port check) by a recorder: the command returns at once."""
    calls: list[dict[str, Any]] = []

    def serve(catalog: Any, **kw: Any) -> None:
        calls.append({**kw, "catalog": catalog})

    monkeypatch.setattr(app_pkg, "serve", serve)
    monkeypatch.setattr(app_pkg, "check_port", lambda host, port: None)
    return calls


def test_serves_the_named_models_on_localhost_by_default(no_server, capsys) -> None:
    assert main(["app", "surface_2", "binary"]) == 0
    (call,) = no_server
    assert call["host"] == "127.0.0.1" and call["port"] == 8765
    assert list(call["catalog"]) == ["surface_2", "binary"]
    out, err = capsys.readouterr()
    assert "fiberscope app on http://127.0.0.1:8765/ serving surface_2 (2d), binary (2d)" in out
    assert err == ""


def test_another_host_prints_a_warning(no_server, capsys) -> None:
    assert main(["app", "surface_1", "--host", "0.0.0.0", "--port", "9001"]) == 0
    assert no_server[0]["host"] == "0.0.0.0" and no_server[0]["port"] == 9001
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: listening on 0.0.0.0: anyone")


def test_a_port_in_use_is_refused_in_one_line(capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["app", "surface_1", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port} (")
    assert err.endswith("pick another port with --port") and "\n" not in err


def test_without_the_extra_the_command_says_what_to_install(monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    assert main(["app", "surface_1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: the app needs uvicorn: pip install 'fiberscope[app]'"
    )


def test_help_does_not_import_the_web_stack() -> None:
    code = (
        "import sys\n"
        "from fiberscope.cli.main import main\n"
        "main(['--help']); main(['app', '--help'])\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'uvicorn', 'plotly', 'starlette') or m.startswith('fiberscope.app'))\n"
        "print('WEB', web)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "WEB []" in out.stdout
    assert "Start the local web app" in out.stdout
