"""Model loading: a registry of formats (paper CSV, ONNX, torch.export, TorchScript,
safetensors; pickles refused), Python specs, and output selection."""

from ..outputs import OutputSelection, output_map
from .loaders import (
    PICKLE_SUFFIXES,
    load_onnx,
    load_pt2,
    load_safetensors,
    load_torch_file,
    refuse_pickle,
    save_model,
)
from .paper_csv import load_paper_csv, parse_paper_csv, save_paper_csv
from .registry import (
    ModelFormat,
    bundled_networks,
    formats,
    load_model,
    register_format,
)

register_format(
    ModelFormat(
        name="paper-csv",
        suffixes=(".csv", ".tsv", ".txt"),
        load=load_paper_csv,
        description="Benfenati & Marta weights-CSV (sigmoid/softplus/SiLU/softmax layers)",
    )
)

register_format(
    ModelFormat(
        name="onnx",
        suffixes=(".onnx",),
        load=load_onnx,
        description="ONNX graph, converted with onnx2torch (see docs/models.md to install it)",
    )
)
register_format(
    ModelFormat(
        name="pt2",
        suffixes=(".pt2",),
        load=load_pt2,
        description="torch.export program (torch.export.save), checked entry by entry",
    )
)
register_format(
    ModelFormat(
        name="torch",
        suffixes=(".pt", ".ts", ".pth", ".bin"),
        load=load_torch_file,
        description="TorchScript archive (torch.jit.save), or a state_dict with --arch",
        options={"arch": True},
    )
)
register_format(
    ModelFormat(
        name="safetensors",
        suffixes=(".safetensors",),
        load=load_safetensors,
        description="safetensors weights; the architecture comes from --arch",
        options={"arch": True},
    )
)
register_format(
    ModelFormat(
        name="pickle",
        suffixes=PICKLE_SUFFIXES,
        load=refuse_pickle,
        description="Python pickles: always refused (they run code when loaded)",
    )
)

__all__ = [
    "ModelFormat",
    "OutputSelection",
    "bundled_networks",
    "formats",
    "load_model",
    "load_onnx",
    "load_paper_csv",
    "load_pt2",
    "load_safetensors",
    "load_torch_file",
    "output_map",
    "parse_paper_csv",
    "refuse_pickle",
    "register_format",
    "save_model",
    "save_paper_csv",
]
