"""Evaluate a model on a regular 2-D grid (heat maps, reference level sets).

Any model works, whatever its dtype and device: an ``nn.Module`` is evaluated with float64
copies of its weights on its own device (as the geometry does, so the heat map shows the same
function the tracer follows); if that fails (a module that builds tensors of its own dtype
inside ``forward``), it is evaluated in its own dtype. Plain callables get float64 points, and
float32 points if they refuse those. A model that accepts only a batch of one (some exported
programs) is evaluated point by point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError, ModelError
from .jacobian import OutputMap

_DTYPE = torch.float64


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text[:200]}" if text else exc.__class__.__name__


def model_device_dtype(model: Any) -> tuple[torch.device, torch.dtype | None]:
    """Device and floating dtype of a module's first floating parameter or buffer.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The model.

    Returns
    -------
    tuple
        ``(device, dtype)``; CPU and None for plain callables and modules without weights.
    """
    if isinstance(model, nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            if t.is_floating_point():
                return t.device, t.dtype
    return torch.device("cpu"), None


def _evaluators(model: Any) -> list[tuple[str, Callable[[Tensor], Any], torch.dtype]]:
    """Ways to call the model on a batch, best first: (name, call, input dtype)."""
    device, dtype = model_device_dtype(model)
    ways: list[tuple[str, Callable[[Tensor], Any], torch.dtype]] = []
    if isinstance(model, nn.Module) and not isinstance(model, torch.jit.ScriptModule):
        tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        if any(v.is_meta for v in tensors.values()):
            raise ModelError(
                "the model's weights are on the meta device (never materialised); load real "
                "weights, e.g. with load_state_dict(..., assign=True)"
            )
        if dtype is not None and dtype != _DTYPE:
            copies = {
                k: v.detach().to(dtype=_DTYPE) if v.is_floating_point() else v
                for k, v in tensors.items()
            }

            def float64_copy(x: Tensor) -> Any:
                return torch.func.functional_call(model, copies, (x,))

            ways.append(("float64 copy", float64_copy, _DTYPE))
    ways.append(("as it is", model, dtype or _DTYPE))
    if dtype is None:
        ways.append(("float32", model, torch.float32))
    return [(name, fn, dt) for name, fn, dt in ways if dt is not None] or [("", model, _DTYPE)]


def evaluate_grid(
    model: Callable[..., Any],
    lo: Sequence[float],
    hi: Sequence[float],
    resolution: int = 200,
    *,
    output: OutputMap | None = None,
    component: int = 0,
    chunk: int = 65536,
) -> tuple[Tensor, Tensor, Tensor]:
    """Values of one output of a 2-input model on a ``resolution x resolution`` grid.

    Parameters
    ----------
    model : callable or torch.nn.Module
        A model taking a batch ``(B, 2)`` and returning ``(B, ...)``, of any floating dtype
        (float64, float32, bfloat16, float16) on any device.
    lo, hi : sequence of float
        Corners of the box.
    resolution : int
        Points per axis.
    output : callable, optional
        Output map applied per sample.
    component : int
        Which (flattened) output to return.
    chunk : int
        Batch size for the evaluation.

    Returns
    -------
    xs, ys, z : torch.Tensor
        Axis coordinates ``(R,)``, ``(R,)`` and values ``(R, R)`` with ``z[i, j]`` at
        ``(xs[j], ys[i])`` (image convention), float64 on the CPU.

    Raises
    ------
    ModelError
        When the model fails on the grid points in every way it can be called.
    """
    if len(lo) != 2 or len(hi) != 2:
        raise InputError("grid evaluation needs a 2-D box")
    xs = torch.linspace(float(lo[0]), float(hi[0]), resolution, dtype=_DTYPE)
    ys = torch.linspace(float(lo[1]), float(hi[1]), resolution, dtype=_DTYPE)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=1)
    device, _ = model_device_dtype(model)

    def run(fn: Callable[[Tensor], Any], dtype: torch.dtype, size: int) -> Tensor:
        values = []
        for start in range(0, pts.shape[0], size):
            batch = pts[start : start + size].to(device=device, dtype=dtype)
            out = fn(batch)
            if not isinstance(out, Tensor):
                raise ModelError(f"the model returned {type(out).__name__}, not a torch.Tensor")
            if output is not None:
                out = torch.vmap(output)(out)
            values.append(out.reshape(batch.shape[0], -1)[:, component].to("cpu", _DTYPE))
        return torch.cat(values)

    first: BaseException | None = None
    with torch.no_grad():
        for _name, fn, dtype in _evaluators(model):
            for size in (chunk, 1):
                try:
                    z = run(fn, dtype, size)
                except ModelError:
                    raise
                except Exception as exc:  # the user's model can raise anything
                    first = first or exc
                    continue
                return xs, ys, z.reshape(resolution, resolution)
    raise ModelError(
        f"the model failed on a batch of grid points: {_describe(first)}"
        if first is not None
        else "the model failed on the grid points"
    )
