"""``python -m paper.paper3``: the quick version of the paper III reproduction, its files, the
properties its walks must have, and its refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from paper import paper3
from paper.paper3 import FILES, RELU_CASES, Report, main, run_all, write_report


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    report = run_all(quick=True, seed=0, epochs=1)
    out = tmp_path_factory.mktemp("paper3") / "out"
    write_report(report, out, dpi=50)
    return report, out


def _rows(report: Report, case: str) -> dict[str, paper3.WalkRow]:
    return {r.method: r for r in report.rows if r.case.startswith(case)}


def test_every_file_is_written_with_the_full_table(quick) -> None:
    report, out = quick
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    for name in ("relu.png", "ccpp.png", "mnist.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cases = len(RELU_CASES) + 2 + 1  # the ReLU tests, CCPP with RH and PE, MNIST
    md = (out / "table.md").read_text().splitlines()
    assert len(md) == 2 + 3 * cases
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert len(rows) == 3 * cases
    assert {r["method"] for r in rows} == {"paper", "corrected", "uniform"}
    doc = json.loads((out / "paper3.json").read_text())
    assert doc["settings"] == {"quick": True, "seed": 0, "epochs": 1}
    assert [r["residual"] for r in doc["rows"]] == [float(r["residual"]) for r in rows]
    assert set(doc["ccpp"]["networks"]) == {"rh", "pe"}
    assert doc["mnist"]["pixels_on_faces"] > 100  # why the uniform walk needs an inner start


def test_corrected_and_uniform_walks_stay_on_the_class(quick) -> None:
    report, _ = quick
    for r in report.rows:
        assert r.saved > 0, (r.case, r.method)
        if r.method == "paper":
            continue
        assert r.residual < 1e-9, (r.case, r.method, r.residual)
        if r.class_distance is not None:  # the exact classes of the ReLU/leaky tests
            assert r.class_distance < 1e-12, (r.case, r.method, r.class_distance)
    # every prediction of the corrected MNIST samples is the digit's (all 10 logits held)
    mn = _rows(report, "MNIST")
    assert set(mn["corrected"].extra["predictions"]) == {report.mnist["prediction"]}
    assert mn["corrected"].reach > 0.5  # it moved, far


def test_the_authors_walk_leaves_the_class_of_the_digit_but_not_the_flat_classes(quick) -> None:
    report, _ = quick
    mn = _rows(report, "MNIST")
    # no corrector, and the clamp to the pixel box: the logits move measurably
    assert mn["paper"].residual > 1e-3 > 1e-9 > mn["corrected"].residual
    # the ReLU/leaky classes are flat and its eigenvectors exact: it stays on them to rounding
    for case in RELU_CASES:
        r = _rows(report, case.name)["paper"]
        assert r.class_distance is not None and r.class_distance < 1e-10, (case.name, r)
        assert r.reach > 0


def test_samples_stay_in_the_box_and_cover_the_class(quick) -> None:
    report, _ = quick
    for r in report.rows:
        if r.case.startswith(("CCPP", "MNIST")):
            assert r.samples.min() >= 0.0 and r.samples.max() <= 1.0, (r.case, r.method)
    for case in RELU_CASES:
        rows = _rows(report, case.name)
        for method in ("paper", "corrected", "uniform"):
            assert rows[method].coverage is not None and rows[method].coverage > 0
        pts = rows["uniform"].samples
        np.testing.assert_allclose(case.distance(pts), 0.0, atol=1e-12)
    # the dead region's class is the half-plane x <= y: every walk stays in it
    dead = _rows(report, "relu_2d")
    for r in dead.values():
        assert (r.samples[:, 0] <= r.samples[:, 1]).all()


def test_exact_classes_of_the_tests() -> None:
    relu2, relu3, leaky2a, leaky2b, leaky3 = RELU_CASES
    assert relu2.dead and relu2.basis().shape == (2, 2)
    assert relu3.levels() == [pytest.approx(2.05)] and relu3.basis().shape == (2, 3)
    assert leaky2a.levels() == [pytest.approx(-55.0), pytest.approx(0.55)]
    assert leaky3.levels() == [pytest.approx(-0.95), pytest.approx(0.0095)]
    f = leaky2b.model()
    import torch

    x = torch.tensor([[-1.85, 1.3], [0.0315, 0.0], [-3.15, 0.0], [1.0, 1.0]], dtype=torch.float64)
    np.testing.assert_allclose(f(x)[:, 0].numpy(), [0.0315, 0.0315, 0.0315, 0.0])
    d = leaky2b.distance(x.numpy())
    np.testing.assert_allclose(d, [0.0, 0.0, 0.0, 0.0315 / np.sqrt(2)], atol=1e-15)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
        (["--epochs", "0"], "--epochs must be between 1 and 100000, got 0"),
        (["--dpi", "5000"], "--dpi must be between 50 and 600, got 5000"),
    ],
)
def test_bad_options_are_refused_in_one_line(tmp_path, capsys, args, message) -> None:
    out = tmp_path / "out"
    assert main([*args, "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_existing_files_are_not_overwritten_without_force(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "table.md").write_text("mine")
    assert main(["--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "table.md already exists (1 of the files to write do); use --force" in err
    assert (out / "table.md").read_text() == "mine" and sorted(out.iterdir()) == [out / "table.md"]
