"""Helpers of the app's tests: a tiny CNN, the real ``fiberscope app`` in a subprocess.

The server is the real command (``python -m fiberscope app ...``) with its stdout and stderr
in a log file that the tests read (no traceback may ever appear there).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Debian's chromium (FIBERSCOPE_CHROMIUM names another executable, e.g. to check the skip)
CHROMIUM = os.environ.get("FIBERSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def tiny_cnn() -> nn.Module:
    """A small untrained CNN on 1x28x28 images with 10 outputs (stands in for the MNIST CNN)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * 13 * 13, 10),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    base: str, method: str, path: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """One request to the app; returns (status, decoded JSON or bytes)."""
    data, headers = None, {}
    if raw is not None:
        data, headers = raw, {"Content-Type": "application/octet-stream"}
    elif body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, payload, kind = resp.status, resp.read(), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as exc:
        status, payload, kind = exc.code, exc.read(), exc.headers.get("Content-Type")
    if kind and "json" in kind:
        return status, json.loads(payload)
    return status, payload


class AppServer:
    """``fiberscope app`` in a subprocess on a free port of 127.0.0.1."""

    def __init__(self, args: list[str], folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.folder / f"server-{len(self.logs) + 1}.log"
        self.logs.append(log)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fiberscope", "app", *self.args, "--port", str(self.port)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=env,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited: {log.read_text()[-2000:]}")
            try:
                status, _ = call(self.url, "GET", "/api/health")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the app did not answer within 120 s")

    def stop(self) -> int:
        """SIGTERM (what a service manager or Ctrl-C does) and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        return call(self.url, method, path, body, raw)

    def wait_run(self, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, st = self.call("GET", f"/api/runs/{run_id}")
            assert status == 200, st
            if st["state"] != "running":
                return st
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} still running after {timeout} s")

    def wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, data = self.call("GET", "/api/models")
            if data["running"] is None:
                return
            time.sleep(0.05)
        raise AssertionError("a run is still going")
