"""Fuzz the model loaders with seeded mutations of valid files.

Every mutated file must either load (and then trace, or fail with a documented one-line
error) or be refused with a :class:`~fiberscope.errors.FiberscopeError`. Anything else (an
unexpected exception, a traceback, a trace that drifts off its level) fails the test and names
the case, which :func:`fuzz_mutations.case` rebuilds from its seed and index.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

import fiberscope as fs
import fuzz_mutations as fz
import model_files as mf
from fiberscope.models import load_model
from fiberscope.models.registry import bundled_networks

#: ONNX suites skip (not fail) without onnx and onnx2torch, which are optional.
needs_onnx = pytest.mark.skipif(
    not mf.onnx_available(), reason="onnx and onnx2torch are not installed (optional)"
)


def _csv() -> str:
    return bundled_networks()["surface_1"].read_text()


# name: (suffix, base file, mutation, seed, number of cases, start point)
SUITES = {
    "csv-bytes": (".csv", lambda: _csv().encode(), fz.mutate_bytes, 1, 1000, [0.25, 0.25]),
    "csv-tokens": (".csv", _csv, fz.mutate_csv_text, 2, 1000, [0.25, 0.25]),
    "onnx-bytes": (".onnx", mf.onnx_bytes, fz.mutate_bytes, 3, 800, mf.X0),
    "onnx-graph": (".onnx", mf.onnx_bytes, fz.mutate_onnx_graph, 4, 400, mf.X0),
    "pt2-bytes": (".pt2", lambda: mf.fuzz_base("small_net.pt2"), fz.mutate_bytes, 5, 300, mf.X0),
    "torchscript-bytes": (
        ".pt",
        lambda: mf.fuzz_base("small_net.pt"),
        fz.mutate_bytes,
        6,
        300,
        mf.X0,
    ),
    "safetensors-bytes": (".safetensors", mf.safetensors_bytes, fz.mutate_bytes, 7, 300, mf.X0),
}
TOTAL_CASES = 4100


def test_the_fuzz_run_has_the_documented_size() -> None:
    assert sum(s[4] for s in SUITES.values()) == TOTAL_CASES


@pytest.mark.parametrize("name", ["small_net.pt", "small_net.pt2"])
def test_the_committed_fuzz_bases_still_load(tmp_path: Path, name: str) -> None:
    """If a new torch cannot read them, rebuild them: python tests/model_files.py"""
    model = load_model(mf.write(tmp_path / name, mf.fuzz_base(name)))
    assert float((model(mf.example()) - mf.small_net()(mf.example())).abs().max()) == 0.0


@pytest.mark.parametrize(
    "suite", [pytest.param(n, marks=needs_onnx) if "onnx" in n else n for n in sorted(SUITES)]
)
def test_mutated_files_load_or_fail_with_a_documented_error(
    tmp_path: Path, suite: str, capfd, caplog
) -> None:
    suffix, base, mutate, seed, count, x0 = SUITES[suite]
    arch = mf.small_net if suffix == ".safetensors" else None
    outcome: Counter[str] = Counter()
    crashes: list[str] = []
    for i, data in fz.cases(base(), mutate, count, seed):
        path = tmp_path / f"case{i}{suffix}"
        path.write_bytes(data)
        try:
            model = load_model(path, arch=arch)
        except fs.FiberscopeError as exc:
            outcome["refused"] += 1
            if "\n" in str(exc) or not str(exc):
                crashes.append(f"{suite}[{i}]: malformed message {str(exc)!r}")
            continue
        except BaseException as exc:  # anything else is a bug
            crashes.append(f"{suite}[{i}]: load raised {type(exc).__name__}: {exc}"[:300])
            continue
        outcome["loaded"] += 1
        try:
            res = fs.trace(model, x0, step=0.05, max_steps=10)
        except fs.FiberscopeError:
            outcome["trace refused"] += 1
            continue
        except BaseException as exc:
            crashes.append(f"{suite}[{i}]: trace raised {type(exc).__name__}: {exc}"[:300])
            continue
        outcome["traced"] += 1
        scale = max(1.0, float(res.y0.abs().max()))  # mutated weights can be ~1e18
        if not res.drift <= 1e-9 * scale:
            crashes.append(f"{suite}[{i}]: traced with drift {res.drift:.3g} at scale {scale:.3g}")
        path.unlink()
    assert not crashes, "\n".join(crashes[:20])
    # nothing reached the terminal either (libraries log through handlers bound to fd 2)
    assert "Traceback" not in capfd.readouterr().err
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not logged, [f"{r.name}: {r.getMessage()[:100]}" for r in logged[:5]]
    assert outcome["refused"] + outcome["loaded"] == count
    # the fuzzer reaches both sides: files that still load and files that are refused
    assert outcome["refused"] > count // 2 and outcome["loaded"] > 0, dict(outcome)
