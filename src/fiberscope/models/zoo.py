"""Bundled image classifier: the MNIST CNN of Benfenati & Marta's paper III, and test digits.

:func:`mnist_cnn` returns the network with the weights shipped in
``fiberscope/models/bundled/mnist_cnn.safetensors``, trained deterministically in the
repository (``python -m paper.mnist train``) on the first 8,000 MNIST test images; its accuracy
on the held-out last 2,000 is stated in ``fiberscope/models/bundled/README.md``. The network
takes *pixels* in ``[0, 1]`` and normalises them itself, so walks on its classes happen in
pixel space with the box ``[0, 1]``. :func:`mnist_digits` returns 20 held-out digits for
examples.

>>> from fiberscope.models.zoo import mnist_cnn, mnist_digits
>>> net = mnist_cnn()
>>> images, labels = mnist_digits()
>>> net(images).argmax(-1).tolist() == labels.tolist()  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError, ModelLoadError

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "MnistCNN",
    "mnist_cnn",
    "mnist_cnn_architecture",
    "mnist_digits",
]

#: Mean and standard deviation of the MNIST training pixels (the usual ``Normalize``).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

WEIGHTS_FILE = "mnist_cnn.safetensors"
DIGITS_FILE = "mnist_digits.npz"


class MnistCNN(nn.Module):
    """The paper III MNIST CNN, taking pixels in ``[0, 1]`` and returning the 10 logits.

    ``(x - 0.1307) / 0.3081`` → Conv(1→10, k5) → avg-pool 2 → ReLU → Conv(10→20, k5) →
    avg-pool 2 → ReLU → FC 320→50 → ReLU → dropout(0.5) → FC 50→50 → ReLU → FC 50→10.
    The authors ended with ``log_softmax``; here the outputs are the logits (the
    log-probabilities are ``logits.log_softmax(-1)``, and the classes of both are the same up to
    the shift that log_softmax adds).

    Inputs: one image ``(1, 28, 28)`` gives ``(10,)``; a batch ``(B, 1, 28, 28)`` gives
    ``(B, 10)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MNIST_MEAN))
        self.register_buffer("std", torch.tensor(MNIST_STD))
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(320, 50)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(50, 50)
        self.fc3 = nn.Linear(50, 10)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of one image ``(1, 28, 28)`` or a batch ``(B, 1, 28, 28)`` of pixels."""
        if x.dim() == 3 and tuple(x.shape) == (1, 28, 28):
            return self.forward(x.unsqueeze(0))[0]
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise InputError(
                f"the MNIST CNN takes images shaped (1, 28, 28) or (B, 1, 28, 28), got "
                f"{tuple(x.shape)}"
            )
        h = (x - self.mean) / self.std
        h = torch.relu(self.pool(self.conv1(h)))
        h = torch.relu(self.pool(self.conv2(h)))
        h = torch.relu(self.fc1(h.flatten(1)))
        h = self.dropout(h)
        h = torch.relu(self.fc2(h))
        return self.fc3(h)


def mnist_cnn_architecture(
    *, seed: int | None = None, dtype: torch.dtype = torch.float32
) -> MnistCNN:
    """A freshly initialised :class:`MnistCNN` (PyTorch's default initialisation).

    Parameters
    ----------
    seed : int, optional
        Seed of the initial weights (a fork of torch's global generator, restored afterwards);
        None draws from the global generator.
    dtype : torch.dtype
        Parameter dtype.

    Returns
    -------
    MnistCNN
        The network in train mode.
    """
    if seed is None:
        return MnistCNN().to(dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return MnistCNN().to(dtype)


def _bundled(name: str) -> Path:
    path = Path(str(resources.files("fiberscope.models.bundled").joinpath(name)))
    if not path.is_file():
        raise ModelLoadError(
            f"the bundled file {name} is missing from the installed fiberscope; reinstall it"
        )
    return path


def mnist_cnn(*, dtype: torch.dtype = torch.float32) -> MnistCNN:
    """The bundled MNIST CNN with its trained weights, in eval mode.

    Parameters
    ----------
    dtype : torch.dtype
        Parameter dtype (the weights are stored in float32; ``torch.float64`` converts them).

    Returns
    -------
    MnistCNN
        Takes pixels in ``[0, 1]`` shaped ``(1, 28, 28)`` or ``(B, 1, 28, 28)``; returns the 10
        logits. Gradients of the parameters are off.

    Raises
    ------
    ModelLoadError
        The weights file is missing or does not fit the architecture.
    """
    from safetensors.torch import load_file

    path = _bundled(WEIGHTS_FILE)
    state = load_file(str(path))
    model = MnistCNN()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelLoadError(f"{path.name} does not fit the MNIST CNN: {first}") from None
    model = model.to(dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def mnist_digits(*, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Twenty bundled MNIST test digits (two of each class) with their labels.

    They come from the last 2,000 images of the MNIST test set, which :func:`mnist_cnn` was
    not trained on (CC BY-SA 3.0, LeCun, Cortes and Burges).

    Parameters
    ----------
    dtype : torch.dtype
        Floating dtype of the images.

    Returns
    -------
    images : torch.Tensor
        ``(20, 1, 28, 28)`` pixels in ``[0, 1]`` (the stored ``uint8`` values / 255).
    labels : torch.Tensor
        ``(20,)`` int64 labels.
    """
    with np.load(_bundled(DIGITS_FILE), allow_pickle=False) as data:
        images = torch.from_numpy(data["images"].astype(np.float64) / 255.0).to(dtype)
        labels = torch.from_numpy(data["labels"].astype(np.int64))
    return images.unsqueeze(1), labels
