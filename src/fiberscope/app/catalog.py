"""The models the app serves: loaded once at start-up, from the names the user gave.

The page refers to a model by its name in this catalog, never by a path, so no file can be
loaded from the browser.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import FiberscopeError, InputError, ModelError
from ..geometry import as_model_function
from ..models import bundled_networks, load_model, output_map
from . import images

#: The paper's data domains (Benfenati & Marta II), used as the default box of each network.
BUNDLED_2D: dict[str, dict[str, Any]] = {
    "surface_1": {"bounds": ([-1.0, -1.0], [1.0, 1.0]), "start": [0.25, 0.25]},
    "surface_2": {"bounds": ([-1.0, -1.0], [1.0, 1.0]), "start": [0.25, 0.25]},
    "thermodynamics": {"bounds": ([0.0, 0.0], [1.0, 1.0]), "start": [0.5, 0.5]},
    "thermo_softplus": {"bounds": ([0.0, 0.0], [1.0, 1.0]), "start": [0.5, 0.5]},
    "binary": {
        "bounds": ([-3.14, -1.0], [3.14, 1.5]),
        "start": [0.0, -0.01499],
        "threshold": 0.5,
    },
}

#: Shapes tried, in order, for a model whose input shape cannot be read off its layers.
PROBE_SHAPES: tuple[tuple[int, ...], ...] = ((2,), (1, 28, 28), (28, 28), (784,), (3, 32, 32))

#: Bundled models offered when ``fiberscope app`` is started without a model: the paper's 2-D
#: networks and the MNIST CNN (``fiberscope.models.zoo.mnist_cnn``).
DEFAULT_MODELS = ("surface_1", "surface_2", "thermodynamics", "binary", "mnist_cnn")


@dataclass
class ModelEntry:
    """One model of the app.

    Attributes
    ----------
    name : str
        What the page calls it (unique in the catalog).
    source : str
        What the user named on the command line (a bundled name or a file).
    model : callable
        The loaded model.
    input_shape : tuple of int
        One input, without batch dimension.
    n_outputs : int
        Outputs after the output map.
    kind : str
        ``"2d"`` (two inputs, one output: the map view), ``"image"`` or ``"nd"`` (the walk
        view).
    bounds : tuple or None
        2-D: ``([lo_x, lo_y], [hi_x, hi_y])``; image/n-D: ``(lo, hi)`` scalars or None.
    output : callable or None
        Output map applied to the model's output.
    output_spec : str or None
        The ``--output`` text, for the page.
    threshold : float or None
        Decision threshold of a classifier (2-D: enables the boundary walk).
    start : list of float or None
        A suggested start for 2-D models.
    image : tuple of int or None
        ``(channels, height, width)`` when the input is an image.
    """

    name: str
    source: str
    model: Any
    input_shape: tuple[int, ...]
    n_outputs: int
    kind: str
    bounds: Any
    output: Any = None
    output_spec: str | None = None
    threshold: float | None = None
    start: list[float] | None = None
    image: tuple[int, int, int] | None = None
    grid_model: Any = field(default=None, repr=False)

    @property
    def n_inputs(self) -> int:
        """Number of input coordinates."""
        return math.prod(self.input_shape)

    def describe(self) -> dict[str, Any]:
        """What the page needs to know about the model (JSON-ready)."""
        bounds = self.bounds
        if bounds is not None:
            bounds = [list(b) if isinstance(b, (list, tuple)) else b for b in bounds]
        return {
            "name": self.name,
            "source": self.source,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "bounds": bounds,
            "output": self.output_spec,
            "threshold": self.threshold,
            "start": self.start,
            "image": list(self.image) if self.image else None,
            # the bundled test digits fit 28x28 greyscale models: their classes, in order
            "digits": images.digit_labels() if self.takes_digits else [],
        }

    @property
    def takes_digits(self) -> bool:
        """Whether the bundled 28x28 greyscale test digits are inputs of this model."""
        return self.image == (1, 28, 28)

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """The (mapped) output at one input, float64, flat ``(m,)``."""
        x = x.detach().to(torch.float64).reshape(self.input_shape)
        fn = as_model_function(self.model, x, output=self.output)
        return fn.value(x.reshape(-1).to(fn.device)).cpu()


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse ``--input-shape 1,28,28`` (also ``1x28x28``)."""
    parts = [p.strip() for p in text.replace("x", ",").replace("×", ",").split(",")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"--input-shape: expected sizes such as 1,28,28, got {text!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"--input-shape: every size must be at least 1, got {text!r}")
    return shape


def image_layout(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """``(channels, height, width)`` when inputs of ``shape`` are images, else None.

    Images are ``(C, H, W)`` with 1 or 3 channels, ``(H, W)``, or a flat vector whose size is
    a square of at least 8x8 (an MLP on flattened greyscale images).
    """
    if len(shape) == 3 and shape[0] in (1, 3) and min(shape[1:]) >= 8:
        return shape[0], shape[1], shape[2]
    if len(shape) == 2 and min(shape) >= 8:
        return 1, shape[0], shape[1]
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side >= 8 and side * side == shape[0]:
            return 1, side, side
    return None


def expected_input_size(model: Any) -> int | None:
    """Inputs of an MLP, read off its first ``nn.Linear`` (None for anything else)."""
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[0], nn.Linear):
        return int(model[0].in_features)
    return None


def _param_dtype(model: Any) -> torch.dtype:
    if isinstance(model, nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
    return torch.float64


def _exported_shape(model: Any) -> tuple[int, ...] | None:
    """Input shape recorded in a ``torch.export`` graph (its first placeholder)."""
    graph = getattr(model, "graph", None)
    if graph is None:
        return None
    for node in getattr(graph, "nodes", ()):
        if getattr(node, "op", None) == "placeholder":
            val = node.meta.get("val") if hasattr(node, "meta") else None
            shape = getattr(val, "shape", None)
            if shape is not None and len(shape) >= 2:
                return tuple(int(s) for s in shape[1:])
            return None
    return None


def infer_input_shape(model: Any, name: str) -> tuple[int, ...]:
    """The shape of one input of ``model`` (without batch dimension).

    Read off the first ``nn.Linear`` of an MLP or a ``torch.export`` graph; otherwise the
    shapes in :data:`PROBE_SHAPES` are tried with a batch of one.

    Raises
    ------
    ModelError
        When no shape works: the message asks for ``--input-shape``; or when a probe ends in
        a ``SystemExit`` or another exception that is not an ``Exception``.
    """
    size = expected_input_size(model)
    if size is not None:
        return (size,)
    shape = _exported_shape(model)
    if shape is not None:
        return shape
    dtype = _param_dtype(model)
    for shape in PROBE_SHAPES:
        try:
            with torch.no_grad():
                out = model(torch.full((1, *shape), 0.5, dtype=dtype))
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except Exception:  # noqa: BLE001 - a probe that fails just means "not this shape"
            continue
        except BaseException as exc:  # SystemExit or a user's BaseException: not a "no"
            text = " ".join(str(exc).split())[:200] or type(exc).__name__
            size = "x".join(map(str, shape))
            raise ModelError(
                f"{name} raised {type(exc).__name__}: {text} when called on a probe input of "
                f"shape {size}; a model must return a tensor or raise an Exception"
            ) from None
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel() > 0:
            return shape
    tried = ", ".join("x".join(map(str, s)) for s in PROBE_SHAPES)
    raise ModelError(
        f"cannot tell which input shape {name} takes (tried {tried}); give it with "
        "--input-shape, e.g. --input-shape 1,28,28"
    )


def _name_for(spec: str, taken: set[str]) -> str:
    base = spec if spec in bundled_networks() else Path(spec.split(":")[0]).stem or spec
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def _float64_copy(model: Any) -> Any:
    """A float64 copy of a module for grid evaluation (the library works in float64)."""
    if isinstance(model, nn.Module) and _param_dtype(model) != torch.float64:
        try:
            return copy.deepcopy(model).to(torch.float64)
        except Exception:  # noqa: BLE001 - some modules cannot be copied; use as they are
            return model
    return model


def _box_2d(pairs: list[tuple[float, float]], name: str) -> tuple[list[float], list[float]]:
    if len(pairs) == 1:
        pairs = pairs * 2
    if len(pairs) != 2:
        raise InputError(
            f"--bounds given {len(pairs)} times but {name} has 2 inputs; give it once (same box "
            "on both axes) or twice"
        )
    return _check_bounds_2d(([p[0] for p in pairs], [p[1] for p in pairs]), name)


def _check_bounds_2d(bounds: Any, name: str) -> tuple[list[float], list[float]]:
    lo, hi = [float(v) for v in bounds[0]], [float(v) for v in bounds[1]]
    for axis in range(2):
        if not lo[axis] < hi[axis]:
            raise InputError(
                f"empty box on axis {axis} for {name}: {lo[axis]:g} is not below {hi[axis]:g}"
            )
    return lo, hi


def make_entry(
    spec: str,
    *,
    name: str,
    input_shape: tuple[int, ...] | None = None,
    bounds: list[tuple[float, float]] | None = None,
    output: str | None = None,
    threshold: float | None = None,
) -> ModelEntry:
    """Load ``spec`` and describe it for the page.

    Parameters
    ----------
    spec : str
        A bundled network name, a model file or ``module:attr`` (as for
        :func:`fiberscope.load_model`).
    name : str
        Name in the catalog.
    input_shape : tuple of int, optional
        One input's shape; inferred when not given.
    bounds : list of (float, float), optional
        ``(lo, hi)`` pairs: one for every axis, or one per axis (2-D inputs).
    output : str, optional
        Output selection (``"logits[3]"``, ``"logit-diff 0 1"``...).
    threshold : float, optional
        Decision threshold (2-D classifiers).

    Returns
    -------
    ModelEntry
        The entry.

    Raises
    ------
    FiberscopeError
        The model cannot be loaded, its input shape cannot be told, or its classes are
        points (as many outputs as inputs).
    """
    model = load_model(spec)
    shape = input_shape or infer_input_shape(model, spec)
    selection = output_map(output) if output is not None else None
    probe = torch.full(shape, 0.5, dtype=torch.float64)
    preset = BUNDLED_2D.get(spec, {})
    if preset.get("start") is not None and math.prod(shape) == 2:
        probe = torch.tensor(preset["start"], dtype=torch.float64).reshape(shape)
    try:
        fn = as_model_function(model, probe, output=selection)
    except FiberscopeError as exc:
        raise ModelError(f"{spec}: {exc}") from None
    n, m = fn.n, fn.m
    if m >= n:
        hint = " choose one score with --output, e.g. --output 'logit-diff 0 1'" if n == 2 else ""
        raise ModelError(
            f"{spec} maps {n} inputs to {m} outputs: its classes are points, there is nothing "
            f"to trace or walk;{hint or ' use a model with fewer outputs than inputs'}"
        )
    threshold = preset.get("threshold") if threshold is None else threshold
    if n == 2:
        if bounds is not None:
            lo, hi = _box_2d(bounds, spec)
        else:
            lo, hi = _check_bounds_2d(preset.get("bounds", ([-1.0, -1.0], [1.0, 1.0])), spec)
        start = preset.get("start", [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2])
        return ModelEntry(
            name=name,
            source=spec,
            model=model,
            input_shape=tuple(shape),
            n_outputs=m,
            kind="2d",
            bounds=(lo, hi),
            output=selection,
            output_spec=output,
            threshold=threshold,
            start=start,
            grid_model=_float64_copy(model),
        )
    image = image_layout(tuple(shape))
    if bounds is not None:
        if len(bounds) != 1:
            raise InputError(
                f"--bounds given {len(bounds)} times but {spec} has {n} inputs: give it once "
                "(LO,HI for every coordinate)"
            )
        lo1, hi1 = float(bounds[0][0]), float(bounds[0][1])
        if not lo1 < hi1:
            raise InputError(f"empty box: lower bound {lo1:g} is not below upper bound {hi1:g}")
        box: Any = (lo1, hi1)
    else:
        box = (0.0, 1.0) if image is not None else None
    return ModelEntry(
        name=name,
        source=spec,
        model=model,
        input_shape=tuple(shape),
        n_outputs=m,
        kind="image" if image is not None else "nd",
        bounds=box,
        output=selection,
        output_spec=output,
        threshold=threshold,
        image=image,
    )


def build_catalog(
    specs: list[str],
    *,
    input_shape: tuple[int, ...] | None = None,
    bounds: list[tuple[float, float]] | None = None,
    output: str | None = None,
    threshold: float | None = None,
) -> dict[str, ModelEntry]:
    """Load every model the user named (:data:`DEFAULT_MODELS` when none).

    Parameters
    ----------
    specs : list of str
        Model specs from the command line.
    input_shape, bounds, output, threshold : optional
        Applied to every model named (not to the bundled defaults).

    Returns
    -------
    dict
        Entries by name, in the order given.
    """
    catalog: dict[str, ModelEntry] = {}
    if not specs:
        for spec in DEFAULT_MODELS:
            catalog[spec] = make_entry(spec, name=spec)
        return catalog
    for spec in specs:
        name = _name_for(spec, set(catalog))
        catalog[name] = make_entry(
            spec,
            name=name,
            input_shape=input_shape,
            bounds=bounds,
            output=output,
            threshold=threshold,
        )
    return catalog
