"""Benchmark: one walk step on a 3x224x224 image classifier (a ResNet-18, random weights).

The network is torchvision's ResNet-18 architecture (``torchvision:resnet18`` when torchvision
imports with this torch; otherwise the same architecture written out below, with torchvision's
parameter names and shapes, so that torchvision weights load into it), wrapped with its
ImageNet preprocessing (:class:`fiberscope.models.image.ImageClassifier`): the walk happens in
pixel space, n = 150,528 coordinates in the box [0, 1]. For ``m`` held outputs (the first m
logits, ``output="logits[0:m]"``) it runs ``fs.walk(..., samples=S)`` and reports the time per
accepted step, the Jacobian evaluations per step, the residual, and the process's peak memory
against the size of one m x n float64 Jacobian (the walk's memory should grow as O(n m)).

Prints a table and writes it to ``benchmarks/results/resnet_step.md``.

Run: python benchmarks/resnet_step.py [--m 1 10] [--samples 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import torch
from torch import nn

import fiberscope as fs
from fiberscope.models.image import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier

HERE = Path(__file__).resolve().parent


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (same submodule names)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class ResNet18(nn.Module):
    """torchvision's ``resnet18`` layout (conv1, bn1, layer1..4, fc), 1000 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=False)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (cin, cout, s) in enumerate(widths, 1):
            setattr(
                self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, s), BasicBlock(cout, cout))
            )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def network() -> tuple[nn.Module, str]:
    """``torchvision:resnet18`` if torchvision works here, else the same architecture."""
    torch.manual_seed(0)
    try:
        return fs.load_model("torchvision:resnet18"), "torchvision:resnet18"
    except fs.ModelLoadError:
        net = ResNet18().eval()
        model = (
            ImageClassifier(
                net,
                input_shape=(3, 224, 224),
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                name="resnet18",
            )
            .to(torch.float64)
            .eval()
        )
        for p in model.parameters():
            p.requires_grad_(False)
        return model, "ResNet-18 (torchvision layout, written out; torchvision does not import)"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, nargs="+", default=[1, 10])
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float32", help="Jacobian precision (outputs float64)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "resnet_step.md")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, which = network()
    g = torch.Generator().manual_seed(0)
    x0 = 0.05 + 0.9 * torch.rand(3, 224, 224, generator=g, dtype=torch.float64)
    n = x0.numel()
    t0 = time.perf_counter()
    with torch.no_grad():
        model(x0)
    t_fwd = time.perf_counter() - t0
    rows = []
    for m in a.m:
        before = peak_mib()
        res = fs.walk(
            model, x0, samples=a.samples, step=0.05, bounds=(0, 1), seed=0,
            output=f"logits[0:{m}]", dtype=a.dtype,
        )  # fmt: skip
        steps = max(1, sum(res.accepted) + sum(sum(v) for v in res.rejections.values()))
        rows.append(
            {
                "m": m,
                "steps": steps,
                "s_per_step": res.stats.wall_time / steps,
                "jac_per_step": res.stats.jacobian_evals / steps,
                "residual": res.residual,
                "jac_mib": n * m * 8 / 2**20,
                "peak_mib": peak_mib(),
                "grew_mib": peak_mib() - before,
            }
        )
        print(rows[-1], flush=True)
    lines = [
        "# One walk step on a 3x224x224 classifier (ResNet-18, random weights)",
        "",
        f"`python benchmarks/resnet_step.py --m {' '.join(map(str, a.m))} --samples "
        f"{a.samples} --threads {a.threads} --dtype {a.dtype}` on {platform.machine()} "
        f"(torch {torch.__version__}, {a.threads} thread(s)); network: {which}; n = {n} "
        f"pixels in [0, 1]; one forward pass (float64) {t_fwd:.2f} s; corrected walk, "
        f"{a.samples} samples, step 0.05, Jacobians in {a.dtype}, outputs float64.",
        "",
        "| held outputs m | steps | s per step | Jacobian evals per step | residual "
        "max abs(N(x)-N(x0)) | one m x n float64 Jacobian (MiB) | process peak RSS (MiB) | "
        "peak grew during the walk (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['m']} | {r['steps']} | {r['s_per_step']:.2f} | {r['jac_per_step']:.2f} | "
            f"{r['residual']:.1e} | {r['jac_mib']:.1f} | {r['peak_mib']:.0f} | "
            f"{r['grew_mib']:.0f} |"
        )
    lines.append("")
    text = "\n".join(lines)
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
