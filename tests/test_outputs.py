"""Output selections (``--output`` / ``output=``): parsing, shape checks, tracing with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import fiberscope as fs
from fiberscope.cli.main import main
from fiberscope.errors import ModelError, OutputSelectionError
from fiberscope.outputs import output_map

Y = torch.arange(10.0, dtype=torch.float64)
P = torch.softmax(Y, 0)

VALUES = [
    ("logits[3]", Y[3:4]),
    ("[3]", Y[3:4]),
    ("y[-1]", Y[9:10]),
    ("out[0:3]", Y[0:3]),
    ("[7:]", Y[7:]),
    ("[:2]", Y[:2]),
    ("[3,5]", Y[[3, 5]]),
    ("logits", Y),
    ("all", Y),
    ("softmax[2]", P[2:3]),
    ("probs[0:9]", P[0:9]),
    ("log-softmax[1]", torch.log_softmax(Y, 0)[1:2]),
    ("sigmoid[4]", torch.sigmoid(Y)[4:5]),
    ("logit-diff 3 5", (Y[3] - Y[5]).reshape(1)),
    ("logit-diff(3, 5)", (Y[3] - Y[5]).reshape(1)),
    ("Logit-Diff 3,5", (Y[3] - Y[5]).reshape(1)),
    ("prob-diff 1 0", (P[1] - P[0]).reshape(1)),
    ("sum", Y.sum().reshape(1)),
    ("mean[0:4]", Y[:4].mean().reshape(1)),
    ("  SOFTMAX [ 2 ] ", P[2:3]),
]


@pytest.mark.parametrize("spec, want", VALUES, ids=[v[0] for v in VALUES])
def test_selection_values(spec: str, want: torch.Tensor) -> None:
    sel = output_map(spec)
    got = sel(Y)
    assert got.ndim == 1
    assert torch.allclose(got, want, rtol=0, atol=1e-15)
    assert sel.__name__ == spec.strip()
    assert sel.validate((10,)) == got.numel()


ERRORS = [
    ("", "the output selection is empty"),
    ("softmax", r"all 10 softmax outputs of a row are selected; .* softmax\[0:9\]"),
    ("log-softmax[0:10]", r"all 10 log-softmax outputs"),
    ("[10]", r"index 10 is out of range for the model's 10 outputs"),
    ("[-11]", r"index -11 is out of range"),
    ("logit-diff 3 3", r"both indices name output 3"),
    ("logit-diff 3 12", r"index 12 is out of range"),
    ("logit-diff 3", r"takes two class indices"),
    ("foo[2]", r"unknown output 'foo'"),
    ("[a]", r"'a' is not an integer index"),
    ("[]", r"empty brackets"),
    ("[1:2:3]", r"slices are start:stop"),
    ("[5:2]", r"the slice selects nothing"),
    ("[3,3]", r"an index is repeated"),
    ("[1,]", r"empty entry"),
    ("banana", r"is not a selection"),
]


@pytest.mark.parametrize("spec, message", ERRORS, ids=[e[0] or "empty" for e in ERRORS])
def test_selection_errors(spec: str, message: str) -> None:
    with pytest.raises(OutputSelectionError, match=message) as info:
        output_map(spec)(Y)
    assert "\n" not in str(info.value)
    # one class for both audiences: bad input, and a model/output that does not fit
    assert isinstance(info.value, ValueError) and isinstance(info.value, ModelError)


def test_softmax_on_scalar_and_multi_dim_outputs() -> None:
    with pytest.raises(OutputSelectionError, match=r"softmax needs a vector .* shape \(\)"):
        output_map("softmax[0]").validate(())
    # softmax runs over the last axis; selecting a whole row is refused, parts are fine
    sel = output_map("softmax[0:2]")
    assert sel.validate((2, 3)) == 2
    with pytest.raises(OutputSelectionError, match="all 3 softmax outputs of a row"):
        output_map("softmax[0:3]").validate((2, 3))
    y = torch.arange(6.0).reshape(2, 3)
    assert torch.allclose(output_map("softmax[3:5]")(y), torch.softmax(y, -1).reshape(-1)[3:5])


def test_check_method_for_flat_sizes() -> None:
    """``check(size)`` is what the classifier walks call on selections."""
    output_map("logits[2]").check(3)
    with pytest.raises(OutputSelectionError):
        output_map("logits[3]").check(3)


def test_shape_is_rechecked_when_the_output_changes() -> None:
    sel = output_map("[4]")
    sel(Y)
    with pytest.raises(OutputSelectionError, match="out of range for the model's 3 outputs"):
        sel(torch.zeros(3))


def _classifier() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 4)).double().eval()


@pytest.mark.parametrize("spec", ["logit-diff 0 1", "softmax[2]", "logits[3]", "sum"])
def test_trace_stays_on_the_selected_level(spec: str) -> None:
    net = _classifier()
    res = fs.trace(net, [0.2, -0.1], step=0.05, bounds=(-2, 2), output=spec)
    sel = output_map(spec)
    with torch.no_grad():
        values = torch.stack([sel(net(p)) for p in res.points])
    assert float((values - values[0]).abs().max()) <= 1e-9
    assert res.options["output"] == spec
    # the raw logits do change along the class: the selection matters
    with torch.no_grad():
        raw = net(res.points)
    assert float((raw - raw[0]).abs().max()) > 1e-3


def test_selection_jacobian_matches_finite_differences() -> None:
    net = _classifier()
    x = torch.tensor([0.2, -0.1], dtype=torch.float64)
    for spec in ["softmax[2]", "log-softmax[1]", "prob-diff 0 3", "mean[1:3]"]:
        sel = output_map(spec)
        jac = fs.geometry.jacobian(net, x, output=sel)[0]
        eps = 1e-6
        fd = torch.stack(
            [
                (sel(net(x + eps * e)) - sel(net(x - eps * e)))[0] / (2 * eps)
                for e in torch.eye(2, dtype=torch.float64)
            ]
        ).detach()
        assert torch.allclose(jac, fd, atol=1e-8), spec


def test_wrong_number_of_selected_outputs_is_explained() -> None:
    with pytest.raises(ModelError, match=r"m = n - 1 outputs, but the model maps R\^2 -> R\^2"):
        fs.trace(_classifier(), [0.2, -0.1], output="[0:2]")


def test_cli_output_option(tmp_path: Path) -> None:
    (tmp_path / "clf.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def build():\n    torch.manual_seed(3)\n"
        "    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 4)).double()\n"
    )
    out = tmp_path / "t.csv"
    args = ["trace", f"{tmp_path / 'clf.py'}:build", "--at", "0.2,-0.1", "--bounds=-2,2"]
    assert main([*args, "--output", "logit-diff 0 1", "-o", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["parameters"]["output"] == "logit-diff 0 1"
    assert meta["output"] == "logit-diff 0 1"
    assert meta["y0"] and len(meta["y0"]) == 1
    assert main([*args, "--output", "logits[4]", "-o", str(tmp_path / "u.csv")]) == 2
    assert not (tmp_path / "u.csv").exists()
