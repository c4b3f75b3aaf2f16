"""``python -m paper.reproduce``: fast versions of the six experiments of paper II, their error
measures, and the command line."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import fiberscope as fs
from paper import metrics as M
from paper.reproduce import main
from paper.runner import (
    Reproduction,
    report_files,
    report_json,
    run_experiments,
    table_csv,
    table_markdown,
    write_report,
)
from paper.specs import EXPERIMENTS, ThermoScale, resolve_experiments


@pytest.fixture(scope="module")
def rep() -> Reproduction:
    return run_experiments(resolve_experiments(None), fast=True)


def _runs(rep: Reproduction, key: str) -> dict:
    ex = next(e for e in rep.experiments if e.spec.key == key)
    return {(r.network, r.method): r for r in ex.runs}


def _nets(rep: Reproduction, key: str) -> dict:
    ex = next(e for e in rep.experiments if e.spec.key == key)
    return {n.label: n for n in ex.networks}


def _on_level(run, floor_factor: float = 5.0) -> None:
    """Corrected runs: on the level to rounding, and on the network's own contours to the
    grid's resolution."""
    m = run.metrics
    assert m["drift"] < 1e-10, m["drift"]
    assert m["d_level_set"] < floor_factor * m["contour_floor"] + 1e-12, (
        m["d_level_set"],
        m["contour_floor"],
    )


# --------------------------------------------------------------------------------------------
# The experiments (fast mode)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_all_six_run_on_both_networks(rep) -> None:
    assert [e.spec.number for e in rep.experiments] == [1, 2, 3, 4, 5, 6]
    for ex in rep.experiments:
        labels = [n.label for n in ex.networks]
        assert labels[0] == "paper" and labels[-1] == "trained"
        assert len(ex.runs) == 2 * len(labels)
        for run in ex.runs:
            assert run.steps > 0 and run.wall_time >= 0.0 and run.curves


@pytest.mark.slow
def test_compact_paper_mode_spirals_out_and_corrected_closes(rep) -> None:
    r = _runs(rep, "compact")
    paper, corr = r["paper", "paper"], r["paper", "corrected"]
    # Euler steps on circles: r_k^2 = r0^2 + k delta^2 (here 200 steps of 0.0125)
    c = paper.curves[0].tracing_order()
    r_end = float(np.linalg.norm(c[-1]))
    predicted = math.sqrt(0.25**2 + 0.25**2 + 200 * 0.0125**2)
    assert abs(r_end - predicted) < 0.02, (r_end, predicted)
    assert 3e-3 < paper.metrics["drift"] < 7e-3  # method.md: 4.5e-3
    assert paper.metrics["closure_gap"] > 0.02
    assert not paper.curves[0].closed
    assert corr.curves[0].closed and corr.metrics["closure_gap"] == 0.0
    _on_level(corr)
    # the authors' trace is far off the network's own level set, the corrected one is not
    assert paper.metrics["d_level_set"] > 100 * corr.metrics["d_level_set"]
    # model error: the network's circle is not exactly |x| = |x0|
    assert 1e-3 < corr.metrics["d_analytic"] < 0.05


@pytest.mark.slow
def test_noncompact_exit_points_on_the_box(rep) -> None:
    r = _runs(rep, "noncompact")
    net = _nets(rep, "noncompact")["paper"].model
    corr = r["paper", "corrected"]
    _on_level(corr)
    exits = np.array(corr.metrics["exits"])
    assert exits.shape == (2, 2)
    assert np.allclose(np.sort(np.abs(exits[:, 0])), [1.0, 1.0], atol=1e-9)
    with torch.no_grad():
        y = net(torch.from_numpy(exits)).reshape(-1).numpy()
    assert np.abs(y - corr.curves[0].level).max() < 1e-10
    # analytic parabola y = 0.3125 - x^2 leaves at y = -0.6875; the network is close
    assert np.abs(exits[:, 1] + 0.6875).max() < 0.05
    # the unbounded paper run crosses x = 1 near the corrected exit (fast: delta 1e-3)
    paper = r["paper", "paper"]
    right = [e for e in paper.metrics["exits"] if abs(e[0] - 1.0) < 1e-9]
    assert right and abs(right[0][1] - exits[exits[:, 0] > 0][0, 1]) < 0.01


@pytest.mark.slow
def test_thermo_isotherms_and_pv_spread(rep) -> None:
    r = _runs(rep, "thermo")
    for label in ("paper", "paper softplus", "trained"):
        corr, paper = r[label, "corrected"], r[label, "paper"]
        _on_level(corr)
        assert paper.metrics["drift"] > 1e-5
        exits = np.array(corr.metrics["exits"])
        assert exits.shape == (2, 2)
        on_face = np.isclose(exits, 0.0, atol=1e-9) | np.isclose(exits, 1.0, atol=1e-9)
        assert on_face.any(axis=1).all()
    # the paper's gas networks learned the isotherm to about a percent of PV
    assert r["paper", "corrected"].metrics["pv_spread"] < 0.02
    assert r["paper softplus", "corrected"].metrics["pv_spread"] < 0.03


@pytest.mark.slow
def test_thermo_softplus_output_is_mapped_to_normalised_temperature(rep) -> None:
    nets = _nets(rep, "thermo")
    x = torch.tensor([[0.10, 0.75]], dtype=torch.float64)
    with torch.no_grad():
        a = float(nets["paper"].model(x))
        b = float(nets["paper softplus"].model(x))
    # both near T = PV/R = 631.5 K on the nominal scale
    T = ThermoScale().T_of_t
    assert abs(T(a) - 631.5) < 10 and abs(T(b) - 631.5) < 10


@pytest.mark.slow
def test_annulus_band(rep) -> None:
    r = _runs(rep, "annulus")
    corr, paper = r["paper", "corrected"], r["paper", "paper"]
    m = corr.metrics
    _on_level(corr)
    assert abs(m["coverage"] - 1.0) < 1e-9
    assert m["closed_levels"] == m["levels"]
    assert m["boundary_d_level_set"] < 5 * m["contour_floor"]
    assert abs(m["band_area"] - m["target_area"]) < 1e-12
    # the analytic annulus: pi (r_hi^2 - r_lo^2) with exp(r^2 - 2) = exp(0.08 - 2) +- 0.005
    y0 = math.exp(0.08 - 2.0)
    r_lo, r_hi = math.sqrt(2 + math.log(y0 - 0.005)), math.sqrt(2 + math.log(y0 + 0.005))
    assert abs(r_lo - 0.21288) < 2e-3 and abs(r_hi - 0.3369) < 2e-3  # the paper's radii
    exact = math.pi * (r_hi**2 - r_lo**2)
    assert abs(m["analytic_area"] - exact) / exact < 0.03
    # the authors' driver never traces the last level it reaches and goes round and round
    assert paper.metrics["coverage"] < 1.0
    assert paper.metrics["max_turns"] > 1.5
    assert paper.metrics["levels"] == 2 * EXPERIMENTS["annulus"].fast_paper["nst"]


@pytest.mark.slow
def test_isotherm_family(rep) -> None:
    r = _runs(rep, "isotherms")
    corr = r["paper", "corrected"]
    _on_level(corr)
    m = corr.metrics
    assert abs(m["coverage"] - 1.0) < 1e-9
    sc = ThermoScale()
    assert abs(m["interval"][0] - sc.t_of_T(528.5)) < 1e-12
    assert abs(m["interval"][1] - sc.t_of_T(628.5)) < 1e-12
    # model error of the paper's gas network: well below the band's width
    assert m["boundary_d_analytic"] < 0.02 and m["d_analytic"] < 0.02


@pytest.mark.slow
def test_classifier(rep) -> None:
    r = _runs(rep, "classifier")
    nets = _nets(rep, "classifier")
    assert nets["paper"].x0 == EXPERIMENTS["classifier"].x0
    with torch.no_grad():
        y = float(nets["trained"].model(torch.tensor([nets["trained"].x0], dtype=torch.float64)))
    assert abs(y - 0.504) < 1e-9
    for label in ("paper", "trained"):
        corr = r[label, "corrected"]
        _on_level(corr)
        assert abs(corr.metrics["coverage"] - 1.0) < 1e-9
        for run in (corr, r[label, "paper"]):
            assert 0.0 <= run.metrics["correct_side"] <= 1.0
            assert 0.0 <= run.metrics["band_correct_side"] <= 1.0


# --------------------------------------------------------------------------------------------
# Tables and files
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tables_and_json(rep) -> None:
    rows = list(csv.DictReader(io.StringIO(table_csv(rep))))
    assert len(rows) == sum(len(e.runs) for e in rep.experiments)
    assert {"drift", "d_level_set", "d_analytic", "closure_gap", "exits", "pv_spread"} <= set(
        rows[0]
    )
    md = table_markdown(rep)
    for ex in rep.experiments:
        assert f"| {ex.spec.number} {ex.spec.key} |" in md
    data = json.loads(json.dumps(report_json(rep)))
    assert data["fast"] is True and len(data["experiments"]) == 6


@pytest.mark.slow
def test_write_report_is_complete(rep, tmp_path) -> None:
    sub = Reproduction(rep.experiments[:1], rep.fast, rep.seed, rep.seconds)
    written = write_report(sub, tmp_path)
    assert sorted(p.name for p in written) == sorted(report_files([sub.experiments[0].spec]))
    for p in written:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))


# --------------------------------------------------------------------------------------------
# Error measures
# --------------------------------------------------------------------------------------------


def test_point_to_polyline_fast_path_is_exact() -> None:
    rng = np.random.default_rng(1)
    t = np.linspace(0.0, 2 * np.pi, 3001)
    line = np.column_stack((0.3 * np.cos(t), 0.2 * np.sin(t)))
    pts = rng.uniform(-0.4, 0.4, (500, 2))
    fast = M.point_to_polyline(pts, line)
    brute = M._brute_distance(pts, line[:-1], line[1:] - line[:-1], 64)
    assert np.array_equal(fast, brute)


def test_analytic_distances_against_dense_polylines() -> None:
    rng = np.random.default_rng(2)
    pts = rng.uniform(-1.0, 1.0, (150, 2))
    par = M.Parabola(0.3125)
    dense = par.polyline(((-3.0, 0.0), (3.0, 0.0)), 100_001)
    assert np.abs(par.distance(pts) - M.point_to_polyline(pts, dense)).max() < 1e-8
    sine = M.SineCurve(0.5)
    dense = sine.polyline(((-4.0, 0.0), (4.0, 0.0)), 100_001)
    assert np.abs(sine.distance(pts) - M.point_to_polyline(pts, dense)).max() < 1e-8
    iso = ThermoScale().isotherm(600.0)
    q = rng.uniform(0.0, 1.0, (150, 2))
    dense = iso.polyline(((-0.3, 0.0), (2.0, 0.0)), 200_001)
    assert np.abs(iso.distance(q) - M.point_to_polyline(q, dense)).max() < 1e-7
    # points on the curve are at distance ~0
    v = rng.uniform(0.05, 0.95, 50)
    on = np.column_stack((v, iso.p_of_v(v)))
    assert iso.distance(on).max() < 1e-12
    assert np.allclose(M.Circle(0.5).distance(np.array([[0.3, 0.4], [0.0, 0.2]])), [0.0, 0.3])


def test_shape_measures() -> None:
    t = np.linspace(0.0, 2.2 * np.pi, 500)
    spiral = np.column_stack(((1 + 0.01 * t) * np.cos(t), (1 + 0.01 * t) * np.sin(t)))
    gap = M.closure_gap(spiral, spiral[0])
    assert abs(gap - 0.01 * 2 * np.pi) < 1e-3
    assert M.closure_gap(spiral, spiral[0], closed=True) == 0.0
    assert abs(M.turns(spiral, 0) - 1.1) < 1e-9
    line = np.array([[0.0, 0.0], [0.5, 0.5], [1.5, 0.5], [1.5, 2.0]])
    exits = M.box_exits(line, ((-1.0, -1.0), (1.0, 1.0)))
    assert exits == [(1.0, 0.5)]
    xs = ys = np.linspace(-1, 1, 801)
    z = np.hypot(*np.meshgrid(xs, ys))
    assert abs(M.band_area(xs, ys, z, 0.0, 0.5) - np.pi * 0.25) < 0.01
    pv = M.pv_spread(np.array([[0.0, 1.0], [1.0, 0.0]]), (1.0, 2.0), (1.0, 2.0))
    assert pv == 0.0


def test_resolve_experiments() -> None:
    assert [s.key for s in resolve_experiments(["6", "compact", "1"])] == ["compact", "classifier"]
    assert len(resolve_experiments(["all"])) == 6
    with pytest.raises(fs.InputError, match="unknown experiment 'seven'"):
        resolve_experiments(["seven"])


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_reproduce_one_experiment(tmp_path, capsys) -> None:
    out = tmp_path / "res"
    code = main(["compact", "--fast", "--networks", "paper", "--jobs", "1", "--out", str(out)])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(report_files([EXPERIMENTS["compact"]]))
    table = (out / "table.md").read_text()
    assert "| 1 compact | paper | paper |" in table and "| 1 compact | paper | corrected |" in table
    assert "trained" not in table
    cap = capsys.readouterr()
    assert "| 1 compact | paper | corrected |" in cap.out
    # progress goes to stderr as plain lines although it is not a terminal
    err = cap.err.splitlines()
    assert any("[1] paper network: paper mode (fs.trace" in ln for ln in err), err
    assert any("figure exp1_compact.png" in ln for ln in err)
    assert all(re.match(r"\[ *\d+\.\d s\] ", ln) for ln in err), err
    # a second run refuses to overwrite without --force
    assert main(["1", "--fast", "--networks", "paper", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["seven"], "unknown experiment 'seven'"),
        (["1", "--networks", "mine"], "unknown network kind 'mine'"),
        (["1", "--epochs", "0"], "--epochs must be between 1 and"),
        (["1", "--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
        (["1", "--seed", str(10**30)], "--seed must be between 0 and 4294967295"),
        (["1", "--seed", "abc"], "Invalid value for '--seed'"),
        (["1", "--dpi", "5000"], "--dpi must be between 50 and 600"),
        (["1", "--jobs", "0"], "--jobs must be between 1 and 64, got 0"),
        (["1", "--bogus"], "No such option: --bogus"),
    ],
)
def test_cli_reproduce_bad_input_writes_nothing(tmp_path, capsys, args, message) -> None:
    out = tmp_path / "never"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _out_cases(tmp_path):
    afile = tmp_path / "afile.txt"
    afile.write_text("keep me")
    return {
        "file": (afile, "is a file, not a folder"),
        "under-file": (afile / "sub", "afile.txt is a file, not a folder"),
        "no-parent": (tmp_path / "missing" / "out", "does not exist; create it first"),
    }


@pytest.mark.parametrize("case", ["file", "under-file", "no-parent"])
def test_cli_reproduce_bad_out_is_refused_before_training(tmp_path, capsys, case) -> None:
    out, message = _out_cases(tmp_path)[case]
    assert main(["1", "--fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    # nothing ran: no progress line, no training, the file untouched, nothing created
    assert "training" not in err
    assert (tmp_path / "afile.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_cli_reproduce_unwritable_out_is_refused(capsys) -> None:
    # /proc refuses new files even for root (permission bits do not stop root)
    out = Path("/proc/paper-reproduce-test")
    assert main(["1", "--fast", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write into /proc" in err and len(err.strip().splitlines()) == 1, err


def test_cli_error_messages_are_not_eaten_as_markup(tmp_path, capsys) -> None:
    # a [bracketed] folder name must be printed as given, not read as rich markup
    out = tmp_path / "[bold]x" / "out"
    assert main(["1", "--fast", "--out", str(out)]) == 2
    assert "[bold]x" in capsys.readouterr().err


@pytest.mark.slow
def test_worker_processes_give_the_same_numbers() -> None:
    specs = resolve_experiments(["compact", "isotherms"])
    seq = run_experiments(specs, fast=True, networks=["paper"])
    par = run_experiments(specs, fast=True, networks=["paper"], jobs=2)
    a = list(csv.DictReader(io.StringIO(table_csv(seq))))
    b = list(csv.DictReader(io.StringIO(table_csv(par))))
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b, strict=True):
        ra.pop("wall_time_s"), rb.pop("wall_time_s")
        assert ra == rb
    assert [e.spec.key for e in par.experiments] == ["compact", "isotherms"]
    assert all(e.grids == {} for e in par.experiments)


def test_cli_interrupted_run_says_so_and_writes_nothing(tmp_path, capsys, monkeypatch) -> None:
    import paper.runner as runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_experiments", interrupted)
    out = tmp_path / "out"
    assert main(["1", "--fast", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    assert not out.exists()
