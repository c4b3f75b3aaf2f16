"""The bundled MNIST CNN and test digits (fiberscope.models.zoo)."""

from __future__ import annotations

import pytest
import torch

import fiberscope as fs
from fiberscope.geometry import value_and_jacobian
from fiberscope.models import zoo


def test_mnist_cnn_is_ready_in_eval_mode_with_the_bundled_weights() -> None:
    net = zoo.mnist_cnn()
    assert isinstance(net, zoo.MnistCNN) and not net.training
    assert all(not p.requires_grad for p in net.parameters())
    assert next(net.parameters()).dtype == torch.float32
    fresh = zoo.mnist_cnn_architecture(seed=0)
    assert not torch.equal(fresh.conv1.weight, net.conv1.weight)  # weights were loaded
    assert zoo.mnist_cnn().state_dict().keys() == net.state_dict().keys()


def test_the_weights_file_is_small() -> None:
    path = zoo._bundled(zoo.WEIGHTS_FILE)
    assert path.stat().st_size < 200_000


def test_digits_are_pixels_with_labels_and_classified_correctly() -> None:
    images, labels = zoo.mnist_digits()
    assert images.shape == (20, 1, 28, 28) and images.dtype == torch.float32
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert labels.dtype == torch.int64 and sorted(labels.tolist()) == sorted(list(range(10)) * 2)
    with torch.no_grad():
        pred = zoo.mnist_cnn()(images).argmax(-1)
    assert int((pred == labels).sum()) >= 19


def test_single_and_batched_inputs_agree_and_normalisation_is_inside() -> None:
    net = zoo.mnist_cnn()
    images, _ = zoo.mnist_digits()
    with torch.no_grad():
        batch = net(images[:3])
        one = net(images[1])
    assert batch.shape == (3, 10) and one.shape == (10,)
    torch.testing.assert_close(one, batch[1])
    # the first layer sees (x - mean) / std: an all-black image is far from zero input
    with torch.no_grad():
        black = net.conv1((torch.zeros(1, 1, 28, 28) - zoo.MNIST_MEAN) / zoo.MNIST_STD)
    assert float(black.abs().max()) > 0.1


def test_float64_model_gives_the_same_logits() -> None:
    images, _ = zoo.mnist_digits(dtype=torch.float64)
    net64 = zoo.mnist_cnn(dtype=torch.float64)
    assert images.dtype == torch.float64 and next(net64.parameters()).dtype == torch.float64
    with torch.no_grad():
        out64 = net64(images)
        out32 = zoo.mnist_cnn()(images.float())
    torch.testing.assert_close(out64.float(), out32, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", [(28, 28), (1, 1, 28), (2, 28, 28), (2, 3, 28, 28)])
def test_wrong_shapes_get_one_clear_error(shape) -> None:
    with pytest.raises(fs.InputError, match=r"\(1, 28, 28\) or \(B, 1, 28, 28\)"):
        zoo.mnist_cnn()(torch.zeros(shape))


def test_fiberscope_computes_the_jacobian_in_pixel_space() -> None:
    net = zoo.mnist_cnn(dtype=torch.float64)
    images, _ = zoo.mnist_digits(dtype=torch.float64)
    y, jac = value_and_jacobian(net, images[0])
    assert y.shape == (10,) and jac.shape == (10, 1, 28, 28)
    # central difference along one pixel direction
    e = torch.zeros_like(images[0])
    e[0, 14, 14] = 1e-6
    with torch.no_grad():
        fd = (net(images[0] + e) - net(images[0] - e)) / 2e-6
    torch.testing.assert_close(jac[:, 0, 14, 14], fd, atol=1e-5, rtol=1e-4)


def test_architecture_seed_is_reproducible_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = zoo.mnist_cnn_architecture(seed=3)
    b = zoo.mnist_cnn_architecture(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
