"""Output planning helpers: derived names agree with the writers, temporary names fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiberscope.errors import OutputFileError
from fiberscope.io.atomic import atomic_write, name_max, temp_prefix
from fiberscope.io.checkpoint import checkpoint_paths
from fiberscope.io.paths import plan_outputs
from fiberscope.io.results import sidecar_path


def test_planned_names_are_the_writers_names(tmp_path: Path) -> None:
    out = tmp_path / "run.csv"
    plan = plan_outputs(out, plot=tmp_path / "run.png", checkpoint=True)
    assert plan["sidecar"] == sidecar_path(out)
    assert (plan["checkpoint"], plan["stream"]) == checkpoint_paths(out)
    assert {f.path.name for f in plan.files if f.role == "lock"} == {
        "run.csv.lock",
        "run.json.lock",
        "run.png.lock",
    }


def test_temporary_names_fit_the_name_limit(tmp_path: Path) -> None:
    limit = name_max(tmp_path)
    a, b = "x" * (limit - 5) + "a.csv", "x" * (limit - 5) + "b.csv"
    pa, pb = temp_prefix(tmp_path / a), temp_prefix(tmp_path / b)
    assert pa != pb
    assert len(pa.encode()) + 8 + len(".tmp") <= limit
    with atomic_write(tmp_path / a) as fh:  # a name at the limit is written
        fh.write("ok")
    assert (tmp_path / a).read_text() == "ok"


def test_atomic_write_refuses_a_directory_target(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputFileError, match="is a directory"), atomic_write(tmp_path / "d") as fh:
        fh.write("x")
    assert (tmp_path / "d").is_dir() and len(list(tmp_path.iterdir())) == 1
