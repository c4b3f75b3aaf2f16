"""Image inputs: grids and animated GIFs of walks, traversals and confusion paths.

For models whose input is an image (``(C, H, W)`` with one or three channels, or ``(H, W)``),
the points of a result are pictures. :func:`image_grid` draws a grid (one row per chain, the
start first) with each image's decision and its largest output deviation, over a panel of the
outputs themselves, so that the figure shows what is held fixed and to what precision.
:func:`save_gif` writes an animated GIF (frame ``k``: point ``k`` of every chain) with a caption.
:func:`image_path_figure` shows start, end and target of a traversal or a confusion path with
their outputs side by side.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..algorithms.results import (
    BoundaryWalkResult,
    ConfusionResult,
    TraverseResult,
    WalkResult,
)
from ..errors import InputError
from ..io.atomic import atomic_write, check_writable

__all__ = [
    "chains_of",
    "confusion_figure",
    "animation_frames",
    "gif_bytes",
    "mp4_bytes",
    "image_grid",
    "image_path_figure",
    "image_shape",
    "save_gif",
    "to_uint8",
]


def image_shape(shape: Sequence[int]) -> tuple[int, int, int] | None:
    """``(C, H, W)`` when an input shape is an image (grayscale or RGB), else None.

    Parameters
    ----------
    shape : sequence of int
        The model's input shape (leading 1s beyond three axes are ignored).

    Returns
    -------
    tuple of int or None
        ``(C, H, W)`` for shapes ``(C, H, W)`` with ``C`` in 1, 3 and ``(H, W)``, both sides at
        least 4 pixels.
    """
    s = [int(v) for v in shape]
    while len(s) > 3 and s[0] == 1:
        s = s[1:]
    if len(s) == 2 and min(s) >= 4:
        return 1, s[0], s[1]
    if len(s) == 3 and s[0] in (1, 3) and min(s[1:]) >= 4:
        return s[0], s[1], s[2]
    return None


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def chains_of(result: Any) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray, np.ndarray]:
    """A result's points as chains of images.

    Parameters
    ----------
    result : WalkResult, TraverseResult, BoundaryWalkResult or ConfusionResult
        A walk (its chains), a traversal (one chain: the path), a boundary walk (one chain:
        the gradient path from the start across the decision boundary) or a confusion search
        (one chain: the straight way from the start to the nearest boundary point, then the
        flipped point).

    Returns
    -------
    points : numpy.ndarray
        ``(chains, K, n)`` float64 (rows past a chain's count are NaN).
    outputs : numpy.ndarray
        ``(chains, K, m)``.
    counts : list of int
        Valid rows per chain.
    x0 : numpy.ndarray
        ``(n,)`` the start.
    y0 : numpy.ndarray
        ``(m,)`` its outputs (of the output map the run held).

    Raises
    ------
    InputError
        For any other result.
    """
    if isinstance(result, WalkResult):
        n = int(result.x0.numel())
        pts = _np(result.samples).reshape(result.chains, -1, n)
        outs = _np(result.outputs).reshape(result.chains, pts.shape[1], -1)
        return (
            pts,
            outs,
            list(result.counts),
            _np(result.x0).reshape(-1),
            _np(result.y0).reshape(-1),
        )
    if isinstance(result, TraverseResult):
        k = len(result)
        pts = _np(result.points).reshape(1, k, -1)
        outs = _np(result.outputs).reshape(1, k, -1)
        return pts, outs, [k], pts[0, 0], _np(result.y0).reshape(-1)
    if isinstance(result, ConfusionResult):
        k = int(result.line.shape[0])
        pts = _np(result.line).reshape(1, k, -1)
        outs = _np(result.line_outputs).reshape(1, k, -1)
        return pts, outs, [k], pts[0, 0], _np(result.outputs_start).reshape(-1)
    if isinstance(result, BoundaryWalkResult):
        path = result.path
        k = int(path.points.shape[0])
        pts = _np(path.points).reshape(1, k, -1)
        outs = _np(path.outputs).reshape(1, k, -1)
        return pts, outs, [k], pts[0, 0], _np(path.y0).reshape(-1)
    raise InputError(
        f"cannot draw images of a {type(result).__name__}; image grids and GIFs take a walk, a "
        "traversal or a boundary walk"
    )


def _layout(result: Any) -> tuple[int, int, int]:
    if isinstance(result, WalkResult):
        shape = tuple(result.x0.shape)
    elif isinstance(result, TraverseResult):
        shape = tuple(result.target.shape)
    elif isinstance(result, BoundaryWalkResult):
        shape = tuple(result.path.points.shape[1:])
    elif isinstance(result, ConfusionResult):
        shape = tuple(result.start.shape)
    else:
        chains_of(result)  # raises the one-line error
        raise AssertionError
    cwh = image_shape(shape)
    if cwh is None:
        raise InputError(
            f"the input has shape {shape}, not an image (C, H, W) with 1 or 3 channels or (H, W); "
            "image grids and GIFs need image inputs (use --plot for other inputs)"
        )
    return cwh


def _pixel_range(result: Any, pts: np.ndarray) -> tuple[float, float]:
    bounds = result.options.get("bounds") if hasattr(result, "options") else None
    if bounds:
        lo, hi = float(np.min(bounds[0])), float(np.max(bounds[1]))
    else:
        finite = pts[np.isfinite(pts)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def to_uint8(x: np.ndarray, cwh: tuple[int, int, int], lo: float, hi: float) -> np.ndarray:
    """One input as an ``(H, W, 3)`` uint8 picture (``lo..hi`` -> black..white).

    Parameters
    ----------
    x : numpy.ndarray
        ``n = C*H*W`` values.
    cwh : tuple of int
        ``(C, H, W)``.
    lo, hi : float
        Pixel range.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    c, h, w = cwh
    a = np.clip((np.asarray(x, dtype=np.float64).reshape(c, h, w) - lo) / (hi - lo), 0.0, 1.0)
    a = np.rint(np.nan_to_num(a) * 255.0).astype(np.uint8).transpose(1, 2, 0)
    return np.repeat(a, 3, axis=2) if c == 1 else a


def _picks(count: int, k: int) -> list[int]:
    count = max(1, min(count, k))
    return sorted({round(i * (k - 1) / max(1, count - 1)) for i in range(count)})


def _held_label(result: Any) -> str:
    opts = getattr(result, "options", {}) or {}
    out = opts.get("output")
    what = "every output" if out in (None, "identity", "all") else f"output {out}"
    return what


def image_grid(result: Any, *, columns: int = 8, title: str | None = None) -> Figure:
    """A grid of the images of a walk or a traversal, with their outputs.

    One row per chain (a traversal or a boundary walk is one row: its path), ``columns``
    points spread evenly along each, the start first. Every image is titled with its position,
    the class the raw outputs decide (argmax, when the held outputs are the model's logits) and
    ``max |N(x) - N(x0)|``. Below, every held output of every drawn point is plotted against
    the output index, over the start's outputs, so the figure shows that they coincide.

    Parameters
    ----------
    result : WalkResult, TraverseResult or BoundaryWalkResult
        The run.
    columns : int
        Images per row.
    title : str, optional
        Figure title (by default what was held fixed and to what precision).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    if isinstance(result, ConfusionResult):
        return confusion_figure(result, title=title)
    cwh = _layout(result)
    pts, outs, counts, x0, y0 = chains_of(result)
    lo, hi = _pixel_range(result, pts)
    columns = max(2, int(columns))
    rows = len(counts)
    picks = [_picks(columns, max(1, c)) for c in counts]
    ncols = max(len(p) for p in picks)
    extra = 1 if isinstance(result, TraverseResult) else 0
    fig = Figure(figsize=(1.45 * (ncols + extra) + 0.6, 1.55 * rows + 2.6), layout="constrained")
    grid = fig.add_gridspec(rows + 1, ncols + extra, height_ratios=[1.0] * rows + [1.5])
    deviations = []
    boundary = isinstance(result, BoundaryWalkResult)
    for r, (chain_picks, count) in enumerate(zip(picks, counts, strict=True)):
        for c, j in enumerate(chain_picks):
            ax = fig.add_subplot(grid[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if count == 0:
                continue
            ax.imshow(to_uint8(pts[r, j], cwh, lo, hi), interpolation="nearest")
            dev = float(np.abs(outs[r, j] - y0).max())
            deviations.append(dev)
            label = "start" if j == 0 else ("end" if j == count - 1 else f"#{j}")
            if rows > 1:
                label = f"chain {r} {label}"
            if boundary:
                ax.set_title(f"{label}\nscore {outs[r, j][0]:.3g}", fontsize=7)
            elif outs.shape[-1] > 1:
                ax.set_title(
                    f"{label}: class {int(np.argmax(outs[r, j]))}\nmax|dN| {dev:.1e}", fontsize=7
                )
            else:
                ax.set_title(f"{label}\nmax|dN| {dev:.1e}", fontsize=7)
    if isinstance(result, TraverseResult):  # the target, after the path
        ax = fig.add_subplot(grid[0, ncols])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(to_uint8(_np(result.target).reshape(-1), cwh, lo, hi), interpolation="nearest")
        t_out = _np(result.target_output).reshape(-1)
        ax.set_title(
            "target" + (f": class {int(np.argmax(t_out))}" if t_out.size > 1 else ""), fontsize=7
        )
    ax = fig.add_subplot(grid[rows, :])
    m = outs.shape[-1]
    idx = np.arange(m)
    for r, chain_picks in enumerate(picks):
        for j in chain_picks[: counts[r]]:
            ax.plot(idx, outs[r, j], "o", ms=5, mfc="none", color="#1f77b4", alpha=0.6)
    ax.plot(idx, y0, "_", ms=16, mew=2.0, color="#d62728", label="N(x0)")
    ax.set_xticks(idx if m <= 20 else idx[:: max(1, m // 20)])
    ax.set_xlabel("output index")
    ax.set_ylabel("output")
    ax.legend(loc="best", fontsize=7)
    worst = max(deviations, default=0.0)
    if boundary:
        held = "the score moves from the start across the decision boundary"
        gap = abs(float(result.boundary_output) - result.threshold)
        ax.set_title(f"{held}; boundary reached to {gap:.1e}", fontsize=8)
    else:
        ax.set_title(
            f"outputs of the drawn images (circles) over N(x0): max|N(x) - N(x0)| = {worst:.1e}",
            fontsize=8,
        )
    if title is None:
        if isinstance(result, TraverseResult):
            title = (
                f"traversal toward the target: {_held_label(result)} held to "
                f"{result.residual:.1e}; distance to target {result.start_distance:.4g} -> "
                f"{result.end_distance:.4g} ({result.stop_reason})"
            )
        elif isinstance(result, WalkResult):
            title = (
                f"{result.method} walk: {_held_label(result)} held to {result.residual:.1e} "
                f"over {len(result)} samples, pixels in [{lo:g}, {hi:g}]"
            )
        else:
            title = (
                f"shortest confusion: decision {result.decision_start} -> "
                f"{result.decision_flip}; nearest boundary point at distance "
                f"{result.closest_distance:.4g} (first-order residual {result.closest_kkt:.1e})"
            )
    fig.suptitle(title, fontsize=9)
    return fig


def image_path_figure(
    start: Any,
    end: Any,
    outputs: Sequence[Any],
    *,
    labels: Sequence[str],
    target: Any = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    title: str = "",
    output_names: Sequence[str] | None = None,
) -> Figure:
    """Start, end (and target) images side by side with their outputs as grouped bars.

    Parameters
    ----------
    start, end : array-like
        Images ``(C, H, W)`` or ``(H, W)``.
    outputs : sequence of array-like
        The outputs of each image shown (start, end, target), in that order.
    labels : sequence of str
        A caption per image.
    target : array-like, optional
        A third image (the traversal's target).
    bounds : tuple of float
        Pixel range.
    title : str
        Figure title.
    output_names : sequence of str, optional
        Tick labels of the outputs (default their indices).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    images = [np.asarray(_np_any(start)), np.asarray(_np_any(end))]
    if target is not None:
        images.append(np.asarray(_np_any(target)))
    cwh = image_shape(images[0].shape)
    if cwh is None:
        raise InputError(f"the input has shape {images[0].shape}, not an image")
    k = len(images)
    fig = Figure(figsize=(2.2 * k + 4.2, 2.8), layout="constrained")
    grid = fig.add_gridspec(1, k + 2)
    for i, (img, label) in enumerate(zip(images, labels, strict=False)):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(to_uint8(img.reshape(-1), cwh, *bounds), interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[0, k:])
    vals = [np.asarray(_np_any(o)).reshape(-1) for o in outputs]
    m = vals[0].size
    width = 0.8 / len(vals)
    colors = ("#1f77b4", "#ff7f0e", "#2ca02c")
    for i, (v, label) in enumerate(zip(vals, labels, strict=False)):
        ax.bar(
            np.arange(m) + (i - (len(vals) - 1) / 2) * width,
            v,
            width,
            label=label.split("\n")[0],
            color=colors[i % 3],
        )
    ax.set_xticks(np.arange(m), output_names or [str(i) for i in range(m)], fontsize=7)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xlabel("output (logit)")
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def _np_any(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return _np(x)
    return np.asarray(x, dtype=np.float64)


def animation_frames(result: Any, *, scale: int = 4) -> list[Any]:
    """The frames of an animation of a walk, a traversal, a boundary walk or a confusion path.

    Frame ``k`` shows point ``k`` of every chain side by side (a chain that stopped early
    keeps its last image), under a caption with the frame number and the largest output
    deviation from the start in that frame (a boundary walk: the score; a confusion path: the
    decision and its margin).

    Parameters
    ----------
    result : WalkResult, TraverseResult, BoundaryWalkResult or ConfusionResult
        The run.
    scale : int
        Enlargement of every pixel.

    Returns
    -------
    list of PIL.Image.Image
        RGB frames, all of one size.
    """
    from PIL import Image, ImageDraw

    cwh = _layout(result)
    pts, outs, counts, _x0, y0 = chains_of(result)
    lo, hi = _pixel_range(result, pts)
    _, h, w = cwh
    pad, caption = 2, 12
    k = max(max(counts, default=1), 1)
    chains = len(counts)
    frames = []
    for j in range(k):
        canvas = np.full((h + 2 * pad, chains * (w + pad) + pad, 3), 255, dtype=np.uint8)
        dev = 0.0
        for c in range(chains):
            if counts[c] == 0:
                continue
            jj = min(j, counts[c] - 1)
            x = pad + c * (w + pad)
            canvas[pad : pad + h, x : x + w] = to_uint8(pts[c, jj], cwh, lo, hi)
            dev = max(dev, float(np.abs(outs[c, jj] - y0).max()))
        img = Image.fromarray(canvas).resize(
            (canvas.shape[1] * scale, canvas.shape[0] * scale), Image.Resampling.NEAREST
        )
        framed = Image.new("RGB", (max(img.width, 150), img.height + caption), "white")
        framed.paste(img, (0, caption))
        text = f"{j + 1}/{k}  max|dN| {dev:.1e}"
        if isinstance(result, BoundaryWalkResult):
            text = f"{j + 1}/{k}  score {float(outs[0, min(j, counts[0] - 1)][0]):.3g}"
        elif isinstance(result, ConfusionResult):
            o = outs[0, min(j, counts[0] - 1)]
            top = np.sort(o)[-2:]
            text = f"{j + 1}/{k}  class {int(np.argmax(o))} (margin {top[1] - top[0]:.2g})"
        ImageDraw.Draw(framed).text((2, 0), text, fill=(0, 0, 0))
        frames.append(framed)
    return frames


def gif_bytes(result: Any, *, scale: int = 4, ms_per_frame: int = 120) -> bytes:
    """The bytes of an animated GIF of :func:`animation_frames`.

    Parameters
    ----------
    result : WalkResult, TraverseResult, BoundaryWalkResult or ConfusionResult
        The run.
    scale : int
        Enlargement of every pixel.
    ms_per_frame : int
        Frame duration in milliseconds.

    Returns
    -------
    bytes
        The GIF file.
    """
    from PIL import Image

    frames = [
        f.convert("P", palette=Image.Palette.ADAPTIVE)
        for f in animation_frames(result, scale=scale)
    ]
    buf = io.BytesIO()
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0
    )
    return buf.getvalue()


def mp4_bytes(result: Any, *, scale: int = 4, ms_per_frame: int = 120) -> bytes:
    """The bytes of an MP4 (H.264) of :func:`animation_frames`, written by imageio-ffmpeg.

    Parameters
    ----------
    result : WalkResult, TraverseResult, BoundaryWalkResult or ConfusionResult
        The run.
    scale : int
        Enlargement of every pixel.
    ms_per_frame : int
        Frame duration in milliseconds.

    Returns
    -------
    bytes
        The MP4 file.

    Raises
    ------
    InputError
        When imageio-ffmpeg is not installed.
    """
    try:
        import imageio_ffmpeg
    except ImportError:
        raise InputError(
            "writing MP4 needs imageio-ffmpeg (pip install 'fiberscope[video]'); or write a .gif"
        ) from None
    import os
    import tempfile

    frames = [np.asarray(f) for f in animation_frames(result, scale=scale)]
    hh, ww = frames[0].shape[:2]
    eh, ew = hh + hh % 2, ww + ww % 2  # H.264 needs even sides
    fps = 1000.0 / max(1, int(ms_per_frame))
    fd, tmp = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            tmp, (ew, eh), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=8,
            macro_block_size=1, ffmpeg_log_level="error",
        )  # fmt: skip
        writer.send(None)
        for f in frames:
            canvas = np.full((eh, ew, 3), 255, dtype=np.uint8)
            canvas[:hh, :ww] = f
            writer.send(np.ascontiguousarray(canvas))
        writer.close()
        with open(tmp, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(tmp)


def save_gif(
    result: Any, path: str | Path, *, force: bool = True, scale: int = 4, ms_per_frame: int = 120
) -> Path:
    """Write an animation atomically (never a half-written file): ``.gif`` or ``.mp4``.

    Parameters
    ----------
    result : WalkResult, TraverseResult, BoundaryWalkResult or ConfusionResult
        The run.
    path : str or pathlib.Path
        Destination: ``.gif`` (Pillow) or ``.mp4`` (H.264, needs imageio-ffmpeg).
    force : bool
        Overwrite an existing file.
    scale, ms_per_frame : int
        As for :func:`gif_bytes`.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    InputError
        A name that does not end in ``.gif`` or ``.mp4``, a result without image inputs, MP4
        without imageio-ffmpeg.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise InputError(
            f"{p.name}: an animation is written as GIF or MP4; give a name ending in .gif or .mp4"
        )
    make = gif_bytes if suffix == ".gif" else mp4_bytes
    data = make(result, scale=scale, ms_per_frame=ms_per_frame)
    p = check_writable(p, force=force)
    with atomic_write(p, "wb") as fh:
        fh.write(data)
    return p


def confusion_figure(result: ConfusionResult, *, title: str | None = None) -> Figure:
    """The shortest confusion of an image: start, boundary point, flipped point, the change.

    Four images (the start, the nearest boundary point found, the point just past it, and
    ``|point - x0|`` per pixel) and the raw outputs of the first three as grouped bars; the
    title states the distance, how exactly the point lies on the boundary (``|margin|``) and
    its first-order optimality residual.

    Parameters
    ----------
    result : ConfusionResult
        From ``fs.confuse``.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    cwh = _layout(result)
    c, h, w = cwh
    pts = np.stack([_np(t).reshape(-1) for t in (result.start, result.point, result.flipped)])
    lo, hi = _pixel_range(result, pts)
    outs = [
        _np(o).reshape(-1)
        for o in (result.outputs_start, result.outputs_point, result.outputs_flipped)
    ]
    labels = [
        f"start: class {result.decision_start}",
        f"boundary point\n{result.decision_start} ties {result.decision_flip}",
        f"just past: class {result.decision_flipped}",
    ]
    fig = Figure(figsize=(13.0, 3.0), layout="constrained")
    grid = fig.add_gridspec(1, 7)
    for i in range(3):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(to_uint8(pts[i], cwh, lo, hi), interpolation="nearest")
        ax.set_title(labels[i], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[0, 3])
    diff = np.abs(pts[1] - pts[0]).reshape(c, h, w).max(0)
    im = ax.imshow(diff, cmap="magma", interpolation="nearest")
    ax.set_title(f"|change| (L2 {result.distance:.3g})", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.7)
    ax = fig.add_subplot(grid[0, 4:])
    m = outs[0].size
    width = 0.27
    for i, (v, color) in enumerate(zip(outs, ("#1f77b4", "#ff7f0e", "#2ca02c"), strict=True)):
        ax.bar(
            np.arange(m) + (i - 1) * width,
            v,
            width,
            color=color,
            label=labels[i].split("\n")[0].split(":")[0],
        )
    ax.set_xticks(np.arange(m) if m <= 20 else np.arange(0, m, max(1, m // 20)))
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xlabel("output (logit)")
    ax.legend(fontsize=7)
    if title is None:
        title = (
            f"shortest confusion found: {result.decision_start} -> {result.decision_flip} at "
            f"distance {result.distance:.4g}; on the boundary to |margin| "
            f"{result.boundary_residual:.1e}; first-order residual {result.kkt:.2g}"
        )
    fig.suptitle(title, fontsize=9)
    return fig
