"""The explore / preimage / sample commands: files, plots, and one-line errors with exit code 2
and no files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from fiberscope.cli.main import main

R_IN, R_OUT = 0.21288, 0.3369
A, B = math.exp(R_IN**2 - 2), math.exp(R_OUT**2 - 2)

MODELS = (
    "import torch\n"
    "def radial(x):\n    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2)\n"
    "def pair(x):\n    return torch.stack((x[..., 0] * x[..., 1], x[..., 0] + x[..., 1]), -1)\n"
    "def wide(x):\n    return torch.cat([x, x], -1)\n"
)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    p = tmp_path / "models.py"
    p.write_text(MODELS)
    return p


def test_preimage_of_the_annulus_with_plot(tmp_path: Path, models: Path, capsys) -> None:
    out = tmp_path / "ann.csv"
    code = main(
        [
            "preimage",
            f"{models}:radial",
            "--at",
            "0.2,0.2",
            "--interval",
            f"{A!r},{B!r}",
            "--bounds=-1,1",
            "--levels",
            "5",
            "--step",
            "0.02",
            "--resolution",
            "200",
            "-o",
            str(out),
            "--plot",
            str(tmp_path / "ann.png"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    meta = json.loads(out.with_suffix(".json").read_text())
    exact = math.pi * (R_OUT**2 - R_IN**2)
    assert meta["kind"] == "preimage" and meta["closed"] == [True] * 5
    assert abs(meta["region"]["polygon_area"] - exact) / exact < 1e-3
    assert meta["levels"][0] == [A] and meta["levels"][-1] == [pytest.approx(B, abs=1e-16)]
    assert (tmp_path / "ann.png").read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "band area (polygon)" in text and "wrote" in text


def test_preimage_paper_mode(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    code = main(
        [
            "preimage",
            "surface_1",
            "--at",
            "0.2,0.2",
            "--interval",
            "0.146,0.150",
            "--bounds=-1,1",
            "--method",
            "paper",
            "--nst",
            "2",
            "--max-steps",
            "30",
            "--exp-step",
            "1e-3",
            "--resolution",
            "100",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["method"] == "paper" and len(meta["levels"]) == 4
    assert len(meta["final_outputs"]) == 2 and meta["sweeps"] == [0, 0, 1, 1]


def test_classifier_flip_on_the_paper_binary_network(tmp_path: Path, capsys) -> None:
    out = tmp_path / "flip.csv"
    code = main(
        [
            "explore",
            "binary",
            "--at",
            "0,-0.01499",
            "--flip",
            "--threshold",
            "0.5",
            "--beyond",
            "0.1",
            "--bounds=-3.14,3.14",
            "--bounds=-1,1.5",
            "-o",
            str(out),
            "--plot",
            str(tmp_path / "flip.png"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["decision_start"] == 1 and meta["decision_flip"] == 0
    assert abs(meta["boundary_output"] - 0.5) < 1e-12 and abs(meta["flip_output"] - 0.4) < 1e-12
    assert 0 < meta["closest_distance"] <= meta["boundary_length"]
    assert meta["model"] == "binary"
    assert (tmp_path / "flip.png").stat().st_size > 1000


def test_explore_to_a_level_and_sample(tmp_path: Path) -> None:
    out = tmp_path / "e.csv"
    assert (
        main(
            [
                "explore",
                "surface_1",
                "--at",
                "0.25,0.25",
                "--to",
                "0.2",
                "--bounds=-1,1",
                "-o",
                str(out),
                "--plot",
                str(tmp_path / "e.png"),
            ]
        )
        == 0
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["reached"] and meta["residual"] <= 1e-12
    assert (
        main(
            [
                "explore",
                "surface_1",
                "--at",
                "0.25,0.25",
                "--epsilon",
                "0.002",
                "--method",
                "paper",
                "--step",
                "1e-3",
                "-o",
                str(out),
                "--force",
            ]
        )
        == 0
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["method"] == "paper" and meta["parameters"]["epsilon"] == 0.002
    s = tmp_path / "s.csv"
    assert (
        main(
            [
                "sample",
                "surface_2",
                "--at",
                "0.25,0.25",
                "-n",
                "25",
                "--bounds=-1,1",
                "-o",
                str(s),
                "--plot",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )
    assert len(s.read_text().splitlines()) == 26
    assert json.loads(s.with_suffix(".json").read_text())["residual"] <= 1e-12


CASES = [
    (
        ["preimage", "surface_1", "--at", "0.2,0.2", "--interval", "0.2,0.3", "--bounds=-1,1"],
        "does not contain N\\(x0\\)",
    ),
    (
        ["preimage", "surface_1", "--at", "0.2,0.2", "--interval", "0.16,0.14", "--bounds=-1,1"],
        "empty interval",
    ),
    (["preimage", "surface_1", "--at", "0.2,0.2", "--interval", "0.14,0.16"], "needs --bounds"),
    (
        [
            "preimage",
            "surface_1",
            "--at",
            "0.2,0.2",
            "--interval",
            "0.147,0.5",
            "--bounds=-0.3,0.3",
        ],
        "closest output reached is .* at \\(",
    ),
    (["preimage", "M:pair", "--at", "0.2,0.2", "--interval", "0,1", "--bounds=-1,1"], "output map"),
    (
        ["explore", "surface_1", "--at", "0.25,0.25", "--to", "0.9", "--bounds=-1,1"],
        "cannot reach the target level 0.9 inside the box: the closest output reached is",
    ),
    (["explore", "M:pair", "--at", "0.2,0.3", "--to", "0.5"], "needs a scalar output.*--output"),
    (["explore", "binary", "--at", "0,-0.01499", "--flip"], "--flip needs --threshold"),
    (["explore", "M:pair", "--at", "0.2,0.3", "--flip", "--threshold", "0"], "output map"),
    (["explore", "surface_1", "--at", "0.25,0.25"], "give --to LEVEL"),
    (
        ["explore", "surface_1", "--at", "0.25,0.25", "--to", "0.2", "--output", "logits[3]"],
        "out of range",
    ),
    (
        ["explore", "surface_1", "--at", "0,0", "--to", "0.2", "--output", "bogus"],
        "not a selection",
    ),
    (["sample", "M:wide", "--at", "0.2,0.3"], "m = n - 1"),
    (["sample", "surface_1", "--at", "0.25,0.25", "-n", "1"], "n must be at least 2"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[c[1][:28] for c in CASES])
def test_bad_input_is_one_line_exit_2_no_files(
    tmp_path: Path, models: Path, capsys, args: list[str], message: str
) -> None:
    args = [str(models) + a[1:] if a.startswith("M:") else a for a in args]
    out = tmp_path / "out" / "x.csv"
    out.parent.mkdir()
    code = main([*args, "-o", str(out), "--plot", str(out.with_suffix(".png"))])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(message, lines[0]), lines[0]
    assert list(out.parent.iterdir()) == []


def test_existing_output_is_kept_without_force(tmp_path: Path, capsys) -> None:
    out = tmp_path / "e.csv"
    out.write_text("keep me\n")
    code = main(["explore", "surface_1", "--at", "0.25,0.25", "--to", "0.2", "-o", str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err
    assert out.read_text() == "keep me\n" and not out.with_suffix(".json").exists()
