"""The paper III MNIST CNN, trained deterministically from the MNIST test images in ``data/``.

Data: the 10,000 MNIST test images (``data/mnist-t10k/``, IDX format, CC BY-SA 3.0); the
first 8,000 train, the last 2,000 are held out. Network: :class:`fiberscope.models.zoo.MnistCNN`
(the authors' architecture, taking pixels in ``[0, 1]`` and normalising inside).

Training (:data:`RECIPE`): the authors used one epoch of SGD (lr 0.01, momentum 0.5, batch 128)
on the 60,000 training images, 469 steps; with 8,000 images that recipe stops far from
convergence, so we train longer with Adam and a cosine learning-rate decay (the numbers are in
:data:`RECIPE`). Same architecture, same loss (cross-entropy on the logits = NLL of the
authors' log_softmax).

Bit-reproducible on a CPU: the initial weights come from a fixed seed, the batches from a local
generator, dropout from torch's global generator seeded at the start (and restored after),
``torch.use_deterministic_algorithms(True)`` and one thread while training.

Command line (from the repository root)::

    python -m paper.mnist train [--out FILE] [--digits FILE]   # retrain, write weights
    python -m paper.mnist check                                # shipped weights: accuracy, bits
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

import fiberscope as fs
from fiberscope.models.zoo import MnistCNN, mnist_cnn_architecture

__all__ = [
    "DATA_DIR",
    "N_TRAIN",
    "RECIPE",
    "MnistRecipe",
    "TrainedCNN",
    "accuracy",
    "digits_for_examples",
    "load_mnist",
    "mnist_split",
    "state_digest",
    "train_mnist_cnn",
]

#: The MNIST test set copied into the repository.
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "mnist-t10k"
#: Images used for training (the first ones); the rest are held out.
N_TRAIN = 8000


@dataclass(frozen=True)
class MnistRecipe:
    """How the bundled MNIST CNN is trained.

    Attributes
    ----------
    epochs : int
        Passes over the 8,000 training images.
    batch_size : int
        Mini-batch size (batches reshuffled every epoch).
    lr : float
        Peak Adam learning rate.
    final_lr_factor : float
        The learning rate decays along a cosine to ``lr * final_lr_factor``.
    weight_decay : float
        Adam's L2 penalty.
    seed : int
        Seed of the initial weights, the shuffling and dropout.
    """

    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    final_lr_factor: float = 0.02
    weight_decay: float = 0.0
    seed: int = 0


#: The recipe of the shipped weights.
RECIPE = MnistRecipe()


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise fs.InputError(f"{path} is not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise fs.InputError(f"{path}: expected {math.prod(dims)} values, found {data.size}")
    return data.reshape(dims)


def load_mnist(data_dir: str | Path = DATA_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images and labels from the repository's ``data/`` folder.

    Parameters
    ----------
    data_dir : str or pathlib.Path
        Folder with ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.

    Returns
    -------
    images : numpy.ndarray
        ``(10000, 28, 28)`` uint8.
    labels : numpy.ndarray
        ``(10000,)`` uint8.
    """
    d = Path(data_dir)
    images = _read_idx(d / "t10k-images-idx3-ubyte.gz")
    labels = _read_idx(d / "t10k-labels-idx1-ubyte.gz")
    if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise fs.InputError(f"unexpected MNIST shapes {images.shape} and {labels.shape}")
    return images, labels


def mnist_split(
    data_dir: str | Path = DATA_DIR, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Training (first 8,000) and held-out (last 2,000) images as pixels in ``[0, 1]``.

    Parameters
    ----------
    data_dir : str or pathlib.Path
        The MNIST folder.
    dtype : torch.dtype
        Image dtype.

    Returns
    -------
    X_train, y_train, X_test, y_test : torch.Tensor
        Images ``(N, 1, 28, 28)`` and int64 labels ``(N,)``.
    """
    images, labels = load_mnist(data_dir)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).to(dtype).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


@torch.no_grad()
def accuracy(model: torch.nn.Module, X: Tensor, y: Tensor, batch: int = 1000) -> float:
    """Share of images whose largest logit is the label.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (put in eval mode by the caller).
    X, y : torch.Tensor
        Images and labels.
    batch : int
        Evaluation batch size.

    Returns
    -------
    float
        Accuracy in ``[0, 1]``.
    """
    hits = 0
    for i in range(0, X.shape[0], batch):
        hits += int((model(X[i : i + batch]).argmax(-1) == y[i : i + batch]).sum())
    return hits / X.shape[0]


@dataclass(eq=False)
class TrainedCNN:
    """Outcome of :func:`train_mnist_cnn`.

    Attributes
    ----------
    model : MnistCNN
        The trained network, eval mode.
    test_accuracy : float
        Accuracy on the held-out images.
    train_accuracy : float
        Accuracy on the training images.
    seconds : float
        Wall time of the optimisation.
    recipe : MnistRecipe
        The recipe used.
    history : list of float
        Mean training loss per epoch.
    """

    model: MnistCNN
    test_accuracy: float
    train_accuracy: float
    seconds: float
    recipe: MnistRecipe
    history: list[float] = field(default_factory=list)


def train_mnist_cnn(
    recipe: MnistRecipe = RECIPE,
    *,
    data_dir: str | Path = DATA_DIR,
    n_train: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedCNN:
    """Train the MNIST CNN deterministically (one thread, deterministic algorithms).

    Parameters
    ----------
    recipe : MnistRecipe
        Epochs, batch size, learning rate, seed.
    data_dir : str or pathlib.Path
        The MNIST folder.
    n_train : int, optional
        Train on the first ``n_train`` of the 8,000 training images only (tests).
    progress : callable, optional
        ``progress(epochs_done, epochs)`` after every epoch.

    Returns
    -------
    TrainedCNN
        Model, accuracies, time.
    """
    X, y, X_test, y_test = mnist_split(data_dir)
    if n_train is not None:
        X, y = X[:n_train], y[:n_train]
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    history: list[float] = []
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)  # dropout masks
            model = mnist_cnn_architecture(seed=recipe.seed)
            opt = torch.optim.Adam(
                model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
            )
            shuffle = torch.Generator().manual_seed(recipe.seed + 1)
            steps_per_epoch = math.ceil(X.shape[0] / recipe.batch_size)
            total = recipe.epochs * steps_per_epoch
            lr_end = recipe.lr * recipe.final_lr_factor
            step = 0
            t0 = time.perf_counter()
            for epoch in range(recipe.epochs):
                model.train()
                perm = torch.randperm(X.shape[0], generator=shuffle)
                losses = []
                for idx in perm.split(recipe.batch_size):
                    for group in opt.param_groups:
                        group["lr"] = lr_end + 0.5 * (recipe.lr - lr_end) * (
                            1 + math.cos(math.pi * step / total)
                        )
                    opt.zero_grad(set_to_none=True)
                    loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
                    step += 1
                history.append(float(np.mean(losses)))
                if progress is not None:
                    progress(epoch + 1, recipe.epochs)
            seconds = time.perf_counter() - t0
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        test_acc = accuracy(model, X_test, y_test)
        train_acc = accuracy(model, X, y)
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)
    return TrainedCNN(model, test_acc, train_acc, seconds, recipe, history)


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers (names, dtypes, shapes and bytes).

    Parameters
    ----------
    model : torch.nn.Module
        The model.

    Returns
    -------
    str
        Hex digest; equal digests mean bit-identical weights.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        a = t.detach().cpu().contiguous()
        h.update(f"{name}:{a.dtype}:{tuple(a.shape)};".encode())
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def digits_for_examples(
    data_dir: str | Path = DATA_DIR, per_class: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``per_class`` held-out images of each digit (for the bundled examples).

    Parameters
    ----------
    data_dir : str or pathlib.Path
        The MNIST folder.
    per_class : int
        Images per digit.

    Returns
    -------
    images : numpy.ndarray
        ``(10 * per_class, 28, 28)`` uint8, ordered by label.
    labels : numpy.ndarray
        uint8 labels.
    indices : numpy.ndarray
        Their indices in the 10,000 test images (all >= 8,000).
    """
    images, labels = load_mnist(data_dir)
    idx = []
    for digit in range(10):
        hits = np.flatnonzero(labels[N_TRAIN:] == digit)[:per_class] + N_TRAIN
        idx.extend(hits.tolist())
    ind = np.asarray(idx, dtype=np.int64)
    return images[ind].copy(), labels[ind].copy(), ind


def _bundled_dir() -> Path:
    return Path(fs.__file__).resolve().parent / "models" / "bundled"


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from safetensors.torch import save_file

    from fiberscope.models.zoo import DIGITS_FILE, WEIGHTS_FILE, mnist_cnn

    parser = argparse.ArgumentParser(
        prog="python -m paper.mnist", description="Train or check the bundled MNIST CNN."
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="retrain with the recipe and write the weights")
    tr.add_argument("--out", type=Path, default=_bundled_dir() / WEIGHTS_FILE)
    tr.add_argument("--digits", type=Path, default=_bundled_dir() / DIGITS_FILE)
    sub.add_parser("check", help="accuracy of the shipped weights; retrain and compare bits")
    args = parser.parse_args(argv)

    if args.cmd == "train":
        t0 = time.perf_counter()
        res = train_mnist_cnn(progress=lambda d, t: print(f"epoch {d}/{t}", file=sys.stderr))
        state = {k: v.contiguous() for k, v in res.model.state_dict().items()}
        save_file(state, str(args.out), metadata={"recipe": repr(res.recipe)})
        imgs, labels, ind = digits_for_examples()
        np.savez_compressed(args.digits, images=imgs, labels=labels, indices=ind)
        print(
            f"held-out accuracy {100 * res.test_accuracy:.2f} % (2,000 images), training "
            f"accuracy {100 * res.train_accuracy:.2f} %, training {res.seconds:.1f} s "
            f"(total {time.perf_counter() - t0:.1f} s, 1 thread); sha256 {state_digest(res.model)}"
        )
        print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes) and {args.digits}")
        return 0
    shipped = mnist_cnn()
    _, _, X_test, y_test = mnist_split()
    acc = accuracy(shipped, X_test, y_test)
    print(f"shipped weights: held-out accuracy {100 * acc:.2f} %, sha256 {state_digest(shipped)}")
    res = train_mnist_cnn()
    same = state_digest(res.model) == state_digest(shipped)
    print(
        f"retrained in {res.seconds:.1f} s: accuracy {100 * res.test_accuracy:.2f} %, "
        f"{'bit-identical to' if same else 'DIFFERENT from'} the shipped weights"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(_main())
