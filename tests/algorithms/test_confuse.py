"""``fs.confuse``: the nearest point of a classifier's decision boundary, against exact answers
(a linear classifier, free and at the box faces) and an independent evaluation of the model."""

from __future__ import annotations

import math

import pytest
import torch

import fiberscope as fs
from fiberscope.errors import InputError, TargetNotReachedError

SIDE = 6
N = SIDE * SIDE


def linear_images(x: torch.Tensor) -> torch.Tensor:
    """Three logits of a (1, 6, 6) image: class 0 where mean(x) < 0.05, class 1 above."""
    mean = x.reshape(*x.shape[:-3], N).mean(-1)
    return torch.stack((0.1 - mean, mean, torch.full_like(mean, -1.0)), -1)


def start(level: float = 0.02) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    noise = 0.01 * (torch.rand(1, SIDE, SIDE, generator=g, dtype=torch.float64) - 0.5)
    return (level + noise).clamp(0, 1)


def test_linear_classifier_exact_nearest_boundary_point() -> None:
    x0 = start()
    res = fs.confuse(linear_images, x0, bounds=(0, 1))
    # boundary: mean(x) = 0.05; the nearest point moves every pixel by the same amount
    gap = 0.05 - float(x0.mean())
    assert res.distance == pytest.approx(gap * math.sqrt(N), rel=1e-9)
    torch.testing.assert_close(res.point, x0 + gap, rtol=0, atol=1e-9)
    assert res.boundary_residual <= 1e-12
    assert res.kkt <= 1e-6
    assert (res.decision_start, res.decision_flip, res.decision_flipped) == (0, 1, 1)
    # independent evaluation of the points the result names
    y = linear_images(res.point)
    assert abs(float(y[0] - y[1])) <= 1e-12
    assert int(linear_images(res.flipped).argmax()) == 1
    assert int(linear_images(res.start).argmax()) == 0
    assert res.line.shape == (17, 1, SIDE, SIDE)
    assert [int(o.argmax()) for o in res.line_outputs[:-1]] == [0] * 16
    assert int(res.line_outputs[-1].argmax()) == 1


def test_box_faces_hold_pixels_at_zero() -> None:
    # half the pixels must stay at 0 if the change may only raise them where they are free:
    # a classifier that reads only the first half; the box holds nothing there, so the
    # nearest point moves only those pixels (the others' gradient is 0)
    def half(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(*x.shape[:-3], N)
        m = flat[..., : N // 2].mean(-1)
        return torch.stack((0.1 - m, m), -1)

    x0 = torch.zeros(1, SIDE, SIDE, dtype=torch.float64)
    res = fs.confuse(half, x0, bounds=(0, 1))
    flat = res.point.reshape(-1)
    assert float(flat[N // 2 :].abs().max()) == 0.0
    torch.testing.assert_close(flat[: N // 2], torch.full((N // 2,), 0.05, dtype=torch.float64))
    assert res.distance == pytest.approx(0.05 * math.sqrt(N // 2), rel=1e-9)


def test_toward_inputs_seed_the_search() -> None:
    x0 = start()
    target = torch.full((1, SIDE, SIDE), 0.5, dtype=torch.float64)
    res = fs.confuse(linear_images, x0, toward=target, seeds=1)
    assert res.options["toward"] == 1
    assert res.distance == pytest.approx((0.05 - float(x0.mean())) * math.sqrt(N), rel=1e-9)


def test_refusals() -> None:
    x0 = start()
    with pytest.raises(InputError, match="at least 2 outputs"):
        fs.confuse(lambda x: x.sum().reshape(1), x0, bounds=(0, 1))
    with pytest.raises(InputError, match="give bounds="):
        fs.confuse(linear_images, x0)
    with pytest.raises(InputError, match="toward= has shape"):
        fs.confuse(linear_images, x0, toward=torch.zeros(5))
    with pytest.raises(InputError, match="outside the box"):
        fs.confuse(linear_images, x0, toward=torch.full((1, SIDE, SIDE), 2.0), bounds=(0, 1))

    def constant(x: torch.Tensor) -> torch.Tensor:
        s = x.reshape(*x.shape[:-3], N).sum(-1)
        return torch.stack((1.0 + 0 * s, 1e-3 * s), -1)

    with pytest.raises(TargetNotReachedError, match="found no input decided otherwise"):
        fs.confuse(constant, x0, bounds=(0, 1))


@pytest.fixture
def one_thread():
    """Small convolutions on a shared 2-core machine run far faster on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_mnist_cnn_boundary_point_checked_independently(one_thread: None) -> None:
    from fiberscope.models.zoo import mnist_cnn, mnist_digits

    net = mnist_cnn()
    images, labels = mnist_digits()
    res = fs.confuse(net, images[4], bounds=(0, 1), seeds=1, max_steps=300)
    ref = mnist_cnn(dtype=torch.float64)  # an independent float64 evaluation
    y = ref(res.point.to(torch.float64))
    top2 = y.topk(2).values
    assert float(top2[0] - top2[1]) <= 1e-9
    assert res.decision_start == int(labels[4])
    assert int(ref(res.flipped.double()).argmax()) == res.decision_flip != res.decision_start
    assert 0.0 <= float(res.point.min()) and float(res.point.max()) <= 1.0
    assert res.distance < res.seed_distances[0]


def test_interrupted_search_resumes_exactly() -> None:
    x0 = start()
    full = fs.confuse(linear_images, x0, bounds=(0, 1), step=2e-4, seeds=2, rays=0)
    polls = [0]

    def stop() -> bool:
        polls[0] += 1
        return polls[0] > 3

    with pytest.raises(fs.Interrupted) as info:
        fs.confuse(linear_images, x0, bounds=(0, 1), step=2e-4, seeds=2, rays=0, stop=stop)
    snap = info.value.snapshot
    again = fs.confuse(linear_images, x0, bounds=(0, 1), step=2e-4, seeds=2, rays=0, resume=snap)
    torch.testing.assert_close(again.point, full.point, rtol=0, atol=0)
    assert again.distance == full.distance and len(again) == len(full)


def test_output_selection_chooses_the_competing_classes() -> None:
    def three(x: torch.Tensor) -> torch.Tensor:
        m = x.reshape(*x.shape[:-3], N).mean(-1)
        return torch.stack((0.1 - m, m, 0.06 + 0.5 * m), -1)

    x0 = start()
    mean = float(x0.mean())
    every = fs.confuse(three, x0, bounds=(0, 1))
    assert every.decision_flip == 2  # 0.1 - m = 0.06 + m/2 at m = 0.04/1.5
    assert every.distance == pytest.approx((0.04 / 1.5 - mean) * math.sqrt(N), rel=1e-9)
    two = fs.confuse(three, x0, bounds=(0, 1), output="[0:2]")
    assert two.decision_flip == 1 and two.options["output"] is not None
    assert two.distance == pytest.approx((0.05 - mean) * math.sqrt(N), rel=1e-9)
    assert two.outputs_point.shape == (2,)


def test_steepest_descent_rays_find_a_flip_the_constant_inputs_miss() -> None:
    def diagonal(x: torch.Tensor) -> torch.Tensor:  # class 1 only where x0 - x1 > 1
        return torch.stack((torch.ones_like(x[..., 0]), x[..., 0] - x[..., 1]), -1)

    box = ([-1.0, -1.0], [1.0, 1.0])
    with pytest.raises(TargetNotReachedError, match="box's lower, upper and centre inputs:"):
        fs.confuse(diagonal, [0.0, 0.5], bounds=box, rays=0)
    res = fs.confuse(diagonal, [0.0, 0.5], bounds=box)
    assert res.distance == pytest.approx(1.5 / math.sqrt(2), rel=1e-9)
    torch.testing.assert_close(
        res.point, torch.tensor([0.75, -0.25], dtype=torch.float64), rtol=0, atol=1e-9
    )
    assert (res.decision_start, res.decision_flip) == (0, 1)
