"""The paper's weights-CSV format (Benfenati & Marta's simec-1d-test-code).

Tab-separated text. Line 1: number of layers L. Then three lines per layer: a header
``rows cols rows cols TYPE`` (rows = outputs, cols = inputs), the ``rows x cols`` weight
matrix in row-major order, and the ``rows`` biases. Layer i computes ``act(W x + b)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError, ModelLoadError

ACTIVATIONS: dict[str, str] = {
    "FC_LAYER_SG": "sigmoid",
    "FC_LAYER_SP": "softplus",
    "FC_LAYER_SL": "silu",
    "FC_LAYER_SM": "softmax",
}
_TYPE_OF = {v: k for k, v in ACTIVATIONS.items()}


def _activation(name: str) -> nn.Module:
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softplus":
        # log(1 + e^z) exactly in float64: the linear branch only starts where e^-z < 1e-17.
        return nn.Softplus(beta=1.0, threshold=40.0)
    if name == "silu":
        return nn.SiLU()
    return nn.Softmax(dim=-1)


def _numbers(line: str, lineno: int, path: Path, what: str) -> list[float]:
    try:
        values = [float(tok) for tok in line.split()]
    except ValueError:
        bad = next(t for t in line.split() if not _is_float(t))
        raise ModelLoadError(
            f"{path.name} line {lineno}: {what} contains {bad[:30]!r}, which is not a number"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise ModelLoadError(f"{path.name} line {lineno}: {what} contains NaN or inf")
    return values


def _is_float(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def parse_paper_csv(text: str, path: Path | str = "<weights>") -> nn.Sequential:
    """Parse the text of a paper weights file into a float64 ``nn.Sequential``.

    Parameters
    ----------
    text : str
        File contents.
    path : pathlib.Path or str
        Used in error messages only.

    Returns
    -------
    torch.nn.Sequential
        ``Linear, activation, Linear, activation, ...`` in float64, eval mode.

    Raises
    ------
    ModelLoadError
        On any malformed line; the message names the file and the line.
    """
    path = Path(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ModelLoadError(f"{path.name} is empty; expected the paper's weights-CSV format")
    head = lines[0].split()
    if len(head) != 1 or not head[0].isdigit() or int(head[0]) < 1:
        raise ModelLoadError(
            f"{path.name} line 1: expected the number of layers (a positive integer), "
            f"found {lines[0][:40]!r}; is this a paper weights-CSV file?"
        )
    n_layers = int(head[0])
    need = 1 + 3 * n_layers
    if len(lines) < need:
        raise ModelLoadError(
            f"{path.name} is truncated: {n_layers} layers need {need} lines, found {len(lines)}"
        )
    modules: list[nn.Module] = []
    prev_out: int | None = None
    for k in range(n_layers):
        hl = 2 + 3 * k  # 1-based line number of the header
        parts = lines[hl - 1].split()
        if len(parts) != 5 or not all(p.isdigit() for p in parts[:4]):
            raise ModelLoadError(
                f"{path.name} line {hl}: expected a layer header 'rows cols rows cols TYPE', "
                f"found {lines[hl - 1][:60]!r}"
            )
        rows, cols, rows2, cols2 = (int(p) for p in parts[:4])
        kind = parts[4]
        if kind not in ACTIVATIONS:
            raise ModelLoadError(
                f"{path.name} line {hl}: unknown layer type {kind!r}; "
                f"expected one of {', '.join(ACTIVATIONS)}"
            )
        if rows < 1 or cols < 1 or (rows2, cols2) != (rows, cols):
            raise ModelLoadError(
                f"{path.name} line {hl}: inconsistent layer header {' '.join(parts[:4])}; "
                "expected 'rows cols rows cols TYPE' with positive sizes"
            )
        if prev_out is not None and cols != prev_out:
            raise ModelLoadError(
                f"{path.name} line {hl}: layer {k + 1} takes {cols} inputs but the previous "
                f"layer has {prev_out} outputs"
            )
        w = _numbers(lines[hl], hl + 1, path, "the weight line")
        if len(w) != rows * cols:
            raise ModelLoadError(
                f"{path.name} line {hl + 1}: expected {rows * cols} weights ({rows}x{cols}), "
                f"found {len(w)}"
            )
        b = _numbers(lines[hl + 1], hl + 2, path, "the bias line")
        if len(b) != rows:
            raise ModelLoadError(
                f"{path.name} line {hl + 2}: expected {rows} biases, found {len(b)}"
            )
        lin = nn.Linear(cols, rows, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w, dtype=torch.float64).reshape(rows, cols))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
        modules += [lin, _activation(ACTIVATIONS[kind])]
        prev_out = rows
    if len(lines) > need and any(s.strip() for s in lines[need:]):
        raise ModelLoadError(
            f"{path.name} line {need + 1}: unexpected content after the last layer"
        )
    return nn.Sequential(*modules).eval()


def load_paper_csv(path: Path | str) -> nn.Sequential:
    """Load a paper weights-CSV file.

    Parameters
    ----------
    path : pathlib.Path or str
        The file.

    Returns
    -------
    torch.nn.Sequential
        The network, float64, eval mode.
    """
    from .safety import read_regular_file

    path = Path(path)
    raw = read_regular_file(path, "model file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelLoadError(
            f"{path.name} is not a text file; expected the paper's tab-separated weights format"
        ) from None
    return parse_paper_csv(text, path)


def save_paper_csv(model: nn.Sequential, path: Path | str) -> None:
    """Write a network in the paper's weights-CSV format.

    Floats are written with ``repr`` so they read back exactly.

    Parameters
    ----------
    model : torch.nn.Sequential
        Alternating ``nn.Linear`` and activation modules (``nn.Sigmoid``, ``nn.Softplus`` with
        ``beta=1``, ``nn.SiLU``, ``nn.Softmax``), every layer activated.
    path : pathlib.Path or str
        Destination file (overwritten).

    Raises
    ------
    InputError
        If the model is not a sequence of Linear/activation pairs the format can express.
    """
    kinds = {nn.Sigmoid: "sigmoid", nn.Softplus: "softplus", nn.SiLU: "silu", nn.Softmax: "softmax"}
    children = list(model)
    if not children or len(children) % 2:
        raise InputError("the paper format needs Linear/activation pairs (every layer activated)")
    out = [str(len(children) // 2)]
    for lin, act in zip(children[::2], children[1::2], strict=True):
        if type(lin) is not nn.Linear or type(act) not in kinds:
            raise InputError(
                "the paper format needs Linear/activation pairs with sigmoid, softplus, SiLU or "
                f"softmax activations; found {type(lin).__name__}, {type(act).__name__}"
            )
        if isinstance(act, nn.Softplus) and act.beta != 1:
            raise InputError("the paper format's softplus is log(1 + e^z); beta must be 1")
        rows, cols = lin.weight.shape
        out.append(f"{rows}\t{cols}\t{rows}\t{cols}\t{_TYPE_OF[kinds[type(act)]]}")
        out.append("\t".join(repr(float(v)) for v in lin.weight.detach().reshape(-1)))
        bias = lin.bias.detach() if lin.bias is not None else torch.zeros(rows)
        out.append("\t".join(repr(float(v)) for v in bias))
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
