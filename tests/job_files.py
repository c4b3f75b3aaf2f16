"""Files for the job tests: a tiny MNIST-like CNN (as a model file the workers load),
small image datasets, and reference runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODELS_PY = '''
import os
import signal

import torch
from torch import nn


def TinyCNN():
    """A tiny CNN on 1x8x8 images with 3 logits (walks classes of dimension 61)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(72, 3)
    ).double()


class Slow(nn.Module):
    """TinyCNN that sleeps in forward (items long enough to kill a worker in the middle)."""

    def __init__(self):
        super().__init__()
        self.net = TinyCNN()

    def forward(self, x):
        import time

        time.sleep(0.004)
        return self.net(x)


def interrupting(x):
    """A radial model that sends SIGINT to its own process (a Ctrl-C in the middle of a job)
    when it first sees the start (0.5, -0.3), unless the file INTERRUPTED exists beside it."""
    marker = os.path.join(os.path.dirname(__file__), "INTERRUPTED")
    if not os.path.exists(marker):
        flat = x.detach().reshape(-1, 2)
        start = torch.tensor([0.5, -0.3], dtype=flat.dtype)
        if bool(((flat - start).abs() < 1e-12).all(-1).any()):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGINT)
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)


class Doomed(nn.Module):
    """TinyCNN whose process dies (SIGKILL) on an image whose first pixel is 0.123: the item
    that kills every worker it runs on."""

    def __init__(self):
        super().__init__()
        self.net = TinyCNN()

    def forward(self, x):
        if bool((x.reshape(x.shape[0], -1)[:, 0] == 0.123).any()):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.net(x)
'''


def write_models(folder: Path) -> Path:
    """Write the test models file into ``folder``; return its path."""
    path = folder / "models.py"
    path.write_text(MODELS_PY)
    return path


def images(n: int, seed: int = 0) -> np.ndarray:
    """``n`` MNIST-like 1x8x8 images in (0.1, 0.9)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, size=(n, 1, 8, 8))


def image_folder(folder: Path, n: int, *, bad: dict[int, bytes] | None = None) -> Path:
    """``n`` items as ``img-000.npy`` ... (some replaced by ``bad`` bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(images(n)):
        path = folder / f"img-{i:03d}.npy"
        if bad and i in bad:
            path.write_bytes(bad[i])
        else:
            np.save(path, x)
    return folder


WALK = {"samples": 6, "chains": 2, "step": 0.05, "bounds": [0.0, 1.0]}
