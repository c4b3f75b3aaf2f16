"""Builders of model files for the format, fuzz and error-catalog tests.

Valid files of every format, built from one small network, and hostile ones: pickles whose
``__reduce__`` would create a marker file, torch.export archives with such pickles inside,
TorchScript archives with foreign pickle globals, zip bombs, ONNX graphs pointing outside
their folder. Expensive builds (torch.export, TorchScript) are cached per process.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

X0 = [0.3, -0.2]


def small_net() -> nn.Sequential:
    """2 -> 6 -> 1 tanh network, float64, fixed weights (a factory for --arch too)."""
    gen = torch.Generator().manual_seed(7)
    net = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return net.eval()


def example() -> torch.Tensor:
    """Example input with a batch dimension."""
    return torch.tensor([X0], dtype=torch.float64)


@cache
def pt2_bytes() -> bytes:
    """``torch.export.save`` of :func:`small_net`."""
    buf = io.BytesIO()
    torch.export.save(torch.export.export(small_net(), (example(),)), buf)
    return buf.getvalue()


@cache
def torchscript_bytes() -> bytes:
    """``torch.jit.save(torch.jit.trace(...))`` of :func:`small_net`."""
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(small_net(), example()), buf)
    return buf.getvalue()


def state_dict_bytes() -> bytes:
    """``torch.save(net.state_dict())``."""
    buf = io.BytesIO()
    torch.save(small_net().state_dict(), buf)
    return buf.getvalue()


def safetensors_bytes(arch: str | None = None) -> bytes:
    """safetensors weights of :func:`small_net`."""
    from safetensors.torch import save

    meta = {"fiberscope.arch": arch} if arch else None
    return save({k: v.contiguous() for k, v in small_net().state_dict().items()}, metadata=meta)


def onnx_model(outputs: int = 1, op: str = "Tanh", inputs: int = 1):
    """An ONNX graph of :func:`small_net` built with onnx.helper (no exporter needed)."""
    from onnx import TensorProto, helper, numpy_helper

    net = small_net()
    w1, b1 = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    w2, b2 = net[2].weight.detach().numpy(), net[2].bias.detach().numpy()
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node(op, ["h"], ["a"])
        if op != "Custom"
        else helper.make_node("Frobnicate", ["h"], ["a"], domain="com.example"),
        helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], transB=1),
    ]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 2])]
    if inputs == 2:
        graph_inputs.append(helper.make_tensor_value_info("x2", TensorProto.DOUBLE, [1, 2]))
    graph_outputs = [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 1])]
    if outputs == 2:
        graph_outputs.append(helper.make_tensor_value_info("a", TensorProto.DOUBLE, [1, 6]))
    graph = helper.make_graph(nodes, "small", graph_inputs, graph_outputs, initializer=inits)
    opsets = [helper.make_opsetid("", 17)]
    if op == "Custom":
        opsets.append(helper.make_opsetid("com.example", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def onnx_bytes(**kwargs) -> bytes:
    """Serialised :func:`onnx_model`."""
    return onnx_model(**kwargs).SerializeToString()


def onnx_external_bytes(location: str) -> bytes:
    """ONNX graph whose first weight lives in external data at ``location``."""
    from onnx import TensorProto

    model = onnx_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("double_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return model.SerializeToString()


class _Evil:
    """Unpickling this runs ``open(marker, 'w')``: proof that a loader unpickled it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(marker: Path, protocol: int = 2) -> bytes:
    """A pickle that creates ``marker`` when loaded."""
    return pickle.dumps(_Evil(str(marker)), protocol=protocol)


def evil_torch_zip(marker: Path, root: str = "archive") -> bytes:
    """A ``torch.save``-style zip whose ``data.pkl`` creates ``marker`` when unpickled."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{root}/data.pkl", evil_pickle(marker))
        zf.writestr(f"{root}/byteorder", "little")
        zf.writestr(f"{root}/version", "3\n")
    return buf.getvalue()


def rewrite_zip(
    data: bytes, replace: dict[str, bytes], add: dict[str, bytes] | None = None
) -> bytes:
    """Copy a zip, replacing members whose name ends with a key of ``replace``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    body = new
            dst.writestr(info.filename, body)
        root = src.namelist()[0].split("/")[0]
        for name, body in (add or {}).items():
            dst.writestr(f"{root}/{name}", body)
    return buf.getvalue()


def evil_pt2(marker: Path) -> bytes:
    """A valid .pt2 whose sample inputs are a pickle that creates ``marker``.

    ``torch.export.load`` reads sample inputs with ``weights_only=True`` and falls back to
    ``weights_only=False`` when that fails, so this file runs code in plain torch.
    """
    return rewrite_zip(pt2_bytes(), {"data/sample_inputs/model.pt": evil_torch_zip(marker)})


def pickled_weight_pt2() -> bytes:
    """A .pt2 whose weights config says a weight is stored as a pickle."""
    import json

    zf = zipfile.ZipFile(io.BytesIO(pt2_bytes()))
    name = next(n for n in zf.namelist() if n.endswith("model_weights_config.json"))
    config = json.loads(zf.read(name))
    first = next(iter(config["config"]))
    config["config"][first]["use_pickle"] = True
    return rewrite_zip(pt2_bytes(), {"model_weights_config.json": json.dumps(config).encode()})


def aoti_pt2() -> bytes:
    """A .pt2 that claims to contain AOTInductor native code."""
    return rewrite_zip(pt2_bytes(), {}, add={"data/aotinductor/model/model.so": b"\x7fELF"})


def evil_torchscript(marker: Path) -> bytes:
    """A TorchScript archive whose constants.pkl refers to ``builtins.open``."""
    return rewrite_zip(torchscript_bytes(), {"constants.pkl": evil_pickle(marker)})


def zip_bomb() -> bytes:
    """A torch-looking zip with 200 MiB of zeros compressed into a few hundred KiB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/data/0", b"\0" * (200 * 2**20))
    return buf.getvalue()


def onnx_available() -> bool:
    """Whether ONNX files can be loaded here: onnx and onnx2torch installed (ONNX tests skip
    otherwise; onnx2torch is installed with --no-deps, see docs/models.md)."""
    try:
        from fiberscope.models.loaders import _onnx_modules

        _onnx_modules()
    except Exception:
        return False
    return True


# --------------------------------------------------------------------------- forged zips
@dataclass
class Raw:
    """One entry of a forged archive.

    ``local_name`` overrides the name in the local header; ``alias`` makes this central
    entry point at the local header of an earlier entry (same bytes, two names).
    """

    name: str
    data: bytes
    local_name: str | None = None
    alias: int | None = None


def local_entry(name: str, data: bytes) -> bytes:
    """A complete stored zip entry (local header and data), for hiding before an archive."""
    return _local_header(name.encode(), data) + data


def _local_header(name: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data)
    head = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0
    )
    return head + name


def forge_zip(entries: list[Raw], prefix: bytes = b"", relative: bool = False) -> bytes:
    """A stored (uncompressed) zip built byte by byte, with whatever the entries say.

    ``prefix`` is written before the first entry; ``relative`` writes offsets as if the
    prefix were not there (as self-extracting archives do).
    """
    out = bytearray(prefix)
    offsets: list[int] = []
    for e in entries:
        if e.alias is not None:
            offsets.append(offsets[e.alias])
            continue
        offsets.append(len(out))
        out += _local_header((e.local_name or e.name).encode(), e.data) + e.data
    cd_start = len(out)
    shift = len(prefix) if relative else 0
    for e, off in zip(entries, offsets, strict=True):
        body = entries[e.alias].data if e.alias is not None else e.data
        name = e.name.encode()
        out += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            0,
            0,
            0,
            zlib.crc32(body),
            len(body),
            len(body),
            len(name),
            0,
            0,
            0,
            0,
            0,
            off - shift,
        )
        out += name
    cd_size = len(out) - cd_start
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), cd_size, cd_start - shift, 0
    )
    return bytes(out)


def overlapping(entries: list[Raw], target: int, evil: bytes) -> bytes:
    """The archive with ``entries[target]`` hidden *inside* the data of an extra entry.

    The extra entry's stored bytes are a complete local header plus the payload; the target's
    central directory record points into them, so the two entries' bytes overlap.
    """
    name = entries[target].name.encode()
    inner = _local_header(name, evil) + evil
    out = bytearray()
    offsets: list[int] = []
    cover_at = 0
    for i, e in enumerate(entries):
        if i == target:
            offsets.append(-1)
            continue
        offsets.append(len(out))
        out += _local_header(e.name.encode(), e.data) + e.data
    cover_name = entries[0].name.rsplit("/", 1)[0] + "/cover"
    cover_at = len(out)
    cover_head = _local_header(cover_name.encode(), inner)
    out += cover_head + inner
    offsets[target] = cover_at + len(cover_head)
    listed = [*entries, Raw(cover_name, inner)]
    offsets.append(cover_at)
    cd_start = len(out)
    for e, off in zip(listed, offsets, strict=True):
        body = evil if e is entries[target] else e.data
        nm = e.name.encode()
        out += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            0,
            0,
            0,
            zlib.crc32(body),
            len(body),
            len(body),
            len(nm),
            0,
            0,
            0,
            0,
            0,
            off,
        )
        out += nm
    cd_size = len(out) - cd_start
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(listed), len(listed), cd_size, cd_start, 0
    )
    return bytes(out)


def write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` (text or bytes) and return the path."""
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def marker_paths(folder: Path) -> list[Path]:
    """Marker files that a hostile payload would have created under ``folder``."""
    return [Path(root) / f for root, _, files in os.walk(folder) for f in files if "PWNED" in f]


FUZZ_BASES = Path(__file__).parent / "data" / "fuzz"


def fuzz_base(name: str) -> bytes:
    """A committed base file for the fuzz run (``small_net.pt``, ``small_net.pt2``).

    TorchScript names classes with a per-process counter, so files built at test time differ
    with test order; the fuzz cases must not. Rebuild with ``python tests/model_files.py``.
    """
    return (FUZZ_BASES / name).read_bytes()


if __name__ == "__main__":  # rebuild the fuzz bases in a fresh process
    FUZZ_BASES.mkdir(parents=True, exist_ok=True)
    (FUZZ_BASES / "small_net.pt").write_bytes(torchscript_bytes())
    (FUZZ_BASES / "small_net.pt2").write_bytes(pt2_bytes())
    print("wrote", sorted(p.name for p in FUZZ_BASES.iterdir()))
