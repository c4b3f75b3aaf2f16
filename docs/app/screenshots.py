"""Take the screenshots of docs/app.md: ``python docs/app/screenshots.py``.

Starts ``fiberscope app surface_1 binary mnist_cnn`` on a free port of 127.0.0.1 and drives
headless Chromium (Debian's ``chromium``) with Playwright through each view. The walk pictures
start from the library's test digits (``fiberscope.models.zoo.mnist_digits``) uploaded with
their contrast lowered to ``[0.1, 0.9]`` (see docs/app.md: walks from starts with pixels on
the faces of the box do not move yet), and print the numbers the captions quote.
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

import numpy as np
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from fiberscope.app import images

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


def low_contrast_digit(folder: Path, k: int, name: str) -> Path:
    """Test digit ``k`` with its pixels mapped to [0.1, 0.9] (none on a face of the box)."""
    x = 0.1 + 0.8 * images.digit(k).reshape(28, 28).numpy()
    path = folder / name
    Image.fromarray(np.rint(x * 255).astype(np.uint8)).save(path)
    return path


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
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "fiberscope", "app", "surface_1", "binary", "mnist_cnn",
               "--port", str(port)]  # fmt: skip
        server = subprocess.Popen(cmd, cwd=tmp)
        try:
            wait_up(url)
            shoot(url, Path(tmp))
        finally:
            server.terminate()
            server.wait(30)


def numbers(page: Page) -> dict[str, str]:
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#walk-numbers tr')]"
        ".map(tr => [tr.dataset.key, tr.querySelector('td').textContent]))"
    )


def shoot(url: str, folder: Path) -> None:
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

        labels = images.digit_labels()
        three = low_contrast_digit(folder, labels.index(3), "three.png")
        eight = low_contrast_digit(folder, labels.index(8), "eight.png")
        page.goto(f"{url}/?model=mnist_cnn")
        page.wait_for_function("document.querySelectorAll('#digits button').length === 20")
        page.set_input_files("#upload", str(eight))
        page.wait_for_selector("#uploads button.selected")
        page.set_input_files("#upload", str(three))  # the start: the last upload
        page.wait_for_function("document.querySelectorAll('#uploads button').length === 2")
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
        print("walk:", numbers(page), page.inner_text("#scrub-label"))

        page.select_option("#target", label="upload: eight.png")
        page.fill("#max-steps", "200")
        page.click("#run-traverse")
        done(page, "traverse")
        last = page.evaluate("window.fiberscope.walk.counts[0]") - 1
        page.fill("#scrub", str(last))
        page.dispatch_event("#scrub", "input")
        page.wait_for_timeout(600)
        page.screenshot(path=HERE / "traverse.png", clip={**clip, "height": 700})
        print("traverse:", numbers(page), page.inner_text("#scrub-label"))

        # the bundled digit itself (pixels on the faces 0 and 1 of the box)
        page.click(f"#digits button[data-digit='{labels.index(3)}']")
        page.fill("#samples", "5")
        page.click("#run-walk")
        done(page, "walk")
        print("walk from the bundled digit:", numbers(page), page.inner_text("#message"))

        page.fill("#samples", "40")
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
