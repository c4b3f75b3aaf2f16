"""End-to-end: headless Chromium (Debian's package, driven by Playwright) on a real server.

Every check reads back what the page holds (``window.fiberscope``, the tables, the plots) and
checks it with the library. The server restart test comes last: it restarts the session's
server.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from app_server import AppServer
from fiberscope.app import views
from fiberscope.app.catalog import make_entry
from fiberscope.app.tasks import Run, RunCancelled, RunContext

MAP_READY = "m => window.fiberscope && window.fiberscope.grid && window.fiberscope.grid.model === m"
DIGITS_READY = (
    "window.fiberscope.model && window.fiberscope.model.digits.length > 0 && "
    "document.querySelectorAll('#digits button').length === window.fiberscope.model.digits.length"
)
WALKING = r"/ [1-9][0-9]*\/[0-9]+$/.test(document.getElementById('status').textContent)"


def open_model(page: Any, server: AppServer, name: str) -> None:
    page.goto(f"{server.url}/?model={name}")
    if name in ("surface_1", "binary"):
        page.wait_for_function(MAP_READY, arg=name)
        page.wait_for_selector("#map .nsewdrag")
    else:
        page.wait_for_function(DIGITS_READY)


def pixel(page: Any, x: float, y: float) -> tuple[float, float]:
    """Where the data point (x, y) of the map is on the screen."""
    box = page.locator("#map .nsewdrag").bounding_box()
    axes = page.evaluate("window.fiberscope.axes")
    (x0, x1), (y0, y1) = axes["x"], axes["y"]
    return (
        box["x"] + (x - x0) / (x1 - x0) * box["width"],
        box["y"] + (y1 - y) / (y1 - y0) * box["height"],
    )


def last_result(page: Any, kind: str, after: str | None = None) -> dict[str, Any]:
    """The result of the last run of ``kind`` once the page is idle (a run other than
    ``after``, the id of an earlier run)."""
    page.wait_for_function(
        "([k, a]) => window.fiberscope.lastRun && window.fiberscope.lastRun.kind === k "
        "&& window.fiberscope.lastRun.id !== a && document.body.dataset.state === 'idle'",
        arg=[kind, after],
    )
    return page.evaluate("window.fiberscope.lastResult")


def table(page: Any, table_id: str) -> dict[str, str]:
    return page.evaluate(
        "id => Object.fromEntries([...document.querySelectorAll(`#${id} tr`)]"
        ".map(tr => [tr.dataset.key, tr.querySelector('td').textContent]))",
        table_id,
    )


def message(page: Any, expected: str, kind: str = "error") -> str:
    """Wait until the page's message line (of ``kind``) says ``expected``; return it."""
    page.wait_for_function(
        "([k, t]) => { const m = document.getElementById('message');"
        " return m.dataset.kind === k && m.textContent.includes(t); }",
        arg=[kind, expected],
    )
    return page.inner_text("#message")


def net_values(net: Any, points: Any) -> torch.Tensor:
    with torch.no_grad():
        return net(torch.as_tensor(points, dtype=torch.float64))[:, 0]


def test_click_on_network_1_shows_its_closed_class_on_the_level(
    page: Any, server: AppServer, net1: Any
) -> None:
    open_model(page, server, "surface_1")
    page.mouse.click(*pixel(page, 0.25, 0.25))
    res = last_result(page, "point")
    x0 = res["x0"]
    assert abs(x0[0] - 0.25) < 0.01 and abs(x0[1] - 0.25) < 0.01  # where we clicked
    trace = res["trace"]
    assert trace["closed"] is True and trace["stop_reasons"] == {"forward": "closed"}
    y0 = float(net_values(net1, [x0]))
    assert abs(res["y0"] - y0) <= 1e-12
    points = torch.tensor(trace["points"], dtype=torch.float64)
    assert len(points) > 50
    assert float((net_values(net1, points) - y0).abs().max()) <= 1e-9
    # drawn on the map, and the numbers beside it
    drawn = page.evaluate(
        "document.getElementById('map').data.find(t => t.name === 'class (corrected)').x.length"
    )
    assert drawn == len(points) + 1  # a closed loop is drawn back to its first point
    numbers = table(page, "numbers")
    assert numbers["closed"] == "yes" and numbers["stop_reasons"] == "forward: closed"
    assert float(numbers["drift"]) <= 1e-9
    links = page.eval_on_selector_all("#downloads-2d a", "as => as.map(a => a.textContent)")
    assert links == ["trace.csv", "trace.json"]


def test_drag_chooses_an_interval_and_shows_its_band(
    page: Any, server: AppServer, net1: Any
) -> None:
    open_model(page, server, "surface_1")
    page.fill("#levels", "5")
    page.mouse.move(*pixel(page, 0.2, 0.2))
    page.mouse.down()
    page.mouse.move(*pixel(page, 0.3, 0.28), steps=6)
    page.mouse.move(*pixel(page, 0.36, 0.3), steps=6)
    page.mouse.up()
    res = last_result(page, "preimage")
    a, b = res["interval"]
    ends = net_values(net1, [[0.2, 0.2], [0.36, 0.3]])
    assert abs(a - float(ends.min())) < 0.01 and abs(b - float(ends.max())) < 0.01
    assert len(res["traces"]) == 5
    for level, trace in zip(res["levels"], res["traces"], strict=True):
        pts = torch.tensor(trace["points"], dtype=torch.float64)
        assert float((net_values(net1, pts) - level).abs().max()) <= 1e-9
    area = res["region"]["area"]
    assert area > 0.01
    numbers = table(page, "numbers")
    assert abs(float(numbers["area"]) - area) <= 1e-5 * area
    assert float(page.input_value("#int-a")) == float(f"{a:.8g}")


def test_classifier_click_shows_the_shortest_flip(
    page: Any, server: AppServer, binary_net: Any
) -> None:
    open_model(page, server, "binary")
    assert page.input_value("#threshold") == "0.5"
    page.mouse.click(*pixel(page, 0.5, 0.6))
    res = last_result(page, "point")
    b = res["boundary"]
    assert {b["decision_start"], b["decision_flip"]} == {0, 1}
    assert abs(float(net_values(binary_net, [b["closest_point"]])) - 0.5) <= 1e-9
    names = page.evaluate("document.getElementById('map').data.map(t => t.name)")
    assert {"decision boundary (traced)", "shortest change", "closest boundary point"} <= set(names)
    assert table(page, "numbers")["decisions"] in ("1 → 0", "0 → 1")


def test_a_cancelled_boundary_walk_is_drawn_as_far_as_it_got(
    page: Any, server: AppServer, tmp_path: Path
) -> None:
    # the app's own partial result of a click cancelled before the path met the boundary
    entry = make_entry("binary", name="binary")
    (tmp_path / "probe").mkdir()
    probe = RunContext(
        Run(id="t-0", kind="point", model="binary", label="t", folder=tmp_path / "probe")
    )
    counted = iter(range(10**9))
    probe.stop = lambda: next(counted) < 0  # type: ignore[method-assign]
    views.point_work(entry, [0.5, 0.9], step=0.02)(probe)  # its class alone: count its polls
    before = next(counted)  # polls before the boundary walk starts
    ctx = RunContext(Run(id="t-1", kind="point", model="binary", label="t", folder=tmp_path))
    polls = iter(range(10**9))
    ctx.stop = lambda: next(polls) >= before + 4  # type: ignore[method-assign]
    with pytest.raises(RunCancelled) as err:
        views.point_work(entry, [0.5, 0.9], step=0.02, threshold=0.5)(ctx)
    partial = err.value.result
    assert partial is not None and partial["boundary"]["boundary_index"] is None
    open_model(page, server, "binary")
    st = {"id": "t-1", "kind": "point", "model": "binary", "state": "cancelled", "files": []}
    page.evaluate("st => render(st)", {**st, "result": partial})
    names = page.evaluate("document.getElementById('map').data.map(t => t.name)")
    assert "gradient path (cancelled)" in names and "closest boundary point" not in names
    assert table(page, "numbers")["complete"] == "no: cancelled, partial result"


def test_walk_can_be_started_cancelled_and_scrubbed(page: Any, server: AppServer) -> None:
    open_model(page, server, "tiny_cnn")
    # the start offered is the library's first test digit of a 3
    assert page.get_attribute("#digits button.selected", "data-label") == "3"
    page.fill("#samples", "3000")
    page.click("#run-walk")
    page.wait_for_function(WALKING)
    assert page.get_attribute("#status", "data-state") == "running"
    page.click("#cancel")
    page.wait_for_function("document.getElementById('status').dataset.state === 'cancelled'")
    # fs.walk stopped between steps (stop=) and its partial walk is shown, marked incomplete
    text = message(page, "samples kept; the partial walk is shown", "info")
    assert text.startswith("walk (corrected) from test digit 6 (a 3) on tiny_cnn: cancelled: ")
    partial = page.evaluate("window.fiberscope.lastResult")
    assert partial["complete"] is False and 0 < sum(partial["counts"]) < 6000
    assert table(page, "walk-numbers")["complete"].startswith("no")
    # a short walk, then scrub through its samples
    page.fill("#samples", "3")
    cancelled = page.evaluate("window.fiberscope.lastRun.id")
    page.click("#run-walk")
    res = last_result(page, "walk", after=cancelled)
    assert res["complete"] is True and res["counts"] == [3, 3] and res["residual"] <= 1e-9
    page.fill("#scrub", "1")
    page.dispatch_event("#scrub", "input")
    page.wait_for_function("document.getElementById('frame').complete && "
                           "document.getElementById('frame').naturalWidth === 28")  # fmt: skip
    label = page.inner_text("#scrub-label")
    assert label.startswith("sample 2/3 · chain 1")
    bars = page.evaluate("document.getElementById('bars').data.map(t => t.y)")
    assert bars[0] == res["y0"] and bars[1] == res["outputs"][0][1]
    assert max(abs(p - q) for p, q in zip(bars[0], bars[1], strict=True)) <= 1e-9
    numbers = table(page, "walk-numbers")  # the library's own numbers, as fs.walk gave them
    assert numbers["method"] == "corrected" and numbers["samples"] == "3, 3"
    assert numbers["rejections"].startswith("step: ") and "stop_reasons" in numbers
    links = page.eval_on_selector_all("#downloads-nd a", "as => as.map(a => a.textContent)")
    assert sorted(links) == ["walk.gif", "walk.json", "walk.npz", "walk_grid.png"]
    # the uniform sampler, offered in the page: a digit lies on the box faces, where it cannot
    # start, and the page says so in one line
    page.select_option("#method", "uniform")
    page.fill("#step-walk", "0.05")
    page.click("#run-walk")
    text = message(page, "the uniform sampler cannot start on the faces of the box")
    assert "use method='corrected'" in text and "Traceback" not in text


def test_bad_input_gives_a_clear_message_and_changes_nothing(
    page: Any, server: AppServer, tmp_path: Path
) -> None:
    open_model(page, server, "surface_1")
    page.mouse.click(*pixel(page, 1.05, 0.0))  # in the plot, outside the dashed box
    text = message(page, "is outside the box [-1, 1] x [-1, 1]")
    assert text.startswith("the clicked point (1.0")
    assert page.evaluate("window.fiberscope.lastRun") is None

    open_model(page, server, "tiny_cnn")
    text = tmp_path / "notes.png"
    text.write_text("not an image, whatever the name says")
    page.set_input_files("#upload", str(text))
    assert message(page, "notes.png: the uploaded file is not an image")
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((32, 30), dtype=np.uint8)).save(big)
    page.set_input_files("#upload", str(big))
    assert message(page, "big.png: the uploaded file is 30x32 pixels but the model takes 28x28")
    assert page.locator("#uploads button").count() == 0
    good = tmp_path / "good.png"
    buf = io.BytesIO()
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(buf, "PNG")
    good.write_bytes(buf.getvalue())
    page.set_input_files("#upload", str(good))
    page.wait_for_selector("#uploads button.selected")

    # a second run while one is going: refused, the first one goes on
    page.click("#digits button[data-digit='1']")
    page.fill("#samples", "3000")
    page.click("#run-walk")
    page.wait_for_function("document.getElementById('status').dataset.state === 'running'")
    page.click("#run-walk")
    assert message(page, "a run is already going (walk (corrected) from test digit 1 (a 0)")
    assert page.get_attribute("#status", "data-state") == "running"
    page.click("#cancel")
    page.wait_for_function("document.getElementById('status').dataset.state === 'cancelled'")


def test_server_restarted_mid_run(page: Any, server: AppServer) -> None:
    open_model(page, server, "tiny_cnn")
    page.fill("#samples", "3000")
    page.click("#run-walk")
    page.wait_for_function(WALKING)
    server.restart()
    text = message(page, "is not known to this server: the server was restarted")
    assert "start it again" in text
    # nothing else is affected: the next run works on the new server
    page.fill("#samples", "3")
    page.click("#run-walk")
    res = last_result(page, "walk")
    assert res["residual"] <= 1e-9
    log = server.log_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
    assert "shutting down: cancelling run" in log
