"""Image classifiers whose spec carries their preprocessing: walks happen in pixel space.

:class:`ImageClassifier` wraps a network so that it takes **pixels in [0, 1]** shaped
``(C, H, W)`` (or a batch) and returns its logits: it checks the image's shape (a wrong size or
number of channels is a one-line error naming the size the model takes), applies the mean/std
normalisation the network was trained with, and unwraps outputs such as Hugging Face's
``ImageClassifierOutput`` to the logits. With ``bounds=(0, 1)`` every fiberscope verb then
walks in pixel space inside the box of valid images.

Architectures by name, with random weights or the user's (``--arch`` for a weights file):

- ``torchvision:NAME`` (``torchvision.models.get_model(NAME, weights=None)``; ImageNet
  normalisation, 3×224×224), e.g. ``torchvision:resnet18``;
- ``timm:NAME`` (``timm.create_model(NAME, pretrained=False)``; the model's own
  ``pretrained_cfg`` mean, std and input size);
- a local Hugging Face folder (``config.json`` + ``model.safetensors``, optional
  ``preprocessor_config.json``) for image classifiers such as ViT, loaded by ``transformers``
  from the safetensors weights only (never remote code, never a pickle, nothing downloaded).

torchvision, timm and transformers are never installed by fiberscope (their wheels can pull
another torch build): install a build that matches your torch, e.g.
``pip install --no-deps torchvision==0.28.0`` next to torch 2.13.0. Any other network works
too: build it yourself and pass ``ImageClassifier(net, input_shape=..., mean=..., std=...)``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError, ModelLoadError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageClassifier",
    "is_library_spec",
    "library_architecture",
    "library_model",
    "load_hf_folder",
    "wrap_library_model",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LIBRARIES = ("torchvision", "timm")


class ImageClassifier(nn.Module):
    """Pixels in [0, 1] -> logits, with the network's normalisation and a shape check.

    Parameters
    ----------
    net : torch.nn.Module
        The network (takes normalised images ``(B, C, H, W)``).
    input_shape : sequence of int
        ``(C, H, W)`` it takes.
    mean, std : sequence of float, optional
        Per-channel normalisation ``(x - mean) / std`` (default none).
    name : str
        What to call the model in messages.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        input_shape: Sequence[int],
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        name: str = "the model",
    ) -> None:
        super().__init__()
        self.net = net
        self.input_shape = tuple(int(s) for s in input_shape)
        if len(self.input_shape) != 3:
            raise InputError(f"input_shape must be (C, H, W), got {self.input_shape}")
        c = self.input_shape[0]
        mean_t = torch.zeros(c) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.ones(c) if std is None else torch.as_tensor(std, dtype=torch.float32)
        if mean_t.numel() != c or std_t.numel() != c or bool((std_t <= 0).any()):
            raise InputError(
                f"mean and std need {c} values (one per channel, std > 0), got "
                f"{mean_t.numel()} and {std_t.numel()}"
            )
        self.register_buffer("mean", mean_t.reshape(c, 1, 1))
        self.register_buffer("std", std_t.reshape(c, 1, 1))
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        """Logits of one image ``(C, H, W)`` -> ``(m,)``, or a batch -> ``(B, m)``."""
        single = x.dim() == 3
        batch = x.unsqueeze(0) if single else x
        if batch.dim() != 4 or tuple(batch.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise InputError(
                f"{self.name} takes images shaped {self.input_shape} (pixels in [0, 1]) or "
                f"batches of them, got {tuple(x.shape)}; give a {h}x{w} image with {c} "
                f"channel{'s' if c != 1 else ''}"
            )
        h = (batch - self.mean.to(batch.dtype)) / self.std.to(batch.dtype)
        out = self.net(h)
        logits = getattr(out, "logits", out)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        return logits[0] if single else logits


def is_library_spec(spec: Any) -> bool:
    """Whether ``spec`` names an architecture of torchvision or timm (``torchvision:NAME``)."""
    if not isinstance(spec, str) or ":" not in spec:
        return False
    lib, _, name = spec.partition(":")
    return lib in _LIBRARIES and bool(name) and ":" not in name and "/" not in name


def _import(lib: str) -> Any:
    try:
        return importlib.import_module(lib)
    except ImportError as exc:
        hint = (
            "pip install --no-deps torchvision==<the release made for your torch>"
            if lib == "torchvision"
            else "pip install --no-deps timm (it needs torchvision)"
        )
        raise ModelLoadError(
            f"{lib} is not installed or does not match this torch ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); {hint}, or build the "
            "network yourself and wrap it in fiberscope.models.image.ImageClassifier"
        ) from None
    except Exception as exc:  # a torchvision built for another torch fails in its own ways
        raise ModelLoadError(
            f"{lib} cannot be imported with this torch ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); install the {lib} release "
            "made for your torch with --no-deps, or build the network yourself and wrap it in "
            "fiberscope.models.image.ImageClassifier"
        ) from None


def library_architecture(spec: str) -> tuple[nn.Module, dict[str, Any]]:
    """The bare network named by ``torchvision:NAME`` or ``timm:NAME``, with random weights.

    Parameters
    ----------
    spec : str
        ``"torchvision:resnet18"``, ``"timm:resnet18"``, ...

    Returns
    -------
    net : torch.nn.Module
        The network (its state dict has the library's own keys).
    preprocessing : dict
        ``input_shape``, ``mean``, ``std`` for :class:`ImageClassifier`.

    Raises
    ------
    ModelLoadError
        The library is missing or unusable, or it has no such model.
    """
    lib, _, name = spec.partition(":")
    mod = _import(lib)
    try:
        if lib == "torchvision":
            net = mod.models.get_model(name, weights=None)
            prep = {"input_shape": (3, 224, 224), "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
        else:
            net = mod.create_model(name, pretrained=False)
            cfg = dict(getattr(net, "pretrained_cfg", {}) or {})
            prep = {
                "input_shape": tuple(cfg.get("input_size", (3, 224, 224))),
                "mean": tuple(cfg.get("mean", IMAGENET_MEAN)),
                "std": tuple(cfg.get("std", IMAGENET_STD)),
            }
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{lib} has no model {name!r} ({str(exc).splitlines()[0][:120] if str(exc) else ''})"
        ) from None
    return net, prep


def library_model(spec: str, state: dict[str, Tensor] | None = None) -> ImageClassifier:
    """``torchvision:NAME`` / ``timm:NAME`` as an :class:`ImageClassifier` (random weights).

    Parameters
    ----------
    spec : str
        The architecture.
    state : dict, optional
        Weights to load (strictly) into the bare network.

    Returns
    -------
    ImageClassifier
        float64, eval mode, frozen weights; takes pixels in [0, 1].
    """
    net, prep = library_architecture(spec)
    if state is not None:
        from .loaders import apply_state_dict

        net = apply_state_dict(net, state, spec)
    return _frozen(ImageClassifier(net, name=spec, **prep))


def wrap_library_model(net: nn.Module, spec: str, prep: dict[str, Any]) -> ImageClassifier:
    """Wrap a loaded ``torchvision:``/``timm:`` network with its preprocessing.

    Parameters
    ----------
    net : torch.nn.Module
        The network with its weights.
    spec : str
        ``"torchvision:NAME"`` / ``"timm:NAME"`` (for messages).
    prep : dict
        ``input_shape``, ``mean``, ``std`` from :func:`library_architecture`.

    Returns
    -------
    ImageClassifier
        float64, eval mode, frozen weights; takes pixels in [0, 1].
    """
    return _frozen(ImageClassifier(net, name=spec, **prep))


def _frozen(model: nn.Module) -> nn.Module:
    model = model.to(torch.float64).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _json_file(path: Path) -> dict[str, Any]:
    from .safety import read_regular_file

    try:
        obj = json.loads(read_regular_file(path, "config file"))
    except (ValueError, UnicodeDecodeError):
        raise ModelLoadError(f"{path.name} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path.name} is not a JSON object")
    return obj


def load_hf_folder(folder: str | Path) -> ImageClassifier:
    """A local Hugging Face image classifier: ``config.json`` + ``model.safetensors``.

    The network is loaded by ``transformers.AutoModelForImageClassification.from_pretrained``
    with ``use_safetensors=True``, ``trust_remote_code=False`` and ``local_files_only=True``
    (no pickles, no code from the folder, nothing downloaded; ``pytorch_model.bin`` folders
    are refused), under fiberscope's no-unpickling guard. The normalisation and
    input size come from ``preprocessor_config.json`` (``image_mean``, ``image_std``, ``size``)
    when present, else from the config (``num_channels``, ``image_size``; mean 0.5, std 0.5).

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder.

    Returns
    -------
    ImageClassifier
        float64, eval mode; takes pixels in [0, 1] and returns the logits.

    Raises
    ------
    ModelLoadError
        No config, no safetensors weights, transformers missing, a config transformers does not
        know as an image classifier, or weights that do not fit.
    """
    folder = Path(folder)
    cfg_path = folder / "config.json"
    weights = folder / "model.safetensors"
    if not cfg_path.is_file():
        raise ModelLoadError(f"{folder} is a folder without config.json; give a model file")
    if not weights.is_file():
        raise ModelLoadError(
            f"{folder} has no model.safetensors (pickled pytorch_model.bin weights are never "
            "loaded); save the model with safe_serialization=True"
        )
    cfg = _json_file(cfg_path)
    prep_path = folder / "preprocessor_config.json"
    prep = _json_file(prep_path) if prep_path.is_file() else {}
    try:
        transformers = importlib.import_module("transformers")
    except ImportError:
        raise ModelLoadError(
            "loading a Hugging Face folder needs transformers (pip install transformers; it "
            "does not replace torch)"
        ) from None
    if not isinstance(cfg.get("model_type"), str):
        raise ModelLoadError(f"{cfg_path.name} has no model_type")
    from .loaders import _parsing

    try:  # safetensors only, no remote code, nothing downloaded
        with _parsing(weights.name):
            net = transformers.AutoModelForImageClassification.from_pretrained(
                str(folder),
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=False,
            )
    except Exception as exc:
        first = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ModelLoadError(
            f"{folder.name}: transformers cannot load an image classifier from this folder "
            f"({first})"
        ) from None
    channels = int(cfg.get("num_channels", 3))
    size = prep.get("size", cfg.get("image_size", 224))
    if isinstance(size, dict):
        h = int(size.get("height", size.get("shortest_edge", 224)))
        w = int(size.get("width", size.get("shortest_edge", 224)))
    else:
        h = w = int(size)
    mean = prep.get("image_mean", [0.5] * channels)
    std = prep.get("image_std", [0.5] * channels)
    return _frozen(
        ImageClassifier(net, input_shape=(channels, h, w), mean=mean, std=std, name=folder.name)
    )
