"""Paper II data sets, training of the paper's architectures, and writing them as paper CSV
(``fs.save_model``, used by ``python -m paper.training --save-dir``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import fiberscope as fs
from paper import datasets as D
from paper.training import (
    PAPER_RECIPES,
    build_paper_mlp,
    evaluate,
    train_paper_network,
)

PAPER_DIR = Path(fs.__file__).resolve().parent / "models" / "bundled"
ACTS = {
    "FC_LAYER_SG": torch.sigmoid,
    "FC_LAYER_SP": torch.nn.functional.softplus,
    "FC_LAYER_SL": torch.nn.functional.silu,
    "FC_LAYER_SM": lambda z: torch.softmax(z, dim=-1),
}


def _parse(path: Path) -> list[tuple[torch.Tensor, torch.Tensor, str, tuple[int, ...]]]:
    """Tiny independent reader of the paper's weights CSV: [(W, b, TYPE, header)]."""
    lines = path.read_text().splitlines()
    layers = []
    for k in range(int(lines[0])):
        head = lines[1 + 3 * k].split("\t")
        rows, cols = int(head[0]), int(head[1])
        w = torch.tensor([float(t) for t in lines[2 + 3 * k].split("\t")], dtype=torch.float64)
        b = torch.tensor([float(t) for t in lines[3 + 3 * k].split("\t")], dtype=torch.float64)
        hdr = tuple(int(h) for h in head[:4])
        layers.append((w.reshape(rows, cols), b, head[4], hdr))
    return layers


def _forward(layers: list, x: torch.Tensor) -> torch.Tensor:
    h = x
    for w, b, kind, _ in layers:
        h = ACTS[kind](h @ w.T + b)
    return h


# ------------------------------------------------------------------------------- data sets


@pytest.mark.parametrize(
    ("name", "n", "box"),
    [
        ("surface_1", 2000, ((-1, 1), (-1, 1))),
        ("surface_2", 2000, ((-1, 1), (-1, 1))),
        ("thermodynamics", 5000, ((0, 1), (0, 1))),
        ("classification", 2000, ((-3.14, 3.14), (-2, 2))),
    ],
)
def test_dataset_shapes_ranges_and_split(name: str, n: int, box: tuple) -> None:
    d = D.make_dataset(name)
    assert d.name == name and d.n == n and d.seed == 0
    assert d.X.shape == (n, 2) and d.y.shape == (n, 1)
    assert d.X.dtype == torch.float64 and d.y.dtype == torch.float64
    for j in range(2):
        lo, hi = box[j]
        assert float(d.X[:, j].min()) >= lo and float(d.X[:, j].max()) <= hi
        # Uniform sampling fills the box.
        assert float(d.X[:, j].min()) < lo + 0.01 * (hi - lo)
        assert float(d.X[:, j].max()) > hi - 0.01 * (hi - lo)
    Xt, yt, Xv, yv = d.split()
    assert Xt.shape[0] == yt.shape[0] == n // 2 and Xv.shape[0] == yv.shape[0] == n - n // 2
    assert torch.equal(torch.cat([Xt, Xv]), d.X)
    torch.testing.assert_close(d.truth(d.X), d.y, rtol=0, atol=1e-13)
    assert "paper_training" in d.metadata


def test_surface_targets_match_formula() -> None:
    rng = np.random.default_rng(7)
    pts = rng.uniform(-1, 1, (50, 2))
    x, y = pts[:, 0], pts[:, 1]
    s1, s2 = D.surface_1(n=10), D.surface_2(n=10)
    np.testing.assert_allclose(s1.truth(pts)[:, 0].numpy(), np.exp(x**2 + y**2 - 2), rtol=1e-15)
    np.testing.assert_allclose(s2.truth(pts)[:, 0].numpy(), np.exp(x**2 + y - 2), rtol=1e-15)
    assert s1.truth([0.25, 0.25]).shape == (1,)
    assert float(s1.truth([0.0, 0.0])) == pytest.approx(math.exp(-2))
    d = D.surface_1()
    assert float(d.y.min()) >= math.exp(-2) and float(d.y.max()) <= 1.0


def test_datasets_are_seed_deterministic() -> None:
    for name in D.DATASETS:
        a, b, c = (D.make_dataset(name, n=100, seed=s) for s in (3, 3, 4))
        assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
        assert not torch.equal(a.X, c.X)
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking the legacy global RNG
    D.surface_1(seed=11)
    assert torch.equal(state, torch.random.get_rng_state())  # no global state touched
    assert np.array_equal(np_state, np.random.get_state()[1])  # noqa: NPY002


def test_thermodynamics_normalisation_and_isotherms() -> None:
    d = D.thermodynamics()
    # Empirical min-max normalisation, as the authors' script: each column spans [0, 1].
    assert torch.equal(d.X.min(0).values, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(d.X.max(0).values, torch.ones(2, dtype=torch.float64))
    assert float(d.y.min()) == 0.0 and float(d.y.max()) == 1.0
    assert 0.025 <= d.V_range[0] < 0.0251 and 0.0749 < d.V_range[1] <= 0.075
    assert 1e5 <= d.P_range[0] < 1.001e5 and 1.999e5 < d.P_range[1] <= 2e5
    # Round trips and the analytic temperature.
    V, P = d.denormalise_inputs(d.X[:, 0], d.X[:, 1])
    v, p = d.normalise_inputs(V, P)
    torch.testing.assert_close(torch.stack([v, p], 1), d.X, rtol=0, atol=1e-14)
    torch.testing.assert_close(d.normalise_T(P * V / 8.314), d.y[:, 0], rtol=0, atol=1e-14)
    torch.testing.assert_close(d.denormalise_T(d.y[:, 0]), d.temperature(d.X), rtol=1e-14, atol=0)
    # The paper's start point with the nominal bounds: V = 0.030, P = 1.75e5, T ~ 631.5 K.
    nom = D.thermodynamics(n=100, normalisation="nominal")
    V0, P0 = nom.denormalise_inputs(0.10, 0.75)
    assert float(V0) == pytest.approx(0.030) and float(P0) == pytest.approx(1.75e5)
    assert float(nom.temperature([0.10, 0.75])) == pytest.approx(0.030 * 1.75e5 / 8.314)
    # The isotherm through a point passes through it and keeps the temperature constant.
    iso = d.isotherm([0.10, 0.75])
    assert float(iso(0.10)) == pytest.approx(0.75, abs=1e-12)
    vs = torch.linspace(0.0, 0.5, 11, dtype=torch.float64)
    on = torch.stack([vs, iso(vs)], 1)
    t = d.truth(on)[:, 0]
    torch.testing.assert_close(t, t[:1].expand_as(t), rtol=0, atol=1e-12)
    T528 = d.isotherm_at(528.5)
    torch.testing.assert_close(
        d.temperature(torch.stack([vs, T528(vs)], 1)),
        torch.full_like(vs, 528.5),
        rtol=1e-12,
        atol=0,
    )
    with pytest.raises(ValueError):
        D.thermodynamics(normalisation="bogus")  # type: ignore[arg-type]


def test_classification_labels() -> None:
    d = D.classification()
    assert set(d.y.unique().tolist()) == {0.0, 1.0}
    above = d.X[:, 1] > 0.5 * torch.sin(d.X[:, 0])
    assert torch.equal(d.y[:, 0] == 1.0, above)
    assert 0.4 < float(d.y.mean()) < 0.6
    assert float(d.truth([0.0, 0.01])) == 1.0 and float(d.truth([0.0, -0.01])) == 0.0
    assert float(d.truth([math.pi / 2, 0.49])) == 0.0
    assert float(d.truth([math.pi / 2, 0.51])) == 1.0
    torch.testing.assert_close(
        d.boundary(torch.tensor([math.pi / 2])), torch.tensor([0.5]).double()
    )


def test_make_dataset_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown experiment"):
        D.make_dataset("surface_3")
    with pytest.raises(ValueError):
        D.surface_1(n=1)


@pytest.mark.skipif(not PAPER_DIR.is_dir(), reason="bundled paper networks not present")
@pytest.mark.parametrize(
    ("name", "fname", "max_mse"),
    [
        ("surface_1", "surface_1.csv", 1e-4),
        ("surface_2", "surface_2.csv", 1e-4),
        ("thermodynamics", "thermodynamics.csv", 1e-5),
        ("classification", "binary.csv", 1e-2),
    ],
)
def test_paper_networks_fit_our_data(name: str, fname: str, max_mse: float) -> None:
    """Our regenerated data follows the recipes the paper's networks were trained on."""
    d = D.make_dataset(name)
    _, _, Xv, yv = d.split()
    out = _forward(_parse(PAPER_DIR / fname), Xv)
    assert float(((out - yv) ** 2).mean()) < max_mse
    if name == "classification":
        assert float(((out > 0.5).double() == yv).double().mean()) > 0.98


# -------------------------------------------------------------------------------- training


def test_build_paper_mlp_structure() -> None:
    m = build_paper_mlp((2, 5, 10, 10, 5, 1))
    kinds = [type(c) for c in m]
    assert kinds == [nn.Linear, nn.Sigmoid] * 5
    assert all(p.dtype == torch.float64 for p in m.parameters())
    assert [c.out_features for c in m[::2]] == [5, 10, 10, 5, 1]
    assert all(float(c.bias.detach().abs().max()) == 0 for c in m[::2])
    lim = math.sqrt(6 / (2 + 5))
    assert float(m[0].weight.detach().abs().max()) <= lim
    assert torch.equal(build_paper_mlp((2, 5, 1))[0].weight, build_paper_mlp((2, 5, 1))[0].weight)
    assert isinstance(build_paper_mlp((2, 3, 1), "softplus")[-1], nn.Softplus)
    with pytest.raises(ValueError):
        build_paper_mlp((2,))
    with pytest.raises(ValueError):
        build_paper_mlp((2, 5, 1), "relu")


def test_recipes_use_the_paper_architectures() -> None:
    assert PAPER_RECIPES["surface_1"].widths == (2, 5, 5, 1)
    assert PAPER_RECIPES["surface_2"].widths == (2, 5, 5, 1)
    assert PAPER_RECIPES["thermodynamics"].widths == (2, 5, 10, 10, 5, 1)
    assert PAPER_RECIPES["classification"].widths == (2, 5, 5, 5, 1)


@pytest.mark.slow
def test_training_reduces_loss_and_is_bitwise_deterministic() -> None:
    threads = torch.get_num_threads()
    a = train_paper_network("surface_1", epochs=1000, n=400, seed=5)
    assert torch.get_num_threads() == threads  # restored
    b = train_paper_network("surface_1", epochs=1000, n=400, seed=5)
    c = train_paper_network("surface_1", epochs=50, n=400, seed=6)
    assert len(a.history) == a.epochs == 1000
    assert a.history[-1] < 0.1 * a.history[0]
    assert a.train_loss < a.history[0] and a.val_loss < 0.1 * a.history[0]
    assert a.val_accuracy is None and a.seed == 5 and a.seconds > 0
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.val_loss == b.val_loss and a.history == b.history
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert not a.model.training
    assert all(p.dtype == torch.float64 for p in a.model.parameters())
    # The reported errors are those of the returned model on the second half of the data.
    assert a.data is not None
    _, _, Xv, yv = a.data.split()
    assert evaluate(a.model, Xv, yv)["mse"] == pytest.approx(a.val_loss, rel=1e-12)


def test_minibatch_training_and_classifier_accuracy() -> None:
    r = train_paper_network("classification", epochs=30, n=300, batch_size=64, lr=1e-2, seed=1)
    assert r.val_accuracy is not None and 0.0 <= r.val_accuracy <= 1.0
    assert r.history[-1] < r.history[0]
    r2 = train_paper_network("classification", epochs=30, n=300, batch_size=64, lr=1e-2, seed=1)
    assert all(
        torch.equal(p, q) for p, q in zip(r.model.parameters(), r2.model.parameters(), strict=True)
    )


@pytest.mark.parametrize("name", ["surface_2", "thermodynamics"])
def test_other_experiments_train(name: str) -> None:
    r = train_paper_network(name, epochs=40, n=200)
    assert r.history[-1] < r.history[0]
    assert math.isfinite(r.val_loss) and math.isfinite(r.val_mae)


def test_train_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown experiment"):
        train_paper_network("mnist")


# ------------------------------------------------------------------------------ paper CSV


@pytest.mark.parametrize("activation", ["sigmoid", "softplus", "silu"])
def test_save_paper_csv_round_trip(tmp_path: Path, activation: str) -> None:
    m = build_paper_mlp((2, 5, 10, 1), activation, seed=3)
    with torch.no_grad():
        for p in m.parameters():
            gen = torch.Generator().manual_seed(p.numel())
            p.add_(0.1 * torch.randn(p.shape, dtype=torch.float64, generator=gen))
    path = tmp_path / "net.csv"
    fs.save_model(m, path)
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "3" and len(lines) == 10 and text.endswith("\n")
    kind = {"sigmoid": "FC_LAYER_SG", "softplus": "FC_LAYER_SP", "silu": "FC_LAYER_SL"}[activation]
    assert lines[1] == f"5\t2\t5\t2\t{kind}" and lines[7] == f"1\t10\t1\t10\t{kind}"
    layers = _parse(path)
    assert [h for *_, h in layers] == [(5, 2, 5, 2), (10, 5, 10, 5), (1, 10, 1, 10)]
    for (w, b, _, _), lin in zip(layers, m[::2], strict=True):
        assert torch.equal(w, lin.weight.detach()) and torch.equal(b, lin.bias.detach())
    x = torch.rand(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(_forward(layers, x), m(x), rtol=1e-15, atol=0)


def test_save_paper_csv_of_trained_net(tmp_path: Path) -> None:
    r = train_paper_network("classification", epochs=20, n=200)
    fs.save_model(r.model, tmp_path / "clf.csv")
    layers = _parse(tmp_path / "clf.csv")
    assert [k for _, _, k, _ in layers] == ["FC_LAYER_SG"] * 4
    assert r.data is not None
    with torch.no_grad():
        torch.testing.assert_close(
            _forward(layers, r.data.X), r.model(r.data.X), rtol=1e-15, atol=0
        )


def test_save_paper_csv_softmax_header(tmp_path: Path) -> None:
    m = nn.Sequential(nn.Linear(2, 3, dtype=torch.float64), nn.Softmax(dim=-1))
    fs.save_model(m, tmp_path / "sm.csv")
    assert (tmp_path / "sm.csv").read_text().splitlines()[1] == "3\t2\t3\t2\tFC_LAYER_SM"


@pytest.mark.parametrize(
    "bad",
    [
        nn.Sequential(nn.Linear(2, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.ReLU()),
        nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=2.0)),
        nn.Sequential(nn.Sigmoid(), nn.Linear(2, 3)),
    ],
)
def test_save_paper_csv_rejects_unsupported(tmp_path: Path, bad: nn.Sequential) -> None:
    with pytest.raises((ValueError, fs.FiberscopeError)):
        fs.save_model(bad, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
