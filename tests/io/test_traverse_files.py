"""Traversal result files: ``.npz`` without pickles, the JSON sidecar, the CSV table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import fiberscope as fs
from fiberscope._version import __version__
from fiberscope.errors import OutputFileError
from fiberscope.io import save, save_traverse


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


@pytest.fixture(scope="module")
def traversal() -> fs.TraverseResult:
    return fs.traverse(sphere, [1.0, 0.0, 0.0], [0.0, 3.0, 0.0], step=0.2)


def test_save_writes_npz_sidecar_and_table(traversal, tmp_path: Path) -> None:
    res = traversal
    files = save(res, tmp_path / "t.npz", extra={"model": "sphere"})
    assert [p.name for p in files] == ["t.npz", "t.json", "t.csv"]
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:  # no pickles anywhere
        arrays = {k: data[k] for k in data.files}
    assert all(a.dtype != object for a in arrays.values())
    np.testing.assert_array_equal(arrays["points"], res.points.numpy())
    np.testing.assert_array_equal(arrays["outputs"], res.outputs.numpy())
    np.testing.assert_array_equal(arrays["distance"], res.distance.numpy())
    np.testing.assert_array_equal(arrays["target"], [0.0, 3.0, 0.0])
    assert float(arrays["kkt"]) == res.kkt and str(arrays["stop_reason"]) == "minimum"
    meta = json.loads((tmp_path / "t.json").read_text())
    assert meta["fiberscope_version"] == __version__ and meta["kind"] == "traverse"
    assert meta["complete"] is True and meta["model"] == "sphere"
    assert meta["end_distance"] == res.end_distance == pytest.approx(2.0, abs=1e-9)
    assert meta["stop_reason"] == "minimum" and meta["message"] == res.message
    assert meta["points"] == len(res) and meta["parameters"]["step"] == 0.2
    assert meta["files"] == {"result": "t.npz", "sidecar": "t.json", "table": "t.csv"}
    with (tmp_path / "t.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["index", "x0", "x1", "x2", "y0", "distance"]
    assert len(rows) == 1 + len(res)
    last = [float(v) for v in rows[-1][1:]]
    assert last[:3] == res.end.tolist() and last[-1] == res.end_distance


def test_the_same_traversal_gives_the_same_bytes(traversal, tmp_path: Path) -> None:
    save_traverse(traversal, tmp_path / "a.npz")
    save_traverse(traversal, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_image_traversals_keep_their_shape_and_get_no_table(tmp_path: Path) -> None:
    def pixels(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-3], -1)[..., :2].sin()

    res = fs.traverse(pixels, torch.full((1, 4, 5), 0.5), torch.zeros(1, 4, 5), step=0.2)
    assert [p.name for p in save(res, tmp_path / "img.npz")] == ["img.npz", "img.json"]
    with np.load(tmp_path / "img.npz", allow_pickle=False) as data:
        assert data["points"].shape == (len(res), 1, 4, 5)
    assert json.loads((tmp_path / "img.json").read_text())["input_shape"] == [1, 4, 5]


def test_partial_traversals_are_marked_incomplete(traversal, tmp_path: Path) -> None:
    save_traverse(traversal, tmp_path / "t.npz", extra={"complete": False})
    assert json.loads((tmp_path / "t.json").read_text())["complete"] is False


def test_refusals(traversal, tmp_path: Path) -> None:
    with pytest.raises(OutputFileError, match=r"t\.csv: a traversal is saved as NumPy arrays"):
        save(traversal, tmp_path / "t.csv")
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(OutputFileError, match=r"t\.json already exists"):
        save_traverse(traversal, tmp_path / "t.npz", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]  # nothing half-written
