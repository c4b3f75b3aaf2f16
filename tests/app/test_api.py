"""The app's JSON API against a real server (no browser): results, files and refusals."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fiberscope as fs
from app_server import AppServer
from fiberscope.app import images
from fiberscope.io import load_walk


def png(width: int, height: int, mode: str = "L") -> bytes:
    """A PNG of noise (so that a truncated copy really lacks pixel data)."""
    rng = np.random.default_rng(0)
    shape = (height, width) if mode == "L" else (height, width, 3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def evaluate(net, points) -> torch.Tensor:
    """The network at ``points`` (an independent evaluation, float64, no autograd)."""
    with torch.no_grad():
        return net(torch.as_tensor(points, dtype=torch.float64))


def run(server: AppServer, kind: str, body: dict) -> dict:
    status, st = server.call("POST", f"/api/runs/{kind}", body)
    assert status == 202, st
    return server.wait_run(st["id"])


def assert_one_line_error(status: int, data: dict, expected_status: int, pattern: str) -> None:
    assert status == expected_status, data
    assert set(data) == {"error"}, data
    message = data["error"]
    assert "\n" not in message and "Traceback" not in message
    assert pattern in message, message


def test_models_are_the_ones_named_at_start(server: AppServer) -> None:
    status, data = server.call("GET", "/api/models")
    assert status == 200
    models = {m["name"]: m for m in data["models"]}
    assert list(models) == ["surface_1", "binary", "tiny_cnn"]
    assert models["surface_1"]["kind"] == "2d" and models["surface_1"]["threshold"] is None
    assert models["binary"]["threshold"] == 0.5
    assert models["tiny_cnn"]["kind"] == "image"
    assert models["tiny_cnn"]["input_shape"] == [1, 28, 28]
    assert models["tiny_cnn"]["n_outputs"] == 10
    assert models["tiny_cnn"]["digits"] == images.digit_labels()  # the library's test digits
    assert models["surface_1"]["digits"] == []


def test_heat_map_is_the_network(server: AppServer, net1) -> None:
    status, grid = server.call("GET", "/api/models/surface_1/grid?resolution=40")
    assert status == 200
    xs, ys, z = grid["xs"], grid["ys"], np.array(grid["z"])
    assert z.shape == (40, 40)
    for i, j in [(0, 0), (7, 31), (39, 12)]:
        x = torch.tensor([[xs[j], ys[i]]], dtype=torch.float64)
        assert z[i, j] == pytest.approx(float(evaluate(net1, x)), abs=1e-12)


def test_click_traces_a_closed_class_on_the_level(server: AppServer, net1) -> None:
    st = run(server, "point", {"model": "surface_1", "point": [0.25, 0.25], "step": 0.0125})
    assert st["state"] == "done", st
    res = st["result"]["trace"]
    assert res["closed"] is True and res["stop_reasons"] == {"forward": "closed"}
    pts = torch.tensor(res["points"], dtype=torch.float64)
    y0 = float(evaluate(net1, [[0.25, 0.25]]))
    assert abs(st["result"]["y0"] - y0) <= 1e-12
    assert float((evaluate(net1, pts)[:, 0] - y0).abs().max()) <= 1e-9
    # the circle class: radius about 0.35, traced once around
    r = pts.norm(dim=1)
    assert float(r.min()) > 0.3 and float(r.max()) < 0.4
    assert st["files"] == ["trace.csv", "trace.json"]
    status, body = server.call("GET", f"/api/runs/{st['id']}/files/trace.csv")
    assert status == 200
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0][:3] == ["x0", "x1", "y0"] and len(rows) - 1 == res["n_points"]
    status, meta = server.call("GET", f"/api/runs/{st['id']}/files/trace.json")
    assert status == 200 and meta["closed"] is True and meta["model"] == "surface_1"


def test_paper_overlay_drifts_and_is_saved(server: AppServer) -> None:
    body = {"model": "surface_1", "point": [0.25, 0.25], "step": 0.0125, "paper": True}
    st = run(server, "point", body)
    assert st["state"] == "done", st
    paper, ours = st["result"]["paper"], st["result"]["trace"]
    assert paper["method"] == "paper" and paper["drift"] > 1e-4 > ours["drift"]
    assert {"paper_trace.csv", "paper_trace.json"} <= set(st["files"])


def test_band_from_typed_interval(server: AppServer, net1) -> None:
    body = {"model": "surface_1", "a": 0.1416094864, "b": 0.1516017306, "levels": 5}
    st = run(server, "preimage", body)
    assert st["state"] == "done", st
    res = st["result"]
    assert len(res["traces"]) == 5 and all(t["closed"] for t in res["traces"])
    for level, t in zip(res["levels"], res["traces"], strict=True):
        pts = torch.tensor(t["points"], dtype=torch.float64)
        assert float((evaluate(net1, pts)[:, 0] - level).abs().max()) <= 1e-9
    region = res["region"]
    # the annulus between the two traced extreme levels (paper II's experiment)
    assert region["area"] == pytest.approx(region["polygon_area"], rel=0.02)
    assert 0.15 < region["area"] < 0.35
    assert {"preimage.csv", "preimage.json"} <= set(st["files"])


def test_classifier_click_gives_the_shortest_flip(server: AppServer, binary_net) -> None:
    st = run(server, "point", {"model": "binary", "point": [0.0, -0.01499], "threshold": 0.5})
    assert st["state"] == "done", st
    b = st["result"]["boundary"]
    assert {b["decision_start"], b["decision_flip"]} == {0, 1}
    closest = torch.tensor([b["closest_point"]], dtype=torch.float64)
    assert abs(float(evaluate(binary_net, closest)) - 0.5) <= 1e-9
    assert b["closest_distance"] <= b["boundary_distance"] + 1e-12
    edge = torch.tensor(b["boundary_class"]["points"], dtype=torch.float64)
    assert float((evaluate(binary_net, edge)[:, 0] - 0.5).abs().max()) <= 1e-9
    assert {"boundary_walk.csv", "decision_boundary.csv"} <= set(st["files"])


def test_walk_from_a_test_digit_is_fs_walk(
    server: AppServer, tiny_cnn_file: Path, tmp_path: Path
) -> None:
    body = {"model": "tiny_cnn", "start": {"digit": 6}, "samples": 3, "chains": 2, "step": 1.0}
    st = run(server, "walk", body)
    assert st["state"] == "done", st
    assert st["label"] == "walk (corrected) from test digit 6 (a 3) on tiny_cnn"
    res = st["result"]
    assert res["kind"] == "walk" and res["method"] == "corrected" and res["counts"] == [3, 3]
    assert set(st["files"]) == {"walk.npz", "walk.json", "walk_grid.png", "walk.gif"}
    status, raw = server.call("GET", f"/api/runs/{st['id']}/files/walk.npz")
    assert status == 200
    (tmp_path / "walk.npz").write_bytes(raw)
    walk = load_walk(tmp_path / "walk.npz")  # the library's own file
    assert walk.samples.shape == (2, 3, 1, 28, 28) and walk.counts == [3, 3]
    assert torch.equal(walk.x0, images.digit(6))
    # the page's numbers are the library's summary
    assert res["numbers"]["residual"] == walk.residual == res["residual"] <= 1e-9
    assert res["numbers"]["rejections"] == walk.rejections
    assert res["numbers"]["path_length"] == walk.path_length
    assert float(walk.samples.min()) >= 0.0 and float(walk.samples.max()) <= 1.0
    # an independent evaluation of the model file: the outputs of every sample are N(x0)'s
    net = fs.load_model(str(tiny_cnn_file))
    with torch.no_grad():  # the exported program takes a batch of one
        y0 = net(walk.x0.unsqueeze(0))
        ys = torch.cat([net(s.unsqueeze(0)) for s in walk.samples.reshape(-1, 1, 28, 28)])
    assert float((ys - y0).abs().max()) <= 1e-9
    moved = (walk.samples.reshape(6, -1) - walk.x0.reshape(1, -1)).norm(dim=1)
    assert float(moved.min()) > 0.0  # every sample is a new input
    status, frame = server.call("GET", f"/api/runs/{st['id']}/frame/1/2.png")
    assert status == 200 and Image.open(io.BytesIO(frame)).size == (28, 28)
    status, start = server.call("GET", f"/api/runs/{st['id']}/start.png")
    assert status == 200 and start == images.digit_png(6)
    status, data = server.call("GET", f"/api/runs/{st['id']}/frame/1/3.png")
    assert_one_line_error(status, data, 404, "no sample 3 in chain 1: the chains have 3, 3")
    status, gif = server.call("GET", f"/api/runs/{st['id']}/files/walk.gif")
    assert status == 200 and Image.open(io.BytesIO(gif)).format == "GIF"


def grey_png(x: torch.Tensor) -> bytes:
    """A 28x28 PNG of pixels ``x`` in [0, 1]."""
    buf = io.BytesIO()
    Image.fromarray(np.rint(x.reshape(28, 28).numpy() * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def upload(server: AppServer, x: torch.Tensor) -> str:
    status, up = server.call("POST", "/api/models/tiny_cnn/upload", raw=grey_png(x))
    assert status == 200, up
    return up["id"]


def test_walk_and_traversal_from_uploaded_images(server: AppServer, tiny_cnn_file: Path) -> None:
    # digits with their contrast lowered: no pixel on a face of the box [0, 1]
    three = upload(server, 0.1 + 0.8 * images.digit(6))
    eight = upload(server, 0.1 + 0.8 * images.digit(16))
    status, preview = server.call("GET", f"/api/uploads/{three}.png")
    assert status == 200 and Image.open(io.BytesIO(preview)).size == (28, 28)
    net = fs.load_model(str(tiny_cnn_file))

    body = {"model": "tiny_cnn", "start": {"upload": three}, "samples": 3, "chains": 2}
    st = run(server, "walk", body)
    assert st["state"] == "done", st
    res = st["result"]
    assert res["residual"] <= 1e-9 and res["counts"] == [3, 3]
    assert min(chain[-1] for chain in res["distance_from_start"]) > 0.5  # a real walk
    status, gif = server.call("GET", f"/api/runs/{st['id']}/files/walk.gif")
    assert status == 200 and Image.open(io.BytesIO(gif)).n_frames == 3  # one per sample

    body = {"model": "tiny_cnn", "start": {"upload": three}, "target": {"upload": eight},
            "step": 1.0, "max_steps": 40}  # fmt: skip
    st = run(server, "walk", body)
    assert st["state"] == "done", st
    res = st["result"]
    assert res["kind"] == "traverse" and res["residual"] <= 1e-9
    dist = res["distance_to_target"][0]
    assert dist[-1] < dist[0] - 2.0
    assert all(b <= a + 1e-12 for a, b in zip(dist, dist[1:], strict=False))
    numbers = res["numbers"]
    assert numbers["stop_reason"] == "minimum" and numbers["kkt"] <= 1e-6
    assert numbers["end_distance"] == dist[-1] and numbers["points"] == len(dist)
    assert set(st["files"]) == {"traverse.npz", "traverse.json", "traverse_grid.png",
                                "traverse.gif"}  # fmt: skip
    status, raw = server.call("GET", f"/api/runs/{st['id']}/files/traverse.npz")
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        end, x0 = torch.from_numpy(data["points"][-1]), torch.from_numpy(data["points"][0])
    with torch.no_grad():  # the end is another input the network cannot tell from the start
        gap = net(end.unsqueeze(0)) - net(x0.unsqueeze(0))
    assert float(gap.abs().max()) <= 1e-9 and float((end - x0).norm()) > 2.0


# ------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"this is not an image at all", "is not an image"),
        (b"", "is empty"),
        (png(32, 32), "is 32x32 pixels but the model takes 28x28; resize it to 28x28"),
        (png(28, 28)[:400], "damaged image"),
        (b"\x89PNG" + bytes(5 * 1024 * 1024), "upload an image under 5 MB"),
    ],
    ids=["not-an-image", "empty", "wrong-size", "truncated", "too-large"],
)
def test_bad_uploads_are_refused_in_one_line(server: AppServer, data: bytes, pattern: str) -> None:
    status, body = server.call("POST", "/api/models/tiny_cnn/upload", raw=data)
    assert_one_line_error(status, body, 400, pattern)


@pytest.mark.parametrize(
    ("path", "body", "code", "pattern"),
    [
        ("point", {"model": "surface_1", "point": [1.5, 0.2]}, 400, "is outside the box"),
        ("point", {"model": "surface_1", "point": [0.2]}, 400, "must be two finite numbers"),
        ("point", {"model": "nosuch", "point": [0.2, 0.2]}, 404, "no model named 'nosuch'"),
        ("point", {"model": "surface_1", "point": "here"}, 400, "bad request: point"),
        ("point", {"model": "surface_1", "point": [0.2, 0.2], "step": -1}, 400, "step must be"),
        ("point", {"model": "tiny_cnn", "point": [0.2, 0.2]}, 400, "use Walk for this model"),
        ("preimage", {"model": "surface_1", "a": 0.3, "b": 0.2}, 400, "is empty"),
        ("preimage", {"model": "surface_1", "a": 0.3}, 400, "give the output interval"),
        ("walk", {"model": "surface_1", "start": {"values": [0, 0]}}, 400, "click on the map"),
        ("walk", {"model": "tiny_cnn", "start": {"digit": 20}}, 400, "test digits 0 to 19"),
        (
            "walk",
            {"model": "tiny_cnn", "start": {"digit": 1}, "method": "paper"},
            400,
            "bad request: method",
        ),
        ("walk", {"model": "tiny_cnn", "start": {"upload": "gone"}}, 404, "upload it again"),
        ("walk", {"model": "tiny_cnn", "start": {}}, 400, "choose the start"),
        (
            "walk",
            {"model": "tiny_cnn", "start": {"digit": 1}, "samples": 0},
            400,
            "bad request: samples",
        ),
        (
            "walk",
            {"model": "tiny_cnn", "start": {"digit": 1}, "samples": 5000, "chains": 8},
            400,
            "31,360,000 numbers; the app keeps at most 16,000,000: ask for fewer samples",
        ),
    ],
    ids=[
        "outside-box",
        "one-coordinate",
        "unknown-model",
        "not-a-list",
        "negative-step",
        "click-on-image-model",
        "empty-interval",
        "half-interval",
        "walk-on-2d",
        "no-such-digit",
        "unknown-method",
        "forgotten-upload",
        "no-start",
        "zero-samples",
        "too-many-samples",
    ],
)
def test_bad_requests_are_refused_in_one_line(
    server: AppServer, path: str, body: dict, code: int, pattern: str
) -> None:
    status, data = server.call("POST", f"/api/runs/{path}", body)
    assert_one_line_error(status, data, code, pattern)


def test_unknown_runs_and_files(server: AppServer) -> None:
    status, data = server.call("GET", "/api/runs/abc-1")
    assert_one_line_error(status, data, 404, "the server was restarted")
    st = run(server, "point", {"model": "surface_1", "point": [0.5, 0.1]})
    status, data = server.call("GET", f"/api/runs/{st['id']}/files/..%2F..%2Fetc%2Fpasswd")
    assert status == 404 and "error" in data
    status, data = server.call("GET", f"/api/runs/{st['id']}/files/trace.npz")
    assert_one_line_error(status, data, 404, "has no file 'trace.npz'")
    status, data = server.call("GET", "/api/nothing-here")
    assert status == 404 and set(data) == {"error"}


def test_second_run_is_refused_and_cancel_stops_the_first(server: AppServer) -> None:
    body = {"model": "tiny_cnn", "start": {"digit": 0}, "samples": 3000, "chains": 1}
    status, first = server.call("POST", "/api/runs/walk", body)
    assert status == 202
    deadline = time.monotonic() + 60
    while server.call("GET", f"/api/runs/{first['id']}")[1]["progress"]["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, data = server.call("POST", "/api/runs/point", {"model": "surface_1", "point": [0, 0.5]})
    assert_one_line_error(status, data, 409, "a run is already going (walk (corrected) from test")
    _, st = server.call("GET", f"/api/runs/{first['id']}")
    assert st["state"] == "running"  # the refused request changed nothing
    status, _ = server.call("POST", f"/api/runs/{first['id']}/cancel")
    assert status == 200
    st = server.wait_run(first["id"], timeout=30)
    assert st["state"] == "cancelled" and st["message"].startswith("cancelled: ")
    assert 0 < st["progress"]["done"] < 3000
    # the library's partial walk is kept (marked incomplete), or nothing when no sample was
    if "result" in st:
        assert st["result"]["complete"] is False and sum(st["result"]["counts"]) > 0
        assert "walk.npz" in st["files"] and "samples kept" in st["message"]
    else:
        assert st["message"] == "cancelled: nothing was kept from this run"
    # the next run goes through
    st = run(server, "point", {"model": "surface_1", "point": [0.0, 0.5]})
    assert st["state"] == "done" and st["result"]["trace"]["closed"]


def test_refusals_inside_a_run_reach_the_page_as_one_line(server: AppServer) -> None:
    # no point of the box has an output in the interval: the run fails with one line
    st = run(server, "preimage", {"model": "surface_1", "a": 5.0, "b": 6.0})
    assert st["state"] == "failed" and "result" not in st
    assert st["message"].startswith("no point of the box has an output in [5, 6]")
    # a threshold the score never reaches: the class is shown, the flip is refused (library)
    st = run(server, "point", {"model": "binary", "point": [0.5, 0.6], "threshold": 2.0})
    assert st["state"] == "done" and st["result"]["trace"]["n_points"] > 10
    message = st["result"]["boundary"]["error"]
    assert "\n" not in message and "2" in message, message


def test_server_log_has_no_traceback(server: AppServer) -> None:
    text = server.log_text()
    assert "Traceback" not in text and "Exception in ASGI" not in text, text[-3000:]
    assert "fiberscope app on http://127.0.0.1:" in text
    assert " started: " in text and " done in " in text


def test_only_loopback_host_names_are_answered(server: AppServer) -> None:
    """A page whose domain name was rebound to 127.0.0.1 sends its own name as Host: refused
    before any route runs (DNS rebinding); the loopback names work."""
    import http.client
    import json

    def get(host: str) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("GET", "/api/models", headers={"Host": host})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        status, data = get(host)
        assert status == 200 and "models" in data, (host, data)
    for host in (f"evil.example:{server.port}", "127.0.0.1.evil.example", ""):
        status, data = get(host)
        assert_one_line_error(status, data, 400, "this fiberscope app answers only to")
    assert "Traceback" not in server.log_text()
