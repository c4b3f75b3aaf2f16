"""The app's catalog: models named at start-up, their shapes, boxes and kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import fiberscope as fs
from app_server import tiny_cnn
from fiberscope.app import images
from fiberscope.app.catalog import (
    build_catalog,
    image_layout,
    infer_input_shape,
    make_entry,
    parse_shape,
)
from fiberscope.errors import InputError, ModelError


def test_default_catalog_is_the_bundled_networks_and_the_mnist_cnn() -> None:
    catalog = build_catalog([])
    assert list(catalog) == ["surface_1", "surface_2", "thermodynamics", "binary", "mnist_cnn"]
    assert all(e.kind == "2d" for name, e in catalog.items() if name != "mnist_cnn")
    cnn = catalog["mnist_cnn"]
    assert cnn.kind == "image" and cnn.input_shape == (1, 28, 28) and cnn.n_outputs == 10
    assert cnn.bounds == (0.0, 1.0) and cnn.describe()["digits"] == images.digit_labels()
    # the bundled CNN tells the bundled digits apart
    logits = torch.stack([cnn.evaluate(images.digit(k)) for k in range(4)])
    assert logits.argmax(-1).tolist() == images.digit_labels()[:4]
    assert catalog["binary"].threshold == 0.5
    assert catalog["binary"].bounds == ([-3.14, -1.0], [3.14, 1.5])
    assert catalog["thermodynamics"].bounds == ([0.0, 0.0], [1.0, 1.0])


def test_model_files_get_unique_names_and_inferred_shapes(tmp_path: Path) -> None:
    cnn = tmp_path / "cnn.pt2"
    fs.save_model(tiny_cnn(), cnn, example=torch.rand(1, 1, 28, 28))
    catalog = build_catalog([str(cnn), "surface_1", "surface_1"])
    assert list(catalog) == ["cnn", "surface_1", "surface_1-2"]
    entry = catalog["cnn"]
    assert entry.kind == "image" and entry.input_shape == (1, 28, 28) and entry.n_outputs == 10
    assert entry.bounds == (0.0, 1.0) and entry.image == (1, 28, 28)
    assert entry.describe()["digits"] == images.digit_labels()


def test_bounds_and_output_selection(tmp_path: Path) -> None:
    entry = make_entry("surface_2", name="s", bounds=[(-2.0, 2.0), (-1.0, 0.5)])
    assert entry.bounds == ([-2.0, -1.0], [2.0, 0.5])
    with pytest.raises(InputError, match="empty box on axis 1"):
        make_entry("surface_2", name="s", bounds=[(-2.0, 2.0), (1.0, 0.5)])
    with pytest.raises(InputError, match="--bounds given 3 times"):
        make_entry("surface_2", name="s", bounds=[(0.0, 1.0)] * 3)
    torch.manual_seed(0)
    clf = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    path = tmp_path / "clf.pt2"
    fs.save_model(clf, path, example=torch.rand(1, 2, dtype=torch.float64))
    with pytest.raises(ModelError, match="maps 2 inputs to 3 outputs.*--output"):
        make_entry(str(path), name="clf")
    entry = make_entry(str(path), name="clf", output="logit-diff 0 1", threshold=0.0)
    assert entry.kind == "2d" and entry.n_outputs == 1 and entry.threshold == 0.0
    y = entry.evaluate(torch.tensor([0.1, 0.2], dtype=torch.float64))
    with torch.no_grad():
        raw = fs.load_model(str(path))(torch.tensor([[0.1, 0.2]], dtype=torch.float64))[0]
    assert float(y[0]) == pytest.approx(float(raw[0] - raw[1]), abs=1e-12)


def test_shapes() -> None:
    assert parse_shape("1,28,28") == (1, 28, 28) == parse_shape("1x28x28")
    with pytest.raises(InputError, match="expected sizes such as 1,28,28"):
        parse_shape("1,a")
    with pytest.raises(InputError, match="at least 1"):
        parse_shape("0,3")
    assert image_layout((1, 28, 28)) == (1, 28, 28)
    assert image_layout((3, 32, 32)) == (3, 32, 32)
    assert image_layout((28, 28)) == (1, 28, 28)
    assert image_layout((784,)) == (1, 28, 28)
    assert image_layout((4,)) is None and image_layout((2, 28, 28)) is None
    assert infer_input_shape(nn.Sequential(nn.Linear(5, 2)), "m") == (5,)
    conv = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 30 * 30, 4))
    assert infer_input_shape(conv, "conv") == (3, 32, 32)
    with pytest.raises(ModelError, match="cannot tell which input shape m takes.*--input-shape"):
        infer_input_shape(lambda x: x.reshape(1, 7) @ torch.ones(7, 1), "m")


def test_a_float32_module_gets_a_float64_grid_copy() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    from fiberscope.app import catalog as cat
    from fiberscope.app.views import heatmap

    e = cat.ModelEntry(
        name="n", source="n", model=net, input_shape=(2,), n_outputs=1, kind="2d",
        bounds=([-1.0, -1.0], [1.0, 1.0]), grid_model=cat._float64_copy(net),
    )  # fmt: skip
    grid = heatmap(e, 16)
    assert next(net.parameters()).dtype == torch.float32  # the user's model is untouched
    with torch.no_grad():
        ref = net.double()(torch.tensor([[grid["xs"][3], grid["ys"][5]]], dtype=torch.float64))
    assert grid["z"][5][3] == pytest.approx(float(ref), abs=1e-12)
