"""The paper's weights-CSV format, bundled networks and Python specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fiberscope as fs
from fiberscope.errors import ModelLoadError
from fiberscope.models import parse_paper_csv, save_paper_csv

SHARED = Path(__file__).resolve().parents[3] / "shared" / "paper-networks"
#: bundled name -> the authors' file name (the shared copy, when there is one, is verbatim)
NAMES = {
    "surface_1": "surface_1_good_weights.csv",
    "surface_2": "surface_2_good_weights.csv",
    "thermodynamics": "thermodynamics_weights_addestrata_bene.csv",
    "binary": "weights_binary.csv",
    "thermo_softplus": "weights_softplus_thermo.csv",
}


def _numpy_forward(path: Path, x: list[float]) -> list[float]:
    """Independent forward pass straight from the text file."""
    import numpy as np

    lines = path.read_text().splitlines()
    h = np.array(x, dtype=float)
    for k in range(int(lines[0])):
        rows, cols, _, _, kind = lines[1 + 3 * k].split()
        w = np.array(lines[2 + 3 * k].split(), dtype=float).reshape(int(rows), int(cols))
        b = np.array(lines[3 + 3 * k].split(), dtype=float)
        z = w @ h + b
        h = {
            "FC_LAYER_SG": lambda z: 1 / (1 + np.exp(-z)),
            "FC_LAYER_SP": lambda z: np.log1p(np.exp(z)),
            "FC_LAYER_SL": lambda z: z / (1 + np.exp(-z)),
            "FC_LAYER_SM": lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(),
        }[kind](z)
    return h.tolist()


@pytest.mark.parametrize("name", sorted(NAMES))
def test_bundled_networks_match_an_independent_forward_pass(name: str) -> None:
    net = fs.load_model(name)
    bundled = fs.bundled_networks()[name]
    assert bundled.name == f"{name}.csv"
    if (SHARED / NAMES[name]).exists():  # the bundled copy is the shared file, verbatim
        assert bundled.read_text() == (SHARED / NAMES[name]).read_text()
    for x in ([0.1, 0.2], [-0.7, 0.4], [0.9, -0.95]):
        ref = _numpy_forward(bundled, x)
        got = net(torch.tensor(x, dtype=torch.float64)).tolist()
        assert got == pytest.approx(ref, rel=1e-14, abs=1e-15)


def test_aliases_and_explicit_paths(tmp_path: Path) -> None:
    a = fs.load_model("surface_1")
    path = tmp_path / "copy.csv"
    path.write_text(fs.bundled_networks()["surface_1"].read_text())
    b = fs.load_model(str(path))
    x = torch.tensor([0.3, 0.1], dtype=torch.float64)
    assert torch.equal(a(x), b(x))


def test_save_round_trip(tmp_path: Path) -> None:
    net = fs.load_model("thermo_softplus")
    save_paper_csv(net, tmp_path / "w.csv")
    again = fs.load_model(str(tmp_path / "w.csv"))
    x = torch.rand(10, 2, dtype=torch.float64)
    assert torch.equal(net(x), again(x))


GOOD = "2\n2\t2\t2\t2\tFC_LAYER_SG\n1 2 3 4\n0.5 0.5\n1\t2\t1\t2\tFC_LAYER_SP\n1 1\n0\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("two\n", "line 1: expected the number of layers"),
        ("2\n2\t2\t2\t2\tFC_LAYER_SG\n1 2 3 4\n0.5 0.5\n", "truncated"),
        (GOOD.replace("1 2 3 4", "1 2 3"), "line 3: expected 4 weights"),
        (GOOD.replace("1 2 3 4", "1 2 x 4"), "line 3: .*'x', which is not a number"),
        (GOOD.replace("0.5 0.5", "0.5 nan"), "line 4: .*NaN or inf"),
        (GOOD.replace("FC_LAYER_SP", "FC_LAYER_XX"), "line 5: unknown layer type 'FC_LAYER_XX'"),
        (GOOD.replace("1\t2\t1\t2", "1\t3\t1\t3"), "line 5: layer 2 takes 3 inputs"),
        (GOOD.replace("2\t2\t2\t2", "2\t2\t3\t2"), "line 2: inconsistent layer header"),
        (GOOD + "garbage\n", "line 8: unexpected content"),
    ],
)
def test_malformed_files_name_the_line(text: str, message: str) -> None:
    parse_paper_csv(GOOD, "ok.csv")
    with pytest.raises(ModelLoadError, match=message):
        parse_paper_csv(text, "w.csv")


def test_binary_file_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(ModelLoadError, match="not a text file"):
        fs.load_model(str(p))
    with pytest.raises(ModelLoadError, match="no such model file"):
        fs.load_model(str(tmp_path / "missing.csv"))
    with pytest.raises(ModelLoadError, match="unknown suffix"):
        (tmp_path / "m.xyz").write_text("x")
        fs.load_model(str(tmp_path / "m.xyz"))


def test_python_specs(tmp_path: Path) -> None:
    src = tmp_path / "mymodels.py"
    src.write_text(
        "import torch\n"
        "from torch import nn\n"
        "net = nn.Sequential(nn.Linear(2, 1)).double()\n"
        "def make():\n    return nn.Sequential(nn.Linear(3, 2), nn.Tanh()).double()\n"
        "def model(x):\n    return (x ** 2).sum(-1, keepdim=True)\n"
        "class Net(nn.Module):\n    def forward(self, x):\n        return x[..., :1] * 2\n"
        "def broken():\n    raise ValueError('no weights here')\n"
    )
    assert isinstance(fs.load_model(f"{src}:net"), torch.nn.Sequential)
    assert fs.load_model(f"{src}:make")[0].in_features == 3
    assert fs.load_model(f"{src}:model")(torch.ones(1, 2)).item() == 2.0
    assert fs.load_model(f"{src}:Net")(torch.ones(1, 2)).item() == 2.0
    with pytest.raises(ModelLoadError, match="has no attribute 'nope'"):
        fs.load_model(f"{src}:nope")
    with pytest.raises(ModelLoadError, match="raised ValueError: no weights here"):
        fs.load_model(f"{src}:broken")
    with pytest.raises(ModelLoadError, match="no such Python file"):
        fs.load_model(f"{tmp_path}/absent.py:net")
    with pytest.raises(ModelLoadError, match="cannot import module"):
        fs.load_model("no_such_package_xyz:net")
    assert fs.load_model("torch.nn:Identity")(torch.ones(2)).tolist() == [1.0, 1.0]
