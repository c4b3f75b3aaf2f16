"""Train the paper's networks in PyTorch and save them in the paper's weights-CSV format.

The authors (``simec-1d-test-code``, Keras) trained sigmoid MLPs, sigmoid on every layer
including the output, with MSE loss and Adam (learning rate 1e-3), mini-batches of 512 (surfaces)
or 1024 (thermodynamics, classifier) for 10,000-20,000 epochs on the first half of each data
set. That is 15,000-40,000 optimiser steps, too slow for a CPU test budget. Here the same
architectures, data, split and loss are trained full-batch in float64 with Adam at a 10x larger
learning rate and a cosine decay to 1% of it; 5,000-10,000 steps reach validation errors of the
same size as the paper's networks in a few seconds (see ``python -m
paper.training``).

Everything is seeded locally (a ``torch.Generator`` for the initial weights, a
``numpy.random.Generator`` for the data): the same seed gives bitwise the same weights on the
same machine and thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import fiberscope as fs

from .datasets import ExperimentData, ThermoData, make_dataset

__all__ = [
    "PAPER_RECIPES",
    "TrainRecipe",
    "TrainResult",
    "build_paper_mlp",
    "evaluate",
    "train_paper_network",
]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "softmax": nn.Softmax,
}


@dataclass(frozen=True)
class TrainRecipe:
    """How one of the paper's networks is trained here.

    Attributes
    ----------
    widths : tuple of int
        Layer widths, input first (the paper's architecture).
    epochs : int
        Full-batch epochs (= optimiser steps when ``batch_size`` is None).
    lr : float
        Initial Adam learning rate.
    final_lr_factor : float
        The learning rate decays along a cosine to ``lr * final_lr_factor``.
    paper_epochs : int
        Epochs the authors used (Keras, Adam lr 1e-3).
    paper_batch_size : int
        Mini-batch size the authors used.
    """

    widths: tuple[int, ...]
    epochs: int
    lr: float = 1e-2
    final_lr_factor: float = 0.01
    paper_epochs: int = 0
    paper_batch_size: int = 0


#: The paper's architectures with this module's default training settings.
PAPER_RECIPES: dict[str, TrainRecipe] = {
    "surface_1": TrainRecipe((2, 5, 5, 1), 10_000, 1e-2, 0.01, 15_000, 512),
    "surface_2": TrainRecipe((2, 5, 5, 1), 10_000, 1e-2, 0.01, 20_000, 512),
    "thermodynamics": TrainRecipe((2, 5, 10, 10, 5, 1), 8_000, 2e-2, 0.01, 10_000, 1024),
    "classification": TrainRecipe((2, 5, 5, 5, 1), 5_000, 1e-2, 0.01, 15_000, 1024),
}


@dataclass(eq=False)
class TrainResult:
    """Outcome of :func:`train_paper_network`.

    Attributes
    ----------
    name : str
        Experiment name.
    model : torch.nn.Sequential
        The trained network, float64, eval mode.
    train_loss : float
        Final MSE on the training set.
    val_loss : float
        MSE on the validation set.
    val_mae : float
        Mean absolute error on the validation set.
    epochs : int
        Epochs trained.
    seconds : float
        Wall-clock time of the optimisation loop (excluding data generation and torch's
        one-off import on the first optimiser construction in a process).
    seed : int
        Seed of the data and of the initial weights.
    val_accuracy : float or None
        Fraction of validation points classified correctly (output > 0.5), classifier only.
    history : list of float
        Training MSE before each epoch's last optimiser step.
    data : ExperimentData
        The data set the network was trained and validated on.
    """

    name: str
    model: nn.Sequential
    train_loss: float
    val_loss: float
    val_mae: float
    epochs: int
    seconds: float
    seed: int
    val_accuracy: float | None = None
    history: list[float] = field(default_factory=list, repr=False)
    data: ExperimentData | None = field(default=None, repr=False)


def build_paper_mlp(
    widths: Sequence[int], activation: str = "sigmoid", *, seed: int | None = 0
) -> nn.Sequential:
    """A fully connected network as in the paper: ``act(W x + b)`` on every layer.

    Every layer, the output layer included, is followed by the activation, as in the paper's
    weights files (each layer carries an activation type). Weights are Glorot-uniform and biases
    zero, Keras' defaults.

    Parameters
    ----------
    widths : sequence of int
        Layer widths, input first, e.g. ``(2, 5, 5, 1)``.
    activation : {"sigmoid", "softplus", "silu", "softmax"}, default "sigmoid"
        Activation of every layer.
    seed : int or None, default 0
        Seed of a local generator for the initial weights; None draws from torch's global
        generator.

    Returns
    -------
    torch.nn.Sequential
        ``Linear, act, Linear, act, ...`` in float64, train mode.

    Raises
    ------
    ValueError
        For fewer than two widths, a non-positive width or an unknown activation.
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths must be at least two positive integers, got {widths}")
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; expected one of {', '.join(_ACTIVATIONS)}"
        )
    gen = None if seed is None else torch.Generator().manual_seed(int(seed))
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        lin = nn.Linear(fan_in, fan_out, dtype=torch.float64)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        with torch.no_grad():
            w = torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float64)
            lin.weight.copy_((2.0 * w - 1.0) * limit)
            lin.bias.zero_()
        act = nn.Softmax(dim=-1) if activation == "softmax" else _ACTIVATIONS[activation]()
        layers += [lin, act]
    return nn.Sequential(*layers)


@torch.no_grad()
def evaluate(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, classifier: bool = False
) -> dict[str, float]:
    """Errors of a network on a data set.

    Parameters
    ----------
    model : torch.nn.Module
        Network mapping ``(n, 2)`` to ``(n, 1)``.
    X, y : torch.Tensor
        Inputs and targets.
    classifier : bool, default False
        Also report the accuracy of ``output > 0.5`` against 0/1 labels.

    Returns
    -------
    dict
        ``mse``, ``mae`` and, for a classifier, ``accuracy``.
    """
    out = model(X.to(torch.float64)).reshape(y.shape)
    err = out - y
    res = {"mse": float((err * err).mean()), "mae": float(err.abs().mean())}
    if classifier:
        res["accuracy"] = float(((out > 0.5).to(y.dtype) == y).to(torch.float64).mean())
    return res


def train_paper_network(
    name: str,
    *,
    epochs: int | None = None,
    seed: int = 0,
    n: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    threads: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train one of the paper's networks on freshly generated data.

    Data: :func:`paper.datasets.make_dataset` with ``seed``; the first half
    trains, the second half validates. Model: :func:`build_paper_mlp` with the paper's widths
    (2-5-5-1 surfaces, 2-5-10-10-5-1 thermodynamics, 2-5-5-5-1 classifier), sigmoid on every
    layer. Loss: MSE (also for the classifier, as in the paper). Optimiser: Adam with a cosine
    learning-rate decay (see :data:`PAPER_RECIPES`).

    Parameters
    ----------
    name : {"surface_1", "surface_2", "thermodynamics", "classification"}
        The experiment.
    epochs : int, optional
        Passes over the training set; the recipe's default when omitted.
    seed : int, default 0
        Seed of the data and of the initial weights.
    n : int, optional
        Data-set size; the paper's when omitted.
    lr : float, optional
        Initial learning rate; the recipe's when omitted.
    batch_size : int, optional
        Mini-batch size (shuffled each epoch with a local generator); full batch when omitted.
        The paper's exact recipe is e.g. ``epochs=15000, lr=1e-3, batch_size=512``.
    threads : int or None, default 1
        Torch intra-op threads while training (restored afterwards); None leaves them alone.
        Bitwise reproducibility is only promised for the same thread count.
    progress : callable, optional
        ``progress(epochs_done, epochs)`` after every epoch.

    Returns
    -------
    TrainResult
        The trained model (float64, eval mode) and its errors.

    Raises
    ------
    ValueError
        For an unknown name or non-positive ``epochs``/``batch_size``.
    """
    if name not in PAPER_RECIPES:
        raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(PAPER_RECIPES)}")
    recipe = PAPER_RECIPES[name]
    epochs = recipe.epochs if epochs is None else int(epochs)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    lr0 = recipe.lr if lr is None else float(lr)

    data = make_dataset(name, n=n, seed=seed)
    X_train, y_train, X_val, y_val = data.split()
    n_train = X_train.shape[0]

    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    history: list[float] = []
    try:
        model = build_paper_mlp(recipe.widths, "sigmoid", seed=seed)
        model.train()
        # Created before the clock starts: torch's first optimiser construction in a process
        # performs a one-off import of about a second that is not training time.
        opt = torch.optim.Adam(model.parameters(), lr=lr0, eps=1e-7)
        start = time.perf_counter()
        shuffle = torch.Generator().manual_seed(int(seed) + 1)
        lr_end = lr0 * recipe.final_lr_factor
        for epoch in range(epochs):
            for group in opt.param_groups:
                group["lr"] = lr_end + 0.5 * (lr0 - lr_end) * (
                    1 + math.cos(math.pi * epoch / epochs)
                )
            if batch_size is None or batch_size >= n_train:
                batches = [(X_train, y_train)]
            else:
                perm = torch.randperm(n_train, generator=shuffle)
                batches = [(X_train[idx], y_train[idx]) for idx in perm.split(batch_size)]
            for xb, yb in batches:
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(model(xb), yb)
                loss.backward()
                opt.step()
            history.append(float(loss.detach()))
            if progress is not None:
                progress(epoch + 1, epochs)
        model.zero_grad(set_to_none=True)
        model.eval()
        seconds = time.perf_counter() - start
        train_err = evaluate(model, X_train, y_train)
        val_err = evaluate(model, X_val, y_val, classifier=name == "classification")
    finally:
        torch.set_num_threads(old_threads)

    return TrainResult(
        name=name,
        model=model,
        train_loss=train_err["mse"],
        val_loss=val_err["mse"],
        val_mae=val_err["mae"],
        epochs=epochs,
        seconds=seconds,
        seed=seed,
        val_accuracy=val_err.get("accuracy"),
        history=history,
        data=data,
    )


# --------------------------------------------------------------------------------------------
# Comparison with the paper's trained networks (command line only)
# --------------------------------------------------------------------------------------------

#: The paper's weights files, the experiment they belong to, and whether their output is the
#: normalised target (True) or the temperature in kelvin (False: the softplus variant).
_PAPER_FILES: tuple[tuple[str, str, bool], ...] = (
    ("surface_1", "surface_1.csv", True),
    ("surface_2", "surface_2.csv", True),
    ("thermodynamics", "thermodynamics.csv", True),
    ("thermodynamics", "thermo_softplus.csv", False),
    ("classification", "binary.csv", True),
)


class _Lambda(nn.Module):
    """Wrap a tensor function as a module (for the comparison table only)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _default_paper_dir() -> Path:
    return Path(fs.__file__).resolve().parent / "models" / "bundled"


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m paper.training",
        description="Train the paper's networks and compare them with the authors' weights "
        "on the same generated validation data.",
    )
    parser.add_argument("--seed", type=int, default=0, help="data and initialisation seed")
    parser.add_argument(
        "--paper-dir",
        type=Path,
        default=_default_paper_dir(),
        help="folder with the paper's weights CSVs",
    )
    parser.add_argument(
        "--save-dir",
        type=Path,
        default=None,
        help="also write our trained networks there in the paper's CSV format",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads while training")
    args = parser.parse_args(argv)

    header = (
        f"{'experiment':<15} {'network':<50} {'val MSE':>10} {'val MAE':>10} "
        f"{'val acc':>8} {'epochs':>7} {'train s':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in PAPER_RECIPES:
        res = train_paper_network(name, seed=args.seed, threads=args.threads)
        assert res.data is not None
        _, _, X_val, y_val = res.data.split()
        is_clf = name == "classification"
        for exp, fname, normalised in _PAPER_FILES:
            if exp != name:
                continue
            path = args.paper_dir / fname
            if not path.is_file():
                print(f"{name:<15} {fname + ' (missing)':<50}")
                continue
            net = fs.load_model(path)
            label = f"paper {fname}"
            if not normalised and isinstance(res.data, ThermoData):
                # The softplus variant outputs the temperature in kelvin: normalise it first.
                net = nn.Sequential(net, _Lambda(res.data.normalise_T)).eval()
                label += " (K->norm)"
            e = evaluate(net, X_val, y_val, classifier=is_clf)
            acc = f"{e['accuracy']:.4f}" if is_clf else ""
            print(
                f"{name:<15} {label:<50} {e['mse']:>10.3e} {e['mae']:>10.3e} {acc:>8} "
                f"{'':>7} {'':>8}"
            )
        acc = f"{res.val_accuracy:.4f}" if res.val_accuracy is not None else ""
        ours = f"ours (Adam, full batch, seed {args.seed})"
        print(
            f"{name:<15} {ours:<50} {res.val_loss:>10.3e} {res.val_mae:>10.3e} {acc:>8} "
            f"{res.epochs:>7d} {res.seconds:>8.2f}"
        )
        if args.save_dir is not None:
            args.save_dir.mkdir(parents=True, exist_ok=True)
            fs.save_model(res.model, args.save_dir / f"{name}_seed{args.seed}.csv")
    print(
        "\nValidation data: the second half of each generated data set (seed "
        f"{args.seed}); torch threads = {args.threads}."
    )


if __name__ == "__main__":
    _main()
