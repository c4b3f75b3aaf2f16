"""``fiberscope walk --grid/--gif``, ``fiberscope traverse`` and ``fiberscope confuse`` on image
files: the files written, the summaries, and the results read back and checked."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fiberscope.cli.main import main

MODELS = """
import torch
from torch import nn

def cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(0), nn.Linear(2 * 6 * 6, 3)
    ).double()

def mean3(x):
    m = x.reshape(*x.shape[:-3], 64).mean(-1)
    return torch.stack((0.1 - m, m, -1 + 0 * m), -1)
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "models.py").write_text(MODELS)
    g = np.random.default_rng(0)
    Image.fromarray(g.integers(60, 200, (8, 8)).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(g.integers(0, 255, (8, 8)).astype(np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.full((8, 8), 5, dtype=np.uint8)).save(tmp_path / "dark.png")
    return tmp_path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def gif_frames(path: Path) -> int:
    with Image.open(path) as img:
        return img.n_frames


def test_walk_writes_a_grid_and_a_gif(folder: Path) -> None:
    code, out, err = run(
        "walk", f"{folder}/models.py:cnn", "--at", str(folder / "a.png"), "--samples", "5",
        "--chains", "2", "--step", "0.05", "--bounds", "0,1", "-o", str(folder / "w.npz"),
        "--grid", str(folder / "w.png"), "--gif", str(folder / "w.gif"),
    )  # fmt: skip
    assert code == 0, err
    assert "w.png" in out and "w.gif" in out
    assert (folder / "w.png").read_bytes()[:4] == b"\x89PNG"
    assert gif_frames(folder / "w.gif") == 5


def test_traverse_from_an_image_to_another(folder: Path) -> None:
    code, out, err = run(
        "traverse", f"{folder}/models.py:cnn", "--at", str(folder / "a.png"), "--to",
        str(folder / "b.png"), "--bounds", "0,1", "--step", "0.1", "--max-steps", "6",
        "-o", str(folder / "t.npz"), "--grid", str(folder / "t.png"), "--gif",
        str(folder / "t.gif"),
    )  # fmt: skip
    assert code == 0, err
    for row in ("distance to target", "residual max|N(x)-N(x0)|", "stop reason"):
        assert row in out
    with np.load(folder / "t.npz", allow_pickle=False) as data:
        points, outputs = data["points"], data["outputs"]
    # independent check: the saved points give the start's outputs to 1e-9
    ns: dict = {}
    exec(MODELS, ns)
    net = ns["cnn"]()
    ys = torch.stack([net(torch.from_numpy(p)) for p in points]).detach()
    assert float((ys - ys[0]).abs().max()) <= 1e-9
    np.testing.assert_allclose(outputs, ys.numpy(), atol=1e-12)
    assert points.min() >= 0 and points.max() <= 1
    meta = json.loads((folder / "t.json").read_text())
    assert meta["kind"] == "traverse" and meta["to"].endswith("b.png")
    assert gif_frames(folder / "t.gif") == len(points)


def test_confuse_an_image_classifier(folder: Path) -> None:
    code, out, err = run(
        "confuse", f"{folder}/models.py:mean3", "--at", str(folder / "dark.png"), "--bounds",
        "0,1", "-o", str(folder / "c.npz"), "--plot", str(folder / "c.png"), "--gif",
        str(folder / "c.gif"),
    )  # fmt: skip
    assert code == 0, err
    assert "class across the boundary" in out
    with np.load(folder / "c.npz", allow_pickle=False) as data:
        point, start, decisions = data["point"], data["start"], data["decisions"]
        distance = float(data["distance"])
    assert decisions.tolist() == [0, 1, 1]
    # mean3 flips where the mean pixel reaches 0.05: every pixel moves by the same amount
    gap = 0.05 - start.mean()
    np.testing.assert_allclose(point, start + gap, atol=1e-9)
    assert distance == pytest.approx(gap * 8, rel=1e-9)
    assert (folder / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert gif_frames(folder / "c.gif") == 17
    assert json.loads((folder / "c.json").read_text())["decision_flip"] == 1
