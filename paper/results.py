"""The result records of a reproduction run (plain data shared by the runner and the figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from .adapter import Curve
from .metrics import ContourSet
from .specs import CorrectedSettings, ExperimentSpec, PaperSettings, ThermoScale

__all__ = ["ExperimentResult", "MethodResult", "NetworkEntry", "Reproduction"]


@dataclass
class MethodResult:
    """One method run on one network in one experiment, with its errors.

    Attributes
    ----------
    network : str
        Network label.
    method : str
        ``"paper"`` or ``"corrected"``.
    curves : list of Curve
        The traced class (one) or levels (interval experiments).
    paths : list of numpy.ndarray
        Interval experiments: exploration paths between levels.
    steps : int
        Steps taken (all runs).
    jacobian_evals : int
        Jacobian evaluations.
    wall_time : float
        Seconds spent in the algorithm.
    settings : dict
        The settings used.
    metrics : dict
        The numbers of the table (see :func:`table_rows`).
    interval : tuple of float or None
        Interval experiments: the requested output interval.
    """

    network: str
    method: str
    curves: list[Curve]
    paths: list[np.ndarray]
    steps: int
    jacobian_evals: int
    wall_time: float
    settings: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    interval: tuple[float, float] | None = None


@dataclass
class NetworkEntry:
    """A network an experiment runs on.

    Attributes
    ----------
    label : str
        ``"paper"``, ``"paper softplus"`` or ``"trained"``.
    model : torch.nn.Module
        The network (scalar output in the experiment's units).
    source : str
        Weights file or training recipe.
    val_mse, val_mae : float
        Errors on the generated validation half (seed of the run).
    val_accuracy : float or None
        Classifier: accuracy of ``N > 0.5`` on the validation half.
    epochs : int or None
        Trained networks: epochs.
    train_seconds : float or None
        Trained networks: optimisation time.
    scale : ThermoScale or None
        Gas networks: the normalisation used for the analytic isotherms.
    x0 : tuple of float
        Start point on this network (the paper's, except where the experiment moves it onto
        the network's own level, see :attr:`ExperimentSpec.start_level`).
    """

    label: str
    model: nn.Module
    source: str
    val_mse: float
    val_mae: float
    val_accuracy: float | None = None
    epochs: int | None = None
    train_seconds: float | None = None
    scale: ThermoScale | None = None
    x0: tuple[float, float] = (0.0, 0.0)


@dataclass
class ExperimentResult:
    """Everything one experiment produced.

    Attributes
    ----------
    spec : ExperimentSpec
        The experiment.
    networks : list of NetworkEntry
        Networks run on.
    runs : list of MethodResult
        Per network, paper then corrected.
    grids : dict
        Per network label, the fine grid used for the level sets (not serialised; empty
        when the experiment ran in worker processes).
    paper_settings, corrected_settings : dataclass
        The settings used (fast overrides applied).
    seconds : float
        Wall time of the experiment (training, runs, metrics); with ``jobs > 1`` the sum of
        its networks' times in the worker processes (training excluded).
    """

    spec: ExperimentSpec
    networks: list[NetworkEntry]
    runs: list[MethodResult]
    grids: dict[str, ContourSet]
    paper_settings: PaperSettings
    corrected_settings: CorrectedSettings
    seconds: float


@dataclass
class Reproduction:
    """Result of :func:`run_experiments`.

    Attributes
    ----------
    experiments : list of ExperimentResult
        In the paper's order.
    fast : bool
        Fast mode.
    seed : int
        Seed of the data and the trained networks.
    seconds : float
        Total wall time.
    """

    experiments: list[ExperimentResult]
    fast: bool
    seed: int
    seconds: float


# --------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------
