"""``fs.*`` verbs take image and array files as inputs, as the command line's ``--at`` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import fiberscope as fs
from fiberscope.io.inputs import read_point


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(-3), nn.Linear(64, 12), nn.Tanh(), nn.Linear(12, 3)).double()


def _png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(30, 220, (8, 8), dtype=np.uint8), mode="L").save(path)
    return path


def test_walk_from_a_png_equals_the_walk_from_its_pixels(tmp_path: Path) -> None:
    png = _png(tmp_path / "a.png", 0)
    pixels = torch.as_tensor(read_point(png))
    kw = {"samples": 3, "step": 0.2, "seed": 1, "bounds": (0, 1)}
    from_file = fs.walk(_net(), png, **kw)
    from_str = fs.walk(_net(), str(png), **kw)
    from_tensor = fs.walk(_net(), pixels, **kw)
    assert from_file.samples.shape == (1, 3, 1, 8, 8)
    assert torch.equal(from_file.samples, from_tensor.samples)
    assert torch.equal(from_str.samples, from_tensor.samples)


def test_traverse_and_confuse_take_files_for_target_and_toward(tmp_path: Path) -> None:
    a, b = _png(tmp_path / "a.png", 0), _png(tmp_path / "b.png", 1)
    np.save(tmp_path / "b.npy", read_point(b))
    t_png = fs.traverse(_net(), a, b, bounds=(0, 1), step=0.2, max_steps=20)
    t_npy = fs.traverse(_net(), a, target=tmp_path / "b.npy", bounds=(0, 1), step=0.2, max_steps=20)
    assert torch.equal(t_png.points, t_npy.points) and t_png.end_distance < t_png.start_distance
    c = fs.confuse(_net(), a, toward=[b], bounds=(0, 1))
    assert c.decision_flip != c.decision_start


def test_a_missing_file_is_a_one_line_input_error(tmp_path: Path) -> None:
    with pytest.raises(fs.InputError, match="does not exist") as info:
        fs.walk(_net(), tmp_path / "nope.png", samples=2)
    assert "\n" not in str(info.value)


def test_the_verbs_keep_their_names_docs_and_signatures() -> None:
    import inspect

    from fiberscope.algorithms.walk import walk

    assert fs.walk.__name__ == "walk" and fs.walk.__doc__ == walk.__doc__
    assert inspect.signature(fs.walk) == inspect.signature(walk)
