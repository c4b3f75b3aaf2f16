"""Jacobians of any differentiable callable or ``nn.Module``, in float64.

The central object is :class:`ModelFunction`: a model seen as a map between flat float64
vectors, ``R^n -> R^m``, with the user's input shape, an optional output map (which outputs
count as "the same"), batched evaluation, and Jacobians by reverse-mode autograd (one forward
pass of the batch, one vectorised backward pass for all ``m`` outputs). Plain MLPs
(``nn.Sequential`` of ``nn.Linear`` and elementwise activations) get an exact closed-form
Jacobian without autograd overhead; both are tested against ``torch.func`` and finite
differences.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError, ModelError

OutputMap = Callable[[Tensor], Tensor]

_DTYPE = torch.float64


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{exc.__class__.__name__}: {text}"


@dataclass(frozen=True)
class _Layer:
    kind: str  # "linear" or an activation name
    weight: Tensor | None = None
    bias: Tensor | None = None
    param: float = 0.0


_ELEMENTWISE = {
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.SiLU: "silu",
    nn.Softplus: "softplus",
    nn.ReLU: "relu",
    nn.Identity: "identity",
}


def _mlp_layers(module: Any, device: torch.device) -> list[_Layer] | None:
    """Return the layer list of a plain MLP, or None if ``module`` is anything else."""
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return None
    layers: list[_Layer] = []
    for child in module:
        if type(child) is nn.Linear:
            w = child.weight.detach().to(device=device, dtype=_DTYPE)
            b = None if child.bias is None else child.bias.detach().to(device=device, dtype=_DTYPE)
            layers.append(_Layer("linear", w, b))
        elif type(child) in _ELEMENTWISE:
            kind = _ELEMENTWISE[type(child)]
            if kind == "softplus" and child.beta != 1:
                return None
            param = float(child.threshold) if kind == "softplus" else 0.0
            layers.append(_Layer(kind, param=param))
        elif type(child) is nn.Softmax and child.dim in (-1, 0, 1):
            layers.append(_Layer("softmax"))
        else:
            return None
    if layers[0].kind != "linear":
        return None
    return layers


def _mlp_value(layers: list[_Layer], x: Tensor) -> Tensor:
    """Forward pass of a plain MLP at one flat point (no Jacobian)."""
    h = x
    for layer in layers:
        kind = layer.kind
        if kind == "linear":
            h = layer.weight @ h if layer.bias is None else torch.addmv(layer.bias, layer.weight, h)
        elif kind == "sigmoid":
            h = torch.sigmoid(h)
        elif kind == "tanh":
            h = torch.tanh(h)
        elif kind == "silu":
            h = torch.nn.functional.silu(h)
        elif kind == "softplus":
            h = torch.nn.functional.softplus(h, threshold=layer.param)
        elif kind == "relu":
            h = torch.relu(h)
        elif kind == "softmax":
            h = torch.softmax(h, dim=0)
    return h


def _mlp_forward_factors(
    layers: list[_Layer], x: Tensor
) -> tuple[Tensor, list[tuple[str, Tensor]]]:
    """Forward pass of a plain MLP keeping the Jacobian's factors, last dimension features.

    ``x`` is ``(n,)`` or ``(B, n)``. The factors, in order from the input: ``("w", W)`` for a
    linear layer, ``("d", d)`` for an elementwise activation with derivative ``d`` (the
    Jacobian ``diag(d)``), ``("s", s)`` for a softmax (``diag(s) - s s^T``).
    """
    h = x
    factors: list[tuple[str, Tensor]] = []
    for layer in layers:
        kind = layer.kind
        if kind == "linear":
            w = layer.weight
            if h.dim() == 1:
                h = w @ h if layer.bias is None else torch.addmv(layer.bias, w, h)
            else:
                h = h @ w.T if layer.bias is None else torch.addmm(layer.bias, h, w.T)
            factors.append(("w", w))
        elif kind == "sigmoid":
            h = torch.sigmoid(h)
            factors.append(("d", h - h * h))
        elif kind == "tanh":
            h = torch.tanh(h)
            factors.append(("d", 1.0 - h * h))
        elif kind == "silu":
            sg = torch.sigmoid(h)
            factors.append(("d", sg * (1.0 + h * (1.0 - sg))))
            h = h * sg
        elif kind == "softplus":
            big = h > layer.param
            factors.append(("d", torch.where(big, torch.ones_like(h), torch.sigmoid(h))))
            h = torch.where(big, h, torch.nn.functional.softplus(h, threshold=layer.param))
        elif kind == "relu":
            factors.append(("d", (h > 0).to(h.dtype)))
            h = torch.relu(h)
        elif kind == "softmax":
            h = torch.softmax(h, dim=-1)
            factors.append(("s", h))
        # identity: nothing to do
    return h, factors


def _accumulate(factors: list[tuple[str, Tensor]], n: int, m: int, batch: int | None) -> Tensor:
    """The product of the factors, ``(m, n)`` or ``(B, m, n)``, from the cheaper end.

    With fewer outputs than inputs (the case of every class we follow) the product is taken
    from the output side, like reverse-mode autodiff: ``m``-row matrices, never a
    ``hidden x n`` one; otherwise from the input side.
    """
    reverse = m <= n
    order = reversed(factors) if reverse else iter(factors)
    jac: Tensor | None = None
    for kind, f in order:
        if kind == "w":
            if batch is not None and f.dim() == 2:
                fw = f
                if jac is None:
                    jac = fw.expand(batch, *fw.shape)
                else:
                    jac = torch.matmul(jac, fw) if reverse else torch.matmul(fw, jac)
            elif jac is None:
                jac = f
            else:
                jac = jac @ f if reverse else f @ jac
            continue
        if jac is None:  # an activation at the very end (reverse) or start (forward)
            jac = (
                torch.diag_embed(f)
                if kind == "d"
                else torch.diag_embed(f) - (f.unsqueeze(-1) * f.unsqueeze(-2))
            )
            continue
        if kind == "d":
            jac = jac * f.unsqueeze(-2) if reverse else f.unsqueeze(-1) * jac
        else:  # softmax: J_s = diag(s) - s s^T (symmetric)
            if reverse:
                jac = jac * f.unsqueeze(-2) - torch.matmul(jac, f.unsqueeze(-1)) * f.unsqueeze(-2)
            else:
                jac = f.unsqueeze(-1) * jac - f.unsqueeze(-1) * torch.matmul(f.unsqueeze(-2), jac)
    assert jac is not None
    return jac


def _mlp_value_and_jacobian(layers: list[_Layer], x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward pass and Jacobian of a plain MLP at one flat point ``x`` (shape ``(n,)``)."""
    h, factors = _mlp_forward_factors(layers, x)
    return h, _accumulate(factors, x.shape[0], h.shape[0], None)


def _mlp_values(layers: list[_Layer], x: Tensor) -> Tensor:
    """Forward pass of a plain MLP at a batch of flat points ``x`` (shape ``(B, n)``)."""
    if x.shape[0] == 1:
        return _mlp_value(layers, x[0]).unsqueeze(0)
    h = x
    for layer in layers:
        kind = layer.kind
        if kind == "linear":
            w = layer.weight
            h = h @ w.T if layer.bias is None else torch.addmm(layer.bias, h, w.T)
        elif kind == "sigmoid":
            h = torch.sigmoid(h)
        elif kind == "tanh":
            h = torch.tanh(h)
        elif kind == "silu":
            h = torch.nn.functional.silu(h)
        elif kind == "softplus":
            h = torch.nn.functional.softplus(h, threshold=layer.param)
        elif kind == "relu":
            h = torch.relu(h)
        elif kind == "softmax":
            h = torch.softmax(h, dim=-1)
    return h


def _mlp_values_and_jacobians(layers: list[_Layer], x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward pass and Jacobians of a plain MLP at a batch ``x`` (``(B, n)``): ``(B, m, n)``."""
    if x.shape[0] == 1:  # one point: matrix-vector products (fewer, cheaper operations)
        y1, j1 = _mlp_value_and_jacobian(layers, x[0])
        return y1.unsqueeze(0), j1.unsqueeze(0)
    h, factors = _mlp_forward_factors(layers, x)
    jac = _accumulate(factors, x.shape[1], h.shape[1], x.shape[0])
    return h, jac.contiguous()


class ModelFunction:
    """A model seen as a float64 map between flat vectors, ``R^n -> R^m``, single or batched.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network. It is called with a tensor shaped like the user's input, with a leading
        batch dimension when the model needs one (detected automatically unless ``batched``
        is given). Its floating-point weights are evaluated in float64 whatever their dtype
        (a float32 model works as it is), on the device of ``x0``.
    x0 : torch.Tensor
        A representative input (any shape, no batch dimension). Sets the input shape, the
        device and the batch convention; the model is evaluated there once to validate it.
    output : callable, optional
        Output map applied to the model's (unbatched) output, e.g. ``lambda y: y[3]``.
    batched : bool, optional
        Force the batch convention. ``None`` (default) tries a batch of one first.
    dtype : torch.dtype, optional
        Precision of the *Jacobians* (float64 by default; float32 or bfloat16 for speed).
        Outputs are always evaluated in float64, so residuals are checked in float64.

    Raises
    ------
    ModelError
        If the model raises, returns something that is not a floating tensor, or returns
        NaN/inf at ``x0``.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        x0: Tensor,
        *,
        output: OutputMap | None = None,
        batched: bool | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not callable(model):
            raise ModelError(
                f"the model must be a callable or torch.nn.Module, got {type(model).__name__}"
            )
        self.model = model
        self.output_map = output
        self.input_shape = tuple(x0.shape)
        self.device = x0.device
        self.n = int(math.prod(self.input_shape)) if self.input_shape else 1
        self.jac_dtype = _DTYPE if dtype is None else dtype
        if not self.jac_dtype.is_floating_point:
            raise InputError(f"dtype must be a floating-point type, got {self.jac_dtype}")
        self._params: dict[str, Tensor] | None = None
        self._jparams: dict[str, Tensor] | None = None
        # TorchScript modules cannot be called with swapped parameters (torch.func's stateless
        # API); they are called as they are (fiberscope's loaders return them in float64).
        if isinstance(model, nn.Module) and not isinstance(model, torch.jit.ScriptModule):
            tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
            if any(v.is_meta for v in tensors.values()):
                raise ModelError(
                    "the model's weights are on the meta device (never materialised); load "
                    "real weights, e.g. with load_state_dict(..., assign=True)"
                )
            self._params = {
                k: (v.detach().to(device=self.device, dtype=_DTYPE) if v.is_floating_point() else v)
                for k, v in tensors.items()
            }
            if self.jac_dtype != _DTYPE:
                self._jparams = {
                    k: (v.to(self.jac_dtype) if v.is_floating_point() else v)
                    for k, v in self._params.items()
                }
        self._mlp = None
        if output is None and len(self.input_shape) == 1 and isinstance(model, nn.Module):
            self._mlp = _mlp_layers(model, self.device)
        self.batched = batched
        x0f = x0.detach().to(device=self.device, dtype=_DTYPE).reshape(-1)
        self._x0f = x0f
        y0 = self._validated_value(x0f)
        self.m = int(y0.numel())
        self.output_shape = tuple(y0.shape)
        self._jac_impl: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None
        self._batch_value_ok: bool | None = None

    # ------------------------------------------------------------------ evaluation
    def _forward(self, x: Tensor, params: dict[str, Tensor] | None = None) -> Any:
        try:
            if self._params is not None:
                return torch.func.functional_call(self.model, params or self._params, (x,))
            return self.model(x)
        except SystemExit as exc:  # user code may not end the program silently
            raise ModelError(
                f"the model called sys.exit({exc.code!r}) while being evaluated; a model must "
                "return a tensor"
            ) from None
        except (KeyboardInterrupt, Exception):
            raise
        except BaseException as exc:  # GeneratorExit, a user's BaseException subclass
            raise ModelError(
                f"the model raised {_describe(exc)} while being evaluated, an exception that is "
                "not an Exception (it would end the program); a model must return a tensor or "
                "raise an Exception"
            ) from None

    def _call_flat(self, xf: Tensor, params: dict[str, Tensor] | None = None) -> Tensor:
        """Evaluate on a flat vector; returns the (mapped) output, unflattened."""
        x = xf.reshape(self.input_shape)
        if self.batched:
            out = self._forward(x.unsqueeze(0), params)
            out = self._unbatch(out)
        else:
            out = self._forward(x, params)
        if not isinstance(out, Tensor):
            raise ModelError(
                f"the model returned {type(out).__name__}, not a torch.Tensor; "
                "wrap it so that it returns a tensor"
            )
        if self.output_map is not None:
            out = self.output_map(out)
            if not isinstance(out, Tensor):
                raise ModelError(f"the output map returned {type(out).__name__}, not a tensor")
        return out

    @staticmethod
    def _unbatch(out: Any) -> Any:
        if isinstance(out, Tensor) and out.ndim >= 1 and out.shape[0] == 1:
            return out[0]
        return out

    def _validated_value(self, xf: Tensor) -> Tensor:
        errors: list[BaseException] = []
        modes = [self.batched] if self.batched is not None else [True, False]
        out: Any = None
        for mode in modes:
            self.batched = mode
            try:
                out = self._call_flat(xf)
                break
            except ModelError:
                raise
            except Exception as exc:  # the user's model can raise anything
                errors.append(exc)
                out = None
        if out is None:
            raise ModelError(f"the model raised {_describe(errors[0])} when evaluated at the start")
        if not out.is_floating_point():
            raise ModelError(
                f"the model returned a {out.dtype} tensor; it must return floating-point outputs"
            )
        if out.dtype != _DTYPE:
            warnings.warn(
                f"the model returns {out.dtype}, not float64; its outputs are only accurate to "
                "that precision (convert it with model.double() for float64 geometry)",
                stacklevel=3,
            )
        if out.numel() == 0:
            raise ModelError("the model returned an empty tensor")
        if not torch.isfinite(out).all():
            raise ModelError("the model returned NaN or inf at the start point")
        return out.detach().to(_DTYPE)

    def _check_size(self, y: Tensor) -> Tensor:
        if y.shape[-1] != self.m:
            raise ModelError(
                f"the model's output size changed during the run: {self.m} values at the start, "
                f"{y.shape[-1]} now; fiberscope needs a fixed function"
            )
        return y

    def value(self, xf: Tensor) -> Tensor:
        """Output at a flat float64 point, flattened to shape ``(m,)``."""
        if self._mlp is not None:  # detached weights: no autograd graph to switch off
            return _mlp_values(self._mlp, xf.unsqueeze(0))[0]
        with torch.no_grad():
            return self._check_size(self._call_flat(xf).reshape(-1).to(_DTYPE))

    def values(self, xs: Tensor) -> Tensor:
        """Outputs at a batch of flat float64 points ``(B, n)``: shape ``(B, m)``."""
        if xs.shape[0] == 0:
            return torch.zeros((0, self.m), dtype=_DTYPE, device=xs.device)
        if self._mlp is not None:
            return _mlp_values(self._mlp, xs)
        if xs.shape[0] == 1:
            return self.value(xs[0]).unsqueeze(0)
        with torch.no_grad():
            if self._batch_value_ok is not False:
                try:
                    out = self._batched_values(xs)
                    self._batch_value_ok = True
                    return self._check_size(out)
                except ModelError:
                    raise
                except Exception:
                    if self._batch_value_ok:
                        raise
                    self._batch_value_ok = False
            return torch.stack([self.value(x) for x in xs])

    def _batched_values(self, xs: Tensor) -> Tensor:
        b = xs.shape[0]
        x = xs.reshape(b, *self.input_shape)
        if self.batched:
            out = self._forward(x)
            if not isinstance(out, Tensor) or out.ndim == 0 or out.shape[0] != b:
                raise ValueError("the model does not keep the batch dimension")
            if self.output_map is not None:
                out = torch.vmap(self.output_map)(out)
        else:
            out = torch.vmap(lambda xf: self._call_flat(xf))(xs)
        return out.reshape(b, -1).to(_DTYPE)

    def value_and_jacobian(self, xf: Tensor) -> tuple[Tensor, Tensor]:
        """Output ``(m,)`` and Jacobian ``(m, n)`` at a flat float64 point."""
        y, jac = self.values_and_jacobians(xf.unsqueeze(0))
        return y[0], jac[0]

    def values_and_jacobians(self, xs: Tensor) -> tuple[Tensor, Tensor]:
        """Outputs ``(B, m)`` and Jacobians ``(B, m, n)`` at a batch of flat float64 points.

        Plain MLPs use the closed form. Other models are differentiated with reverse-mode
        autograd: one forward pass of the whole batch and one (vectorised) backward pass per
        output, never an ``n x n`` object; models that cannot take a batch are evaluated point
        by point.
        """
        if self._mlp is not None:
            return _mlp_values_and_jacobians(self._mlp, xs)
        if self._jac_impl is None:
            self._jac_impl = self._choose_jacobian()
        try:
            y, jac = self._jac_impl(xs)
        except ModelError:
            raise
        except Exception as exc:
            self._raise_eval_error(xs[0], exc)
        self._check_size(y)
        if self.jac_dtype != _DTYPE:
            y = self.values(xs)
        return y, jac

    def forward_rows(self, x: Tensor) -> Tensor:
        """``(B, m)`` outputs of the rows of ``x``, with autograd (in ``jac_dtype``).

        One batched call when the model takes batches (as the Jacobians use), else row by row.
        """
        return self._forward_rows(x, bool(self.batched))

    def linearize(self, xs: Tensor, *, rtol: float = 1e-12) -> Any:
        """A matrix-free :class:`~fiberscope.geometry.matfree.Linearization` at ``xs``.

        Parameters
        ----------
        xs : torch.Tensor
            ``(B, n)`` points.
        rtol : float
            Relative residual of its conjugate-gradient solves.

        Returns
        -------
        Linearization
            ``J v``, ``J^T u`` and Gram solves without forming ``J``.
        """
        from .matfree import Linearization

        return Linearization(self, xs, rtol=rtol)

    def _raise_eval_error(self, xf: Tensor, exc: BaseException) -> None:
        try:  # does the plain forward pass fail too? then the model raised, say where
            with torch.no_grad():
                self._call_flat(xf)
        except ModelError:
            raise
        except Exception as plain:
            where = ", ".join(f"{v:.6g}" for v in xf.reshape(-1)[:6].tolist())
            more = ", ..." if xf.numel() > 6 else ""
            raise ModelError(f"the model raised {_describe(plain)} at ({where}{more})") from None
        raise ModelError(
            f"could not differentiate the model ({_describe(exc)}); fiberscope needs a "
            "model that is differentiable with torch.autograd"
        ) from None

    def _forward_rows(self, x: Tensor, batch: bool) -> Tensor:
        """``(B, m)`` outputs of the rows of ``x`` (one batched call, or row by row)."""
        b = x.shape[0]
        params = self._jparams
        if batch:
            out = self._forward(x.reshape(b, *self.input_shape), params)
            if not isinstance(out, Tensor) or out.ndim == 0 or out.shape[0] != b:
                raise ValueError("the model does not keep the batch dimension")
            if self.output_map is not None:
                out = torch.vmap(self.output_map)(out)
            return out.reshape(b, -1)
        return torch.stack([self._call_flat(r, params).reshape(-1) for r in x])

    def _autograd(self, xs: Tensor, batch: bool, batched_grad: bool) -> tuple[Tensor, Tensor]:
        x = xs.detach().to(self.jac_dtype).requires_grad_(True)
        with torch.enable_grad():
            y = self._forward_rows(x, batch)
            if not y.requires_grad:
                raise ModelError(
                    "the model output does not depend differentiably on its input "
                    "(is the input detached, converted to NumPy, or rounded inside?)"
                )
            m = y.shape[1]
            if m == 1:
                (g,) = torch.autograd.grad(y[:, 0].sum(), x, allow_unused=True)
                jac = (torch.zeros_like(x) if g is None else g).unsqueeze(1)
            elif batched_grad:
                eye = torch.eye(m, dtype=y.dtype, device=y.device)
                go = eye.unsqueeze(1).expand(m, y.shape[0], m)
                (g,) = torch.autograd.grad(y, x, go, is_grads_batched=True, allow_unused=True)
                jac = (torch.zeros((m, *x.shape), dtype=x.dtype) if g is None else g).transpose(
                    0, 1
                )
            else:
                rows = []
                for i in range(m):
                    (g,) = torch.autograd.grad(
                        y[:, i].sum(), x, retain_graph=i + 1 < m, allow_unused=True
                    )
                    rows.append(torch.zeros_like(x) if g is None else g)
                jac = torch.stack(rows, dim=1)
        return y.detach().to(_DTYPE), jac.detach().to(_DTYPE)

    def _choose_jacobian(self) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        """The fastest autograd scheme that agrees with plain autograd on the model.

        Candidates: one batched forward call (when the model takes batches) or row by row;
        one vectorised backward pass for all outputs, or one per output (preferred for a few
        outputs: no vmap machinery). Each is checked at two points against vector-Jacobian
        products of the plain scheme (a model that mixes the rows of a batch fails it).
        """
        probe = torch.stack((self._x0f, self._x0f + 1e-3 * (1.0 + self._x0f.abs())))
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(2, self.m, generator=gen, dtype=_DTYPE).to(self.device)
        x = probe.detach().to(self.jac_dtype).requires_grad_(True)
        with torch.enable_grad():
            y = self._forward_rows(x, False)
            if not y.requires_grad:
                raise ModelError(
                    "the model output does not depend differentiably on its input "
                    "(is the input detached, converted to NumPy, or rounded inside?)"
                )
            (ref,) = torch.autograd.grad((y * w.to(y.dtype)).sum(), x, allow_unused=True)
        ref = torch.zeros_like(x) if ref is None else ref
        ref_y = y.detach().to(_DTYPE)
        ref_g = ref.detach().to(_DTYPE)

        def agree(got: tuple[Tensor, Tensor]) -> bool:
            wj = torch.einsum("bm,bmn->bn", w, got[1])
            return bool(
                torch.allclose(got[0], ref_y, rtol=1e-6, atol=1e-9)
                and torch.allclose(wj, ref_g, rtol=1e-6, atol=1e-9)
            )

        few = self.m <= 8
        grads = [False, True] if few else [True, False]
        candidates = []
        if self.batched:
            candidates += [(True, g) for g in grads]
        candidates += [(False, g) for g in grads]
        for batch, bgrad in candidates:
            if bgrad and self.m == 1:
                continue
            try:
                if agree(self._autograd(probe, batch, bgrad)):
                    return lambda xs, b=batch, g=bgrad: self._autograd(xs, b, g)
            except ModelError:
                raise
            except Exception:  # no batching rule, a model that mixes the batch, ...
                continue
        return lambda xs: self._autograd(xs, False, False)


def as_model_function(
    model: Callable[..., Any] | ModelFunction,
    x0: Tensor,
    *,
    output: OutputMap | None = None,
    batched: bool | None = None,
    dtype: torch.dtype | None = None,
) -> ModelFunction:
    """Wrap ``model`` as a :class:`ModelFunction` at ``x0`` (no-op for one already wrapped).

    Parameters
    ----------
    model : callable, torch.nn.Module or ModelFunction
        The network.
    x0 : torch.Tensor
        A representative input in the user's shape.
    output : callable, optional
        Output map applied to the model's output.
    batched : bool, optional
        Batch convention; ``None`` detects it.
    dtype : torch.dtype, optional
        Precision of the Jacobians (float64 by default).

    Returns
    -------
    ModelFunction
        The wrapped model.
    """
    if isinstance(model, ModelFunction):
        return model
    return ModelFunction(model, x0, output=output, batched=batched, dtype=dtype)


def _as_point(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach()
    try:
        return torch.as_tensor(x, dtype=_DTYPE)
    except Exception as exc:
        raise InputError(f"cannot read the point as a tensor ({_describe(exc)})") from None


def value_and_jacobian(
    model: Callable[..., Any], x: Tensor | Sequence[float], *, output: OutputMap | None = None
) -> tuple[Tensor, Tensor]:
    """Output and Jacobian of ``model`` at one input, in float64.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network (called with a batch of one when it needs a batch dimension).
    x : torch.Tensor or sequence of float
        One input, in the model's input shape (without batch dimension).
    output : callable, optional
        Output map applied to the model's output.

    Returns
    -------
    y : torch.Tensor
        Flattened output, shape ``(m,)``.
    J : torch.Tensor
        Jacobian, shape ``(m, *x.shape)``, float64.
    """
    xt = _as_point(x)
    fn = as_model_function(model, xt, output=output)
    y, jac = fn.value_and_jacobian(xt.to(_DTYPE).reshape(-1))
    return y, jac.reshape(fn.m, *fn.input_shape)


def jacobian(
    model: Callable[..., Any], x: Tensor | Sequence[float], *, output: OutputMap | None = None
) -> Tensor:
    """Jacobian of ``model`` at ``x`` in float64, shape ``(m, *x.shape)``.

    Reverse mode is used when the output is smaller than the input, forward mode otherwise;
    plain MLPs use an exact closed form.

    Parameters
    ----------
    model : callable or torch.nn.Module
        The network.
    x : torch.Tensor or sequence of float
        One input in the model's input shape.
    output : callable, optional
        Output map applied to the model's output.

    Returns
    -------
    torch.Tensor
        The Jacobian.

    Examples
    --------
    >>> import torch, fiberscope as fs
    >>> fs.jacobian(lambda x: (x**2).sum(-1), torch.tensor([1.0, 2.0]))
    tensor([[2., 4.]], dtype=torch.float64)
    """
    return value_and_jacobian(model, x, output=output)[1]
