"""The training data of the paper's experiments, regenerated from a seed.

Recipes follow the authors' scripts (``datasets/*/*.py`` in ``alessiomarta/simec-1d-test-code``,
MIT): points are drawn i.i.d. uniformly, the first half is the training set and the second half
the validation ("test") set, and the targets are exact (no noise).

========================  =====  ==========================================  ================
data set                  size   inputs                                      target
========================  =====  ==========================================  ================
``surface_1``             2000   (x, y) ~ U((-1, 1)^2)                       exp(x^2 + y^2 - 2)
``surface_2``             2000   (x, y) ~ U((-1, 1)^2)                       exp(x^2 + y - 2)
``thermodynamics``        5000   V ~ U(0.025, 0.075) m^3, P ~ U(1e5, 2e5) Pa  T = PV / 8.314,
                                 both min-max normalised per column          min-max normalised
``classification``        2000   (x, y) ~ U((-3.14, 3.14) x (-2, 2))         1 if y > sin(x)/2
========================  =====  ==========================================  ================

Every function is fully determined by ``seed`` (a local ``numpy.random.Generator``; no global
random state is read or changed) and returns float64 torch tensors ``X`` of shape ``(n, 2)`` and
``y`` of shape ``(n, 1)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

__all__ = [
    "DATASETS",
    "GAS_CONSTANT",
    "ClassificationData",
    "ExperimentData",
    "ThermoData",
    "classification",
    "make_dataset",
    "surface_1",
    "surface_2",
    "thermodynamics",
]

#: Universal gas constant used by the authors, J/(mol K).
GAS_CONSTANT: float = 8.314

DomainBox = tuple[tuple[float, float], tuple[float, float]]
ArrayLike = torch.Tensor | np.ndarray | list[float] | list[list[float]] | tuple[float, ...]


def _as_points(x: ArrayLike) -> torch.Tensor:
    """Convert ``x`` to a float64 tensor whose last axis has length 2."""
    t = torch.as_tensor(x, dtype=torch.float64)
    if t.shape[-1:] != (2,):
        raise ValueError(f"expected points with last dimension 2, got shape {tuple(t.shape)}")
    return t


def _check_n(n: int, minimum: int = 2) -> None:
    if int(n) != n or n < minimum:
        raise ValueError(f"n must be an integer >= {minimum}, got {n!r}")


@dataclass(frozen=True, eq=False)
class ExperimentData:
    """A generated data set of one experiment.

    Attributes
    ----------
    name : str
        Experiment name (``"surface_1"``, ``"surface_2"``, ``"thermodynamics"``,
        ``"classification"``).
    X : torch.Tensor
        Network inputs, float64, shape ``(n, 2)``.
    y : torch.Tensor
        Targets, float64, shape ``(n, 1)``.
    truth : Callable[[torch.Tensor], torch.Tensor]
        The analytic ground truth: maps points of shape ``(..., 2)`` in the network's input
        coordinates to targets of shape ``(..., 1)``; ``truth(X)`` equals ``y``.
    domain : tuple of tuple of float
        The sampling box ``((x_lo, x_hi), (y_lo, y_hi))`` in the network's input coordinates.
    seed : int
        The seed that generated the data.
    train_fraction : float
        Fraction of the rows used for training; the paper uses the first half for training and
        the second half for validation.
    metadata : dict
        Further facts about the recipe (formula, source script, the paper's training settings).
    """

    name: str
    X: torch.Tensor
    y: torch.Tensor
    truth: Callable[[torch.Tensor], torch.Tensor]
    domain: DomainBox
    seed: int
    train_fraction: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.X.shape[0])

    @property
    def n_train(self) -> int:
        """Number of training rows (the first ``n_train`` rows)."""
        return int(self.n * self.train_fraction)

    def split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split into training and validation sets as the paper does.

        Returns
        -------
        X_train, y_train, X_val, y_val : torch.Tensor
            The first ``n_train`` rows and the remaining rows (no shuffling: the samples are
            i.i.d.).
        """
        k = self.n_train
        return self.X[:k], self.y[:k], self.X[k:], self.y[k:]


@dataclass(frozen=True, eq=False)
class ThermoData(ExperimentData):
    """The ideal-gas data set, with its min-max normalisation.

    The network sees ``v = (V - V_min) / (V_max - V_min)`` and
    ``p = (P - P_min) / (P_max - P_min)`` and predicts ``t = (T - T_min) / (T_max - T_min)``
    with ``T = P V / R``.

    Attributes
    ----------
    V_range, P_range, T_range : tuple of float
        ``(min, max)`` used to normalise volume (m^3), pressure (Pa) and temperature (K).
    R : float
        Gas constant (8.314 J/(mol K), one mole).
    """

    V_range: tuple[float, float] = (0.025, 0.075)
    P_range: tuple[float, float] = (1e5, 2e5)
    T_range: tuple[float, float] = (0.025 * 1e5 / GAS_CONSTANT, 0.075 * 2e5 / GAS_CONSTANT)
    R: float = GAS_CONSTANT

    def normalise_inputs(
        self, V: ArrayLike | float, P: ArrayLike | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Physical (V, P) to the network's normalised (v, p).

        Parameters
        ----------
        V, P : array_like or float
            Volume in m^3 and pressure in Pa.

        Returns
        -------
        v, p : torch.Tensor
            Normalised coordinates, float64.
        """
        V = torch.as_tensor(V, dtype=torch.float64)
        P = torch.as_tensor(P, dtype=torch.float64)
        (v0, v1), (p0, p1) = self.V_range, self.P_range
        return (V - v0) / (v1 - v0), (P - p0) / (p1 - p0)

    def denormalise_inputs(
        self, v: ArrayLike | float, p: ArrayLike | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (v, p) to physical (V, P).

        Parameters
        ----------
        v, p : array_like or float
            Normalised coordinates.

        Returns
        -------
        V, P : torch.Tensor
            Volume in m^3 and pressure in Pa, float64.
        """
        v = torch.as_tensor(v, dtype=torch.float64)
        p = torch.as_tensor(p, dtype=torch.float64)
        (v0, v1), (p0, p1) = self.V_range, self.P_range
        return v0 + v * (v1 - v0), p0 + p * (p1 - p0)

    def normalise_T(self, T: ArrayLike | float) -> torch.Tensor:
        """Temperature in kelvin to the network's normalised output.

        Parameters
        ----------
        T : array_like or float
            Temperature in K.

        Returns
        -------
        torch.Tensor
            ``(T - T_min) / (T_max - T_min)``, float64.
        """
        t0, t1 = self.T_range
        return (torch.as_tensor(T, dtype=torch.float64) - t0) / (t1 - t0)

    def denormalise_T(self, t: ArrayLike | float) -> torch.Tensor:
        """Normalised network output to temperature in kelvin.

        Parameters
        ----------
        t : array_like or float
            Normalised temperature.

        Returns
        -------
        torch.Tensor
            ``T_min + t (T_max - T_min)`` in K, float64.
        """
        t0, t1 = self.T_range
        return t0 + torch.as_tensor(t, dtype=torch.float64) * (t1 - t0)

    def temperature(self, x: ArrayLike) -> torch.Tensor:
        """Exact temperature in kelvin at normalised points.

        Parameters
        ----------
        x : array_like
            Normalised ``(v, p)`` points, shape ``(..., 2)``.

        Returns
        -------
        torch.Tensor
            ``P V / R`` in K, shape ``(...,)``.
        """
        x = _as_points(x)
        V, P = self.denormalise_inputs(x[..., 0], x[..., 1])
        return P * V / self.R

    def isotherm(self, point: ArrayLike) -> Callable[[ArrayLike], torch.Tensor]:
        """The analytic isotherm through a normalised point, as ``p(v)``.

        The isotherm is the hyperbola ``P V = P0 V0`` in physical units.

        Parameters
        ----------
        point : array_like
            Normalised ``(v0, p0)``.

        Returns
        -------
        Callable
            Maps normalised volumes ``v`` to the normalised pressures ``p`` on the isotherm.
        """
        pt = _as_points(point)
        V0, P0 = self.denormalise_inputs(pt[..., 0], pt[..., 1])
        return self.isotherm_at(float(P0 * V0 / self.R))

    def isotherm_at(self, T: float) -> Callable[[ArrayLike], torch.Tensor]:
        """The analytic isotherm of temperature ``T`` (kelvin), as normalised ``p(v)``.

        Parameters
        ----------
        T : float
            Temperature in K.

        Returns
        -------
        Callable
            Maps normalised volumes ``v`` to normalised pressures ``p`` with ``P V = R T``.
        """
        c = self.R * float(T)
        (p0, p1) = self.P_range

        def p_of_v(v: ArrayLike) -> torch.Tensor:
            V, _ = self.denormalise_inputs(v, 0.0)
            return (c / V - p0) / (p1 - p0)

        return p_of_v


@dataclass(frozen=True, eq=False)
class ClassificationData(ExperimentData):
    """The binary classification data set (label 1 above ``y = amplitude * sin x``).

    Attributes
    ----------
    amplitude : float
        Amplitude of the sinusoidal decision boundary (0.5 in the paper).
    """

    amplitude: float = 0.5

    def boundary(self, x: ArrayLike | float) -> torch.Tensor:
        """The true decision boundary ``y = amplitude * sin(x)``.

        Parameters
        ----------
        x : array_like or float
            Abscissae.

        Returns
        -------
        torch.Tensor
            Ordinates of the boundary, float64.
        """
        return self.amplitude * torch.sin(torch.as_tensor(x, dtype=torch.float64))


def _uniform_box(n: int, seed: int, box: DomainBox) -> np.ndarray:
    """``n`` i.i.d. uniform points of ``box`` (x and y drawn alternately, as the paper does)."""
    u = np.random.default_rng(seed).random((n, 2))
    lo = np.array([box[0][0], box[1][0]])
    hi = np.array([box[0][1], box[1][1]])
    return lo + (hi - lo) * u


def _surface_truth(kind: int) -> Callable[[ArrayLike], torch.Tensor]:
    def truth(x: ArrayLike) -> torch.Tensor:
        x = _as_points(x)
        a, b = x[..., 0], x[..., 1]
        z = torch.exp(a * a + b * b - 2.0) if kind == 1 else torch.exp(a * a + b - 2.0)
        return z.unsqueeze(-1)

    truth.__doc__ = (
        "exp(x^2 + y^2 - 2)" if kind == 1 else "exp(x^2 + y - 2)"
    ) + " at points of shape (..., 2); returns shape (..., 1)."
    return truth


def _surface(kind: int, n: int, seed: int) -> ExperimentData:
    _check_n(n)
    box: DomainBox = ((-1.0, 1.0), (-1.0, 1.0))
    X = torch.from_numpy(_uniform_box(n, seed, box))
    truth = _surface_truth(kind)
    name = f"surface_{kind}"
    return ExperimentData(
        name=name,
        X=X,
        y=truth(X),
        truth=truth,
        domain=box,
        seed=seed,
        metadata={
            "formula": "z = exp(x^2 + y^2 - 2)" if kind == 1 else "z = exp(x^2 + y - 2)",
            "classes": "circles x^2 + y^2 = c" if kind == 1 else "parabolas y = c - x^2",
            "source": f"simec-1d-test-code/datasets/surface_{kind}/surface_{kind}.py",
            "paper_training": {
                "architecture": [2, 5, 5, 1],
                "activation": "sigmoid",
                "loss": "mse",
                "optimizer": "adam",
                "batch_size": 512,
                "epochs": 15000 if kind == 1 else 20000,
            },
        },
    )


def surface_1(n: int = 2000, seed: int = 0) -> ExperimentData:
    """Data of the compact-classes experiment: ``z = exp(x^2 + y^2 - 2)`` on ``(-1, 1)^2``.

    Parameters
    ----------
    n : int, default 2000
        Number of points (the paper's size); the first half trains, the second validates.
    seed : int, default 0
        Seed of the local random generator.

    Returns
    -------
    ExperimentData
        ``X`` of shape ``(n, 2)``, ``y = truth(X)`` of shape ``(n, 1)``.
    """
    return _surface(1, n, seed)


def surface_2(n: int = 2000, seed: int = 0) -> ExperimentData:
    """Data of the non-compact-classes experiment: ``z = exp(x^2 + y - 2)`` on ``(-1, 1)^2``.

    Parameters
    ----------
    n : int, default 2000
        Number of points (the paper's size); the first half trains, the second validates.
    seed : int, default 0
        Seed of the local random generator.

    Returns
    -------
    ExperimentData
        ``X`` of shape ``(n, 2)``, ``y = truth(X)`` of shape ``(n, 1)``.
    """
    return _surface(2, n, seed)


def thermodynamics(
    n: int = 5000,
    seed: int = 0,
    normalisation: Literal["empirical", "nominal"] = "empirical",
) -> ThermoData:
    """Data of the ideal-gas experiment: normalised ``(V, P)`` to normalised ``T = P V / R``.

    ``V ~ U(0.025, 0.075)`` m^3 and ``P ~ U(1e5, 2e5)`` Pa, ``R = 8.314``; each column is min-max
    normalised to ``[0, 1]``.

    Parameters
    ----------
    n : int, default 5000
        Number of points (the paper's size); the first half trains, the second validates.
    seed : int, default 0
        Seed of the local random generator.
    normalisation : {"empirical", "nominal"}, default "empirical"
        ``"empirical"`` uses the sample's own minima and maxima of V, P and T, as the authors'
        script does; ``"nominal"`` uses the sampling bounds ``V in [0.025, 0.075]``,
        ``P in [1e5, 2e5]`` and ``T in [0.025 * 1e5 / R, 0.075 * 2e5 / R]``.

    Returns
    -------
    ThermoData
        Normalised ``X = (v, p)`` of shape ``(n, 2)`` and normalised ``y = t`` of shape
        ``(n, 1)``, the ranges used (``V_range``, ``P_range``, ``T_range``) and the
        normalise/denormalise/isotherm helpers.
    """
    _check_n(n)
    V_box, P_box = (0.025, 0.075), (1e5, 2e5)
    VP = _uniform_box(n, seed, (V_box, P_box))
    V, P = VP[:, 0], VP[:, 1]
    T = V * P / GAS_CONSTANT
    if normalisation == "empirical":
        V_range = (float(V.min()), float(V.max()))
        P_range = (float(P.min()), float(P.max()))
        T_range = (float(T.min()), float(T.max()))
    elif normalisation == "nominal":
        V_range, P_range = V_box, P_box
        T_range = (V_box[0] * P_box[0] / GAS_CONSTANT, V_box[1] * P_box[1] / GAS_CONSTANT)
    else:
        raise ValueError(f"normalisation must be 'empirical' or 'nominal', got {normalisation!r}")

    def scale(a: np.ndarray, r: tuple[float, float]) -> np.ndarray:
        return (a - r[0]) / (r[1] - r[0])

    X = torch.from_numpy(np.stack([scale(V, V_range), scale(P, P_range)], axis=1))
    y = torch.from_numpy(scale(T, T_range)).unsqueeze(1)
    (v0, v1), (p0, p1), (t0, t1) = V_range, P_range, T_range

    def truth(x: ArrayLike) -> torch.Tensor:
        """Normalised ``T = P V / R`` at normalised ``(v, p)`` of shape (..., 2); (..., 1)."""
        x = _as_points(x)
        Vx = v0 + x[..., 0] * (v1 - v0)
        Px = p0 + x[..., 1] * (p1 - p0)
        return ((Px * Vx / GAS_CONSTANT - t0) / (t1 - t0)).unsqueeze(-1)

    lo_v, hi_v = scale(np.array(V_box), V_range)
    lo_p, hi_p = scale(np.array(P_box), P_range)
    return ThermoData(
        name="thermodynamics",
        X=X,
        y=y,
        truth=truth,
        domain=((float(lo_v), float(hi_v)), (float(lo_p), float(hi_p))),
        seed=seed,
        metadata={
            "formula": "T = P V / R, R = 8.314, all min-max normalised",
            "classes": "isotherms P V = const (hyperbolas)",
            "normalisation": normalisation,
            "source": "simec-1d-test-code/datasets/thermodynamics/thermodynamics.py",
            "paper_training": {
                "architecture": [2, 5, 10, 10, 5, 1],
                "activation": "sigmoid",
                "loss": "mse",
                "optimizer": "adam",
                "batch_size": 1024,
                "epochs": 10000,
            },
        },
        V_range=V_range,
        P_range=P_range,
        T_range=T_range,
        R=GAS_CONSTANT,
    )


def classification(
    n: int = 2000,
    seed: int = 0,
    x_half_width: float = 3.14,
    amplitude: float = 0.5,
) -> ClassificationData:
    """Data of the binary classifier: label 1 where ``y > 0.5 sin x``, else 0.

    Parameters
    ----------
    n : int, default 2000
        Number of points (the paper's size); the first half trains, the second validates.
    seed : int, default 0
        Seed of the local random generator.
    x_half_width : float, default 3.14
        ``x ~ U(-x_half_width, x_half_width)``; the authors' script uses 3.14 (not exactly pi).
    amplitude : float, default 0.5
        Amplitude of the boundary ``y = amplitude * sin x``.

    Returns
    -------
    ClassificationData
        ``X`` of shape ``(n, 2)`` on ``(-x_half_width, x_half_width) x (-2, 2)`` and labels
        ``y`` in {0., 1.} of shape ``(n, 1)``.
    """
    _check_n(n)
    box: DomainBox = ((-float(x_half_width), float(x_half_width)), (-2.0, 2.0))
    X = torch.from_numpy(_uniform_box(n, seed, box))

    def truth(x: ArrayLike) -> torch.Tensor:
        """1.0 where ``y > amplitude * sin x`` else 0.0, at points (..., 2); shape (..., 1)."""
        x = _as_points(x)
        return (x[..., 1] > amplitude * torch.sin(x[..., 0])).to(torch.float64).unsqueeze(-1)

    return ClassificationData(
        name="classification",
        X=X,
        y=truth(X),
        truth=truth,
        domain=box,
        seed=seed,
        metadata={
            "formula": f"label = 1 if y > {amplitude} sin x else 0",
            "source": "simec-1d-test-code/datasets/classification/classification.py",
            "paper_training": {
                "architecture": [2, 5, 5, 5, 1],
                "activation": "sigmoid",
                "loss": "mse",
                "optimizer": "adam",
                "batch_size": 1024,
                "epochs": 15000,
            },
        },
        amplitude=float(amplitude),
    )


#: The data-set generators by experiment name.
DATASETS: dict[str, Callable[..., ExperimentData]] = {
    "surface_1": surface_1,
    "surface_2": surface_2,
    "thermodynamics": thermodynamics,
    "classification": classification,
}


def make_dataset(name: str, n: int | None = None, seed: int = 0) -> ExperimentData:
    """Generate the data set of an experiment by name.

    Parameters
    ----------
    name : str
        One of ``"surface_1"``, ``"surface_2"``, ``"thermodynamics"``, ``"classification"``.
    n : int, optional
        Number of points; the paper's size when omitted.
    seed : int, default 0
        Seed of the local random generator.

    Returns
    -------
    ExperimentData
        The data set.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    """
    try:
        fn = DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown experiment {name!r}; expected one of {', '.join(DATASETS)}"
        ) from None
    return fn(seed=seed) if n is None else fn(n=n, seed=seed)
