"""Models of the benchmarks, with deterministic random weights (no downloads).

- :func:`mlp_784`: the 784 -> 64 -> 64 -> 1 sigmoid MLP of target G2 (an ``nn.Sequential``,
  so fiberscope uses its closed-form MLP Jacobian).
- :func:`mnist_cnn`: the MNIST CNN of paper III as fiberscope ships it
  (``fiberscope.models.zoo.mnist_cnn``: trained weights, float32, pixels in [0, 1]; two 5x5
  convolutions with 10 and 20 channels, average pooling, ReLU, 320 -> 50 -> 50 -> 10),
  differentiated by autograd; :func:`mnist_digit` one of its bundled held-out test digits.
  :func:`mnist_cnn_random` is the same layout with deterministic random weights.
- :func:`resnet18`: our own ResNet-18 definition (torchvision's layout: basic blocks
  [2, 2, 2, 2], widths 64-128-256-512, batch norm) with a 10-output head; ``width`` and the
  input size can be made small for quick runs.

Starts are deterministic too (:func:`start`, :func:`mnist_digit`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fiberscope.models import zoo


def _seeded(seed: int):
    """A context in which torch's global generator is seeded (restored afterwards)."""
    ctx = torch.random.fork_rng(devices=[])
    ctx.__enter__()
    torch.manual_seed(seed)
    return ctx


def mlp_784(seed: int = 0) -> nn.Sequential:
    """784 -> 64 -> 64 -> 1 sigmoid MLP, deterministic weights, eval mode."""
    ctx = _seeded(seed)
    try:
        net = nn.Sequential(
            nn.Linear(784, 64), nn.Sigmoid(), nn.Linear(64, 64), nn.Sigmoid(), nn.Linear(64, 1)
        )
    finally:
        ctx.__exit__(None, None, None)
    return net.eval()


class MnistCNN(nn.Module):
    """1x28x28 -> 10 logits: conv5(10) - avgpool - ReLU - conv5(20) - avgpool - ReLU - MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 50)
        self.fc3 = nn.Linear(50, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(nn.functional.avg_pool2d(self.conv1(x), 2))
        x = torch.relu(nn.functional.avg_pool2d(self.conv2(x), 2))
        x = x.flatten(1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def mnist_cnn() -> nn.Module:
    """The bundled, trained MNIST CNN of paper III (float32, eval mode)."""
    return zoo.mnist_cnn().eval()


def mnist_digit(index: int = 0) -> Tensor:
    """A bundled held-out MNIST test digit, ``(1, 28, 28)`` float32 pixels in [0, 1]."""
    return zoo.mnist_digits()[0][index].clone()


def mnist_cnn_random(seed: int = 0) -> MnistCNN:
    """The MNIST CNN's layout with deterministic random weights, eval mode."""
    ctx = _seeded(seed)
    try:
        net = MnistCNN()
    finally:
        ctx.__exit__(None, None, None)
    return net.eval()


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm, identity or 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.down(x))


class ResNet18(nn.Module):
    """ResNet-18 (basic blocks [2, 2, 2, 2]) with ``classes`` outputs.

    Parameters
    ----------
    classes : int
        Outputs of the head.
    width : int
        Channels of the first stage (64 in ResNet-18; smaller for quick runs).
    """

    def __init__(self, classes: int = 10, width: int = 64) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages = []
        cin = w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            stride = 1 if i == 0 else 2
            stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(self.pool(x).flatten(1))


def resnet18(seed: int = 0, classes: int = 10, width: int = 64) -> ResNet18:
    """ResNet-18 with deterministic random weights, eval mode (batch norm uses its stats)."""
    ctx = _seeded(seed)
    try:
        net = ResNet18(classes=classes, width=width)
    finally:
        ctx.__exit__(None, None, None)
    return net.eval()


def start(shape: tuple[int, ...], seed: int = 1, lo: float = 0.2, hi: float = 0.8) -> Tensor:
    """A deterministic float64 start, uniform in ``[lo, hi]`` (inside a pixel box)."""
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())
