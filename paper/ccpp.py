"""The paper III CCPP regression network, its data and its training, as the authors did it.

Data: the UCI Combined Cycle Power Plant set (``data/ccpp/combined.csv``, CC BY 4.0; 9,568
rows, ``;``-separated, no header; columns AT, V, AP, RH, PE). The authors' loader
(``extension_singular_riemannian_framework_code/ccpp/main.py``, read for this reproduction)
skips the first row as if it were a header (a bug: it is data), min-max normalises every
column over all remaining rows, and splits in file order: the first 70 % train, the rest
validate. Inputs are the columns AT, V, AP, RH; their target is column 3, **RH, one of the
inputs** (a bug: the network learns to copy RH). :func:`load_ccpp` gives both that target and
the intended one, PE (column 4).

Network (:class:`CCPPNet`): Linear 4→32 → ReLU → Linear 32→32 → ReLU (kept as residual) →
Linear 32→1 → ReLU → LSTMCell(1, 1) (zero state, its hidden output) → Linear 1→32 → ReLU →
(+ residual) → Linear 32→1 → sigmoid.

Training (:func:`train_ccpp`): Adam lr 1e-4, mini-batches of 100 in file order (no
shuffling, as theirs), MSE, 500 epochs; float32; deterministic (seeded initialisation, one
thread, deterministic algorithms).

Command line (from the repository root)::

    python -m paper.ccpp [--target rh|pe|both] [--epochs N]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

import fiberscope as fs

__all__ = [
    "COLUMNS",
    "DATA_FILE",
    "CCPPData",
    "CCPPNet",
    "TrainedCCPP",
    "load_ccpp",
    "train_ccpp",
]

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "ccpp" / "combined.csv"
#: Column names of ``combined.csv``.
COLUMNS = ("AT", "V", "AP", "RH", "PE")
#: Target column of each choice: the authors' (RH, an input) and the intended one (PE).
TARGETS = {"rh": 3, "pe": 4}


@dataclass
class CCPPData:
    """The CCPP data as the authors' loader prepares it.

    Attributes
    ----------
    X_train, y_train, X_val, y_val : torch.Tensor
        Normalised inputs ``(N, 4)`` (AT, V, AP, RH) and targets ``(N, 1)``, float32.
    target : {"rh", "pe"}
        Which column is the target.
    minimum, maximum : numpy.ndarray
        ``(5,)`` column minima and maxima used to normalise (for de-normalising).
    rows : int
        Rows used (the file's rows minus the skipped first one).
    """

    X_train: Tensor
    y_train: Tensor
    X_val: Tensor
    y_val: Tensor
    target: str
    minimum: np.ndarray
    maximum: np.ndarray
    rows: int

    def denormalise(self, x: np.ndarray | Tensor) -> np.ndarray:
        """Inputs back in physical units (°C, cm Hg, mbar, %).

        Parameters
        ----------
        x : array-like
            ``(..., 4)`` normalised inputs.

        Returns
        -------
        numpy.ndarray
            The same points in the data's units.
        """
        a = np.asarray(x, dtype=np.float64)
        return self.minimum[:4] + a * (self.maximum[:4] - self.minimum[:4])


def load_ccpp(
    target: Literal["rh", "pe"] = "rh",
    *,
    path: str | Path = DATA_FILE,
    validation: float = 0.3,
) -> CCPPData:
    """Load and normalise the CCPP data exactly as the authors' loader does.

    Parameters
    ----------
    target : {"rh", "pe"}
        ``"rh"``: the authors' target (column 3, RH, which is also an input: their bug);
        ``"pe"``: the intended target, the net electrical output.
    path : str or pathlib.Path
        The ``;``-separated file.
    validation : float
        Share of rows (the last ones) held out.

    Returns
    -------
    CCPPData
        Train/validation tensors (float32) and the normalisation.

    Raises
    ------
    fiberscope.InputError
        Unknown target, or a file that is not 5 numeric columns.
    """
    if target not in TARGETS:
        raise fs.InputError(f"unknown CCPP target {target!r}; use 'rh' (the authors') or 'pe'")
    raw = np.loadtxt(path, delimiter=";", dtype=np.float32)
    if raw.ndim != 2 or raw.shape[1] != 5:
        raise fs.InputError(f"{path}: expected 5 columns, found shape {raw.shape}")
    data = raw[1:].copy()  # the authors skip row 0 as a header, although it is data
    lo, hi = data.min(axis=0), data.max(axis=0)
    data = (data - lo) / (hi - lo)
    cut = int(len(data) * (1.0 - validation))
    col = TARGETS[target]
    t = torch.from_numpy(data)
    return CCPPData(
        X_train=t[:cut, 0:4].clone(),
        y_train=t[:cut, col : col + 1].clone(),
        X_val=t[cut:, 0:4].clone(),
        y_val=t[cut:, col : col + 1].clone(),
        target=target,
        minimum=lo.astype(np.float64),
        maximum=hi.astype(np.float64),
        rows=len(data),
    )


class CCPPNet(nn.Module):
    """The authors' CCPP regression network (4 inputs, one output in ``(0, 1)``).

    Accepts one point ``(4,)`` (output ``(1,)``) or a batch ``(B, 4)`` (output ``(B, 1)``).
    """

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.linear1 = nn.Linear(4, hidden)
        self.linear2A = nn.Linear(hidden, hidden)
        self.linear2B = nn.Linear(hidden, 1)
        self.lstm = nn.LSTMCell(input_size=1, hidden_size=1)
        self.linear_lstm = nn.Linear(1, hidden)
        self.linear3 = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Normalised target of normalised inputs (AT, V, AP, RH)."""
        h = torch.relu(self.linear1(x))
        h = torch.relu(self.linear2A(h))
        residual = h
        h = torch.relu(self.linear2B(h))
        h, _ = self.lstm(h)
        h = torch.relu(self.linear_lstm(h))
        return torch.sigmoid(self.linear3(h + residual))


@dataclass(eq=False)
class TrainedCCPP:
    """Outcome of :func:`train_ccpp`.

    Attributes
    ----------
    model : CCPPNet
        The trained network (eval mode, float32).
    data : CCPPData
        The data it was trained on.
    val_mse, train_mse : float
        Mean squared errors (normalised units).
    val_mae_units : float
        Validation mean absolute error in the target's units (% RH or MW).
    epochs : int
        Epochs trained.
    seconds : float
        Wall time of the optimisation.
    history : list of float
        Validation MSE after every epoch (as the authors record it).
    """

    model: CCPPNet
    data: CCPPData
    val_mse: float
    train_mse: float
    val_mae_units: float
    epochs: int
    seconds: float
    history: list[float] = field(default_factory=list)


def train_ccpp(
    target: Literal["rh", "pe"] = "rh",
    *,
    epochs: int = 500,
    batch_size: int = 100,
    lr: float = 1e-4,
    seed: int = 0,
    data: CCPPData | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedCCPP:
    """Train the CCPP network as the authors did (Adam, MSE, batches in file order).

    Parameters
    ----------
    target : {"rh", "pe"}
        The authors' target (RH) or the intended one (PE).
    epochs : int
        Passes over the training rows (the authors' 500).
    batch_size : int
        Rows per step (the authors' 100).
    lr : float
        Adam's learning rate (the authors' 1e-4).
    seed : int
        Seed of the initial weights (the authors did not seed).
    data : CCPPData, optional
        Preloaded data (default: :func:`load_ccpp` with ``target``).
    progress : callable, optional
        ``progress(epochs_done, epochs)`` after every epoch.

    Returns
    -------
    TrainedCCPP
        Model, errors, time, validation history.

    Raises
    ------
    fiberscope.InputError
        Non-positive epochs or batch size.
    """
    if epochs < 1 or batch_size < 1:
        raise fs.InputError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
    d = data if data is not None else load_ccpp(target)
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    history: list[float] = []
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = CCPPNet()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.MSELoss()
        t0 = time.perf_counter()
        n = d.X_train.shape[0]
        for epoch in range(epochs):
            model.train()
            for start in range(0, n, batch_size):
                xb = d.X_train[start : start + batch_size]
                yb = d.y_train[start : start + batch_size]
                loss = loss_fn(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                history.append(float(loss_fn(model(d.X_val), d.y_val)))
            if progress is not None:
                progress(epoch + 1, epochs)
        seconds = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            val = model(d.X_val)
            train_mse = float(loss_fn(model(d.X_train), d.y_train))
        col = TARGETS[d.target]
        span = float(d.maximum[col] - d.minimum[col])
        val_mae = float((val - d.y_val).abs().mean()) * span
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)
    return TrainedCCPP(
        model=model,
        data=d,
        val_mse=history[-1],
        train_mse=train_mse,
        val_mae_units=val_mae,
        epochs=epochs,
        seconds=seconds,
        history=history,
    )


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m paper.ccpp",
        description="Train the authors' CCPP network with their target (RH) and with PE.",
    )
    parser.add_argument("--target", choices=("rh", "pe", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    targets = ("rh", "pe") if args.target == "both" else (args.target,)
    print(f"{'target':<8} {'epochs':>6} {'val MSE':>10} {'train MSE':>10} {'val MAE':>14} {'s':>7}")
    from .progress import Reporter

    with Reporter(heartbeat=10.0) as rep:
        for target in targets:
            rep.stage(f"training the CCPP network, target {target.upper()}")
            res = train_ccpp(
                target, epochs=args.epochs, seed=args.seed, progress=rep.counter("epochs")
            )
            unit = "% RH" if target == "rh" else "MW"
            print(
                f"{target:<8} {res.epochs:>6} {res.val_mse:>10.3e} {res.train_mse:>10.3e} "
                f"{res.val_mae_units:>9.3f} {unit:<4} {res.seconds:>7.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(_main())
