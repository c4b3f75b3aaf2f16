"""The command line: demo, trace, and one-line errors with exit code 2 and no files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fiberscope.cli.main import main


def test_demo_writes_csv_json_png(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--out-dir", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["class.csv", "class.json", "class.png"]
    meta = json.loads((tmp_path / "class.json").read_text())
    assert meta["closed"] is True and meta["drift"] <= 1e-9
    assert (tmp_path / "class.png").read_bytes()[:4] == b"\x89PNG"
    assert "closed" in capsys.readouterr().out


def test_trace_command_writes_everything(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    code = main(
        [
            "trace",
            "surface_2",
            "--at",
            "0.25,0.25",
            "--bounds=-1,1",
            "--step",
            "0.02",
            "-o",
            str(out),
            "--plot",
            str(tmp_path / "t.png"),
        ]
    )
    assert code == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["stop_reasons"] == {"forward": "boundary", "backward": "boundary"}
    assert meta["parameters"]["bounds"] == [[-1.0, -1.0], [1.0, 1.0]]
    assert meta["model"] == "surface_2"
    assert (tmp_path / "t.png").stat().st_size > 1000
    # existing output: refused without --force, accepted with it
    assert main(["trace", "surface_2", "--at", "0.25,0.25", "-o", str(out)]) == 2
    assert (
        main(
            [
                "trace",
                "surface_2",
                "--at",
                "0.25,0.25",
                "-o",
                str(out),
                "--force",
                "--method",
                "paper",
                "--max-steps",
                "50",
                "--direction",
                "forward",
            ]
        )
        == 0
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["method"] == "paper" and meta["points"] == 51


def test_per_axis_bounds(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    assert (
        main(
            [
                "trace",
                "surface_2",
                "--at",
                "0.25,0.25",
                "--bounds=-1,1",
                "--bounds=-0.5,0.5",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["parameters"]["bounds"] == [[-1.0, -0.5], [1.0, 0.5]]


@pytest.fixture
def bad_weights(tmp_path: Path) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text("1\n1\t2\t1\t2\tFC_LAYER_SG\n0.1 oops\n0.0\n")
    return p


CASES = [
    (["--at", "0.25"], "1 coordinates but the model takes 2"),
    (["--at", "0.25,0.25,0.1"], "3 coordinates but the model takes 2"),
    (["--at", "0.25,nan"], "non-finite coordinate"),
    (["--at", "0.25,inf"], "non-finite coordinate"),
    (["--at", "0.25,abc"], "'abc' is not a number"),
    (["--at", "0,0", "--model", "radial.py:model"], "singular point"),
    (["--at", "0.25,0.25", "--bounds=0.3,1"], "outside the bounds on axis 0"),
    (["--at", "0.25,0.25", "--bounds=1,-1"], "empty box on axis 0"),
    (["--at", "0.25,0.25", "--bounds=-1,1,2"], "LO,HI for one axis"),
    (["--at", "0.25,0.25", "--step", "0"], "step must be a positive"),
    (["--at", "0.25,0.25", "--max-steps", "0"], "max_steps must be a positive integer"),
    (["--at", "0.25,0.25", "--model", "missing.csv"], "no such model file"),
    (["--at", "0.25,0.25", "--model", "BAD"], "line 3: the weight line contains 'oops'"),
    (["--at", "0.25,0.25", "--model", "radial.py:wide"], "m = n - 1"),
    (["--at", "0.25,0.25", "--model", "radial.py:boom"], "the model raised ZeroDivisionError"),
    (["--at", "0.25,0.25", "--model", "radial.py:notensor"], "not a torch.Tensor"),
    (["--at", "0.25,0.25", "--method", "rk4"], "unknown method"),
    ([], "Missing option '--at'"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[c[1][:30] for c in CASES])
def test_bad_input_is_one_line_exit_2_no_files(
    tmp_path: Path, bad_weights: Path, capsys, args: list[str], message: str
) -> None:
    (tmp_path / "radial.py").write_text(
        "import torch\n"
        "def model(x):\n    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2)\n"
        "def wide(x):\n    return torch.cat([x, x], -1)\n"
        "def boom(x):\n    return 1 / 0\n"
        "def notensor(x):\n    return 3.0\n"
    )
    model = "surface_1"
    if "--model" in args:
        i = args.index("--model")
        model = args[i + 1]
        args = args[:i] + args[i + 2 :]
        if model == "BAD":
            model = str(bad_weights)
        elif model.startswith("radial.py"):
            model = str(tmp_path / model)
    out = tmp_path / "out" / "t.csv"
    out.parent.mkdir()
    code = main(["trace", model, *args, "-o", str(out), "--plot", str(out.with_suffix(".png"))])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    import re

    assert re.search(message, lines[0]), lines[0]
    assert list(out.parent.iterdir()) == []
