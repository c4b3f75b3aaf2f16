"""Image classifiers with their preprocessing: ImageClassifier, ``torchvision:NAME`` and
``timm:NAME`` architectures (with a stand-in library module: the PyPI torchvision wheel does not
import with the CPU torch of the test machine), and local Hugging Face folders (transformers)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import fiberscope as fs
from fiberscope.errors import InputError, ModelLoadError
from fiberscope.models.image import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 6 * 6, 4))


class Output:
    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits


class HFStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = tiny_net()

    def forward(self, x: torch.Tensor) -> Output:
        return Output(self.inner(x))


def test_normalises_checks_shape_and_unwraps_logits() -> None:
    net = HFStyle().double()
    model = ImageClassifier(net, input_shape=(3, 8, 8), mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.1))
    x = torch.rand(3, 8, 8, dtype=torch.float64)
    mean = torch.tensor([0.5, 0.4, 0.3], dtype=torch.float64).reshape(3, 1, 1)
    std = torch.tensor([0.2, 0.2, 0.1], dtype=torch.float64).reshape(3, 1, 1)
    want = net.inner(((x - mean) / std).unsqueeze(0))[0]
    torch.testing.assert_close(model(x), want)
    assert model(x.unsqueeze(0).repeat(2, 1, 1, 1)).shape == (2, 4)
    with pytest.raises(InputError, match=r"takes images shaped \(3, 8, 8\).*give a 8x8 image"):
        model(torch.rand(1, 8, 8, dtype=torch.float64))
    with pytest.raises(InputError, match="one per channel"):
        ImageClassifier(net, input_shape=(3, 8, 8), mean=(0.5,), std=(1, 1, 1))


@pytest.fixture
def fake_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    def get_model(name: str, weights: object = None) -> nn.Module:
        assert weights is None
        if name != "tiny":
            raise ValueError(f"Unknown model {name}")
        return tiny_net()

    tv = types.ModuleType("torchvision")
    tv.models = types.SimpleNamespace(get_model=get_model)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)


def test_torchvision_architecture_with_random_weights(fake_torchvision: None) -> None:
    model = fs.load_model("torchvision:tiny")
    assert isinstance(model, ImageClassifier)
    assert model.input_shape == (3, 224, 224)
    torch.testing.assert_close(
        model.mean.reshape(-1), torch.tensor(IMAGENET_MEAN, dtype=torch.float64)
    )
    torch.testing.assert_close(
        model.std.reshape(-1), torch.tensor(IMAGENET_STD, dtype=torch.float64)
    )
    assert next(model.parameters()).dtype == torch.float64
    with pytest.raises(ModelLoadError, match="torchvision has no model 'nope'"):
        fs.load_model("torchvision:nope")


def test_torchvision_architecture_with_user_weights(fake_torchvision: None, tmp_path: Path) -> None:
    torch.manual_seed(5)
    trained = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(72, 4))
    save_file(
        {k: v.contiguous() for k, v in trained.state_dict().items()}, tmp_path / "w.safetensors"
    )
    model = fs.load_model(tmp_path / "w.safetensors", arch="torchvision:tiny")
    assert isinstance(model, ImageClassifier)
    for k, v in trained.state_dict().items():
        torch.testing.assert_close(model.net.state_dict()[k], v.double())
    with pytest.raises(ModelLoadError, match="is an architecture; give the weights file"):
        fs.load_model("torchvision:tiny", arch="torchvision:tiny")


def test_a_missing_library_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(ModelLoadError, match="timm is not installed .*ImageClassifier"):
        fs.load_model("timm:resnet18")


transformers = pytest.importorskip("transformers", reason="transformers is not installed")


@pytest.mark.slow
def test_hugging_face_folder(tmp_path: Path) -> None:
    config = transformers.ViTConfig(
        image_size=8, patch_size=4, num_channels=1, hidden_size=8, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=16, num_labels=3,
    )  # fmt: skip
    torch.manual_seed(0)
    net = transformers.ViTForImageClassification(config).eval()
    net.save_pretrained(tmp_path / "vit", safe_serialization=True)
    (tmp_path / "vit" / "preprocessor_config.json").write_text(
        '{"image_mean": [0.3], "image_std": [0.7], "size": {"height": 8, "width": 8}}'
    )
    model = fs.load_model(tmp_path / "vit")
    assert isinstance(model, ImageClassifier) and model.input_shape == (1, 8, 8)
    x = torch.rand(1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        want = net.double()(((x - 0.3) / 0.7).unsqueeze(0)).logits[0]
    torch.testing.assert_close(model(x), want)
    res = fs.walk(model, x, samples=3, step=0.05, bounds=(0, 1), seed=0)
    assert res.residual <= 1e-9
    (tmp_path / "vit" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no model.safetensors"):
        fs.load_model(tmp_path / "vit")
