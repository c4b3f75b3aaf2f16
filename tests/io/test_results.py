"""Result files: CSV + JSON round trips, refusal to overwrite, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fiberscope as fs
from fiberscope.errors import OutputFileError
from fiberscope.io import atomic_write, load_trace_csv


def test_save_and_read_back(tmp_path: Path, net2) -> None:
    res = fs.trace(net2, [0.25, 0.25], step=0.02, bounds=(-1.0, 1.0))
    csv_path, json_path = fs.io.save(res, tmp_path / "t.csv")
    data = load_trace_csv(csv_path)
    assert data["header"] == ["x0", "x1", "y0", "arclength", "branch"]
    rows = data["rows"]
    assert len(rows) == len(res)
    assert rows[res.start_index][:2] == res.start.tolist()
    assert [r[-1] for r in rows] == res.branch.tolist()
    assert [r[3] for r in rows] == res.arclength.tolist()
    meta = json.loads(json_path.read_text())
    assert meta["stop_reasons"] == {"forward": "boundary", "backward": "boundary"}
    assert meta["parameters"]["step"] == 0.02 and meta["parameters"]["method"] == "corrected"
    assert meta["drift"] == res.drift and meta["complete"] is True
    assert meta["fiberscope_version"] == fs.__version__


def test_refuses_to_overwrite_without_force(tmp_path: Path, net1) -> None:
    res = fs.trace(net1, [0.25, 0.25], step=0.05)
    fs.io.save(res, tmp_path / "t.csv")
    with pytest.raises(OutputFileError, match="already exists; use --force"):
        fs.io.save(res, tmp_path / "t.csv", force=False)
    with pytest.raises(OutputFileError, match="does not exist"):
        fs.io.save(res, tmp_path / "no" / "t.csv")


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
