"""Figures: every element visible on any background and in the legend, any input dimension,
any model dtype (issue 8 items 1 and 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from torch import nn

import fiberscope as fs
from analytic_models import Radial
from fiberscope.plot import plot, plot_trace, save_figure
from fiberscope.plot.plots import luminance

BOX = ([-1.0, -1.0], [1.0, 1.0])


class SphereSlice(nn.Module):
    """R^3 -> R^2: (|x|^2, x2); classes are circles in the planes x2 = const."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(((x**2).sum(-1), x[..., 2]), -1)


class Wide(nn.Module):
    """R^5 -> R^4: (x0^2 + x1^2, x2, x3, x4); classes are circles in the (x0, x1) plane."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(((x[..., :2] ** 2).sum(-1, keepdim=True), x[..., 2:]), -1)


def _drawn(line) -> bool:
    return line.get_linestyle() not in ("None", "none", "", " ") and line.get_linewidth() > 0


def _tones(artist) -> list[float]:
    """Luminances of every colour an artist paints (line, marker face and edge, halos)."""
    tones = []
    if _drawn(artist):
        tones.append(luminance(artist.get_color()))
    if artist.get_marker() not in (None, "None", "none", ""):
        for c in (artist.get_markerfacecolor(), artist.get_markeredgecolor()):
            if c is not None and not (isinstance(c, str) and c == "none"):
                tones.append(luminance(c))
    for pe in artist.get_path_effects():
        if isinstance(pe, patheffects.withStroke):
            tones.append(luminance(pe._gc["foreground"]))
    return tones


def assert_visible_everywhere(fig) -> None:
    """Every line and marker of every axes, and every legend entry, is painted in two tones
    at least half the luminance range apart: one of them stands out on any background."""
    checked = 0
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        legend = ax.get_legend()
        handles = list(legend.get_lines()) if legend is not None else []
        for line in [*ax.get_lines(), *handles]:
            if not line.get_visible():
                continue
            tones = _tones(line)
            assert tones and max(tones) - min(tones) >= 0.5, (line.get_label(), tones)
            checked += 1
        for coll in ax.collections:  # contour lines carry a halo
            if type(coll).__name__ == "ContourSet" and not getattr(coll, "filled", True):
                pes = coll.get_path_effects()
                assert pes and isinstance(pes[0], patheffects.withStroke)
    assert checked > 0


def _pixels(fig, ax, pts: np.ndarray) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())[..., :3] / 255.0
    xy = ax.transData.transform(pts)
    rows = np.clip((img.shape[0] - xy[:, 1]).astype(int), 0, img.shape[0] - 1)
    cols = np.clip(xy[:, 0].astype(int), 0, img.shape[1] - 1)
    return img[rows, cols]


def test_class_without_a_heat_map_is_not_white_on_white() -> None:
    """The class used to be drawn in white: invisible on the white page."""
    res = fs.trace(Radial(), [0.25, 0.25], step=0.05, bounds=BOX)
    fig = plot_trace(res)
    ax = fig.axes[0]
    pts = res.points.numpy()[::3]
    pix = _pixels(fig, ax, pts)
    background = np.array(to_rgb(ax.get_facecolor()))
    differs = np.abs(pix - background).max(1) > 0.3
    assert differs.mean() > 0.9
    assert_visible_everywhere(fig)


@pytest.fixture(scope="module")
def results(net1, binary_net) -> dict:
    radial = Radial()
    return {
        "trace": (fs.trace(net1, [0.25, 0.25], step=0.05, bounds=BOX), net1),
        "explore": (fs.explore(net1, [0.25, 0.25], target=0.2, bounds=BOX), net1),
        "preimage": (
            fs.preimage(
                radial, [0.3, 0.0], (0.145, 0.16), levels=3, bounds=BOX, step=0.05, resolution=40
            ),
            radial,
        ),
        "sample": (fs.sample_class(net1, [0.25, 0.25], 12, step=0.05), net1),
        "boundary": (
            fs.boundary_walk(binary_net, [0, -0.01499], threshold=0.5, beyond=0.1),
            binary_net,
        ),
    }


@pytest.mark.parametrize("kind", ["trace", "explore", "preimage", "sample", "boundary"])
@pytest.mark.parametrize("with_model", [False, True], ids=["no-heat-map", "heat-map"])
def test_every_element_is_visible(results, kind: str, with_model: bool) -> None:
    res, net = results[kind]
    fig = plot(res, model=net if with_model else None, resolution=30)
    assert_visible_everywhere(fig)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_heat_map_of_a_low_precision_model(tmp_path, dtype: torch.dtype) -> None:
    """'mat1 and mat2 must have the same dtype' for every float32 model before."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1)).to(dtype)
    res = fs.trace(net, [0.1, 0.2], step=0.05, bounds=BOX, max_steps=30)
    fig = plot_trace(res, model=net, resolution=30)
    assert len(fig.axes) == 2  # the axes and the heat map's colour bar
    assert save_figure(fig, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_three_inputs_are_drawn_in_3d() -> None:
    res = fs.sample_class(SphereSlice(), [0.3, 0.1, 0.2], 10, step=0.05)
    fig = plot(res)
    assert fig.axes[0].name == "3d"
    assert fig.axes[0].get_zlabel() == "x2"
    assert_visible_everywhere(fig)
    tr = fs.trace(SphereSlice(), [0.3, 0.1, 0.2], step=0.05)
    assert plot(tr).axes[0].name == "3d"


def test_more_inputs_are_pairwise_projections() -> None:
    res = fs.trace(Wide(), [0.3, 0.1, 0.2, -0.1, 0.5], step=0.05)
    fig = plot(res)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 6  # the pairs of x0..x3
    labels = {(a.get_xlabel(), a.get_ylabel()) for a in visible}
    assert ("x0", "x1") in labels and ("x2", "x3") in labels
    assert "projections on pairs of x0..x3 (5 input coordinates)" in fig._suptitle.get_text()
    assert_visible_everywhere(fig)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<")])
def test_save_figure_format_follows_the_suffix(tmp_path, suffix: str, magic: bytes) -> None:
    res = fs.trace(Radial(), [0.25, 0.25], step=0.1, bounds=BOX)
    p = save_figure(plot_trace(res), tmp_path / f"f{suffix}")
    assert p.read_bytes().lstrip()[: len(magic)] == magic
