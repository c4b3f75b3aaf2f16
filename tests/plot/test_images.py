"""Image grids and GIFs of walks, traversals and confusion searches (fiberscope.plot.images)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fiberscope as fs
from fiberscope.errors import InputError
from fiberscope.plot import save_figure
from fiberscope.plot.images import chains_of, gif_bytes, image_grid, save_gif


def tiny_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh(), torch.nn.Flatten(0), torch.nn.Linear(72, 3)
    ).double()


def linear3(x: torch.Tensor) -> torch.Tensor:
    m = x.reshape(*x.shape[:-3], 64).mean(-1)
    return torch.stack((0.1 - m, m, -1 + 0 * m), -1)


@pytest.fixture(scope="module")
def start() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 0.3 + 0.4 * torch.rand(1, 8, 8, generator=g, dtype=torch.float64)


@pytest.fixture(scope="module")
def walk(start: torch.Tensor):
    return fs.walk(tiny_cnn(), start, samples=6, chains=2, step=0.05, bounds=(0, 1), seed=0)


def frames(data: bytes) -> list[np.ndarray]:
    img = Image.open(io.BytesIO(data))
    out = []
    for k in range(img.n_frames):
        img.seek(k)
        out.append(np.asarray(img.convert("RGB")))
    return out


def test_grid_of_a_walk_shows_images_and_outputs(walk, tmp_path: Path) -> None:
    fig = image_grid(walk, columns=4)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2 * 4  # two chains, four columns
    assert "held to" in fig._suptitle.get_text()
    out_ax = [ax for ax in fig.axes if not ax.images][-1]
    assert out_ax.get_xlabel() == "output index"
    p = save_figure(fig, tmp_path / "g.png")
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_gif_has_one_frame_per_sample_and_the_start_first(walk, start: torch.Tensor) -> None:
    fr = frames(gif_bytes(walk, scale=1))
    assert len(fr) == walk.samples.shape[1]
    pts, _, counts, _, _ = chains_of(walk)
    assert counts == [6, 6]
    # the first chain's first frame is its first sample (pixels 0..1 -> 0..255)
    first = np.rint(np.clip(pts[0, 0].reshape(8, 8), 0, 1) * 255)
    caption = 12
    got = fr[0][caption + 2 : caption + 10, 2:10, 0].astype(float)
    assert np.abs(got - first).max() <= 8  # GIF palette quantisation


def test_traversal_grid_and_gif(start: torch.Tensor, tmp_path: Path) -> None:
    target = torch.full((1, 8, 8), 0.9, dtype=torch.float64)
    res = fs.traverse(tiny_cnn(), start, target, step=0.1, max_steps=5, bounds=(0, 1))
    fig = fs.plot.plot(res)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0].startswith("start") and titles[-1].startswith("target")
    p = save_gif(res, tmp_path / "t.gif")
    assert len(frames(p.read_bytes())) == len(res)


def test_confusion_figure_and_gif(start: torch.Tensor, tmp_path: Path) -> None:
    x0 = torch.full((1, 8, 8), 0.02, dtype=torch.float64)
    res = fs.confuse(linear3, x0, bounds=(0, 1))
    fig = fs.plot.plot(res)
    assert "shortest confusion found: 0 -> 1" in fig._suptitle.get_text()
    assert len([ax for ax in fig.axes if ax.images]) == 4
    p = save_gif(res, tmp_path / "c.gif")
    assert len(frames(p.read_bytes())) == len(res.line)


def test_refusals(tmp_path: Path) -> None:
    res = fs.walk(lambda x: (x**2).sum(-1, keepdim=True), [1.0, 0.0, 0.0], samples=3, step=0.1)
    with pytest.raises(InputError, match="not an image"):
        image_grid(res)
    with pytest.raises(InputError, match="not an image"):
        save_gif(res, tmp_path / "w.gif")
    with pytest.raises(InputError, match="ending in .gif"):
        save_gif(res, tmp_path / "w.png")
    with pytest.raises(InputError, match="cannot draw images of a dict"):
        chains_of({})
    assert not list(tmp_path.iterdir())


def test_mp4_of_a_walk(walk, tmp_path: Path) -> None:
    ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="imageio-ffmpeg is not installed")
    p = save_gif(walk, tmp_path / "w.mp4")
    reader = ffmpeg.read_frames(str(p))
    meta = next(reader)
    count = sum(1 for _ in reader)
    assert count == walk.samples.shape[1]
    assert meta["size"][0] % 2 == 0 and meta["size"][1] % 2 == 0
