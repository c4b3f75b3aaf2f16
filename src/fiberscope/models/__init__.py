"""Model loading: a registry of formats, the paper's weights-CSV format, Python specs."""

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

__all__ = [
    "ModelFormat",
    "bundled_networks",
    "formats",
    "load_model",
    "load_paper_csv",
    "parse_paper_csv",
    "register_format",
    "save_paper_csv",
]
