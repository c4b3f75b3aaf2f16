"""What a new user tripped on at the command line (issue 8, items 1, 3, 5, 8-11) and the shape of
the cli package (no import circles)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import model_files as mf
from fiberscope.cli.main import main

F32 = """
import torch
from torch import nn

def Net():
    # PyTorch's default dtype: float32
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

class Slice(nn.Module):
    # R^3 -> R^2, float32: classes are circles in the planes x2 = const
    def forward(self, x):
        return torch.stack(((x ** 2).sum(-1), x[..., 2]), -1)

def warns(x):
    import warnings
    warnings.warn("install it with pip install 'fiberscope[onnx]'")
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)
"""
VERBS = {
    "trace": [],
    "explore": ["--to", "-0.15"],
    "preimage": ["--interval", "-0.22,-0.18", "--levels", "3", "--resolution", "40"],
    "sample": ["-n", "8"],
}


@pytest.fixture
def models(tmp_path: Path) -> Path:
    p = tmp_path / "nets.py"
    p.write_text(F32)
    return p


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ---------------------------------------------------------------- float32 models, 3-D plots
@pytest.mark.parametrize("verb", sorted(VERBS))
def test_float32_model_file_with_a_plot(verb: str, models: Path, tmp_path: Path, capsys) -> None:
    """Every heat map failed with 'mat1 and mat2 must have the same dtype' for float32 models."""
    out, png = tmp_path / "r.csv", tmp_path / "r.png"
    args = [verb, f"{models}:Net", "--at", "0.3,-0.2", "--bounds=-1,1", *VERBS[verb]]
    code, _, err = _run([*args, "-o", str(out), "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG" and out.exists()


def test_sample_plot_of_a_3d_model_is_written(models: Path, tmp_path: Path, capsys) -> None:
    """`sample --plot` on a 3-D model used to write no figure at all."""
    out, png = tmp_path / "s.csv", tmp_path / "s.png"
    args = ["sample", f"{models}:Slice", "--at", "0.3,0.1,0.2", "-n", "10"]
    code, stdout, err = _run([*args, "-o", str(out), "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG" and str(png) in stdout


# ---------------------------------------------------------------- one set of model options
def test_every_model_command_takes_the_same_model_options() -> None:
    from fiberscope.cli.main import command

    cmd = command()
    with_model = {
        name: sub
        for name, sub in cmd.commands.items()
        if any(p.name == "model" for p in sub.params)
    }
    assert set(with_model) == {
        "trace",
        "explore",
        "preimage",
        "sample",
        "walk",
        "traverse",
        "confuse",
    }
    for name, sub in with_model.items():
        opts = {o for p in sub.params for o in p.opts}
        assert {"--arch", "--format", "--output", "-o", "--plot", "--force"} <= opts, name


@pytest.mark.parametrize("verb", ["explore", "sample"])
def test_weights_with_arch_on_every_verb(verb: str, tmp_path: Path, capsys) -> None:
    weights = mf.write(tmp_path / "w.safetensors", mf.safetensors_bytes())
    args = [verb, str(weights), "--arch", "model_files:small_net", "--format", "safetensors"]
    args += ["--bounds=-1,1"]
    extra = ["--to", "2.7"] if verb == "explore" else ["-n", "5"]
    code, _, err = _run([*args, "--at", "0.3,-0.2", *extra, "-o", str(tmp_path / "o.csv")], capsys)
    assert code == 0, err
    meta = json.loads((tmp_path / "o.json").read_text())
    assert meta["arch"] == "model_files:small_net" and meta["format"] == "safetensors"


# ---------------------------------------------------------------- help, messages
def test_bare_command_prints_the_help_and_no_empty_error(capsys) -> None:
    code, out, err = _run([], capsys)
    assert code == 0
    assert "Usage: fiberscope" in out and err == "" and "error:" not in out


@pytest.mark.parametrize("verb", ["", "trace", "explore", "preimage", "sample", "walk", "demo"])
def test_help_shows_metavars_not_python_types(verb: str, capsys) -> None:
    code, out, _ = _run([verb, "--help"] if verb else ["--help"], capsys)
    assert code == 0
    for junk in ("<bool>", "<list[str]>", "<path>", "--no-force"):
        assert junk not in out, junk
    if verb == "explore":
        assert "LO,HI" in out and "--flip " in out


def test_markup_in_messages_is_printed_as_written(models: Path, tmp_path: Path, capsys) -> None:
    code, _, err = _run(["trace", "surface_1", "--at", "0.25,0.25", "--output", "[onnx]"], capsys)
    assert code == 2 and "[onnx]" in err
    out = tmp_path / "[bold]x.csv"
    args = ["trace", f"{models}:warns", "--at", "0.25,0.25", "--max-steps", "3", "-o", str(out)]
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    assert "pip install 'fiberscope[onnx]'" in err
    assert f"wrote {out}," in stdout


# ---------------------------------------------------------------- progress
def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path, capsys, monkeypatch) -> None:
    """Long runs printed nothing at all when stderr was not a terminal (logs, CI, nohup)."""
    import fiberscope.cli.common as common

    monkeypatch.setattr(common, "PLAIN_PROGRESS_EVERY", 0.0)
    out = tmp_path / "t.csv"
    code, _, err = _run(["trace", "surface_1", "--at", "0.25,0.25", "-o", str(out)], capsys)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("tracing (corrected): ")]
    assert len(lines) >= 3 and lines[0].endswith(" s") and " steps" in lines[0]


def test_no_progress_lines_for_short_runs(tmp_path: Path, capsys) -> None:
    code, _, err = _run(
        ["trace", "surface_1", "--at", "0.25,0.25", "-o", str(tmp_path / "t.csv")], capsys
    )
    assert code == 0 and err == ""


# ---------------------------------------------------------------- startup
def _modules_after(code: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(proc.stdout.split())


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_torch_nor_matplotlib(flag: str) -> None:
    mods = _modules_after(
        "import contextlib, io\nfrom fiberscope.cli.main import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['{flag}']) == 0"
    )
    assert "torch" not in mods and "matplotlib" not in mods


# ---------------------------------------------------------------- package shape
def test_cli_modules_import_without_circles() -> None:
    """Command modules import the shared module, the package imports the command modules;
    nothing imports back up (cli/main.py and its siblings used to import each other)."""
    import fiberscope.cli

    folder = Path(fiberscope.cli.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        name = path.stem
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
        graph[name] = deps & {p.stem for p in folder.glob("*.py")}
    assert "common" in graph and graph["common"] == set()

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert node not in stack, " -> ".join((*stack, node))
        for dep in graph.get(node, ()):
            visit(dep, (*stack, node))

    for start in graph:
        visit(start, ())
