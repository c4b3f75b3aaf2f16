"""Images in and out of the app: decoding uploads, digits, grids and GIFs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fiberscope.app import images
from fiberscope.errors import InputError


def encode(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def test_the_test_digits_are_the_librarys() -> None:
    from fiberscope.models.zoo import mnist_digits

    pixels, labels = mnist_digits(dtype=torch.float64)
    assert images.digit_labels() == labels.tolist()
    for k in (0, 7, len(labels) - 1):
        x = images.digit(k)
        assert x.shape == (1, 28, 28) and x.dtype == torch.float64 and torch.equal(x, pixels[k])
        # the PNG the page shows decodes back to the same pixels
        assert torch.equal(images.decode_image(images.digit_png(k), (1, 28, 28)), x)
    with pytest.raises(InputError, match=f"test digits 0 to {len(labels) - 1}, not 20"):
        images.digit(20)
    with pytest.raises(InputError, match="not -1"):
        images.digit_png(-1)


def test_decoding_keeps_pixels_and_converts_channels() -> None:
    arr = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    x = images.decode_image(encode(arr), (1, 28, 28))
    assert torch.equal(x[0], torch.from_numpy(arr.astype(np.float64) / 255.0))
    rgb = np.zeros((28, 28, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    grey = images.decode_image(encode(rgb), (1, 28, 28))
    assert float(grey.max()) == pytest.approx(76 / 255)  # ITU-R 601 luma of pure red
    colour = images.decode_image(encode(rgb), (3, 28, 28))
    assert colour.shape == (3, 28, 28) and float(colour[0].min()) == 1.0
    assert images.decode_image(encode(arr, "JPEG"), (1, 28, 28)).shape == (1, 28, 28)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", "is empty; upload a 28x28 PNG"),
        (b"GIF89a but not really", "is not an image Pillow can read"),
        (b"x" * (images.MAX_UPLOAD + 1), "upload an image under 5 MB"),
    ],
)
def test_bad_files(data: bytes, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        images.decode_image(data, (1, 28, 28))


def test_wrong_sizes_and_huge_images() -> None:
    with pytest.raises(InputError, match="is 28x27 pixels but the model takes 28x28"):
        images.decode_image(encode(np.zeros((27, 28), dtype=np.uint8)), (1, 28, 28))
    huge = Image.new("L", (5000, 5000))
    buf = io.BytesIO()
    huge.save(buf, "PNG")
    with pytest.raises(InputError, match="is 5000x5000 pixels; the model takes 28x28"):
        images.decode_image(buf.getvalue(), (1, 28, 28))


def test_grid_and_gif(tmp_path: Path) -> None:
    samples = torch.rand(2, 7, 1, 28, 28, dtype=torch.float64)
    grid = images.write_grid(tmp_path / "g.png", samples, (1, 28, 28), (0.0, 1.0), columns=4)
    img = Image.open(grid)
    assert img.size == ((4 * 30 + 2) * 3, (2 * 30 + 2) * 3)
    gif = images.write_gif(tmp_path / "w.gif", samples, (1, 28, 28), (0.0, 1.0))
    anim = Image.open(gif)
    assert anim.n_frames == 7 and anim.size == ((2 * 30 + 2) * 4, 32 * 4)
    frame = images.to_uint8(samples[1, 3], (1, 28, 28), 0.0, 1.0)
    assert frame.shape == (28, 28)
    assert np.array_equal(frame, np.rint(samples[1, 3, 0].numpy() * 255).astype(np.uint8))
    diff = images.diff_uint8(samples[0, 1], samples[0, 0], (1, 28, 28))
    assert diff.shape == (28, 28, 3) and diff[..., 0].max() == 255
