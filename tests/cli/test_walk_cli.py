"""``fiberscope walk``: start points as numbers or files, the files written, the summary, the
plot, an interrupted walk (the bad inputs are rows of the catalog, test_errors_catalog.py)."""

from __future__ import annotations

import contextlib
import io
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fiberscope.cli import durable
from fiberscope.cli.main import main
from fiberscope.io import load_walk

MODELS = """
import torch
from torch import nn

def sphere(x):
    return (x ** 2).sum(-1, keepdim=True)

def relu_2d(x):
    return torch.relu(x[..., :1] - x[..., 1:2])

def cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(0), nn.Linear(2 * 6 * 6, 3)
    ).double()
"""


@pytest.fixture
def models(tmp_path: Path) -> str:
    (tmp_path / "models.py").write_text(MODELS)
    return str(tmp_path / "models.py")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_walk_of_a_bundled_network(tmp_path: Path) -> None:
    o = tmp_path / "w.npz"
    code, out, err = run(
        "walk",
        "surface_1",
        "--at",
        "0.25,0.25",
        "--samples",
        "20",
        "--chains",
        "3",
        "--step",
        "0.05",
        "--bounds=-1,1",
        "-o",
        str(o),
        "--plot",
        str(tmp_path / "w.png"),
    )
    assert code == 0, err
    for row in (
        "residual max|N(x)-N(x0)|",
        "acceptance",
        "rejections",
        "rank changes of J",
        "path length",
        "stop reasons",
    ):
        assert row in out
    assert "wrote" in out and "w.npz" in out and "w.csv" in out and "w.png" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.csv", "w.json", "w.npz", "w.png"]
    res = load_walk(o)
    assert res.samples.shape == (3, 20, 2) and res.residual <= 1e-12
    meta = json.loads((tmp_path / "w.json").read_text())
    assert meta["model"] == "surface_1" and meta["at"] == "0.25,0.25"
    assert meta["parameters"]["seed"] == 0 and meta["parameters"]["chains"] == 3
    assert "model_sha256" in meta  # the model identity, as for every command


def test_start_from_an_npy_file(tmp_path: Path, models: str) -> None:
    np.save(tmp_path / "x0.npy", np.array([0.0, 0.6, 0.8]))
    o = tmp_path / "s.npz"
    code, out, err = run(
        "walk",
        f"{models}:sphere",
        "--at",
        str(tmp_path / "x0.npy"),
        "--method",
        "uniform",
        "--samples",
        "30",
        "--step",
        "0.3",
        "--seed",
        "4",
        "-o",
        str(o),
    )
    assert code == 0, err
    res = load_walk(o)
    assert res.method == "uniform" and res.seeds and res.options["seed"] == 4
    assert float(((res.samples[0] ** 2).sum(-1) - 1).abs().max()) <= 1e-9
    assert "projection" in out  # the uniform sampler's rejections by reason


def test_start_from_an_image(tmp_path: Path, models: str) -> None:
    pixels = (np.arange(64).reshape(8, 8) * 3 + 20).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    o = tmp_path / "img.npz"
    code, out, err = run(
        "walk",
        f"{models}:cnn",
        "--at",
        str(tmp_path / "digit.png"),
        "--samples",
        "8",
        "--chains",
        "2",
        "--step",
        "0.05",
        "--bounds",
        "0,1",
        "-o",
        str(o),
        "--plot",
        str(tmp_path / "grid.png"),
    )
    assert code == 0, err
    assert not (tmp_path / "img.csv").exists()  # 64 inputs: no CSV table
    res = load_walk(o)
    assert res.samples.shape == (2, 8, 1, 8, 8)
    torch.testing.assert_close(res.x0[0], torch.tensor(pixels / 255.0))
    assert float(res.samples.min()) >= 0 and float(res.samples.max()) <= 1
    assert res.residual <= 1e-9
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_a_dead_relu_region_with_allow_singular(tmp_path: Path, models: str) -> None:
    args = [
        "walk",
        f"{models}:relu_2d",
        "--at",
        "-1.85,1.3",
        "--samples",
        "60",
        "--chains",
        "2",
        "--step",
        "0.5",
        "--seed",
        "1",
    ]
    code, _, err = run(*args, "-o", str(tmp_path / "a.npz"))
    assert code == 2 and "add --allow-singular" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "models.py"]
    code, out, err = run(*args, "--allow-singular", "-o", str(tmp_path / "a.npz"))
    assert code == 0, err
    res = load_walk(tmp_path / "a.npz")
    pts = res.samples.reshape(-1, 2)
    assert float((pts[:, 0] - pts[:, 1]).max()) <= 1e-12  # the closed dead region
    assert sum(res.rank_changes) > 0 and f"{sum(res.rank_changes)} (" in out


class _SignalAfter(durable.StopFlag):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls == self.n and self.signum is None:
            self.signum = signal.SIGTERM
        return self.signum is not None


def test_an_interrupted_walk_keeps_its_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextlib.contextmanager
    def flag() -> Iterator[durable.StopFlag]:
        yield _SignalAfter(6)

    monkeypatch.setattr(durable, "stop_on_signals", flag)
    o = tmp_path / "w.npz"
    code, _, err = run(
        "walk",
        "surface_1",
        "--at",
        "0.25,0.25",
        "--samples",
        "40",
        "--chains",
        "2",
        "--step",
        "0.05",
        "-o",
        str(o),
    )
    assert code == 143
    assert "interrupted by SIGTERM" in err and "--resume" in err
    res = load_walk(o)
    assert not res.complete and json.loads(o.with_suffix(".json").read_text())["complete"] is False
    assert 0 < len(res) < 80 and (tmp_path / "w.npz.ckpt").exists()
    assert torch.isnan(res.samples[0, -1]).all()  # unfilled rows are NaN
    monkeypatch.undo()
    code, _, err = run(
        "walk",
        "surface_1",
        "--at",
        "0.25,0.25",
        "--samples",
        "40",
        "--chains",
        "2",
        "--step",
        "0.05",
        "-o",
        str(o),
        "--resume",
    )
    assert code == 0, err
    done = load_walk(o)
    assert done.complete and len(done) == 80
    assert torch.equal(done.samples[:, :1], res.samples[:, :1])
