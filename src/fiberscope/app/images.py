"""Images in and out of the app: the bundled test digits, uploads, PNG frames, grids, GIFs.

The test digits are the library's (:func:`fiberscope.models.zoo.mnist_digits`: twenty
held-out MNIST test images, two of each class). Uploads are decoded with Pillow into the
model's input shape with pixels in ``[0, 1]``; anything that is not an image of the right size
is refused with a one-line message.
"""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..models.zoo import mnist_digits

#: Largest upload accepted, in bytes.
MAX_UPLOAD = 5 * 1024 * 1024
#: Largest image accepted, in pixels (Pillow's decompression-bomb guard, tightened).
MAX_PIXELS = 4096 * 4096


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, tuple[int, ...]]:
    images, labels = mnist_digits(dtype=torch.float64)
    return images, tuple(int(v) for v in labels.tolist())


def digit_labels() -> list[int]:
    """The class of each bundled test digit (``digit(k)`` is an image of ``labels[k]``)."""
    return list(_digits()[1])


def digit(k: int) -> torch.Tensor:
    """The bundled MNIST test digit ``k``: ``(1, 28, 28)`` float64 pixels in ``[0, 1]``.

    Raises
    ------
    InputError
        For ``k`` outside ``0 .. len(digit_labels()) - 1``.
    """
    images, labels = _digits()
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(labels):
        raise InputError(f"there are test digits 0 to {len(labels) - 1}, not {k!r}")
    return images[k].clone()


def digit_png(k: int) -> bytes:
    """PNG bytes of the bundled test digit ``k`` (see :func:`digit`)."""
    return png_bytes(to_uint8(digit(k), (1, 28, 28), 0.0, 1.0))


def decode_image(data: bytes, layout: tuple[int, int, int], *, what: str = "file") -> torch.Tensor:
    """Decode an uploaded image into ``(C, H, W)`` float64 pixels in ``[0, 1]``.

    Parameters
    ----------
    data : bytes
        The file's bytes (PNG, JPEG, or any format Pillow reads).
    layout : tuple of int
        ``(channels, height, width)`` the model takes.
    what : str
        What to call the file in messages.

    Returns
    -------
    torch.Tensor
        ``(C, H, W)`` float64 in ``[0, 1]``.

    Raises
    ------
    InputError
        Empty, too large, not an image, or of another size than the model's input.
    """
    channels, height, width = layout
    if not data:
        raise InputError(f"the {what} is empty; upload a {width}x{height} PNG")
    if len(data) > MAX_UPLOAD:
        raise InputError(
            f"the {what} is {len(data) / 1e6:.1f} MB; upload an image under "
            f"{MAX_UPLOAD // (1024 * 1024)} MB"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > MAX_PIXELS:
                raise InputError(
                    f"the {what} is {img.width}x{img.height} pixels; the model takes "
                    f"{width}x{height}"
                )
            img.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(
            f"the {what} is not an image Pillow can read; upload a {width}x{height} PNG"
        ) from None
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt files raise many types
        raise InputError(
            f"the {what} is a damaged image ({type(exc).__name__}); upload a {width}x{height} PNG"
        ) from None
    if (img.width, img.height) != (width, height):
        raise InputError(
            f"the {what} is {img.width}x{img.height} pixels but the model takes "
            f"{width}x{height}; resize it to {width}x{height}"
        )
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.float64) / 255.0
    if channels == 1:
        arr = arr[None, :, :]
    else:
        arr = arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def to_uint8(x: torch.Tensor, layout: tuple[int, int, int], lo: float, hi: float) -> np.ndarray:
    """Pixels of one input as an ``(H, W)`` or ``(H, W, 3)`` uint8 array (``lo..hi`` -> 0..255)."""
    channels, height, width = layout
    arr = x.detach().to(torch.float64).reshape(channels, height, width).cpu().numpy()
    arr = np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
    arr = np.rint(arr * 255.0).astype(np.uint8)
    return arr[0] if channels == 1 else arr.transpose(1, 2, 0)


def diff_uint8(x: torch.Tensor, x0: torch.Tensor, layout: tuple[int, int, int]) -> np.ndarray:
    """``|x - x0|`` as an RGB heat image: black = unchanged, orange = changed by the most."""
    channels, height, width = layout
    d = (x - x0).detach().to(torch.float64).reshape(channels, height, width).abs().amax(0)
    scale = float(d.max())
    v = (d / scale).cpu().numpy() if scale > 0 else np.zeros((height, width))
    rgb = np.stack([v, 0.55 * v, 0.1 * v], axis=-1)
    return np.rint(rgb * 255.0).astype(np.uint8)


def png_bytes(arr: np.ndarray, scale: int = 1) -> bytes:
    """Encode a uint8 image array as PNG, optionally enlarged ``scale`` times (nearest)."""
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _frames(
    samples: torch.Tensor, layout: tuple[int, int, int], lo: float, hi: float
) -> list[list[np.ndarray]]:
    return [[to_uint8(s, layout, lo, hi) for s in chain] for chain in samples]


def _rgb(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr[:, :, None], 3, axis=2) if arr.ndim == 2 else arr


def write_grid(
    path: Path,
    samples: torch.Tensor,
    layout: tuple[int, int, int],
    bounds: tuple[float, float],
    *,
    columns: int = 12,
    scale: int = 3,
) -> Path:
    """A PNG grid: one row per chain, ``columns`` samples spread evenly along it.

    Parameters
    ----------
    path : pathlib.Path
        Destination (a fresh file in the run's folder).
    samples : torch.Tensor
        ``(chains, K, *input_shape)``.
    layout : tuple of int
        ``(C, H, W)``.
    bounds : tuple of float
        Pixel range mapped to black..white.
    columns : int
        Samples per row (at most K).
    scale : int
        Enlargement.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    frames = _frames(samples, layout, *bounds)
    k = len(frames[0])
    count = min(columns, k)
    picks = sorted({round(i * (k - 1) / max(1, count - 1)) for i in range(count)})
    _, height, width = layout
    pad = 2
    rows, cols = len(frames), len(picks)
    canvas = np.full(
        (rows * (height + pad) + pad, cols * (width + pad) + pad, 3), 255, dtype=np.uint8
    )
    for r, chain in enumerate(frames):
        for c, j in enumerate(picks):
            y, x = pad + r * (height + pad), pad + c * (width + pad)
            canvas[y : y + height, x : x + width] = _rgb(chain[j])
    img = Image.fromarray(canvas).resize(
        (canvas.shape[1] * scale, canvas.shape[0] * scale), Image.Resampling.NEAREST
    )
    img.save(path, format="PNG")
    return path


def write_gif(
    path: Path,
    samples: torch.Tensor,
    layout: tuple[int, int, int],
    bounds: tuple[float, float],
    *,
    scale: int = 4,
    ms_per_frame: int = 120,
) -> Path:
    """An animated GIF of the walk: frame ``k`` shows sample ``k`` of every chain side by side.

    Parameters
    ----------
    path : pathlib.Path
        Destination.
    samples : torch.Tensor
        ``(chains, K, *input_shape)``.
    layout : tuple of int
        ``(C, H, W)``.
    bounds : tuple of float
        Pixel range mapped to black..white.
    scale : int
        Enlargement.
    ms_per_frame : int
        Frame duration.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    frames = _frames(samples, layout, *bounds)
    _, height, width = layout
    pad = 2
    chains, k = len(frames), len(frames[0])
    images = []
    for j in range(k):
        canvas = np.full((height + 2 * pad, chains * (width + pad) + pad, 3), 255, dtype=np.uint8)
        for c in range(chains):
            x = pad + c * (width + pad)
            canvas[pad : pad + height, x : x + width] = _rgb(frames[c][j])
        img = Image.fromarray(canvas).resize(
            (canvas.shape[1] * scale, canvas.shape[0] * scale), Image.Resampling.NEAREST
        )
        images.append(img.convert("P", palette=Image.Palette.ADAPTIVE))
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0
    )
    return path
