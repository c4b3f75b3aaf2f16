"""Take the screenshots of docs/app.md: ``python docs/app/screenshots.py``.

Starts ``fiberscope app surface_1 binary CNN`` on a free port of 127.0.0.1 and drives headless
Chromium (Debian's ``chromium``) with Playwright through each view. CNN is the bundled MNIST
CNN when ``fiberscope.models.zoo.mnist_cnn`` exists, otherwise a small *untrained* CNN saved
to a temporary file (the screenshot says so).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import torch
from playwright.sync_api import Page, sync_playwright
from torch import nn

import fiberscope as fs

HERE = Path(__file__).resolve().parent
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def cnn_spec(folder: Path) -> str:
    try:
        from fiberscope.models import zoo  # type: ignore[attr-defined]

        if callable(getattr(zoo, "mnist_cnn", None)):
            return "mnist_cnn"
    except ImportError:
        pass
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Tanh(), nn.Flatten(),
                        nn.Linear(4 * 13 * 13, 10))  # fmt: skip
    path = folder / "untrained_cnn.pt2"
    fs.save_model(net, path, example=torch.rand(1, 1, 28, 28))
    return str(path)


def wait_up(url: str) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2) as resp:
                if json.load(resp)["ok"]:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the app did not start")


def pixel(page: Page, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#map .nsewdrag").bounding_box()
    axes = page.evaluate("window.fiberscope.axes")
    (x0, x1), (y0, y1) = axes["x"], axes["y"]
    return (box["x"] + (x - x0) / (x1 - x0) * box["width"],
            box["y"] + (y1 - y) / (y1 - y0) * box["height"])  # fmt: skip


def done(page: Page, kind: str) -> None:
    page.wait_for_function(
        "k => window.fiberscope.lastRun && window.fiberscope.lastRun.kind === k "
        "&& document.body.dataset.state === 'idle'",
        arg=kind,
        timeout=120_000,
    )
    page.mouse.move(1230, 850)  # no hover label in the picture
    page.wait_for_timeout(500)


def open_map(page: Page, url: str, model: str) -> None:
    page.goto(f"{url}/?model={model}")
    page.wait_for_function("m => window.fiberscope.grid && window.fiberscope.grid.model === m",
                           arg=model)  # fmt: skip
    page.wait_for_selector("#map .nsewdrag")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = cnn_spec(Path(tmp))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "fiberscope", "app", "surface_1", "binary", spec,
               "--port", str(port)]  # fmt: skip
        server = subprocess.Popen(cmd, cwd=tmp)
        try:
            wait_up(url)
            shoot(url, Path(spec).stem if spec.endswith(".pt2") else spec)
        finally:
            server.terminate()
            server.wait(30)


def shoot(url: str, cnn: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1240, "height": 860})
        clip = {"x": 0, "y": 0, "width": 1240, "height": 860}

        open_map(page, url, "surface_1")
        page.check("#paper")
        page.fill("#step-2d", "0.0125")
        page.mouse.click(*pixel(page, 0.25, 0.25))
        done(page, "point")
        page.screenshot(path=HERE / "map-class.png", clip=clip)

        open_map(page, url, "surface_1")
        page.fill("#levels", "9")
        page.mouse.move(*pixel(page, 0.2, 0.2))
        page.mouse.down()
        page.mouse.move(*pixel(page, 0.3, 0.28), steps=8)
        page.mouse.move(*pixel(page, 0.4, 0.3), steps=8)
        page.mouse.up()
        done(page, "preimage")
        page.screenshot(path=HERE / "map-band.png", clip=clip)

        open_map(page, url, "binary")
        page.mouse.click(*pixel(page, 0.5, 0.6))
        done(page, "point")
        page.screenshot(path=HERE / "map-classifier.png", clip=clip)

        page.goto(f"{url}/?model={cnn}")
        page.wait_for_function("document.querySelectorAll('#digits button').length === 10")
        page.click("#digits button[data-digit='3']")
        page.fill("#samples", "40")
        page.click("#run-walk")
        page.wait_for_function("/ [1-9][0-9]*\\/[0-9]+$/.test("
                               "document.getElementById('status').textContent)")  # fmt: skip
        page.screenshot(path=HERE / "walk-running.png", clip={**clip, "height": 560})
        done(page, "walk")
        page.fill("#scrub", "24")
        page.dispatch_event("#scrub", "input")
        page.wait_for_timeout(600)
        page.screenshot(path=HERE / "walk.png", clip={**clip, "height": 700})

        page.select_option("#target", "digit:8")
        page.fill("#max-steps", "200")
        page.click("#run-traverse")
        done(page, "traverse")
        page.fill("#scrub", str(page.evaluate("window.fiberscope.walk.samples") - 1))
        page.dispatch_event("#scrub", "input")
        page.wait_for_timeout(600)
        page.screenshot(path=HERE / "traverse.png", clip={**clip, "height": 700})

        page.click("#run-walk")
        page.wait_for_function("document.getElementById('status').dataset.state === 'running'")
        page.click("#run-walk")
        page.wait_for_function("document.getElementById('message').dataset.kind === 'error'")
        page.screenshot(path=HERE / "second-run-refused.png", clip={**clip, "height": 330})
        page.click("#cancel")
        page.wait_for_function("document.getElementById('status').dataset.state === 'cancelled'")
        browser.close()
    print("wrote", ", ".join(sorted(p.name for p in HERE.glob("*.png"))))


if __name__ == "__main__":
    main()
