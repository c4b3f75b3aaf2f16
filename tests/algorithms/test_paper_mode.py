"""Paper mode reproduces the authors' published outputs and an independent NumPy version."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import fiberscope as fs
from fiberscope.engine.policies.paper import eigen2x2
from reference import numpy_simec as ref

DATA = Path(__file__).resolve().parents[1] / "data" / "authors"


def _authors_rows(name: str) -> list[list[str]]:
    with (DATA / name).open() as fh:
        return list(csv.reader(fh))[1:]


_FILES = [
    ("surface_1_bad_simec_out.excerpt.csv", "surface_1", 0.0125, 200, "backward"),
    # the first 20,500 of the authors' 150,000 steps forward (every printed row up to there)
    # and the first 500 backward
    ("surface_2_simec_out_left.excerpt.csv", "W2", 1e-5, 20_500, "forward"),
    ("surface_2_simec_out_right.excerpt.csv", "W2", 1e-5, 500, "backward"),
    # all 150,000 steps: about 90 s each on one core, so outside the default run
    pytest.param(
        "surface_2_simec_out_left.excerpt.csv",
        "W2",
        1e-5,
        150_000,
        "forward",
        marks=pytest.mark.long,
    ),
    pytest.param(
        "surface_2_simec_out_right.excerpt.csv",
        "W2",
        1e-5,
        150_000,
        "backward",
        marks=pytest.mark.long,
    ),
]


@pytest.mark.parametrize("fixture, weights, step, steps, direction", _FILES)
def test_reproduces_the_authors_files_to_print_precision(
    fixture: str, weights: str, step: float, steps: int, direction: str
) -> None:
    # W2: the surface-2 network behind the authors' files (not surface_2_good_weights.csv)
    model = fs.load_model(str(DATA / "weights_surface_2.csv") if weights == "W2" else weights)
    rows = [row for row in _authors_rows(fixture) if int(row[0]) <= steps]
    assert len(rows) >= 200
    res = fs.trace(
        model, [0.25, 0.25], step=step, max_steps=steps, method="paper", direction=direction
    )
    pts = res.points if direction == "forward" else res.points.flip(0)  # row k = k steps
    for row in rows:
        k = int(row[0])
        printed = [f"{v:g}" for v in pts[k].tolist()]  # C++ ostream default = %g
        assert printed == row[1:], (k, printed, row[1:])


def test_eigen_emulation_matches_the_reference_bitwise() -> None:
    gen = np.random.default_rng(0)
    for _ in range(500):
        grad = gen.normal(size=2) * 10 ** gen.uniform(-4, 1)
        g = np.outer(grad, grad) + np.diag(gen.uniform(0, 1e-3, size=2)) * gen.integers(0, 2)
        vals, vecs = eigen2x2(g[0, 0], g[1, 0], g[1, 1])
        rvals, rvecs = ref.eig_eigen2(g)
        assert vals == rvals.tolist()
        assert vecs == rvecs.T.tolist()


@pytest.mark.parametrize("variant", [None, "clamp", "stop"])
@pytest.mark.parametrize("invert", [False, True])
def test_simec_matches_numpy_reference(variant: str | None, invert: bool) -> None:
    name = "thermodynamics"
    model = fs.load_model(name)
    layers = ref.load_paper_csv(fs.bundled_networks()[name])
    x0 = [0.10, 0.75]
    box = ([0.0, 0.0], [1.0, 1.0]) if variant else None
    kwargs = {"bounds": box, "paper_box": variant or "stop"} if variant else {}
    res = fs.trace(
        model,
        x0,
        step=0.01,
        max_steps=400,
        method="paper",
        direction="backward" if invert else "forward",
        **kwargs,
    )
    pts, energy = ref.simec_1d(layers, x0, 0.01, 400, invert=invert, box=box, variant=variant)
    ours = res.points.flip(0)[1:] if invert else res.points[1:]
    assert ours.shape == pts.shape
    np.testing.assert_allclose(ours.numpy(), pts, rtol=0, atol=1e-12)
    branch = "backward" if invert else "forward"
    # the energy sums delta * lambda_min: rounding noise of order delta * eps * |g|
    assert abs(res.energy[branch] - energy) < 1e-15
    if variant == "stop":
        assert res.stop_reasons[branch] == ("boundary" if len(pts) < 400 else "max_steps")


def test_paper_mode_drifts_like_euler(net1) -> None:
    """The authors' method drifts in proportion to the step on the circle class."""
    drifts = []
    for step in (0.02, 0.01, 0.005):
        res = fs.trace(
            net1,
            [0.25, 0.25],
            step=step,
            max_steps=int(round(2.0 / step)),
            method="paper",
            direction="forward",
        )
        drifts.append(res.drift)
    assert drifts[0] > drifts[1] > drifts[2]
    assert drifts[0] / drifts[1] == pytest.approx(2.0, rel=0.25)
    corrected = fs.trace(net1, [0.25, 0.25], step=0.02)
    assert corrected.drift < 1e-9 < drifts[-1]


def test_first_step_sign_follows_the_authors_solver() -> None:
    """On network 1 at (0.25, 0.25), LAPACK's null vector is the opposite of Eigen's."""
    net = fs.load_model("surface_1")
    x0 = torch.tensor([0.25, 0.25], dtype=torch.float64)
    res = fs.trace(net, x0, step=0.0125, max_steps=1, method="paper", direction="forward")
    g = fs.geometry.pullback_metric(net, x0)
    lapack = torch.linalg.eigh(g).eigenvectors[:, 0]
    step = res.points[-1] - x0
    assert float(step @ lapack) < 0
