"""The bundled MNIST CNN: data loading, the stated held-out accuracy, deterministic training."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from fiberscope.models import zoo
from paper import mnist

README = zoo._bundled("README.md")


def test_idx_loading_and_split() -> None:
    images, labels = mnist.load_mnist()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    assert labels[:3].tolist() == [7, 2, 1]  # the well-known first test digits
    X, y, Xt, yt = mnist.mnist_split()
    assert X.shape == (8000, 1, 28, 28) and Xt.shape == (2000, 1, 28, 28)
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert torch.equal(yt, torch.from_numpy(labels[8000:].astype(np.int64)))


def test_shipped_weights_reproduce_the_stated_held_out_accuracy() -> None:
    stated = re.search(r"Held-out accuracy: (\d+\.\d\d) %", README.read_text())
    assert stated, "the bundled README states the held-out accuracy"
    _, _, Xt, yt = mnist.mnist_split()
    acc = mnist.accuracy(zoo.mnist_cnn(), Xt, yt)
    assert f"{100 * acc:.2f}" == stated.group(1)
    assert acc > 0.97


def test_bundled_digits_are_the_first_held_out_ones_of_each_class() -> None:
    imgs, labels, ind = mnist.digits_for_examples()
    assert (ind >= mnist.N_TRAIN).all()
    with np.load(zoo._bundled(zoo.DIGITS_FILE), allow_pickle=False) as d:
        assert np.array_equal(d["images"], imgs) and np.array_equal(d["labels"], labels)
        assert np.array_equal(d["indices"], ind)


def test_short_training_is_bit_reproducible_and_restores_global_state() -> None:
    recipe = dataclasses.replace(mnist.RECIPE, epochs=1)
    threads = torch.get_num_threads()
    rng = torch.random.get_rng_state()
    a = mnist.train_mnist_cnn(recipe, n_train=256)
    b = mnist.train_mnist_cnn(recipe, n_train=256)
    assert mnist.state_digest(a.model) == mnist.state_digest(b.model)
    assert a.history == b.history
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert not torch.are_deterministic_algorithms_enabled()
    c = mnist.train_mnist_cnn(dataclasses.replace(recipe, seed=1), n_train=256)
    assert mnist.state_digest(c.model) != mnist.state_digest(a.model)


@pytest.mark.long  # the full training (35 s unloaded); the test above checks determinism fast
def test_retraining_with_the_recipe_gives_the_shipped_weights_bit_for_bit() -> None:
    res = mnist.train_mnist_cnn()
    assert mnist.state_digest(res.model) == mnist.state_digest(zoo.mnist_cnn())
