"""Walk result files: ``.npz`` without pickles, the JSON sidecar, the CSV table, the loader."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import fiberscope as fs
from fiberscope._version import __version__
from fiberscope.errors import InputError, OutputFileError
from fiberscope.io import load_walk, save, save_walk


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1, keepdim=True)


@pytest.fixture(scope="module")
def uniform_walk() -> fs.WalkResult:
    return fs.walk(
        sphere, [1.0, 0.0, 0.0], samples=15, chains=2, step=0.4, seed=3, method="uniform"
    )


def test_save_writes_npz_sidecar_and_table(uniform_walk, tmp_path: Path) -> None:
    res = uniform_walk
    files = save(res, tmp_path / "w.npz", extra={"model": "sphere"})
    assert [p.name for p in files] == ["w.npz", "w.json", "w.csv"]
    with np.load(tmp_path / "w.npz", allow_pickle=False) as data:  # no pickles anywhere
        arrays = {k: data[k] for k in data.files}
    assert all(a.dtype != object for a in arrays.values())
    np.testing.assert_array_equal(arrays["samples"], res.samples.numpy())
    np.testing.assert_array_equal(arrays["outputs"], res.outputs.numpy())
    assert arrays["counts"].tolist() == res.counts and arrays["seeds"].tolist() == res.seeds
    np.testing.assert_array_equal(arrays["x0"], res.x0.numpy())
    for reason, counts in res.rejections.items():
        assert arrays[f"rejections_{reason}"].tolist() == counts
    assert arrays["stop_reasons"].tolist() == res.stop_reasons
    assert str(arrays["method"]) == "uniform"
    meta = json.loads((tmp_path / "w.json").read_text())
    assert meta["fiberscope_version"] == __version__ and meta["kind"] == "walk"
    assert meta["complete"] is True and meta["model"] == "sphere"
    assert meta["residual"] == res.residual and meta["acceptance"] == res.acceptance
    assert meta["parameters"]["seed"] == 3 and meta["parameters"]["method"] == "uniform"
    assert meta["files"] == {"result": "w.npz", "sidecar": "w.json", "table": "w.csv"}
    with (tmp_path / "w.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["chain", "index", "x0", "x1", "x2", "y0"]
    assert len(rows) == 1 + len(res)
    c, k = int(rows[20][0]), int(rows[20][1])
    assert [float(v) for v in rows[20][2:5]] == res.samples[c, k].tolist()


def test_the_same_walk_gives_the_same_bytes(uniform_walk, tmp_path: Path) -> None:
    save_walk(uniform_walk, tmp_path / "a.npz")
    save_walk(uniform_walk, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert zipfile.is_zipfile(tmp_path / "a.npz")


def test_load_walk_round_trip(uniform_walk, tmp_path: Path) -> None:
    save_walk(uniform_walk, tmp_path / "w.npz")
    back = load_walk(tmp_path / "w.npz")
    assert isinstance(back, fs.WalkResult)
    for name in ("samples", "outputs", "x0", "y0"):
        assert torch.equal(getattr(back, name), getattr(uniform_walk, name))
    for name in ("counts", "seeds", "accepted", "rejections", "path_length", "rank_changes"):
        assert getattr(back, name) == getattr(uniform_walk, name)
    assert back.method == "uniform" and back.residual == uniform_walk.residual
    assert back.options == json.loads(json.dumps(uniform_walk.options))
    assert back.stats.steps == uniform_walk.stats.steps and back.complete


def test_partial_walks_are_marked_incomplete(uniform_walk, tmp_path: Path) -> None:
    save_walk(uniform_walk, tmp_path / "w.npz", extra={"complete": False})
    assert json.loads((tmp_path / "w.json").read_text())["complete"] is False
    assert load_walk(tmp_path / "w.npz").complete is False


def test_paper_walks_keep_the_pseudolength(tmp_path: Path) -> None:
    res = fs.walk(sphere, [1.0, 0.0, 0.0], samples=5, step=0.1, seed=0, method="paper")
    save_walk(res, tmp_path / "p.npz")
    assert load_walk(tmp_path / "p.npz").pseudolength == res.pseudolength


def test_large_inputs_get_no_table(tmp_path: Path) -> None:
    res = fs.walk(sphere, torch.ones(17) / 17**0.5, samples=3, step=0.1, seed=0)
    assert [p.name for p in save(res, tmp_path / "big.npz")] == ["big.npz", "big.json"]
    assert not (tmp_path / "big.csv").exists()
    assert load_walk(tmp_path / "big.npz").samples.shape == (1, 3, 17)


def test_image_walks_keep_their_shape(tmp_path: Path) -> None:
    def pixels(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-3], -1)[..., :2].sin()

    res = fs.walk(pixels, torch.full((1, 4, 5), 0.5), samples=3, step=0.05, seed=0)
    save_walk(res, tmp_path / "img.npz")
    assert load_walk(tmp_path / "img.npz").samples.shape == (1, 3, 1, 4, 5)


def test_refusals(uniform_walk, tmp_path: Path) -> None:
    with pytest.raises(OutputFileError, match=r"w\.csv: a walk is saved as NumPy arrays"):
        save(uniform_walk, tmp_path / "w.csv")
    (tmp_path / "w.json").write_text("{}")
    with pytest.raises(OutputFileError, match=r"w\.json already exists"):
        save_walk(uniform_walk, tmp_path / "w.npz", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]  # nothing half-written
    with pytest.raises(InputError, match="does not exist"):
        load_walk(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a valid .npz"):
        load_walk(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", a=np.ones(2))
    with pytest.raises(InputError, match="not a fiberscope walk"):
        load_walk(tmp_path / "other.npz")
    np.savez(tmp_path / "obj.npz", samples=np.array([{}], dtype=object))
    with pytest.raises(InputError, match="pickled objects"):
        load_walk(tmp_path / "obj.npz")
