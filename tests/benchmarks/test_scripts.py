"""Smoke tests of the benchmark scripts: each runs in its ``--quick`` mode and writes its table.

Speed is never asserted here (timings belong to the benchmarks' tables); these tests check that
the scripts run end to end, write the table where they are told (never over
``benchmarks/results``), and state each target's verdict.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_trace_loop_quick_without_the_authors_code(tmp_path):
    done = _run("trace_loop.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "trace_loop.md").read_text()
    assert "fastest closing, drift <= 1e-9" in text
    assert "corrected step 0.05 max_angle 0.3" in text
    assert "C++ rows left out" in text  # no --cpp-src / --cpp-build given
    assert "# G1: one loop of network 1's circle class" in done.stdout  # printed too


@pytest.mark.long  # ResNet-18 and the authors' walk: ~25 s unloaded, minutes on a busy machine
def test_nd_step_quick(tmp_path):
    done = _run("nd_step.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "nd_step.md").read_text()
    for needle in ("## G2", "## G3", "## G5", "walk, method='paper'", "ResNet-18", "**G3 "):
        assert needle in text
    assert "**G2 (1 thread, CPU time) " in text and "**G2 (2 threads, wall time) " in text


def test_batch_quick(tmp_path):
    done = _run("batch.py", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "batch.md").read_text()
    assert "| trace batch 64 | 64 |" in text and "| walk chains 64 | 64 |" in text
    assert "**G4 network 1 traces: " in text and "**G4 MNIST CNN walks: " in text


def test_gpu_without_cuda_says_so_and_writes_nothing(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    done = _run("gpu.py", "--out", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines() == [
        "gpu.py: no CUDA device here (torch.cuda.is_available() is False); nothing measured, "
        "no table written: run it on a machine with a CUDA GPU (--device cpu --quick checks "
        "its code paths on the CPU)"
    ]
    assert not any(tmp_path.iterdir())


def test_gpu_code_paths_on_the_cpu(tmp_path):
    done = _run("gpu.py", "--device", "cpu", "--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "gpu.md").read_text()
    assert "# GPU check: G3, G4, G5 on CPU" in text
    assert "## G4: 64 starts at once against 4 one at a time" in text


def test_build_authors_cpp_refuses_folders_inside_the_repository(tmp_path):
    inside = ROOT / "benchmarks"
    done = _run("build_authors_cpp.py", str(tmp_path), "--out", str(inside / "cpp-build"))
    assert done.returncode != 0
    assert "does not hold the authors' Makefile" in done.stderr  # checked first: empty src
    (tmp_path / "Makefile").write_text("make:\n\ttrue\n")
    (tmp_path / "neural_network.cpp").write_text("// placeholder\n")
    done = _run("build_authors_cpp.py", str(tmp_path), "--out", str(inside / "cpp-build"))
    assert done.returncode != 0
    assert "inside the fiberscope repository" in done.stderr
    assert not (inside / "cpp-build").exists()


def test_op_count_quick(tmp_path):
    done = _run("op_count.py", "--quick", "--top", "3", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "op_count.md").read_text()
    assert "| MLP 784 walk (corrected) | 20 |" in text
    # calls are charged to fiberscope's own functions (the engine's among them)
    assert "| engine/corrector.py:" in text and "| geometry/jacobian.py:" in text


@pytest.mark.long  # ~40 s: 16 fresh processes, two of them importing torch and tracing
def test_startup_one_round(tmp_path):
    done = _run("startup.py", "--repeats", "1", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    text = (tmp_path / "startup.md").read_text()
    assert "| `fiberscope trace surface_1 --at 0.25,0.25 --step 0.1` |" in text
    assert "**Issue 14 item 4 (startup): wall time " in text
    assert "load average" in text
    assert not (tmp_path / "loop.csv").exists()  # the trace writes into its own temporary folder
