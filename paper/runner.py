"""Reproduce the six experiments of paper II: data, training, both methods, errors, figures.

:func:`run_experiments` does the work and returns plain result objects;
:func:`write_report` writes one PNG per experiment, an overview PNG, the error table (Markdown
and CSV), the networks' validation errors and a JSON file with every setting and number. The
command line front end is ``python -m paper.reproduce`` (:mod:`paper.reproduce`).

For every experiment and every network (the paper's own trained weights, bundled, and a
network trained here from the same data recipe) the authors' algorithm ("paper" mode, with the
paper's settings) and fiberscope's corrected algorithm run from the paper's start point. Errors
are split as in ``method.md``: the *algorithm error* (output drift, distance to the network's
own level set from marching squares on a fine grid) and the *model error* (distance to the
analytic class).
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import fiberscope as fs

from .adapter import Curve, atomic_write, curve_from_trace, preimage_curves
from .metrics import (
    ContourSet,
    SineCurve,
    band_area,
    box_exits,
    closure_gap,
    correct_side_fraction,
    model_gradient,
    pv_spread,
    subsample,
    turns,
)
from .progress import Reporter
from .results import ExperimentResult, MethodResult, NetworkEntry, Reproduction
from .specs import (
    NOMINAL_T,
    CorrectedSettings,
    ExperimentSpec,
    NetworkSource,
    PaperSettings,
    ThermoScale,
)

__all__ = [
    "Curve",
    "ExperimentResult",
    "MethodResult",
    "NetworkEntry",
    "Reproduction",
    "report_files",
    "run_experiments",
    "write_report",
]

NETWORK_KINDS = ("paper", "trained")
#: Epochs of the trained networks in ``--fast`` mode (the full recipes use 5,000-10,000).
FAST_EPOCHS = 300


def _kelvin_to_normalised(net: nn.Module, T_range: tuple[float, float]) -> nn.Sequential:
    """Append ``t = (T - T_min) / (T_max - T_min)`` as a 1x1 linear layer (classes unchanged)."""
    lin = nn.Linear(1, 1, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.fill_(1.0 / (T_range[1] - T_range[0]))
        lin.bias.fill_(-T_range[0] / (T_range[1] - T_range[0]))
    layers = list(net) if isinstance(net, nn.Sequential) else [net]
    return nn.Sequential(*layers, lin).eval()


class _NetworkCache:
    """Trained networks and validation data, shared by the experiments of one run."""

    def __init__(self, seed: int, fast: bool, epochs: int | None) -> None:
        self.seed, self.fast, self.epochs = seed, fast, epochs
        self.trained: dict[str, Any] = {}
        self.datasets: dict[str, Any] = {}

    def data(self, dataset: str) -> Any:
        if dataset in self.trained:
            return self.trained[dataset].data
        if dataset not in self.datasets:
            from .datasets import make_dataset

            self.datasets[dataset] = make_dataset(dataset, seed=self.seed)
        return self.datasets[dataset]

    def train(self, dataset: str, rep: Reporter | None = None) -> Any:
        if dataset not in self.trained:
            from .training import train_paper_network

            epochs = (
                self.epochs if self.epochs is not None else (FAST_EPOCHS if self.fast else None)
            )
            self.trained[dataset] = train_paper_network(
                dataset,
                seed=self.seed,
                epochs=epochs,
                progress=None if rep is None else rep.counter("epochs"),
            )
        return self.trained[dataset]


def _paper_entry(src: NetworkSource, spec: ExperimentSpec, cache: _NetworkCache) -> NetworkEntry:
    from .training import evaluate

    net = fs.load_model(src.bundled)
    scale = ThermoScale() if spec.thermo else None
    if src.kelvin_output:
        net = _kelvin_to_normalised(net, NOMINAL_T)
    data = cache.data(spec.dataset)
    _, _, X_val, y_val = data.split()
    err = evaluate(net, X_val, y_val, classifier=spec.classifier)
    source = src.bundled + (" (kelvin output mapped to normalised T)" if src.kelvin_output else "")
    return NetworkEntry(
        label=src.label,
        model=net,
        source=source,
        val_mse=err["mse"],
        val_mae=err["mae"],
        val_accuracy=err.get("accuracy"),
        scale=scale,
        x0=spec.x0,
    )


def _trained_entry(
    spec: ExperimentSpec, cache: _NetworkCache, rep: Reporter | None = None
) -> NetworkEntry:
    res = cache.train(spec.dataset, rep)
    scale = None
    if spec.thermo:
        d = res.data
        scale = ThermoScale(d.V_range, d.P_range, d.T_range, exact=True)
    return NetworkEntry(
        label="trained",
        model=res.model,
        source=f"train_paper_network({spec.dataset!r}, seed={res.seed}, epochs={res.epochs})",
        val_mse=res.val_loss,
        val_mae=res.val_mae,
        val_accuracy=res.val_accuracy,
        epochs=res.epochs,
        train_seconds=res.seconds,
        scale=scale,
        x0=start_on_level(res.model, spec),
    )


def start_on_level(model: Any, spec: ExperimentSpec, tol: float = 1e-13) -> tuple[float, float]:
    """The experiment's start, moved vertically onto ``N = spec.start_level`` when asked.

    The classifier's start ``(0, -0.01499)`` lies on the paper network's decision boundary
    (``N = 0.504``); another network puts its boundary elsewhere, so its start is the point
    ``(0, y)`` with ``N(0, y) = 0.504`` (bisection in ``y`` over the box).

    Parameters
    ----------
    model : callable
        The network.
    spec : ExperimentSpec
        The experiment.
    tol : float
        Bisection tolerance in ``y``.

    Returns
    -------
    tuple of float
        The start.

    Raises
    ------
    fiberscope.InputError
        The level does not occur on that vertical line inside the box.
    """
    if spec.start_level is None:
        return spec.x0
    x = spec.x0[0]

    def f(y: float) -> float:
        with torch.no_grad():
            out = model(torch.tensor([[x, y]], dtype=torch.float64))
        return float(out.reshape(-1)[0]) - spec.start_level

    lo, hi = spec.box[0][1], spec.box[1][1]
    f_lo, f_hi = f(lo), f(hi)
    if f_lo * f_hi > 0:
        raise fs.InputError(
            f"the trained network never reaches N = {spec.start_level} on x = {x} inside the box"
        )
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if (f(mid) > 0) == (f_hi > 0):
            hi = mid
        else:
            lo = mid
    return (x, 0.5 * (lo + hi))


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def _box_tensors(box: Any) -> tuple[list[float], list[float]]:
    return [float(box[0][0]), float(box[0][1])], [float(box[1][0]), float(box[1][1])]


def _progress(
    rep: Reporter | None, what: str, unit: str = "steps"
) -> Callable[[int, int], None] | None:
    if rep is None:
        return None
    rep.stage(what)
    return rep.counter(unit)


def _run_curve(
    spec: ExperimentSpec,
    net: NetworkEntry,
    ps: PaperSettings,
    cs: CorrectedSettings,
    rep: Reporter | None = None,
) -> list[MethodResult]:
    box = _box_tensors(spec.box)
    out = []
    res = fs.trace(
        net.model,
        list(net.x0),
        step=ps.step,
        max_steps=ps.max_steps,
        method="paper",
        direction=ps.direction,
        bounds=box if ps.bounded else None,
        paper_box="stop",
        progress=_progress(rep, f"{net.label} network: paper mode (fs.trace, method='paper')"),
    )
    out.append(
        MethodResult(
            network=net.label,
            method="paper",
            curves=[curve_from_trace(res)],
            paths=[],
            steps=res.stats.steps,
            jacobian_evals=res.stats.jacobian_evals,
            wall_time=res.stats.wall_time,
            settings={**ps.as_dict(), "variant": "stop" if ps.bounded else None},
        )
    )
    res = fs.trace(
        net.model,
        list(net.x0),
        step=cs.step,
        max_steps=cs.max_steps,
        bounds=box,
        progress=_progress(rep, f"{net.label} network: corrected (fs.trace)"),
    )
    out.append(
        MethodResult(
            network=net.label,
            method="corrected",
            curves=[curve_from_trace(res)],
            paths=[],
            steps=res.stats.steps,
            jacobian_evals=res.stats.jacobian_evals,
            wall_time=res.stats.wall_time,
            settings={**cs.as_dict(), "bounds": box},
        )
    )
    return out


def _interval_for(
    spec: ExperimentSpec, net: NetworkEntry, ps: PaperSettings
) -> tuple[float, float]:
    """The requested output interval and (for kelvin intervals) the paper's epsilon."""
    with torch.no_grad():
        y0 = float(net.model(torch.tensor([list(net.x0)], dtype=torch.float64)).reshape(-1)[0])
    if spec.interval_K is not None:
        sc = net.scale or ThermoScale()
        return sc.t_of_T(spec.interval_K[0]), sc.t_of_T(spec.interval_K[1])
    assert ps.epsilon is not None
    return y0 - ps.epsilon, y0 + ps.epsilon


def _paper_epsilon(spec: ExperimentSpec, net: NetworkEntry, ps: PaperSettings) -> float:
    if spec.interval_K is not None:
        sc = net.scale or ThermoScale()
        return 0.5 * (spec.interval_K[1] - spec.interval_K[0]) / (sc.T_range[1] - sc.T_range[0])
    assert ps.epsilon is not None
    return ps.epsilon


def _run_interval(
    spec: ExperimentSpec,
    net: NetworkEntry,
    ps: PaperSettings,
    cs: CorrectedSettings,
    rep: Reporter | None = None,
) -> list[MethodResult]:
    box = _box_tensors(spec.box)
    a, b = _interval_for(spec, net, ps)
    eps = _paper_epsilon(spec, net, ps)
    assert ps.exp_step is not None
    # The authors' driver covers N(x0) +- epsilon (for kelvin intervals: the half-width around
    # the start's own output, not the requested temperatures).
    with torch.no_grad():
        y0 = float(net.model(torch.tensor([list(net.x0)], dtype=torch.float64)).reshape(-1)[0])
    cb = _progress(rep, f"{net.label} network: paper mode (fs.preimage, method='paper')", "levels")
    res = fs.preimage(
        net.model,
        list(net.x0),
        (y0 - eps, y0 + eps),
        method="paper",
        bounds=box,
        step=ps.step,
        max_steps=ps.max_steps,
        nst=ps.nst,
        exp_step=ps.exp_step,
        exp_max_steps=ps.exp_max_steps,
        region=False,
        progress=cb,
    )
    pr = preimage_curves(res)
    paper_res = MethodResult(
        network=net.label,
        method="paper",
        curves=pr.curves,
        paths=pr.paths,
        steps=pr.steps,
        jacobian_evals=pr.jacobian_evals,
        wall_time=pr.wall_time,
        settings={**ps.as_dict(), "epsilon": eps, "variant": "stop"},
        interval=(a, b),
    )
    paper_res.metrics["final_outputs"] = pr.final_outputs
    t0 = time.perf_counter()
    res = fs.preimage(
        net.model,
        list(net.x0),
        (a, b),
        levels=cs.levels,
        bounds=box,
        step=cs.step,
        max_steps=cs.max_steps,
        region=False,
        partial=True,
        progress=_progress(rep, f"{net.label} network: corrected (fs.preimage)", "levels"),
    )
    wall = time.perf_counter() - t0
    pc = preimage_curves(res)
    corr = MethodResult(
        network=net.label,
        method="corrected",
        curves=pc.curves,
        paths=pc.paths,
        steps=pc.steps,
        jacobian_evals=pc.jacobian_evals,
        wall_time=wall,
        settings={**cs.as_dict(), "bounds": box, "interval": [a, b]},
        interval=(a, b),
    )
    corr.metrics["unreached"] = pc.unreached
    return [paper_res, corr]


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _grid_box(spec: ExperimentSpec, runs: Sequence[MethodResult]) -> tuple:
    lo = np.minimum(np.array(spec.view[0]), np.array(spec.box[0]))
    hi = np.maximum(np.array(spec.view[1]), np.array(spec.box[1]))
    for r in runs:
        for c in r.curves:
            lo = np.minimum(lo, c.points.min(0))
            hi = np.maximum(hi, c.points.max(0))
    pad = 0.02 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    return (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1]))


def _curve_metrics(
    spec: ExperimentSpec, net: NetworkEntry, run: MethodResult, grid: ContourSet
) -> None:
    c = run.curves[0]
    pts = subsample(c.points)
    m = run.metrics
    m["points"] = int(c.points.shape[0])
    m["drift"] = float(np.max(np.abs(c.outputs - c.level)))
    m["d_level_set"] = float(grid.distance(pts, c.level).max())
    truth = spec.truth_through(net.x0, net.scale)
    m["truth"] = truth.label
    m["d_analytic"] = float(truth.distance(pts).max())
    m["closed"] = c.closed
    if spec.closed_classes:
        if c.closed:
            m["closure_gap"] = 0.0
            m["closing_segment"] = float(np.linalg.norm(c.points[-1] - c.points[0]))
        else:
            m["closure_gap"] = closure_gap(c.tracing_order(), c.start)
    else:
        m["exits"] = box_exits(c.points, spec.box)
    if spec.thermo:
        sc = net.scale or ThermoScale()
        inside = np.all((c.points >= 0.0) & (c.points <= 1.0), axis=1)
        m["pv_spread"] = pv_spread(c.points[inside], sc.V_range, sc.P_range)
        m["T_start"] = sc.temperature(c.start)


def _interval_metrics(
    spec: ExperimentSpec, net: NetworkEntry, run: MethodResult, grid: ContourSet
) -> None:
    m = run.metrics
    assert run.interval is not None
    a, b = run.interval
    levels = np.array([c.level for c in run.curves])
    m["levels"] = len(run.curves)
    m["closed_levels"] = sum(c.closed for c in run.curves)
    m["points"] = int(sum(c.points.shape[0] for c in run.curves))
    m["interval"] = [a, b]
    lo, hi = float(levels.min()), float(levels.max())
    m["covered"] = [lo, hi]
    m["coverage"] = (hi - lo) / (b - a)
    m["drift"] = float(max(np.max(np.abs(c.outputs - c.level)) for c in run.curves))
    m["d_level_set"] = float(
        max(grid.distance(subsample(c.points, 400), c.level).max() for c in run.curves)
    )
    region = (spec.box[0], spec.box[1])
    m["band_area"] = grid.band_area(lo, hi, region)
    m["target_area"] = grid.band_area(a, b, region)
    low_c = run.curves[int(np.argmin(levels))]
    high_c = run.curves[int(np.argmax(levels))]
    d_lo = grid.distance(subsample(low_c.points, 1000), a)
    d_hi = grid.distance(subsample(high_c.points, 1000), b)
    m["boundary_d_level_set"] = float(max(d_lo.max(), d_hi.max()))
    bt = spec.band_truth(spec.paper.epsilon or 0.0, net.scale)
    if bt is not None:
        f = spec.truth_function(net.scale)
        pts = np.column_stack([g.reshape(-1) for g in np.meshgrid(grid.xs, grid.ys)])
        zt = f(pts).reshape(grid.z.shape)
        lo_t, hi_t = _truth_interval(spec, net, run)
        m["analytic_area"] = band_area(grid.xs, grid.ys, zt, lo_t, hi_t, region)
        m["boundary_d_analytic"] = float(
            max(
                bt[0].distance(subsample(low_c.points, 1000)).max(),
                bt[1].distance(subsample(high_c.points, 1000)).max(),
            )
        )
        m["truth"] = f"{bt[0].label} .. {bt[1].label}"
        m["d_analytic"] = float(
            max(
                spec.truth_through(c.start, net.scale).distance(subsample(c.points, 400)).max()
                for c in run.curves
            )
        )
    if spec.classifier:
        curve = SineCurve(0.5)
        allp = np.vstack([c.points for c in run.curves])
        allo = np.concatenate([c.outputs for c in run.curves])
        m["band_correct_side"] = correct_side_fraction(allp, allo, curve)
        x0 = np.asarray(net.x0)
        at_x0 = [c for c in run.curves if np.allclose(c.start, x0, atol=1e-12)]
        if at_x0:
            pts = np.vstack([c.points for c in at_x0])
            label_1 = at_x0[0].level > 0.5
            m["correct_side"] = float(np.mean(curve.above(pts) == label_1))
            m["truth"] = curve.label + " (class of x0)"
            m["d_analytic"] = float(max(curve.distance(subsample(c.points)).max() for c in at_x0))
    if spec.closed_classes:
        m["max_turns"] = float(max(turns(c.points, c.start_index) for c in run.curves))


def _truth_interval(spec: ExperimentSpec, net: NetworkEntry, run: MethodResult) -> tuple:
    """Analytic output interval of the band (true function at x0 +- epsilon, or kelvin)."""
    if spec.interval_K is not None:
        sc = net.scale or ThermoScale()
        return sc.t_of_T(spec.interval_K[0]), sc.t_of_T(spec.interval_K[1])
    eps = spec.paper.epsilon or 0.0
    y = spec.truth_value(net.x0, net.scale)
    return y - eps, y + eps


# --------------------------------------------------------------------------------------------
# One network of one experiment (also the unit of work of the parallel driver)
# --------------------------------------------------------------------------------------------


def _entries(
    spec: ExperimentSpec,
    networks: Sequence[str],
    cache: _NetworkCache,
    fast: bool,
    rep: Reporter | None,
) -> list[NetworkEntry]:
    """The networks an experiment runs on (training ours first, when asked)."""
    entries: list[NetworkEntry] = []
    if "trained" in networks:
        if rep is not None and spec.dataset not in cache.trained:
            rep.stage(f"training the {spec.dataset} network ({'fast' if fast else 'full'} recipe)")
        trained = _trained_entry(spec, cache, rep)
    if "paper" in networks:
        entries += [_paper_entry(src, spec, cache) for src in spec.networks]
    if "trained" in networks:
        entries.append(trained)
    return entries


def _run_network(
    spec: ExperimentSpec,
    net: NetworkEntry,
    ps: PaperSettings,
    cs: CorrectedSettings,
    res_grid: int,
    rep: Reporter | None,
) -> tuple[list[MethodResult], ContourSet]:
    """Both methods on one network, with their error measures."""
    if spec.kind == "curve":
        pair = _run_curve(spec, net, ps, cs, rep)
    else:
        pair = _run_interval(spec, net, ps, cs, rep)
    if rep is not None:
        rep.stage(f"{net.label} network: error measures on a {res_grid}^2 grid")
    grid = ContourSet.from_model(net.model, _grid_box(spec, pair), res_grid)
    for run in pair:
        if spec.kind == "curve":
            _curve_metrics(spec, net, run, grid)
        else:
            _interval_metrics(spec, net, run, grid)
        run.metrics["contour_floor"] = grid.floor(
            net.model, run.curves[0].level, model_gradient(net.model)
        )
        run.metrics["grid_spacing"] = grid.spacing
    return pair, grid


def _network_job(
    key: str, net: NetworkEntry, fast: bool, res_grid: int
) -> tuple[list[MethodResult], float]:
    """Worker process: both methods and the error measures of one network (no grid back)."""
    from .specs import EXPERIMENTS

    t0 = time.perf_counter()
    spec = EXPERIMENTS[key]
    ps, cs = spec.settings(fast)
    pair, _ = _run_network(spec, net, ps, cs, res_grid, None)
    return pair, time.perf_counter() - t0


def _run_parallel(
    specs: Sequence[ExperimentSpec],
    fast: bool,
    networks: Sequence[str],
    cache: _NetworkCache,
    res_grid: int,
    jobs: int,
    rep: Reporter | None,
) -> list[ExperimentResult]:
    """Train in this process, then run every (experiment, network) in a pool of processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    all_entries = []
    for spec in specs:
        if rep is not None:
            rep.prefix = f"[{spec.number}] "
        all_entries.append(_entries(spec, networks, cache, fast, rep))
    tasks = [(i, j) for i, entries in enumerate(all_entries) for j in range(len(entries))]
    # the longest runs (paper-mode intervals, then long curves) first
    cost = {"interval": 0, "curve": 1}
    tasks.sort(key=lambda t: (cost[specs[t[0]].kind], -specs[t[0]].number))
    pairs: dict[tuple[int, int], tuple[list[MethodResult], float]] = {}
    if rep is not None:
        rep.prefix = ""
        rep.stage(f"running {len(tasks)} (experiment, network) pairs in {jobs} processes")
        rep.update(0, len(tasks), "runs")
    ctx = multiprocessing.get_context("spawn")
    # the workers use this process's number of torch threads: the same reductions in the same
    # order, so the same numbers to the last bit as a run without --jobs
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=ctx,
        initializer=torch.set_num_threads,
        initargs=(torch.get_num_threads(),),
    )
    try:
        futures = {
            pool.submit(_network_job, specs[i].key, all_entries[i][j], fast, res_grid): (i, j)
            for i, j in tasks
        }
        for fut in as_completed(futures):
            i, j = futures[fut]
            pairs[(i, j)] = fut.result()
            if rep is not None:
                rep.say(
                    f"    [{specs[i].number}] {all_entries[i][j].label} network done in "
                    f"{pairs[(i, j)][1]:.1f} s"
                )
                rep.update(len(pairs), len(tasks), "runs")
    except BaseException:
        # interrupted or failed: stop the workers instead of leaving them running
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    pool.shutdown()
    results = []
    for i, spec in enumerate(specs):
        ps, cs = spec.settings(fast)
        runs: list[MethodResult] = []
        for j in range(len(all_entries[i])):
            runs += pairs[(i, j)][0]
        seconds = sum(pairs[(i, j)][1] for j in range(len(all_entries[i])))
        results.append(
            ExperimentResult(
                spec=spec,
                networks=all_entries[i],
                runs=runs,
                grids={},
                paper_settings=ps,
                corrected_settings=cs,
                seconds=seconds,
            )
        )
    return results


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def run_experiments(
    specs: Sequence[ExperimentSpec],
    *,
    fast: bool = False,
    seed: int = 0,
    networks: Sequence[str] = NETWORK_KINDS,
    epochs: int | None = None,
    resolution: int | None = None,
    reporter: Reporter | None = None,
    jobs: int = 1,
) -> Reproduction:
    """Run experiments of paper II with both methods on the paper's and freshly trained networks.

    Parameters
    ----------
    specs : sequence of ExperimentSpec
        Experiments (see :func:`paper.specs.resolve_experiments`).
    fast : bool
        Small step counts and short training (for tests): numbers are not the paper's.
    seed : int
        Seed of the generated data and of the trained networks' initial weights.
    networks : sequence of {"paper", "trained"}
        Which networks to run on.
    epochs : int, optional
        Override the training epochs (default: the recipe's, or 300 in fast mode).
    resolution : int, optional
        Grid points per axis for the level sets (default 1201, fast 301).
    reporter : Reporter, optional
        Receives progress: a line per stage, counts of steps and levels.
    jobs : int
        Worker processes. With more than one, the networks are trained first (in this
        process) and then every (experiment, network) pair runs in its own process; the
        numbers are the same, the experiments' ``grids`` are left empty.

    Returns
    -------
    Reproduction
        Per experiment: networks, runs with metrics, grids.

    Raises
    ------
    fiberscope.InputError
        Unknown network kind or no experiment.
    """
    if not specs:
        raise fs.InputError("no experiment selected")
    bad = [n for n in networks if n not in NETWORK_KINDS]
    if bad or not networks:
        raise fs.InputError(
            f"unknown network kind {bad[0] if bad else ''!r}; use paper, trained or both"
        )
    rep = reporter
    res_grid = resolution or (301 if fast else 1201)
    cache = _NetworkCache(seed, fast, epochs)
    t_all = time.perf_counter()
    if jobs > 1:
        results = _run_parallel(specs, fast, networks, cache, res_grid, jobs, rep)
        return Reproduction(results, fast, seed, time.perf_counter() - t_all)
    results = []
    for spec in specs:
        t_exp = time.perf_counter()
        ps, cs = spec.settings(fast)
        if rep is not None:
            rep.prefix = ""
            rep.say(f"[{spec.number}] {spec.key}: {spec.title}")
            rep.prefix = f"[{spec.number}] "
        entries = _entries(spec, networks, cache, fast, rep)
        runs: list[MethodResult] = []
        grids: dict[str, ContourSet] = {}
        for net in entries:
            pair, grids[net.label] = _run_network(spec, net, ps, cs, res_grid, rep)
            runs += pair
        results.append(
            ExperimentResult(
                spec=spec,
                networks=entries,
                runs=runs,
                grids=grids,
                paper_settings=ps,
                corrected_settings=cs,
                seconds=time.perf_counter() - t_exp,
            )
        )
        if rep is not None:
            rep.prefix = ""
            rep.say(f"[{spec.number}] {spec.key} done in {results[-1].seconds:.1f} s")
    return Reproduction(results, fast, seed, time.perf_counter() - t_all)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def _e(x: Any, digits: int = 2) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{float(x):.{digits}e}"


def _exits(points: list[tuple[float, float]]) -> str:
    return "; ".join(f"({x:.4f}, {y:.4f})" for x, y in points) if points else "none"


def table_rows(rep: Reproduction) -> list[dict[str, Any]]:
    """One flat row per experiment, network and method (the CSV table).

    Parameters
    ----------
    rep : Reproduction
        The results.

    Returns
    -------
    list of dict
        Rows with the same keys (empty string where a column does not apply).
    """
    rows = []
    for ex in rep.experiments:
        for run in ex.runs:
            m = run.metrics
            row = {
                "experiment": ex.spec.number,
                "name": ex.spec.key,
                "network": run.network,
                "method": run.method,
                "steps": run.steps,
                "jacobian_evals": run.jacobian_evals,
                "wall_time_s": round(run.wall_time, 4),
                "points": m.get("points", ""),
                "drift": m.get("drift", ""),
                "d_level_set": m.get("d_level_set", ""),
                "d_analytic": m.get("d_analytic", ""),
                "analytic_class": m.get("truth", ""),
                "closed": m.get("closed", ""),
                "closure_gap": m.get("closure_gap", ""),
                "exits": _exits(m["exits"]) if "exits" in m else "",
                "pv_spread": m.get("pv_spread", ""),
                "levels": m.get("levels", ""),
                "closed_levels": m.get("closed_levels", ""),
                "unreached_levels": len(m["unreached"]) if "unreached" in m else "",
                "interval_lo": m["interval"][0] if "interval" in m else "",
                "interval_hi": m["interval"][1] if "interval" in m else "",
                "covered_lo": m["covered"][0] if "covered" in m else "",
                "covered_hi": m["covered"][1] if "covered" in m else "",
                "coverage": m.get("coverage", ""),
                "band_area": m.get("band_area", ""),
                "target_area": m.get("target_area", ""),
                "analytic_area": m.get("analytic_area", ""),
                "boundary_d_level_set": m.get("boundary_d_level_set", ""),
                "boundary_d_analytic": m.get("boundary_d_analytic", ""),
                "correct_side": m.get("correct_side", ""),
                "band_correct_side": m.get("band_correct_side", ""),
                "max_turns": m.get("max_turns", ""),
                "contour_floor": m.get("contour_floor", ""),
                "grid_spacing": m.get("grid_spacing", ""),
            }
            rows.append(row)
    return rows


def table_csv(rep: Reproduction) -> str:
    """The error table as CSV text (full precision).

    Parameters
    ----------
    rep : Reproduction
        The results.

    Returns
    -------
    str
        CSV with a header row.
    """
    rows = table_rows(rep)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def table_markdown(rep: Reproduction) -> str:
    """The error tables as Markdown: curve experiments, interval experiments, networks.

    Parameters
    ----------
    rep : Reproduction
        The results.

    Returns
    -------
    str
        Markdown text.
    """
    curve_rows, interval_rows, net_rows = [], [], []
    for ex in rep.experiments:
        spec = ex.spec
        for run in ex.runs:
            m = run.metrics
            common = [
                f"{spec.number} {spec.key}",
                run.network,
                run.method,
                f"{run.steps:,}",
                f"{run.wall_time:.2f}",
                _e(m.get("drift")),
                _e(m.get("d_level_set")),
                _e(m.get("d_analytic")),
            ]
            if spec.kind == "curve":
                if spec.closed_classes:
                    shape = (
                        f"closed (last segment {m['closing_segment']:.4f})"
                        if m.get("closed")
                        else f"open, misses start by {_e(m.get('closure_gap'))}"
                    )
                else:
                    shape = "exits " + _exits(m.get("exits", []))
                extra = f"PV spread {100 * m['pv_spread']:.3f} %" if "pv_spread" in m else ""
                curve_rows.append(common + [shape, extra])
            else:
                a, b = m["interval"]
                lo, hi = m["covered"]
                area = f"{m['band_area']:.4f} ({m['target_area']:.4f}"
                area += f"; analytic {m['analytic_area']:.4f})" if "analytic_area" in m else ")"
                bd = _e(m.get("boundary_d_level_set"))
                if "boundary_d_analytic" in m:
                    bd += f" / {_e(m['boundary_d_analytic'])}"
                extra = (
                    f"class of x0 on the correct side: {100 * m['correct_side']:.2f} %"
                    if "correct_side" in m
                    else ""
                )
                if "max_turns" in m:
                    extra = f"up to {m['max_turns']:.2f} turns per level"
                interval_rows.append(
                    common
                    + [
                        f"{m['levels']} ({m['closed_levels']} closed"
                        + (f", {len(m['unreached'])} unreached)" if m.get("unreached") else ")"),
                        f"[{lo:.5f}, {hi:.5f}] of [{a:.5f}, {b:.5f}] ({100 * m['coverage']:.1f} %)",
                        area,
                        bd,
                        extra,
                    ]
                )
        for net in ex.networks:
            net_rows.append(
                [
                    f"{spec.number} {spec.key}",
                    net.label,
                    net.source,
                    _e(net.val_mse),
                    _e(net.val_mae),
                    "" if net.val_accuracy is None else f"{100 * net.val_accuracy:.2f} %",
                    "" if net.train_seconds is None else f"{net.train_seconds:.1f}",
                ]
            )
    head = [
        "experiment",
        "network",
        "method",
        "steps",
        "time [s]",
        "drift",
        "d(own level set)",
        "d(analytic)",
    ]
    parts = []
    if curve_rows:
        parts.append(_md_table(head + ["closure / exits", "other"], curve_rows))
    if interval_rows:
        parts.append(
            _md_table(
                head
                + [
                    "levels",
                    "covered output range of requested (share)",
                    "band area (requested; analytic)",
                    "boundary distance (own / analytic)",
                    "other",
                ],
                interval_rows,
            )
        )
    if net_rows:
        parts.append(
            _md_table(
                ["experiment", "network", "weights", "val MSE", "val MAE", "val acc", "train [s]"],
                net_rows,
            )
        )
    parts.append(settings_markdown(rep))
    return "\n\n".join(parts) + "\n"


def _settings_text(ps: PaperSettings, kind: str) -> str:
    if kind == "curve":
        box = "stop at the box" if ps.bounded else "unbounded"
        return f"delta {ps.step:g}, {ps.max_steps:,} steps, {ps.direction}, {box}"
    return (
        f"nst {ps.nst}, epsilon {ps.epsilon:.6g}, delta {ps.step:g}, {ps.max_steps:,} iterations, "
        f"delta_exp {ps.exp_step:g}, SiMExp cap {ps.exp_max_steps:,}"
    )


def settings_markdown(rep: Reproduction) -> str:
    """The settings each experiment ran with, and where they come from, as a Markdown table.

    Parameters
    ----------
    rep : Reproduction
        The results.

    Returns
    -------
    str
        Markdown table.
    """
    rows = []
    for ex in rep.experiments:
        spec, ps, cs = ex.spec, ex.paper_settings, ex.corrected_settings
        corr = f"step <= {cs.step:g}, {cs.max_steps:,} steps per branch"
        if spec.kind == "interval":
            corr = f"{cs.levels} levels, " + corr
        start = f"({spec.x0[0]:.6g}, {spec.x0[1]:.6g})"
        rows.append(
            [
                f"{spec.number} {spec.key}",
                start,
                _settings_text(ps, spec.kind),
                corr,
                ps.source + ("" if not rep.fast else " [--fast overrides applied]"),
            ]
        )
    return _md_table(["experiment", "start", "paper mode", "corrected", "source"], rows)


def report_json(rep: Reproduction) -> dict[str, Any]:
    """Every setting and number of a reproduction as JSON-ready data.

    Parameters
    ----------
    rep : Reproduction
        The results.

    Returns
    -------
    dict
        Settings, networks, metrics.
    """

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, np.integer)):
            return clean(v.item())
        return v

    out = {
        "fiberscope_version": fs.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "fast": rep.fast,
        "seed": rep.seed,
        "seconds": rep.seconds,
        "experiments": [],
    }
    for ex in rep.experiments:
        out["experiments"].append(
            {
                "number": ex.spec.number,
                "key": ex.spec.key,
                "title": ex.spec.title,
                "x0": list(ex.spec.x0),
                "start_level": ex.spec.start_level,
                "box": ex.spec.box,
                "paper_settings": ex.paper_settings.as_dict(),
                "corrected_settings": ex.corrected_settings.as_dict(),
                "notes": list(ex.spec.notes),
                "seconds": ex.seconds,
                "networks": [
                    {
                        "label": n.label,
                        "source": n.source,
                        "val_mse": n.val_mse,
                        "val_mae": n.val_mae,
                        "val_accuracy": n.val_accuracy,
                        "epochs": n.epochs,
                        "train_seconds": n.train_seconds,
                        "thermo_scale": None if n.scale is None else n.scale.__dict__,
                        "x0": list(n.x0),
                    }
                    for n in ex.networks
                ],
                "runs": [
                    {
                        "network": r.network,
                        "method": r.method,
                        "steps": r.steps,
                        "jacobian_evals": r.jacobian_evals,
                        "wall_time": r.wall_time,
                        "settings": r.settings,
                        "metrics": r.metrics,
                    }
                    for r in ex.runs
                ],
            }
        )
    return clean(out)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def report_files(specs: Sequence[ExperimentSpec]) -> list[str]:
    """Names of the files :func:`write_report` writes for these experiments.

    Parameters
    ----------
    specs : sequence of ExperimentSpec
        The experiments.

    Returns
    -------
    list of str
        File names relative to the output folder.
    """
    names = [f"exp{s.number}_{s.key}.png" for s in specs]
    return names + ["overview.png", "table.md", "table.csv", "reproduction.json"]


def write_report(
    rep: Reproduction, out_dir: str | Path, *, dpi: int = 200, reporter: Reporter | None = None
) -> list[Path]:
    """Write the figures, tables and JSON of a reproduction into ``out_dir`` (atomically).

    Every file is first rendered in memory, then each is written to a temporary file and
    renamed, so a failure leaves no half-written file.

    Parameters
    ----------
    rep : Reproduction
        The results.
    out_dir : str or pathlib.Path
        Existing folder.
    dpi : int
        Resolution of the PNGs.
    reporter : Reporter, optional
        Receives a line per figure.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from .figures import experiment_figure, overview_figure

    out = Path(out_dir)
    blobs: dict[str, bytes] = {}
    for ex in rep.experiments:
        name = f"exp{ex.spec.number}_{ex.spec.key}.png"
        if reporter is not None:
            reporter.stage(f"figure {name}")
        fig = experiment_figure(ex)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        blobs[name] = buf.getvalue()
    if reporter is not None:
        reporter.stage("figure overview.png")
    buf = io.BytesIO()
    overview_figure(rep).savefig(buf, format="png", dpi=dpi)
    blobs["overview.png"] = buf.getvalue()
    blobs["table.md"] = table_markdown(rep).encode()
    blobs["table.csv"] = table_csv(rep).encode()
    blobs["reproduction.json"] = (json.dumps(report_json(rep), indent=2) + "\n").encode()
    written = []
    for name, data in blobs.items():
        with atomic_write(out / name, "wb") as fh:
            fh.write(data)
        written.append(out / name)
    return written
