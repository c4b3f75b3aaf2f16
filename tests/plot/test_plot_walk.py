"""Figures of walks: 2-D over a heat map, 3-D, image grids, pairwise projections; every
element painted in two tones far apart in lightness (visible on any background)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import patheffects

import fiberscope as fs
from fiberscope.plot import plot, plot_walk, save_figure
from fiberscope.plot.plots import image_shape, luminance


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


def _tones(line) -> list[float]:
    tones = []
    if line.get_linestyle() not in ("None", "none", "", " ") and line.get_linewidth() > 0:
        tones.append(luminance(line.get_color()))
    if line.get_marker() not in (None, "None", "none", ""):
        tones += [luminance(line.get_markerfacecolor()), luminance(line.get_markeredgecolor())]
    for pe in line.get_path_effects():
        if isinstance(pe, patheffects.withStroke):
            tones.append(luminance(pe._gc["foreground"]))
    return tones


def assert_visible_everywhere(fig) -> int:
    checked = 0
    for ax in fig.axes:
        legend = ax.get_legend()
        for line in [*ax.get_lines(), *(legend.get_lines() if legend is not None else [])]:
            tones = _tones(line)
            assert tones and max(tones) - min(tones) >= 0.5, (line.get_label(), tones)
            checked += 1
    return checked


@pytest.fixture(scope="module")
def walk2d():
    net = fs.load_model("surface_1")
    res = fs.walk(net, [0.25, 0.25], samples=30, chains=8, step=0.05, seed=0, bounds=(-1, 1))
    return net, res


def test_two_inputs_over_a_heat_map(walk2d) -> None:
    net, res = walk2d
    fig = plot(res, model=net, resolution=40)  # routed by type
    ax = fig.axes[0]
    assert ax.collections, "no heat map"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:1] == ["level of x0 (model grid)"]
    assert "chain 0" in labels and "chain 5" in labels and "chain 6" not in labels
    assert "start x0" in labels
    assert assert_visible_everywhere(fig) >= 2 * res.chains
    plotted = np.concatenate([ln.get_xydata() for ln in ax.get_lines() if ln.get_marker() == "o"])
    pts = res.flat()[0].numpy()
    assert {tuple(p) for p in pts} <= {tuple(p) for p in plotted}


def test_without_a_model_there_is_no_heat_map(walk2d) -> None:
    _, res = walk2d
    fig = plot_walk(res)
    assert len(fig.axes) == 1 and not fig.axes[0].collections
    assert_visible_everywhere(fig)


def test_three_inputs_in_3d() -> None:
    res = fs.walk(sphere, [1.0, 0.0, 0.0], samples=20, chains=2, step=0.3, seed=0)
    fig = plot_walk(res)
    assert fig.axes[0].name == "3d"
    assert assert_visible_everywhere(fig) >= 4


def test_more_inputs_as_pairwise_projections() -> None:
    res = fs.walk(sphere, [1.0, 0, 0, 0, 0, 0], samples=20, chains=2, step=0.3, seed=0)
    fig = plot_walk(res)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 6  # the pairs of x0..x3
    assert "projections on pairs of x0..x3 (6 input coordinates)" in fig._suptitle.get_text()
    assert_visible_everywhere(fig)


@pytest.mark.parametrize("shape", [(1, 6, 7), (3, 6, 7), (6, 7)])
def test_images_as_a_grid_with_their_output_deviation(shape) -> None:
    def net(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(*x.shape[: x.ndim - len(shape)], -1)
        return torch.stack((flat.sin().sum(-1), (flat**2).mean(-1)), -1)

    res = fs.walk(
        net,
        0.3 + 0.4 * torch.rand(shape, generator=torch.Generator().manual_seed(0)),
        samples=10,
        chains=2,
        step=0.05,
        seed=0,
        bounds=(0, 1),
    )
    fig = plot_walk(res, images=9)
    shown = [a for a in fig.axes if a.get_visible() and a.images]
    assert len(shown) == 9
    titles = [a.get_title() for a in shown]
    assert titles[0] == "start x0"
    assert all("max|N-N(x0)|" in t for t in titles[1:])
    devs = [float(t.rsplit(" ", 1)[1]) for t in titles[1:]]
    assert max(devs) <= 1e-9
    img = shown[1].images[0].get_array()
    assert img.shape == (shape[-2], shape[-1]) + ((3,) if shape[0] == 3 else ())


def test_image_shapes() -> None:
    assert image_shape((1, 28, 28)) == (1, 28, 28)
    assert image_shape((1, 1, 28, 28)) == (1, 28, 28)
    assert image_shape((3, 32, 32)) == (3, 32, 32)
    assert image_shape((28, 28)) == (1, 28, 28)
    assert image_shape((4,)) is None and image_shape((2, 5)) is None
    assert image_shape((5, 8, 8)) is None  # five channels: not an image


def test_saved_png(walk2d, tmp_path: Path) -> None:
    net, res = walk2d
    save_figure(plot_walk(res, model=net, resolution=30), tmp_path / "w.png")
    assert (tmp_path / "w.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_other_objects_are_refused() -> None:
    with pytest.raises(fs.InputError, match="cannot plot a dict"):
        plot({})
