"""Model formats: round trips through every format, and every unsafe or mismatched file refused."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import fiberscope as fs
import model_files as mf
from fiberscope.errors import ModelLoadError, UnsafeModelError
from fiberscope.models import load_model, save_model
from fiberscope.models.loaders import _onnx_modules, sniff

#: ONNX tests skip (not fail) without onnx and onnx2torch, which are optional.
needs_onnx = pytest.mark.skipif(
    not mf.onnx_available(), reason="onnx and onnx2torch are not installed (optional)"
)


POINTS = torch.tensor([[0.3, -0.2], [0.0, 0.0], [-0.7, 0.4], [1.1, -0.9]], dtype=torch.float64)
TRACE = dict(step=0.05, bounds=(-2.0, 2.0))


@pytest.fixture(scope="module")
def reference() -> fs.TraceResult:
    return fs.trace(mf.small_net(), mf.X0, **TRACE)


def _check_same_model(model: nn.Module, reference: fs.TraceResult) -> None:
    """Outputs agree with the original network and the trace follows the same curve."""
    net = mf.small_net()
    with torch.no_grad():
        got = torch.cat([model(p.unsqueeze(0)).reshape(1, -1) for p in POINTS])
        want = net(POINTS)
    assert got.dtype == torch.float64
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    res = fs.trace(model, mf.X0, **TRACE)
    assert len(res) == len(reference)
    assert res.stop_reasons == reference.stop_reasons
    assert float((res.points - reference.points).abs().max()) <= 1e-10
    assert res.drift <= 1e-9


@pytest.mark.parametrize("suffix", [pytest.param(".onnx", marks=needs_onnx), ".pt2", ".pt", ".ts"])
def test_round_trip_complete_models(tmp_path: Path, reference: fs.TraceResult, suffix: str) -> None:
    path = save_model(mf.small_net(), tmp_path / f"m{suffix}", example=mf.example())
    _check_same_model(load_model(path), reference)


@pytest.mark.parametrize(
    "arch",
    ["model_files:small_net", mf.small_net, mf.small_net(), "FILE"],
    ids=["module-spec", "factory", "instance", "file-spec"],
)
def test_round_trip_safetensors(tmp_path: Path, reference: fs.TraceResult, arch) -> None:
    if arch == "FILE":
        (tmp_path / "arch.py").write_text(
            "from model_files import small_net\n\ndef build():\n    return small_net()\n"
        )
        arch = f"{tmp_path / 'arch.py'}:build"
    path = save_model(mf.small_net(), tmp_path / "w.safetensors")
    _check_same_model(load_model(path, arch=arch), reference)


def test_round_trip_state_dict_and_training_checkpoint(
    tmp_path: Path, reference: fs.TraceResult
) -> None:
    sd = mf.write(tmp_path / "sd.pt", mf.state_dict_bytes())
    _check_same_model(load_model(sd, arch="model_files:small_net"), reference)
    buf = io.BytesIO()
    torch.save({"epoch": 3, "state_dict": mf.small_net().state_dict()}, buf)
    ck = mf.write(tmp_path / "ckpt.pth", buf.getvalue())
    _check_same_model(load_model(ck, arch="model_files:small_net"), reference)


def test_round_trip_paper_csv(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid()).double()
    path = save_model(net, tmp_path / "w.csv")
    loaded = load_model(path)
    with torch.no_grad():
        assert torch.equal(loaded(POINTS), net(POINTS))
    a = fs.trace(net, [0.1, 0.2], step=0.05, bounds=(-2, 2))
    b = fs.trace(loaded, [0.1, 0.2], step=0.05, bounds=(-2, 2))
    assert torch.equal(a.points, b.points)


def test_float32_model_is_loaded_in_float64(tmp_path: Path) -> None:
    net32 = mf.small_net().float()
    path = save_model(net32, tmp_path / "m32.pt2", example=mf.example().float())
    model = load_model(path)
    with torch.no_grad():
        y = model(POINTS[:1])
    assert y.dtype == torch.float64
    assert torch.allclose(y, mf.small_net()(POINTS[:1]), atol=1e-5)


@needs_onnx
def test_onnx_graph_built_by_hand(tmp_path: Path, reference: fs.TraceResult) -> None:
    _check_same_model(load_model(mf.write(tmp_path / "h.onnx", mf.onnx_bytes())), reference)


def test_tied_weights_survive_safetensors(tmp_path: Path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = nn.Linear(2, 2)
            self.b.weight = self.a.weight
            self.out = nn.Linear(2, 1)

        def forward(self, x):
            return self.out(torch.tanh(self.b(torch.tanh(self.a(x)))))

    torch.manual_seed(0)
    net = Tied().double()
    path = save_model(net, tmp_path / "t.safetensors")
    loaded = load_model(path, arch=Tied)
    with torch.no_grad():
        assert torch.equal(loaded(POINTS), net(POINTS))


@needs_onnx
def test_format_can_be_forced_for_an_odd_suffix(tmp_path: Path, reference) -> None:
    path = mf.write(tmp_path / "model.weights", mf.onnx_bytes())
    with pytest.raises(ModelLoadError, match="unknown suffix"):
        load_model(path)
    _check_same_model(load_model(path, format="onnx"), reference)


@needs_onnx
def test_onnx_loader_does_not_leave_a_torchvision_stub() -> None:
    _onnx_modules()
    tv = sys.modules.get("torchvision")
    assert tv is None or hasattr(tv, "__file__")


def test_safetensors_without_arch_shows_the_recorded_hint(tmp_path: Path) -> None:
    path = save_model(mf.small_net(), tmp_path / "w.safetensors", arch="mypkg.nets:Small")
    with pytest.raises(ModelLoadError, match=r"names its architecture as 'mypkg.nets:Small'"):
        load_model(path)


MARKER = "PWNED"

REFUSED = {
    # name: (builder(marker) -> bytes, exception, message)
    "full.pt": (
        lambda m: _torch_save(mf.small_net()),
        UnsafeModelError,
        r"pickled Python object \(it refers to torch\.nn\.modules\.container\.Sequential",
    ),
    "evil.pt": (mf.evil_torch_zip, UnsafeModelError, r"refers to io\.open\); loading it would run"),
    "evil-raw.pt": (mf.evil_pickle, UnsafeModelError, r"refers to io\.open"),
    "evil-p4.pth": (lambda m: mf.evil_pickle(m, 4), UnsafeModelError, r"refers to io\.open"),
    "evil.bin": (mf.evil_torch_zip, UnsafeModelError, r"pickled Python object"),
    "evil.pkl": (mf.evil_pickle, UnsafeModelError, r"is a pickle; unpickling runs arbitrary code"),
    "evil.joblib": (mf.evil_pickle, UnsafeModelError, r"never loads pickles"),
    "evil.pt2": (mf.evil_pt2, UnsafeModelError, r"sample_inputs/model\.pt is a pickled Python"),
    "pickled-weight.pt2": (
        lambda m: mf.pickled_weight_pt2(),
        UnsafeModelError,
        r"stored as a pickled object",
    ),
    "aoti.pt2": (lambda m: mf.aoti_pt2(), UnsafeModelError, r"compiled AOTInductor code"),
    "evil-ts.pt": (mf.evil_torchscript, UnsafeModelError, r"TorchScript never writes"),
    "bomb.pt": (lambda m: mf.zip_bomb(), UnsafeModelError, r"zip bomb"),
    "traversal.onnx": (
        lambda m: mf.onnx_external_bytes("../../etc/passwd"),
        UnsafeModelError,
        r"outside the model's folder",
    ),
    "absolute.onnx": (
        lambda m: mf.onnx_external_bytes("/etc/passwd"),
        UnsafeModelError,
        r"outside the model's folder",
    ),
    "legacy.pt2": (
        lambda m: _zip({"serialized_exported_program.json": b"{}", "version": b"1"}),
        UnsafeModelError,
        r"pre-2\.8 torch\.export format",
    ),
}


def _torch_save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=needs_onnx) if n.endswith(".onnx") else n for n in sorted(REFUSED)],
)
def test_unsafe_files_are_refused_without_running_them(tmp_path: Path, name: str) -> None:
    build, exc, message = REFUSED[name]
    marker = tmp_path / MARKER
    path = mf.write(tmp_path / name, build(marker))
    with pytest.raises(exc, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value)
    assert not marker.exists(), "the payload ran"
    assert mf.marker_paths(tmp_path) == []


MISMATCHED = {
    "zip.onnx": (mf.pt2_bytes, r"is not an ONNX model: it looks like a zip archive"),
    "text.onnx": (lambda: b"1\n2 2 2 2 FC_LAYER_SG\n", r"not an ONNX model: it looks like a text"),
    "pickle.onnx": (
        lambda: mf.evil_pickle(Path("x")),
        r"not an ONNX model: it looks like a Python",
    ),
    "garbage.onnx": (lambda: bytes(range(256)) * 4, r"not a valid ONNX model"),
    "truncated.onnx": (lambda: mf.onnx_bytes()[:150], r"not a valid ONNX model"),
    "ts.pt2": (mf.torchscript_bytes, r"TorchScript archive, not torch\.export"),
    "sd.pt2": (mf.state_dict_bytes, r"torch\.save file, not torch\.export"),
    "onnx.pt2": (mf.onnx_bytes, r"not a torch\.export archive: it looks like binary"),
    "truncated.pt2": (lambda: mf.pt2_bytes()[:-500], r"truncated or corrupt zip"),
    "pt2.pt": (mf.pt2_bytes, r"torch\.export archive, not TorchScript"),
    "text.pt": (lambda: b"hello", r"not a TorchScript or PyTorch file: it looks like a text"),
    "empty.pt": (lambda: b"", r"it looks like an empty file"),
    "crc.pt": (lambda: _flip_member(mf.torchscript_bytes(), "data.pkl"), r"fails its checksum"),
    "zip.safetensors": (mf.pt2_bytes, r"not a safetensors file: it looks like a zip"),
    "onnx.csv": (mf.onnx_bytes, r"not a text file"),
}


def _flip_member(data: bytes, member: str) -> bytes:
    """Flip one byte inside the stored content of a zip member (the CRC must catch it)."""
    import struct
    import zipfile

    info = next(
        i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename.endswith(member)
    )
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    b = bytearray(data)
    b[at] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=needs_onnx) if "onnx" in n else n  # their builders need onnx
        for n in sorted(MISMATCHED)
    ],
)
def test_content_that_does_not_match_the_suffix(tmp_path: Path, name: str) -> None:
    build, message = MISMATCHED[name]
    path = mf.write(tmp_path / name, build())
    arch = "model_files:small_net" if name.endswith(".safetensors") else None
    with pytest.raises(ModelLoadError, match=message):
        load_model(path, arch=arch)


@needs_onnx
def test_state_dict_errors(tmp_path: Path) -> None:
    sd = mf.write(tmp_path / "sd.pt", mf.state_dict_bytes())
    with pytest.raises(ModelLoadError, match="is a state_dict .* --arch"):
        load_model(sd)

    def wider():
        return nn.Sequential(nn.Linear(2, 7), nn.Tanh(), nn.Linear(7, 1))

    with pytest.raises(ModelLoadError, match=r"weight 0\.weight has shape \(6, 2\) .* \(7, 2\)"):
        load_model(sd, arch=wider)

    def other():
        return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1), nn.Linear(1, 1))

    with pytest.raises(ModelLoadError, match=r"does not fit the architecture: missing 3\.weight"):
        load_model(sd, arch=other)
    bad = mf.small_net().state_dict()
    bad["0.bias"][2] = float("nan")
    path = mf.write(tmp_path / "nan.pt", _torch_save(bad))
    with pytest.raises(ModelLoadError, match=r"weight 0\.bias contains NaN or inf"):
        load_model(path, arch=mf.small_net)
    with pytest.raises(ModelLoadError, match="not a torch.nn.Module"):
        load_model(sd, arch=lambda: lambda x: x)
    ts = mf.write(tmp_path / "ts.pt", mf.torchscript_bytes())
    with pytest.raises(ModelLoadError, match="complete TorchScript model; --arch is only"):
        load_model(ts, arch=mf.small_net)
    onnx_path = mf.write(tmp_path / "m.onnx", mf.onnx_bytes())
    with pytest.raises(ModelLoadError, match=r"--arch is only used with weights files"):
        load_model(onnx_path, arch=mf.small_net)


@needs_onnx
def test_onnx_structure_errors(tmp_path: Path) -> None:
    cases = {
        "two-outputs.onnx": (mf.onnx_bytes(outputs=2), r"has 2 outputs \(y, a\)"),
        "two-inputs.onnx": (mf.onnx_bytes(inputs=2), r"has 2 inputs \(x, x2\)"),
        "custom.onnx": (mf.onnx_bytes(op="Custom"), r"onnx2torch cannot convert it"),
        "missing.onnx": (mf.onnx_external_bytes("weights.bin"), r"external data file"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(ModelLoadError, match=message):
            load_model(mf.write(tmp_path / name, data))


@needs_onnx
def test_sniff() -> None:
    assert sniff(b"") == "empty"
    assert sniff(mf.pt2_bytes()) == "zip"
    assert sniff(mf.evil_pickle(Path("x"))) == "pickle"
    assert sniff(mf.safetensors_bytes()) == "safetensors"
    assert sniff("1\n2\t3 é\n".encode()) == "text"
    assert sniff(mf.onnx_bytes()) == "binary"
    assert sniff(("x" * 4095 + "é").encode()) == "text"  # a character cut at 4096 bytes


@pytest.mark.parametrize("suffix", [".pt2", pytest.param(".onnx", marks=needs_onnx)])
@pytest.mark.parametrize("batch", [1, 3])
def test_saved_models_take_any_batch_size(tmp_path: Path, suffix: str, batch: int) -> None:
    """save_model exports a dynamic batch dimension: a grid of points evaluates at once."""
    example = mf.example().expand(batch, 2).clone()
    path = save_model(mf.small_net(), tmp_path / f"m{suffix}", example=example)
    model = load_model(path)
    with torch.no_grad():
        for n in (1, 7, 64):
            x = torch.linspace(-1, 1, 2 * n, dtype=torch.float64).reshape(n, 2)
            got = model(x)
            assert got.shape == (n, 1)
            assert torch.allclose(got, mf.small_net()(x), rtol=0, atol=1e-12)


def test_a_model_that_cannot_take_a_dynamic_batch_is_saved_with_a_warning(tmp_path: Path) -> None:
    class FixedBatch(nn.Module):
        def forward(self, x):
            return x.reshape(1, 2).sum(-1, keepdim=True)  # only batch size 1

    with pytest.warns(UserWarning, match="takes batch size 1 only"):
        path = save_model(FixedBatch(), tmp_path / "m.pt2", example=mf.example())
    assert load_model(path)(mf.example()).shape == (1, 1)
