"""The six experiments of Benfenati & Marta, paper II (arXiv 2112.10583), as data.

Each :class:`ExperimentSpec` names the data set and the paper's network, the start point, the
box, the settings of the authors' algorithm ("paper mode") and of fiberscope's corrected one,
and the analytic ground truth. Settings taken from the paper (via ``method.md`` section 3) or
from the authors' ``main.cpp`` are marked as such in :attr:`PaperSettings.source`; where the
paper does not state a value, the choice is ours and says so.

Coordinates are the network's input coordinates (for the gas: min-max normalised ``(v, p)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import fiberscope as fs

from .datasets import GAS_CONSTANT
from .metrics import AnalyticCurve, Circle, Isotherm, Parabola, SineCurve

__all__ = [
    "EXPERIMENTS",
    "NOMINAL_P",
    "NOMINAL_T",
    "NOMINAL_V",
    "CorrectedSettings",
    "ExperimentSpec",
    "PaperSettings",
    "ThermoScale",
    "resolve_experiments",
]

Box = tuple[tuple[float, float], tuple[float, float]]

#: Sampling ranges of the gas data (the authors' script); used to un-normalise the paper's
#: thermodynamics network, whose exact sample minima/maxima were not published.
NOMINAL_V: tuple[float, float] = (0.025, 0.075)
NOMINAL_P: tuple[float, float] = (1e5, 2e5)
NOMINAL_T: tuple[float, float] = (
    NOMINAL_V[0] * NOMINAL_P[0] / GAS_CONSTANT,
    NOMINAL_V[1] * NOMINAL_P[1] / GAS_CONSTANT,
)


@dataclass(frozen=True)
class ThermoScale:
    """Min-max ranges that map a gas network's normalised coordinates to physical units.

    Attributes
    ----------
    V_range, P_range, T_range : tuple of float
        ``(min, max)`` of volume (m^3), pressure (Pa) and temperature (K).
    exact : bool
        True for a network we trained (its data's own ranges); False for the paper's network,
        approximated by the nominal sampling ranges.
    """

    V_range: tuple[float, float] = NOMINAL_V
    P_range: tuple[float, float] = NOMINAL_P
    T_range: tuple[float, float] = NOMINAL_T
    exact: bool = False

    def t_of_T(self, T: float) -> float:
        """Normalised network output of a temperature in kelvin.

        Parameters
        ----------
        T : float
            Temperature, K.

        Returns
        -------
        float
            ``(T - T_min) / (T_max - T_min)``.
        """
        t0, t1 = self.T_range
        return (float(T) - t0) / (t1 - t0)

    def T_of_t(self, t: float) -> float:
        """Temperature in kelvin of a normalised network output.

        Parameters
        ----------
        t : float
            Normalised output.

        Returns
        -------
        float
            ``T_min + t (T_max - T_min)``.
        """
        t0, t1 = self.T_range
        return t0 + float(t) * (t1 - t0)

    def temperature(self, point: Any) -> float:
        """Exact ``T = P V / R`` (K) at a normalised point.

        Parameters
        ----------
        point : array-like
            Normalised ``(v, p)``.

        Returns
        -------
        float
            Temperature in K.
        """
        v, p = (float(c) for c in np.asarray(point, dtype=np.float64).reshape(2))
        (v0, v1), (p0, p1) = self.V_range, self.P_range
        return (v0 + v * (v1 - v0)) * (p0 + p * (p1 - p0)) / GAS_CONSTANT

    def isotherm(self, T: float) -> Isotherm:
        """The isotherm of temperature ``T`` in this network's normalised coordinates.

        Parameters
        ----------
        T : float
            Temperature, K.

        Returns
        -------
        Isotherm
            The analytic curve.
        """
        return Isotherm(
            T=float(T), V_range=self.V_range, P_range=self.P_range, label=f"isotherm {T:.1f} K"
        )

    def p_on_isotherm(self, v: float, T: float) -> float:
        """Normalised pressure of the isotherm ``T`` at normalised volume ``v``.

        Parameters
        ----------
        v : float
            Normalised volume.
        T : float
            Temperature, K.

        Returns
        -------
        float
            Normalised pressure.
        """
        return float(self.isotherm(T).p_of_v(np.array([v]))[0])


@dataclass(frozen=True)
class PaperSettings:
    """Settings of the authors' algorithms for one experiment.

    Attributes
    ----------
    step : float
        SiMEC-1D step ``delta``.
    max_steps : int
        SiMEC-1D iterations per run (per direction).
    direction : {"both", "forward", "backward"}
        Curve experiments: which runs (the authors' ``main.cpp`` runs ``invert = true``, which
        is fiberscope's ``"backward"``).
    bounded : bool
        Use the stop-at-boundary variant inside the experiment's box (False: unbounded).
    epsilon : float or None
        Interval experiments: SiMExp-1D's total output change per sweep (``epsilon``).
    nst : int
        Interval experiments: sub-levels per sweep (``main.cpp``: 100).
    exp_step : float or None
        Interval experiments: SiMExp-1D step ``delta_simexp``.
    exp_max_steps : int
        SiMExp-1D step cap per sub-level (``main.cpp``: 10,000).
    source : str
        Where the numbers come from.
    """

    step: float
    max_steps: int
    direction: str = "both"
    bounded: bool = True
    epsilon: float | None = None
    nst: int = 100
    exp_step: float | None = None
    exp_max_steps: int = 10_000
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class CorrectedSettings:
    """Settings of fiberscope's corrected method for one experiment.

    Attributes
    ----------
    step : float
        Largest step.
    max_steps : int
        Steps per branch (per level for interval experiments).
    levels : int
        Interval experiments: levels spaced evenly over the interval, ends included.
    """

    step: float
    max_steps: int = 10_000
    levels: int = 21

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class NetworkSource:
    """One of the paper's networks used by an experiment.

    Attributes
    ----------
    label : str
        Short label in tables and figures.
    bundled : str
        Name of the bundled network (see :func:`fiberscope.bundled_networks`).
    kelvin_output : bool
        The network outputs the temperature in kelvin (the softplus gas network); fiberscope
        appends the affine map to the normalised output so that drifts are comparable.
    """

    label: str
    bundled: str
    kelvin_output: bool = False


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment of paper II.

    Attributes
    ----------
    key : str
        Name on the command line.
    number : int
        Number in the paper (1-6).
    title : str
        Human-readable title.
    kind : {"curve", "interval"}
        Trace one class, or fill the preimage of an output interval.
    dataset : str
        Data recipe / architecture for training (see :mod:`paper.training`).
    networks : tuple of NetworkSource
        The paper's trained networks to run on.
    x0 : tuple of float
        Start point.
    box : tuple
        The data domain ``((x_lo, y_lo), (x_hi, y_hi))``: bounds of the corrected method, of
        the stop-at-boundary variant, and of exit points.
    view : tuple
        Plot window.
    paper : PaperSettings
        The authors' settings.
    corrected : CorrectedSettings
        fiberscope's settings.
    closed_classes : bool
        The true classes are closed curves (closure is reported).
    interval_K : tuple of float or None
        Interval experiments with an interval in kelvin (the isotherm family); otherwise the
        interval is ``N(x0) +- epsilon``.
    fast_paper, fast_corrected : dict
        Overrides for ``--fast``.
    notes : tuple of str
        Caveats shown in the report.
    inset : tuple or None
        Zoom window drawn as an inset in the figures.
    start_level : float or None
        Networks other than the paper's start at ``(x0[0], y)`` with ``N = start_level``
        (the classifier: the paper's start lies on the paper network's boundary, N = 0.504).
    """

    key: str
    number: int
    title: str
    kind: str
    dataset: str
    networks: tuple[NetworkSource, ...]
    x0: tuple[float, float]
    box: Box
    view: Box
    paper: PaperSettings
    corrected: CorrectedSettings
    closed_classes: bool = False
    interval_K: tuple[float, float] | None = None
    fast_paper: dict[str, Any] = field(default_factory=dict)
    fast_corrected: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    inset: Box | None = None
    start_level: float | None = None

    @property
    def thermo(self) -> bool:
        """The gas experiments (normalised coordinates, kelvin)."""
        return self.dataset == "thermodynamics"

    @property
    def classifier(self) -> bool:
        """The binary-classifier experiment."""
        return self.dataset == "classification"

    def settings(self, fast: bool) -> tuple[PaperSettings, CorrectedSettings]:
        """Paper and corrected settings, with the ``--fast`` overrides applied when asked.

        Parameters
        ----------
        fast : bool
            Use the fast overrides.

        Returns
        -------
        tuple
            ``(PaperSettings, CorrectedSettings)``.
        """
        if not fast:
            return self.paper, self.corrected
        return replace(self.paper, **self.fast_paper), replace(
            self.corrected, **self.fast_corrected
        )

    def truth_through(self, point: Any, scale: ThermoScale | None = None) -> AnalyticCurve:
        """The analytic class through ``point`` (model-error reference).

        Parameters
        ----------
        point : array-like
            A point in the network's input coordinates.
        scale : ThermoScale, optional
            Normalisation of a gas network.

        Returns
        -------
        AnalyticCurve
            Circle, parabola, isotherm or (classifier) the true boundary ``y = 0.5 sin x``.
        """
        x, y = (float(c) for c in np.asarray(point, dtype=np.float64).reshape(2))
        if self.dataset == "surface_1":
            return Circle(math.hypot(x, y), label=f"circle r = {math.hypot(x, y):.5f}")
        if self.dataset == "surface_2":
            return Parabola(y + x * x, label=f"parabola y = {y + x * x:.5f} - x^2")
        if self.thermo:
            sc = scale or ThermoScale()
            return sc.isotherm(sc.temperature((x, y)))
        return SineCurve(0.5)

    def truth_value(self, point: Any, scale: ThermoScale | None = None) -> float:
        """The trained-on function at a point, in the network's output units.

        Parameters
        ----------
        point : array-like
            A point in input coordinates.
        scale : ThermoScale, optional
            Normalisation of a gas network.

        Returns
        -------
        float
            ``exp(x^2 + y^2 - 2)``, ``exp(x^2 + y - 2)``, normalised ``T`` or the 0/1 label.
        """
        x, y = (float(c) for c in np.asarray(point, dtype=np.float64).reshape(2))
        if self.dataset == "surface_1":
            return math.exp(x * x + y * y - 2.0)
        if self.dataset == "surface_2":
            return math.exp(x * x + y - 2.0)
        if self.thermo:
            sc = scale or ThermoScale()
            return sc.t_of_T(sc.temperature((x, y)))
        return 1.0 if y > 0.5 * math.sin(x) else 0.0

    def band_truth(
        self, epsilon: float, scale: ThermoScale | None = None
    ) -> tuple[AnalyticCurve, AnalyticCurve] | None:
        """The analytic curves bounding the requested band (interval experiments).

        Parameters
        ----------
        epsilon : float
            Half-width of the interval around the true value at ``x0`` (annulus).
        scale : ThermoScale, optional
            Normalisation of a gas network.

        Returns
        -------
        tuple of AnalyticCurve or None
            ``(low, high)`` boundary curves, or None when there is none (the classifier's true
            labels are 0/1, so its bands have no analytic counterpart).
        """
        if self.dataset == "surface_1":
            y0 = self.truth_value(self.x0)
            r_lo = math.sqrt(2.0 + math.log(y0 - epsilon))
            r_hi = math.sqrt(2.0 + math.log(y0 + epsilon))
            return (
                Circle(r_lo, label=f"circle r = {r_lo:.5f}"),
                Circle(r_hi, label=f"circle r = {r_hi:.5f}"),
            )
        if self.thermo and self.interval_K is not None:
            sc = scale or ThermoScale()
            return sc.isotherm(self.interval_K[0]), sc.isotherm(self.interval_K[1])
        return None

    def truth_function(self, scale: ThermoScale | None = None) -> Callable[[np.ndarray], Any]:
        """The trained-on function on a grid of points (for analytic band areas).

        Parameters
        ----------
        scale : ThermoScale, optional
            Normalisation of a gas network.

        Returns
        -------
        callable
            ``f(points (K, 2)) -> (K,)`` in the network's output units.
        """

        def f(pts: np.ndarray) -> np.ndarray:
            x, y = pts[:, 0], pts[:, 1]
            if self.dataset == "surface_1":
                return np.exp(x * x + y * y - 2.0)
            if self.dataset == "surface_2":
                return np.exp(x * x + y - 2.0)
            if self.thermo:
                sc = scale or ThermoScale()
                (v0, v1), (p0, p1) = sc.V_range, sc.P_range
                T = (v0 + x * (v1 - v0)) * (p0 + y * (p1 - p0)) / GAS_CONSTANT
                t0, t1 = sc.T_range
                return (T - t0) / (t1 - t0)
            return (y > 0.5 * np.sin(x)).astype(np.float64)

        return f


_UNIT: Box = ((0.0, 0.0), (1.0, 1.0))
_SQUARE: Box = ((-1.0, -1.0), (1.0, 1.0))
_CLASSIFIER_BOX: Box = ((-3.14, -1.0), (3.14, 1.5))
_OURS = "our choice (not stated in the paper)"

#: Start of the isotherm family: the 578.5 K isotherm (middle of 528.5-628.5 K) at V = 0.030.
_ISO_MID = 578.5
_ISO_START = (0.10, ThermoScale().p_on_isotherm(0.10, _ISO_MID))
_ISO_EPS = 50.0 / (NOMINAL_T[1] - NOMINAL_T[0])

EXPERIMENTS: dict[str, ExperimentSpec] = {
    "compact": ExperimentSpec(
        key="compact",
        number=1,
        title="Compact classes: exp(x^2+y^2-2), circles",
        kind="curve",
        dataset="surface_1",
        networks=(NetworkSource("paper", "surface_1"),),
        x0=(0.25, 0.25),
        box=_SQUARE,
        view=((-0.55, -0.55), (0.55, 0.55)),
        paper=PaperSettings(
            step=0.0125,
            max_steps=200,
            direction="backward",
            bounded=False,
            source="paper and the authors' output file surface_1_bad_simec_out.csv: "
            "delta = 0.0125, 200 steps, one unbounded run with invert = true "
            "(docs/paper-mode-spec.md)",
        ),
        corrected=CorrectedSettings(step=0.0125),
        closed_classes=True,
        fast_corrected={"max_steps": 2000},
        inset=((0.2, 0.2), (0.34, 0.34)),
    ),
    "noncompact": ExperimentSpec(
        key="noncompact",
        number=2,
        title="Non-compact classes: exp(x^2+y-2), parabolas",
        kind="curve",
        dataset="surface_2",
        networks=(NetworkSource("paper", "surface_2"),),
        x0=(0.25, 0.25),
        box=_SQUARE,
        view=((-1.25, -1.25), (1.25, 0.75)),
        paper=PaperSettings(
            step=1e-5,
            max_steps=150_000,
            direction="both",
            bounded=False,
            source="paper and the authors' output files surface_2_simec_out_{left,right}.csv: "
            "delta = 1e-5, 150,000 steps each way, unbounded SiMEC-1D "
            "(docs/paper-mode-spec.md)",
        ),
        corrected=CorrectedSettings(step=0.01),
        fast_paper={"step": 1e-3, "max_steps": 1500},
        inset=((0.9, -0.95), (1.15, -0.6)),
        notes=(
            "the authors' published surface-2 runs used weights_surface_2.csv, not the bundled "
            "surface_2 run here (docs/paper-mode-spec.md, section 8)",
            "fast mode: delta = 1e-3 and 1,500 steps each way (same arclength as the paper's run)",
        ),
    ),
    "thermo": ExperimentSpec(
        key="thermo",
        number=3,
        title="Thermodynamics: T = PV/R, isotherms",
        kind="curve",
        dataset="thermodynamics",
        networks=(
            NetworkSource("paper", "thermodynamics"),
            NetworkSource("paper softplus", "thermo_softplus", kelvin_output=True),
        ),
        x0=(0.10, 0.75),
        box=_UNIT,
        view=((0.0, 0.0), (1.0, 1.0)),
        paper=PaperSettings(
            step=1e-3,
            max_steps=2000,
            direction="both",
            bounded=True,
            source="start from the paper; delta = 1e-3, 2,000 steps each way, stop at the "
            "unit box: " + _OURS,
        ),
        corrected=CorrectedSettings(step=0.01),
        fast_paper={"step": 4e-3, "max_steps": 500},
    ),
    "annulus": ExperimentSpec(
        key="annulus",
        number=4,
        title="Preimage of an interval: annulus of exp(x^2+y^2-2)",
        kind="interval",
        dataset="surface_1",
        networks=(NetworkSource("paper", "surface_1"),),
        x0=(0.2, 0.2),
        box=_SQUARE,
        view=((-0.45, -0.45), (0.45, 0.45)),
        paper=PaperSettings(
            step=1e-3,
            max_steps=3000,
            epsilon=0.005,
            nst=100,
            exp_step=1e-5,
            source="epsilon = 0.005 (interval of width 0.01), start (0.2, 0.2), nst = 100 "
            "(main.cpp); delta = 1e-3, 3,000 iterations, delta_exp = 1e-5: " + _OURS,
        ),
        corrected=CorrectedSettings(step=0.01, levels=21),
        closed_classes=True,
        fast_paper={"nst": 8, "max_steps": 300, "step": 8e-3, "exp_step": 1e-4},
        fast_corrected={"levels": 5},
    ),
    "isotherms": ExperimentSpec(
        key="isotherms",
        number=5,
        title="A family of isotherms: 528.5 K to 628.5 K",
        kind="interval",
        dataset="thermodynamics",
        networks=(NetworkSource("paper", "thermodynamics"),),
        x0=_ISO_START,
        box=_UNIT,
        view=((0.0, 0.0), (1.0, 1.0)),
        paper=PaperSettings(
            step=1e-3,
            max_steps=2000,
            epsilon=_ISO_EPS,
            nst=100,
            exp_step=1e-5,
            source="interval 528.5-628.5 K (paper); start on the 578.5 K isotherm at "
            "V = 0.030 m^3, epsilon = 50 K, delta = 1e-3, 2,000 iterations, "
            "delta_exp = 1e-5: " + _OURS,
        ),
        corrected=CorrectedSettings(step=0.01, levels=21),
        interval_K=(528.5, 628.5),
        fast_paper={"nst": 8, "max_steps": 400, "step": 5e-3, "exp_step": 1e-4},
        fast_corrected={"levels": 5},
        notes=("the paper does not give the start of this run; we start on the middle isotherm",),
    ),
    "classifier": ExperimentSpec(
        key="classifier",
        number=6,
        title="Binary classifier: label 1 above y = 0.5 sin x",
        kind="interval",
        dataset="classification",
        networks=(NetworkSource("paper", "binary"),),
        x0=(0.0, -0.01499),
        box=_CLASSIFIER_BOX,
        view=_CLASSIFIER_BOX,
        paper=PaperSettings(
            step=1e-3,
            max_steps=10_000,
            epsilon=0.1,
            nst=100,
            exp_step=5e-6,
            source="epsilon = 0.1, delta = 1e-3, delta_exp = 5e-6, box [-3.14, 3.14] x [-1, 1.5], "
            "10,000 iterations (the authors' init/settings); nst = 100, 10,000 SiMExp steps "
            "(main.cpp); see docs/paper-mode-spec.md",
        ),
        corrected=CorrectedSettings(step=0.02, levels=21),
        fast_paper={"nst": 8, "max_steps": 700, "step": 1e-2, "exp_step": 1e-4},
        fast_corrected={"levels": 5},
        inset=((-0.04, -0.04), (0.04, 0.02)),
        start_level=0.504,
        notes=("the trained network starts at (0, y) with N = 0.504, on its own boundary",),
    ),
}

_ALIASES = {str(spec.number): key for key, spec in EXPERIMENTS.items()}


def resolve_experiments(names: list[str] | tuple[str, ...] | None) -> list[ExperimentSpec]:
    """Experiments by name or number, in the paper's order; all six when ``names`` is empty.

    Parameters
    ----------
    names : list of str or None
        Keys (``compact``, ``noncompact``, ``thermo``, ``annulus``, ``isotherms``,
        ``classifier``) or numbers ``1``-``6``; ``all`` selects every one.

    Returns
    -------
    list of ExperimentSpec
        Without duplicates, ordered by number.

    Raises
    ------
    InputError
        For an unknown name.
    """
    if not names:
        return list(EXPERIMENTS.values())
    chosen: dict[str, ExperimentSpec] = {}
    for raw in names:
        name = str(raw).strip().lower()
        if name == "all":
            chosen.update(EXPERIMENTS)
            continue
        key = _ALIASES.get(name, name)
        if key not in EXPERIMENTS:
            known = ", ".join(f"{s.number}/{k}" for k, s in EXPERIMENTS.items())
            raise fs.InputError(f"unknown experiment {raw!r}; choose from {known} or all")
        chosen[key] = EXPERIMENTS[key]
    return sorted(chosen.values(), key=lambda s: s.number)
