"""Metamers and traversals of the bundled MNIST CNN, checked by an independent evaluation.

Every sample of a walk and every point of a traversal from a test digit is evaluated again by a
separately built float64 copy of the network (not the solver's function): all 10 logits equal
the start's to 1e-9, and every pixel stays in [0, 1].
"""

from __future__ import annotations

import pytest
import torch

import fiberscope as fs
from fiberscope.models.zoo import mnist_cnn, mnist_digits


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _check(points: torch.Tensor, x0: torch.Tensor) -> float:
    ref = mnist_cnn(dtype=torch.float64)
    y0 = ref(x0.double())
    ys = ref(points.reshape(-1, 1, 28, 28).double())
    assert float(points.min()) >= 0.0 and float(points.max()) <= 1.0
    dev = float((ys - y0).abs().max())
    assert dev <= 1e-9
    return dev


def test_metamers_of_a_digit(one_thread: None) -> None:
    images, _ = mnist_digits()
    x0 = images[0]
    res = fs.walk(mnist_cnn(), x0, samples=4, chains=2, step=0.5, bounds=(0, 1), seed=1)
    _check(res.samples, x0)
    moved = (res.samples.reshape(2, 4, -1) - x0.reshape(1, 1, -1).double()).norm(dim=-1)
    assert float(moved[:, -1].min()) > 0.1  # the samples are spread, not the start again


def test_traversal_toward_another_digit(one_thread: None) -> None:
    images, labels = mnist_digits()
    x0, target = images[0], images[6]
    assert int(labels[0]) != int(labels[6])
    res = fs.traverse(mnist_cnn(), x0, target, step=1.0, max_steps=8, bounds=(0, 1))
    _check(res.points, x0)
    assert res.end_distance < res.start_distance - 1.0
    assert int(mnist_cnn(dtype=torch.float64)(res.end.double()).argmax()) == int(labels[0])
