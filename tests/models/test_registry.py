"""Model specs and files that are not plain model files: pipes, devices, user code that exits,
sibling imports, bundled names."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import fiberscope as fs
import model_files as mf
from fiberscope.cli.main import main
from fiberscope.errors import ModelLoadError
from fiberscope.models.registry import BUNDLED_NAMES

SUFFIXES = (".onnx", ".pt2", ".pt", ".safetensors", ".csv", ".pkl")


def _within(seconds: float, fn: Callable[[], object]) -> object:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def _cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


# --------------------------------------------------------------------------- not regular files
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_named_pipe_as_the_model_file_is_refused_at_once(tmp_path: Path, suffix: str) -> None:
    fifo = tmp_path / f"p{suffix}"
    os.mkfifo(fifo)
    arch = "model_files:small_net" if suffix == ".safetensors" else None
    with pytest.raises(
        ModelLoadError, match=r"p\.\w+ is a named pipe \(FIFO\), not a regular file"
    ):
        _within(10, lambda: fs.load_model(fifo, arch=arch))
    for fmt in ("onnx", "pt2", "torch", "safetensors", "paper-csv"):
        with pytest.raises(ModelLoadError, match="named pipe"):
            _within(10, lambda fmt=fmt: fs.load_model(fifo, format=fmt, arch=arch))


def test_a_named_pipe_through_the_cli(tmp_path: Path) -> None:
    fifo = tmp_path / "p.onnx"
    os.mkfifo(fifo)
    code, err = _within(
        10, lambda: _cli("trace", str(fifo), "--at", "0,0", "-o", str(tmp_path / "t.csv"))
    )  # type: ignore[misc]
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {fifo} is a named pipe (FIFO), not a regular file; a model file must be a "
        "regular file"
    ]


def test_a_device_as_the_model_file_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.pt2"
    link.symlink_to("/dev/zero")  # a device behind a model-looking name
    with pytest.raises(ModelLoadError, match="is a character device, not a regular file"):
        _within(10, lambda: fs.load_model(link))
    with pytest.raises(ModelLoadError, match="character device"):
        _within(10, lambda: fs.load_model("/dev/zero", format="pt2"))


def test_a_named_pipe_as_the_arch_file_is_refused(tmp_path: Path) -> None:
    weights = mf.write(tmp_path / "w.safetensors", mf.safetensors_bytes())
    fifo = tmp_path / "nets.py"
    os.mkfifo(fifo)
    with pytest.raises(ModelLoadError, match=r"nets\.py is a named pipe \(FIFO\)"):
        _within(10, lambda: fs.load_model(weights, arch=f"{fifo}:build"))
    with pytest.raises(ModelLoadError, match="named pipe"):
        _within(10, lambda: fs.load_model(f"{fifo}:build"))


def test_a_named_pipe_as_onnx_external_data_is_refused(tmp_path: Path) -> None:
    if not mf.onnx_available():
        pytest.skip("onnx and onnx2torch are not installed (optional)")
    model = mf.write(tmp_path / "m.onnx", mf.onnx_external_bytes("weights.bin"))
    os.mkfifo(tmp_path / "weights.bin")
    with pytest.raises(ModelLoadError, match=r"weights\.bin is a named pipe \(FIFO\)"):
        _within(10, lambda: fs.load_model(model))


def test_onnx_external_data_is_read_from_its_file(tmp_path: Path) -> None:
    """The supported case still works: fiberscope reads the external file itself."""
    if not mf.onnx_available():
        pytest.skip("onnx and onnx2torch are not installed (optional)")
    import onnx
    from onnx import numpy_helper

    proto = mf.onnx_model()
    first = proto.graph.initializer[0]
    raw = numpy_helper.to_array(first).tobytes()
    (tmp_path / "w.bin").write_bytes(b"\0" * 16 + raw)
    data = mf.onnx_external_bytes("w.bin")
    model = onnx.load_model_from_string(data)
    ext = model.graph.initializer[0].external_data
    ext.add(key="offset", value="16")
    ext.add(key="length", value=str(len(raw)))
    path = mf.write(tmp_path / "m.onnx", model.SerializeToString())
    loaded = fs.load_model(path)
    assert float((loaded(mf.example()) - mf.small_net()(mf.example())).abs().max()) < 1e-12


# --------------------------------------------------------------------------- user code that exits
EXITING = {
    "exit-0": "import sys\nsys.exit(0)\n",
    "exit-3": "import sys\nsys.exit(3)\n",
    "raise-systemexit": "raise SystemExit('bye')\n",
    "exit-builtin": "exit()\n",
}


@pytest.mark.parametrize("name", sorted(EXITING))
def test_a_model_file_that_exits_at_import_is_an_error(tmp_path: Path, name: str) -> None:
    path = mf.write(tmp_path / "model.py", EXITING[name])
    with pytest.raises(ModelLoadError, match=r"importing .*model\.py called sys\.exit"):
        fs.load_model(f"{path}:net")
    weights = mf.write(tmp_path / "w.safetensors", mf.safetensors_bytes())
    with pytest.raises(ModelLoadError, match=r"called sys\.exit"):
        fs.load_model(weights, arch=f"{path}:net")
    code, err = _cli("trace", f"{path}:net", "--at", "0,0", "-o", str(tmp_path / "t.csv"))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "called sys.exit" in err
    assert not (tmp_path / "t.csv").exists()


def test_a_factory_that_exits_is_an_error(tmp_path: Path) -> None:
    path = mf.write(tmp_path / "nets.py", "import sys\n\ndef build():\n    sys.exit(0)\n")
    with pytest.raises(ModelLoadError, match=r"calling .*nets\.py:build\(\) called sys\.exit\(0\)"):
        fs.load_model(f"{path}:build")
    weights = mf.write(tmp_path / "w.safetensors", mf.safetensors_bytes())
    with pytest.raises(ModelLoadError, match=r"called sys\.exit\(0\)"):
        fs.load_model(weights, arch=f"{path}:build")

    def factory():
        raise SystemExit(5)

    with pytest.raises(ModelLoadError, match=r"building the architecture called sys\.exit\(5\)"):
        fs.load_model(weights, arch=factory)


def test_a_module_that_exits_at_import_is_an_error(tmp_path: Path, monkeypatch) -> None:
    mf.write(tmp_path / "exiting_mod_for_test.py", "raise SystemExit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelLoadError, match=r"importing module 'exiting_mod_for_test' called"):
        fs.load_model("exiting_mod_for_test:net")


def test_keyboard_interrupt_in_user_code_is_not_swallowed(tmp_path: Path) -> None:
    path = mf.write(tmp_path / "model.py", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        fs.load_model(f"{path}:net")


# --------------------------------------------------------------------------- sibling imports
def test_a_model_file_can_import_its_sibling_module(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    mf.write(folder / "fs_sibling_layers.py", "SCALE = 3.0\n")
    mf.write(
        folder / "model.py",
        "import torch\nimport fs_sibling_layers\n\n"
        "def net(x):\n    return fs_sibling_layers.SCALE * (x ** 2).sum(-1, keepdim=True)\n",
    )
    before = list(sys.path)
    try:
        model = fs.load_model(f"{folder / 'model.py'}:net")
        assert float(model(mf.example())) == pytest.approx(3.0 * (0.3**2 + 0.2**2))
        assert sys.path == before, "the model's folder stayed on the import path"
    finally:
        sys.modules.pop("fs_sibling_layers", None)


def test_an_arch_file_can_import_its_sibling_module(tmp_path: Path) -> None:
    mf.write(tmp_path / "fs_sibling_blocks.py", "from model_files import small_net\n")
    arch = mf.write(
        tmp_path / "arch.py",
        "import fs_sibling_blocks\n\ndef build():\n    return fs_sibling_blocks.small_net()\n",
    )
    weights = mf.write(tmp_path / "w.safetensors", mf.safetensors_bytes())
    before = list(sys.path)
    try:
        model = fs.load_model(weights, arch=f"{arch}:build")
        assert float((model(mf.example()) - mf.small_net()(mf.example())).abs().max()) == 0.0
        assert sys.path == before
    finally:
        sys.modules.pop("fs_sibling_blocks", None)


def test_the_import_path_is_restored_when_the_file_fails(tmp_path: Path) -> None:
    path = mf.write(tmp_path / "model.py", "raise RuntimeError('broken')\n")
    before = list(sys.path)
    with pytest.raises(ModelLoadError, match="raised RuntimeError: broken"):
        fs.load_model(f"{path}:net")
    assert sys.path == before


# --------------------------------------------------------------------------- bundled names
def test_bundled_networks_have_one_name_each() -> None:
    nets = fs.bundled_networks()
    assert (
        tuple(nets)
        == BUNDLED_NAMES
        == (
            "surface_1",
            "surface_2",
            "thermodynamics",
            "thermo_softplus",
            "binary",
        )
    )
    for name, path in nets.items():
        assert path.name == f"{name}.csv" and path.is_file()
        fs.load_model(name)


@pytest.mark.parametrize(
    "old",
    [
        "surface_1_good_weights.csv",
        "surface_1_good_weights",
        "thermodynamics_weights_addestrata_bene",
        "weights_binary.csv",
        "weights_softplus_thermo",
        "surface_1.csv",
    ],
)
def test_old_and_file_names_are_not_model_names(old: str) -> None:
    with pytest.raises(ModelLoadError) as info:
        fs.load_model(old)
    assert str(info.value) == (
        f"no such model file: {old} (bundled networks: surface_1, surface_2, thermodynamics, "
        "thermo_softplus, binary, mnist_cnn)"
    )
