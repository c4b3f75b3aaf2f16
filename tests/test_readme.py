"""The README's Python examples run as written (each block in a fresh namespace, in order)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = "<!-- readme-test: skip"


def python_blocks() -> list[tuple[int, str]]:
    """``(line, code)`` of every fenced Python block not marked to be skipped."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        before = text[: m.start()].rstrip().splitlines()
        if before and before[-1].startswith(SKIP):
            continue
        blocks.append((text[: m.start()].count("\n") + 1, m.group(1)))
    return blocks


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 3


def test_readme_blocks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # the user's own image file that the README reads: a bundled test digit as a PNG
    from PIL import Image

    from fiberscope.models.zoo import mnist_digits

    pixels = (mnist_digits()[0][0, 0] * 255).round().to(torch.uint8).numpy()
    Image.fromarray(pixels, mode="L").save(tmp_path / "digit.png")
    namespace: dict = {}  # the blocks build on one another (net, res), as in a notebook
    for line, code in python_blocks():
        exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "class.csv").is_file() and (tmp_path / "walk.npz").is_file()


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    commands = re.findall(r"```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), re.S)
    assert ci in commands, "the README's test command and .ci/run differ"
    assert "pytest" in ci and "torch==2.13.0" in ci
