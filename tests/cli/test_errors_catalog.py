"""The validation catalog: every bad input we could think of, its one-line error and exit code.

The cases live in ``CASES``. ``docs/errors.md`` is generated from them by running each one
(``python tests/cli/test_errors_catalog.py --write``), and this test runs every row again and
checks that the CLI still prints exactly the documented line with the documented exit code,
no traceback, and leaves no output file (warning rows: the run completes). A case without a
row in the document, or a row without a case, fails the test, so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

if __name__ == "__main__":  # run as a script: make the tests folder importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import model_files as mf  # noqa: E402
from fiberscope.cli.main import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"

MODELS_PY = """
import torch
from torch import nn

def radial(x):
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)

def wide(x):
    return torch.cat([x, x], -1)

def boom(x):
    return 1 / 0

def notensor(x):
    return 3.0

def nan(x):
    return torch.full(x.shape[:-1] + (1,), float("nan"), dtype=x.dtype)

def intout(x):
    return (x > 0).long().sum(-1, keepdim=True)

def complexout(x):
    return torch.complex(x, x).sum(-1, keepdim=True)

def empty(x):
    return x[..., :0]

def detached(x):
    return torch.exp(x.detach().sum(-1, keepdim=True))

def numpyish(x):
    return torch.tensor(x.detach().numpy().sum(-1, keepdims=True))

def rounded(x):
    return torch.round(x * 10).sum(-1, keepdim=True)

_calls = [0]

def noisy(x):
    # stands for dropout/noise in forward; alternating offsets keep the message reproducible
    _calls[0] += 1
    return x.sum(-1, keepdim=True) + 1e-3 * (_calls[0] % 2)

def f32(x):
    return (x.float() ** 2).sum(-1, keepdim=True)

def meta():
    return nn.Linear(2, 1, device="meta")

def embedding():
    return nn.Embedding(10, 1)

def Drop():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 1)).double()

def midway(x):
    if float(x.detach().reshape(-1)[0]) < 0:
        raise RuntimeError("negative x[0] is not supported")
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)

def clf():
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 4)).double()

def always0(x):
    # class 0 everywhere in [-1, 1]^2: three logits, the first far ahead
    s = x.sum(-1, keepdim=True)
    return torch.cat([10 + 0.1 * s, 0.1 * s, -0.1 * s], -1)

def wider_arch():
    return nn.Sequential(nn.Linear(2, 7), nn.Tanh(), nn.Linear(7, 1))

def growing(x):
    # one output until x[0] passes 0.3, then two: the output size changes during the run
    y = torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)
    return torch.cat([y, y], -1) if float(x.detach().reshape(-1)[0]) > 0.3 else y

def quitter(x):
    # calls sys.exit once the class reaches x[0] < 0 (user code may not end the program)
    import sys
    if float(x.detach().reshape(-1)[0]) < 0:
        sys.exit(0)
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)

class Boom(BaseException):
    pass

def base_boom(x):
    # raises a BaseException (not an Exception) once the class reaches x[0] > 0.26
    if float(x.detach().reshape(-1)[0]) > 0.26:
        raise Boom("boom")
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)

def fragile(x):
    # fine along the class through (0.25, 0.25); raises on the corners of the plot's grid
    if bool((x.abs() > 0.9).any()):
        raise RuntimeError("outside the training range")
    return torch.exp((x ** 2).sum(-1, keepdim=True) - 2.0)
"""


def build_files(folder: Path) -> Path:
    """Write every model file the catalog refers to into ``folder``."""
    import io as _io

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    w = lambda name, data: mf.write(folder / name, data)  # noqa: E731
    w("models.py", MODELS_PY)
    w("broken.py", "raise ImportError('this module needs a package that is not installed')\n")
    w("bad.csv", "1\n1\t2\t1\t2\tFC_LAYER_SG\n0.1 oops\n0.0\n")
    w("truncated.csv", "2\n5\t2\t5\t2\tFC_LAYER_SG\n" + "\t".join(["0.1"] * 10) + "\n")
    w("empty.csv", "")
    w("nan.csv", "1\n1\t2\t1\t2\tFC_LAYER_SG\n0.1\tnan\n0.0\n")
    w("binary.csv", bytes((i * 41 + 7) % 256 for i in range(512)))
    w("model.weights", bytes((i * 41 + 7) % 256 for i in range(512)))
    (folder / "adir.onnx").mkdir(exist_ok=True)
    w("empty.onnx", b"")
    w("truncated.onnx", mf.onnx_bytes()[:120])
    w("garbage.onnx", bytes((i * 37 + 11) % 256 for i in range(2048)))
    w("zip.onnx", mf.fuzz_base("small_net.pt2"))
    w("csv.onnx", "1\n1\t2\t1\t2\tFC_LAYER_SG\n0.1\t0.2\n0.0\n")
    w("custom.onnx", mf.onnx_bytes(op="Custom"))
    w("two_outputs.onnx", mf.onnx_bytes(outputs=2))
    w("two_inputs.onnx", mf.onnx_bytes(inputs=2))
    w("traversal.onnx", mf.onnx_external_bytes("../../etc/passwd"))
    w("good.onnx", mf.onnx_bytes())
    w("truncated.pt2", mf.fuzz_base("small_net.pt2")[:-400])
    w("torchscript.pt2", mf.fuzz_base("small_net.pt"))
    # a byte-level mutation that Python's zipfile opens, listing only some of the entries
    import fuzz_mutations as fz

    w("corrupt.pt2", fz.case(mf.fuzz_base("small_net.pt2"), fz.mutate_bytes, 5, 282))
    w("evil.pt2", mf.evil_pt2(folder / "PWNED-pt2"))
    w("aoti.pt2", mf.aoti_pt2())
    buf = _io.BytesIO()
    torch.save(mf.small_net(), buf)
    w("pickled_module.pt", buf.getvalue())
    w("evil.pt", mf.evil_torch_zip(folder / "PWNED-pt"))
    w("evil_raw.pth", mf.evil_pickle(folder / "PWNED-pth"))
    w("state_dict.pt", mf.state_dict_bytes())
    w("text.pt", "this is not a model\n")
    w("evil_torchscript.pt", mf.evil_torchscript(folder / "PWNED-ts"))
    w("crc.pt", _flip_member(mf.fuzz_base("small_net.pt"), "data.pkl"))
    w("bomb.pt", mf.zip_bomb())
    w("model.pkl", mf.evil_pickle(folder / "PWNED-pkl"))
    w("weights.safetensors", mf.safetensors_bytes("mypkg.nets:Small"))
    w("truncated.safetensors", mf.safetensors_bytes()[:-40])
    w("header.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{oops!!}")
    sd = mf.small_net().state_dict()
    sd["0.bias"][1] = float("nan")
    from safetensors.torch import save

    w("nan.safetensors", save({k: v.contiguous() for k, v in sd.items()}))
    _build_hostile_archives(folder)
    return folder


def _build_hostile_archives(folder: Path) -> None:
    """Files for the refusals of docs/models.md: odd file types, zip tricks, .pt2 graph attacks."""
    import json
    import os
    import zipfile

    w = lambda name, data: mf.write(folder / name, data)  # noqa: E731
    if not (folder / "pipe.onnx").exists():
        os.mkfifo(folder / "pipe.onnx")
        os.mkfifo(folder / "pipe_arch.py")
        (folder / "device.pt2").symlink_to("/dev/zero")
    w("exits.py", "import sys\nsys.exit(0)\n")
    w("exits_later.py", "import sys\n\ndef build():\n    sys.exit(0)\n")
    ts = mf.fuzz_base("small_net.pt")
    entries = [mf.Raw(i.filename, zipfile.ZipFile(io.BytesIO(ts)).read(i.filename))
               for i in zipfile.ZipFile(io.BytesIO(ts)).infolist()]  # fmt: skip
    evil = mf.evil_pickle(folder / "PWNED-zip", protocol=0)
    k = next(i for i, e in enumerate(entries) if e.name.endswith("/data.pkl"))
    name = entries[k].name
    w("duplicate.pt", mf.forge_zip([*entries, mf.Raw(name, evil)]))
    w("renamed.pt", mf.forge_zip([*entries, mf.Raw(name.upper(), evil)]))
    local = [*entries[:k], mf.Raw(name, evil, local_name=name + "x"), *entries[k + 1 :]]
    w("local_name.pt", mf.forge_zip(local))
    w("overlap.pt", mf.overlapping(entries, k, evil))
    w("prefix.pt", mf.forge_zip(entries, prefix=mf.local_entry(name, evil)))
    pt2 = mf.fuzz_base("small_net.pt2")
    w("p0.pt2", mf.rewrite_zip(pt2, {"data/sample_inputs/model.pt": evil}))
    w("pickled_weight.pt2", mf.pickled_weight_pt2())
    w("extra.pt2", mf.rewrite_zip(pt2, {}, add={"extra/notes.txt": b"hello"}))
    w("weight_size.pt2", mf.rewrite_zip(pt2, {"data/weights/weight_0": b"\0" * 104}))
    w("storage_size.pt", mf.rewrite_zip(ts, {"data/0": b"\0" * 104}))
    legacy = io.BytesIO()
    import torch

    torch.save(mf.small_net().state_dict(), legacy, _use_new_zipfile_serialization=False)
    w("legacy.pth", legacy.getvalue())
    graph_name = next(
        n for n in zipfile.ZipFile(io.BytesIO(pt2)).namelist() if n.endswith("models/model.json")
    )
    graph = json.loads(zipfile.ZipFile(io.BytesIO(pt2)).read(graph_name))
    graph["graph_module"]["graph"]["nodes"][1]["target"] = "torch.os.system"
    w("target.pt2", mf.rewrite_zip(pt2, {"models/model.json": json.dumps(graph).encode()}))
    graph = json.loads(zipfile.ZipFile(io.BytesIO(pt2)).read(graph_name))
    sig = graph["graph_module"]["module_call_graph"][0]["signature"]
    spec = json.loads(sig["in_spec"])
    enum = {"__enum__": True, "fqn": "some_module:X", "name": "a"}
    spec[1]["children_spec"][1]["context"] = json.dumps([enum])
    sig["in_spec"] = json.dumps(spec)
    w("import.pt2", mf.rewrite_zip(pt2, {"models/model.json": json.dumps(graph).encode()}))
    dyn = io.BytesIO()
    torch.export.save(
        torch.export.export(
            mf.small_net(),
            (mf.example().expand(2, 2).clone(),),
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        ),
        dyn,
    )
    text = zipfile.ZipFile(io.BytesIO(dyn.getvalue())).read(graph_name).decode()
    code = "__import__('os').system('touch PWNED')"  # never runs; path-free for the doc
    text = text.replace('"expr_str": "Symbol(', f'"expr_str": "{code} or Symbol(', 1)
    w("sympify.pt2", mf.rewrite_zip(dyn.getvalue(), {"models/model.json": text.encode()}))
    if mf.onnx_available():
        w("external_pipe.onnx", mf.onnx_external_bytes("weights.bin"))
        if not (folder / "weights.bin").exists():
            os.mkfifo(folder / "weights.bin")
    _walk_files(folder)
    return folder


def _walk_files(folder: Path) -> None:
    """Start-point files of the ``walk`` rows (``--at FILE``)."""
    import numpy as np
    import torch

    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}, 2], dtype=object), allow_pickle=True)
    mf.write(folder / "object.npy", buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.array([0.25, float("nan")]))
    mf.write(folder / "nan.npy", buf.getvalue())
    buf = io.BytesIO()
    torch.save({"x0": torch.ones(2)}, buf)
    mf.write(folder / "dict.pt", buf.getvalue())
    mf.write(folder / "corrupt.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    mf.write(folder / "words.txt", "0.25, 0.25\nhello\n")
    buf = io.BytesIO()
    np.save(buf, np.full(5000, 0.01))
    mf.write(folder / "big.npy", buf.getvalue())
    from PIL import Image

    for name, shape in (("d28.png", (28, 28)), ("d20.png", (20, 20)), ("rgb28.png", (28, 28, 3))):
        buf = io.BytesIO()
        Image.fromarray(np.full(shape, 40, dtype=np.uint8)).save(buf, format="PNG")
        mf.write(folder / name, buf.getvalue())


def _flip_member(data: bytes, member: str) -> bytes:
    import struct
    import zipfile

    info = next(
        i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename.endswith(member)
    )
    head = data[info.header_offset + 26 : info.header_offset + 30]
    name_len, extra_len = struct.unpack("<HH", head)
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    b = bytearray(data)
    b[at] ^= 0xFF
    return bytes(b)


def _existing(name: str, text: str = "old contents\n") -> Callable[[Path, Path], None]:
    def setup(out: Path, files: Path) -> None:
        (out / name).write_text(text)

    return setup


def _afile(out: Path, files: Path) -> None:
    (out / "afile").write_text("x")


def _checkpoint_with_other_step(out: Path, files: Path) -> None:
    import fiberscope as fs
    from fiberscope.cli.durable import model_identity
    from fiberscope.errors import TraceInterrupted
    from fiberscope.io.checkpoint import CheckpointWriter

    calls = iter(range(10**6))
    try:
        fs.trace(
            fs.load_model("surface_1"),
            [0.25, 0.25],
            step=0.0125,
            stop=lambda: next(calls) >= 20,
        )
    except TraceInterrupted as exc:
        meta = {"model_identity": model_identity("surface_1", None, None, None)}
        CheckpointWriter(out / "t.csv", meta=meta).save(exc.snapshot)


@contextlib.contextmanager
def _no_cuda(out: Path, files: Path) -> object:
    """A machine without CUDA, wherever the catalog runs (the GPU machines have one)."""
    import torch

    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: False  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.cuda.is_available = real  # type: ignore[assignment]


@contextlib.contextmanager
def _budget_8gib(out: Path, files: Path) -> object:
    """A fixed memory budget, so the documented line does not depend on the machine."""
    old = os.environ.get("FIBERSCOPE_MEMORY_BUDGET")
    os.environ["FIBERSCOPE_MEMORY_BUDGET"] = str(8 * 2**30)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("FIBERSCOPE_MEMORY_BUDGET", None)
        else:
            os.environ["FIBERSCOPE_MEMORY_BUDGET"] = old


def _paper_csv(name: str) -> Callable[[Path, Path], None]:
    def setup(out: Path, files: Path) -> None:
        from fiberscope.models.registry import resolve_path

        (out / name).write_bytes(resolve_path("surface_1").read_bytes())

    return setup


def _arch_file(out: Path, files: Path) -> None:
    (out / "arch.py").write_text("def Small():\n    raise RuntimeError('never imported')\n")


def _fifo(out: Path, files: Path) -> None:
    os.mkfifo(out / "t.csv")


def _fifo_start(out: Path, files: Path) -> None:
    os.mkfifo(out / "x0.npy")


def _png_start(out: Path, files: Path) -> None:
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((2, 1), 64, dtype=np.uint8)).save(out / "x0.png")


def _locked(out: Path, files: Path) -> contextlib.AbstractContextManager:
    """Another fiberscope run owns <out>/t.csv (its lock is held by this process)."""
    from fiberscope.io.paths import plan_outputs

    return plan_outputs(out / "t.csv").locked()


@contextlib.contextmanager
def _ascii_locale(out: Path, files: Path):
    real = sys.getfilesystemencoding
    sys.getfilesystemencoding = lambda: "ascii"
    try:
        yield
    finally:
        sys.getfilesystemencoding = real


@contextlib.contextmanager
def _disk_full(out: Path, files: Path):
    """The disk fills up when the final result is written (the temporary file of t.csv)."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if re.fullmatch(
            r"\.t\.csv\.[a-z0-9_]+\.tmp", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        ):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    os.fsync = fsync
    try:
        yield
    finally:
        os.fsync = real


@contextlib.contextmanager
def _store_disk_full(out: Path, files: Path):
    """The disk fills up when a job writes its second item file (item-00000001.parquet)."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if "item-00000001" in os.path.basename(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    os.fsync = fsync
    try:
        yield
    finally:
        os.fsync = real


# ---------------------------------------------------------------- dataset jobs (fiberscope run)
JOB = """verb = "trace"
model = "{model}"
inputs = "{inputs}"
store = "store"
{extra}
[options]
step = {step}
bounds = [-1.0, 1.0]
{options}"""


def _job(
    *,
    inputs: str = "pts.npy",
    extra: str = "workers = 0",
    step: str = "0.05",
    options: str = "",
    model: str = "surface_1",
) -> Callable[[Path, Path], None]:
    """A trace job on two starts of surface_1 (in <out>/job.toml, inputs <out>/pts.npy)."""

    def setup(out: Path, files: Path) -> None:
        import numpy as np

        np.save(out / "pts.npy", np.array([[0.25, 0.25], [0.5, -0.3]]))
        text = JOB.format(inputs=inputs, extra=extra, step=step, options=options, model=model)
        (out / "job.toml").write_text(text)

    return setup


def _job_text(text: str) -> Callable[[Path, Path], None]:
    def setup(out: Path, files: Path) -> None:
        (out / "job.toml").write_text(text)

    return setup


def _job_folder(bad: bytes | None = None, shape: tuple[int, ...] | None = None):
    """A job on the folder <out>/pts of three .npy starts, the second one bad."""

    def setup(out: Path, files: Path) -> None:
        import numpy as np

        _job(inputs="pts")(out, files)
        (out / "pts.npy").unlink()
        (out / "pts").mkdir()
        for name, x in (("a", [0.25, 0.25]), ("b", [0.5, -0.3]), ("c", [-0.6, 0.1])):
            np.save(out / "pts" / f"{name}.npy", np.array(x))
        if bad is not None:
            (out / "pts" / "b.npy").write_bytes(bad)
        if shape is not None:
            np.save(out / "pts" / "b.npy", np.full(shape, 0.25))

    return setup


def _job_pipes(out: Path, files: Path) -> None:
    """Named pipes where files are expected: the item b.npy, the inputs pipe.npy, pipe.toml."""
    _job_folder()(out, files)
    (out / "pts" / "b.npy").unlink()
    os.mkfifo(out / "pts" / "b.npy")
    os.mkfifo(out / "pipe.npy")
    os.mkfifo(out / "pipe.toml")
    (out / "job-pipe.toml").write_text(
        (out / "job.toml").read_text().replace('inputs = "pts"', 'inputs = "pipe.npy"')
    )


def _store_of_other_step(out: Path, files: Path) -> None:
    """The store of this job run with step 0.05; the job file now says 0.1."""
    from fiberscope.jobs import run_many

    _job(step="0.1")(out, files)
    run_many("surface_1", out / "pts.npy", "trace", store=out / "store", workers=0, step=0.05,
             bounds=[-1.0, 1.0])  # fmt: skip


def _store_with_edited_manifest(out: Path, files: Path) -> None:
    """The store of this job, whose manifest was edited by hand (still valid JSON)."""
    import json

    from fiberscope.jobs import run_many

    _job()(out, files)
    run_many("surface_1", out / "pts.npy", "trace", store=out / "store", workers=0, step=0.05,
             bounds=[-1.0, 1.0])  # fmt: skip
    manifest = json.loads((out / "store" / "manifest.json").read_text())
    manifest["items"][0]["attempts"] = "two"
    (out / "store" / "manifest.json").write_text(json.dumps(manifest))


def _store_of_changed_inputs(out: Path, files: Path) -> None:
    """The store of this job on the array pts.npy, whose rows were changed since."""
    import numpy as np

    from fiberscope.jobs import run_many

    _job()(out, files)
    run_many("surface_1", out / "pts.npy", "trace", store=out / "store", workers=0, step=0.05,
             bounds=[-1.0, 1.0])  # fmt: skip
    np.save(out / "pts.npy", np.array([[0.25, 0.25], [0.5, -0.31]]))


def _store_with_a_pipe(name: str) -> Callable[[Path, Path], None]:
    def setup(out: Path, files: Path) -> None:
        _job()(out, files)
        (out / "store").mkdir()
        os.mkfifo(out / "store" / name)

    return setup


def _store_of_other_version(out: Path, files: Path) -> None:
    import json

    _job()(out, files)
    (out / "store").mkdir()
    manifest = {"format": "fiberscope-store", "store_format": 1, "fiberscope_version": "0.0.1"}
    (out / "store" / "manifest.json").write_text(json.dumps(manifest))


def _not_a_store(out: Path, files: Path) -> None:
    _job()(out, files)
    (out / "store").mkdir()
    (out / "store" / "notes.txt").write_text("my notes\n")


@contextlib.contextmanager
def _store_locked(out: Path, files: Path):
    """Another fiberscope run is writing <out>/store (this process holds its lock)."""
    from fiberscope.jobs.store import _lock

    _job()(out, files)
    (out / "store").mkdir()
    fd = _lock(out / "store" / ".lock")
    try:
        yield
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            (out / "store" / ".lock").unlink()


JOBFILE = "{out}/job.toml"


@dataclass(frozen=True)
class Case:
    """One catalog row: a CLI call with one thing wrong."""

    id: str
    category: str
    what: str
    args: tuple[str, ...]
    expect: str
    code: int = 2
    setup: Callable[[Path, Path], None] | None = None
    out: str | None = "{out}/t.csv"
    context: Callable[[Path, Path], contextlib.AbstractContextManager] | None = None
    keeps: tuple[str, ...] = ()


def C(
    id,
    category,
    what,
    args,
    expect,
    code=2,
    setup=None,
    out="{out}/t.csv",
    context=None,  # noqa: N802
    keeps=(),
) -> Case:
    return Case(id, category, what, tuple(args.split("\x1f") if isinstance(args, str) else args),
                expect, code, setup, out, context, tuple(keeps))  # fmt: skip


S1 = ["trace", "surface_1", "--at", "0.25,0.25"]
M = "{files}/models.py:"


def T(model: str, *rest: str, at: str = "0.25,0.25") -> list[str]:  # noqa: N802
    return ["trace", model, "--at", at, *rest]


def WK(model: str, *rest: str, at: str = "0.25,0.25") -> list[str]:  # noqa: N802
    return ["walk", model, "--at", at, *rest]


WOUT = "{out}/w.npz"


CASES: list[Case] = [
    # ---------------------------------------------------------------- start point
    C(
        "start-too-few",
        "start point",
        "fewer coordinates than the model has inputs",
        T("surface_1", at="0.25"),
        r"1 coordinates but the model takes 2 inputs",
    ),
    C(
        "start-too-many",
        "start point",
        "more coordinates than the model has inputs",
        T("surface_1", at="0.25,0.25,0.1"),
        r"3 coordinates but the model takes 2",
    ),
    C(
        "start-nan",
        "start point",
        "a NaN coordinate",
        T("surface_1", at="0.25,nan"),
        r"non-finite coordinate \(nan at index 1\)",
    ),
    C(
        "start-inf",
        "start point",
        "an infinite coordinate",
        T("surface_1", at="-inf,0.25"),
        r"non-finite coordinate \(-inf at index 0\)",
    ),
    C(
        "start-not-a-number",
        "start point",
        "a coordinate that is not a number",
        T("surface_1", at="0.25,abc"),
        r"'abc' is not a number",
    ),
    C(
        "start-empty",
        "start point",
        "an empty --at",
        T("surface_1", at=""),
        r"expected comma-separated numbers",
    ),
    C(
        "start-missing",
        "start point",
        "no --at at all",
        ["trace", "surface_1"],
        r"Missing option '--at'",
    ),
    C(
        "start-singular",
        "start point",
        "a singular start (rank J < m, here grad N = 0)",
        T(M + "radial", at="0,0"),
        r"singular point of the network: its Jacobian is zero",
    ),
    # ---------------------------------------------------------------- bounds
    C(
        "bounds-outside",
        "bounds",
        "the start lies outside the box",
        [*S1, "--bounds=0.3,1"],
        r"outside the bounds on axis 0",
    ),
    C(
        "bounds-empty-box",
        "bounds",
        "lower bound above the upper bound",
        [*S1, "--bounds=1,-1"],
        r"empty box on axis 0",
    ),
    C(
        "bounds-zero-width",
        "bounds",
        "lower bound equal to the upper bound",
        [*S1, "--bounds=0.25,0.25"],
        r"empty box on axis 0",
    ),
    C(
        "bounds-three-numbers",
        "bounds",
        "three numbers for one axis",
        [*S1, "--bounds=-1,1,2"],
        r"LO,HI for one axis, got 3 numbers",
    ),
    C(
        "bounds-wrong-count",
        "bounds",
        "--bounds given once per axis, but for 3 axes",
        [*S1, "--bounds=-1,1", "--bounds=-1,1", "--bounds=-1,1"],
        r"given 3 times but the point has 2 coordinates",
    ),
    C(
        "bounds-nan",
        "bounds",
        "a NaN bound",
        [*S1, "--bounds=nan,1"],
        r"the lower bound contains NaN",
    ),
    # ---------------------------------------------------------------- step and options
    C(
        "step-zero",
        "step and options",
        "zero step",
        [*S1, "--step", "0"],
        r"step must be a positive finite number, got 0",
    ),
    C(
        "step-negative",
        "step and options",
        "negative step",
        [*S1, "--step", "-0.01"],
        r"step must be a positive finite number",
    ),
    C(
        "step-nan",
        "step and options",
        "NaN step",
        [*S1, "--step", "nan"],
        r"step must be a positive finite number, got nan",
    ),
    C(
        "step-inf",
        "step and options",
        "infinite step",
        [*S1, "--step", "inf"],
        r"step must be a positive finite number, got inf",
    ),
    C(
        "step-larger-than-box",
        "step and options",
        "a step larger than the box",
        [*S1, "--step", "5", "--bounds=-1,1"],
        r"step 5 is larger than the box",
    ),
    C(
        "step-huge",
        "step and options",
        "a huge step and no box (would end as a false singular stop)",
        [*S1, "--step", "1e9"],
        r"step 1e\+09 is huge for inputs of size 1",
    ),
    C(
        "step-denormal",
        "step and options",
        "a step that underflows (5e-324): halving it could never stop",
        [*S1, "--step", "5e-324", "--max-steps", "2"],
        r"step 4\.94066e-324 is below the float64 spacing of the start",
    ),
    C(
        "step-below-spacing",
        "step and options",
        "a step below the float spacing of the start (cannot move the point)",
        [*S1, "--step", "1e-17"],
        r"step 1e-17 is below the float64 spacing of the start .* give a step of at least",
    ),
    C(
        "model-output-grows",
        "model",
        "a model whose output size changes during the run",
        ["trace", "{files}/models.py:growing", "--at", "0.25,0.25", "--step", "0.05"],
        r"the model's output size changed during the run: 1 values at the start, 2 now",
    ),
    C(
        "model-sys-exit",
        "model",
        "a model that calls sys.exit during the run",
        ["trace", "{files}/models.py:quitter", "--at", "0.25,0.25", "--step", "0.05"],
        r"the model called sys\.exit\(0\) while being evaluated",
    ),
    C(
        "model-base-exception",
        "model",
        "a model that raises a BaseException subclass (not an Exception) during the run",
        ["trace", "{files}/models.py:base_boom", "--at", "0.25,0.25", "--step", "0.05"],
        r"the model raised Boom: boom while being evaluated, an exception that is not an "
        r"Exception",
    ),
    C(
        "preimage-levels-huge",
        "resources",
        "preimage --levels 1000000000 (more memory than the machine has)",
        [
            "preimage",
            "surface_1",
            "--at",
            "0.2,0.2",
            "--interval",
            "0.142,0.152",
            "--bounds=-1,1",
            "--levels",
            "1000000000",
        ],
        r"1000000000 levels would need up to .* GiB of memory, more than the .* a run may use",
        context=_budget_8gib,
    ),
    C(
        "preimage-resolution-huge",
        "resources",
        "preimage --resolution 1000000 (an 8 TB grid)",
        [
            "preimage",
            "surface_1",
            "--at",
            "0.2,0.2",
            "--interval",
            "0.142,0.152",
            "--bounds=-1,1",
            "--resolution",
            "1000000",
        ],
        r"a 1000000x1000000 grid would need up to .* GiB of memory.*use a smaller --resolution",
        context=_budget_8gib,
    ),
    C(
        "sample-n-huge",
        "resources",
        "sample -n 1000000000",
        ["sample", "surface_1", "--at", "0.25,0.25", "-n", "1000000000"],
        r"1000000000 samples would need up to .* GiB of memory.*ask for fewer samples",
        context=_budget_8gib,
    ),
    C(
        "device-unknown",
        "step and options",
        "a --device that is not a device",
        [*S1, "--device", "gpu0"],
        r"--device 'gpu0' is not a device; use cpu, cuda",
    ),
    C(
        "device-no-cuda",
        "step and options",
        "--device cuda on a machine without CUDA",
        [*S1, "--device", "cuda"],
        r"--device cuda: this machine has no CUDA device; use --device cpu",
        context=_no_cuda,
    ),
    C(
        "dtype-unknown",
        "step and options",
        "an unknown --dtype",
        [*S1, "--dtype", "float8"],
        r"unknown dtype 'float8'; use float64, float32, bfloat16 or float16",
    ),
    C(
        "max-steps-zero",
        "step and options",
        "max_steps 0",
        [*S1, "--max-steps", "0"],
        r"max_steps must be a positive integer, got 0",
    ),
    C(
        "max-steps-negative",
        "step and options",
        "negative max_steps",
        [*S1, "--max-steps", "-5"],
        r"max_steps must be a positive integer, got -5",
    ),
    C(
        "max-steps-fraction",
        "step and options",
        "a fractional max_steps",
        [*S1, "--max-steps", "1.5"],
        r"Invalid value for '--max-steps'",
    ),
    C(
        "tol-zero",
        "step and options",
        "zero tolerance",
        [*S1, "--tol", "0"],
        r"tol must be a positive finite number",
    ),
    C(
        "method-unknown",
        "step and options",
        "an unknown method",
        [*S1, "--method", "rk4"],
        r"unknown method 'rk4'",
    ),
    C(
        "direction-unknown",
        "step and options",
        "an unknown direction",
        [*S1, "--direction", "up"],
        r"unknown direction 'up'",
    ),
    C(
        "paper-box-unknown",
        "step and options",
        "an unknown paper-mode box variant",
        [*S1, "--method", "paper", "--paper-box", "wrap"],
        r"unknown paper_box 'wrap'",
    ),
    C(
        "option-unknown",
        "step and options",
        "a misspelt option",
        [*S1, "--stepp", "0.1"],
        r"No such option: --stepp",
    ),
    # ---------------------------------------------------------------- model files
    C(
        "model-missing",
        "model file",
        "a model file that does not exist",
        T("{files}/nothere.csv"),
        r"no such model file: .*nothere\.csv",
    ),
    C(
        "model-directory",
        "model file",
        "a directory instead of a file",
        T("{files}/adir.onnx"),
        r"is a directory, not a model file",
    ),
    C(
        "model-unknown-suffix",
        "model file",
        "an unknown suffix",
        T("{files}/model.weights"),
        r"unknown suffix '\.weights'",
    ),
    C(
        "format-unknown",
        "model file",
        "an unknown --format",
        [*T("{files}/model.weights"), "--format", "tflite"],
        r"unknown model format 'tflite'",
    ),
    C(
        "format-forced-mismatch",
        "model file",
        "--format that does not match the content",
        [*T("{files}/bad.csv"), "--format", "onnx"],
        r"not an ONNX model: it looks like a text",
    ),
    C(
        "format-pickle-forced",
        "model file",
        "--format pickle on a file that is not one (before: 'surface_1.csv is a pickle')",
        [*S1, "--format", "pickle"],
        r"--format pickle refused for surface_1\.csv: unpickling runs arbitrary code, so "
        r"fiberscope never loads pickles; leave --format out",
    ),
    C(
        "csv-bad-number",
        "model file",
        "paper CSV with a word where a weight should be",
        T("{files}/bad.csv"),
        r"line 3: the weight line contains 'oops'",
    ),
    C(
        "csv-truncated",
        "model file",
        "truncated paper CSV",
        T("{files}/truncated.csv"),
        r"truncated: 2 layers need 7 lines, found 3",
    ),
    C("csv-empty", "model file", "empty paper CSV", T("{files}/empty.csv"), r"is empty"),
    C(
        "csv-nan-weight",
        "model file",
        "paper CSV with a NaN weight",
        T("{files}/nan.csv"),
        r"line 3: the weight line contains NaN or inf",
    ),
    C(
        "csv-binary",
        "model file",
        "a .csv that holds binary data (an ONNX file)",
        T("{files}/binary.csv"),
        r"is not a text file",
    ),
    C(
        "onnx-empty",
        "model file",
        "an empty .onnx",
        T("{files}/empty.onnx"),
        r"not an ONNX model: it looks like an empty file",
    ),
    C(
        "onnx-truncated",
        "model file",
        "a truncated .onnx",
        T("{files}/truncated.onnx"),
        r"not a valid ONNX model \(truncated or corrupt protobuf\)",
    ),
    C(
        "onnx-garbage",
        "model file",
        "random bytes named .onnx",
        T("{files}/garbage.onnx"),
        r"not a valid ONNX model",
    ),
    C(
        "onnx-is-zip",
        "model file",
        "a .onnx that is a zip archive (a .pt2)",
        T("{files}/zip.onnx"),
        r"not an ONNX model: it looks like a zip archive",
    ),
    C(
        "onnx-is-text",
        "model file",
        "a .onnx that is a text file",
        T("{files}/csv.onnx"),
        r"not an ONNX model: it looks like a text file",
    ),
    C(
        "onnx-unsupported-op",
        "model file",
        "an operator onnx2torch cannot convert",
        T("{files}/custom.onnx", at="0.3,-0.2"),
        r"onnx2torch cannot convert it",
    ),
    C(
        "onnx-two-outputs",
        "model file",
        "an ONNX graph with two outputs",
        T("{files}/two_outputs.onnx", at="0.3,-0.2"),
        r"has 2 outputs \(y, a\)",
    ),
    C(
        "onnx-two-inputs",
        "model file",
        "an ONNX graph with two inputs",
        T("{files}/two_inputs.onnx", at="0.3,-0.2"),
        r"has 2 inputs \(x, x2\)",
    ),
    C(
        "onnx-arch",
        "model file",
        "--arch with a complete model",
        [*T("{files}/good.onnx", at="0.3,-0.2"), "--arch", "model_files:small_net"],
        r"--arch is only used with weights files",
    ),
    C(
        "pt2-truncated",
        "model file",
        "a truncated .pt2",
        T("{files}/truncated.pt2"),
        r"truncated or corrupt zip archive \(its end record is missing\)",
    ),
    C(
        "pt2-corrupt",
        "model file",
        "a .pt2 whose central directory is damaged (Python's zipfile lists 6 of its 13 "
        "entries without complaint)",
        T("{files}/corrupt.pt2"),
        r"corrupt zip archive \(its central directory lists 6 entries, its end record 13\)",
    ),
    C(
        "pt2-is-torchscript",
        "model file",
        "a .pt2 that is TorchScript",
        T("{files}/torchscript.pt2"),
        r"TorchScript archive, not torch\.export",
    ),
    C(
        "pt-is-text",
        "model file",
        "a .pt that is text",
        T("{files}/text.pt"),
        r"not a TorchScript or PyTorch file: it looks like a text file",
    ),
    C(
        "pt-corrupt",
        "model file",
        "a TorchScript file with a damaged member",
        T("{files}/crc.pt"),
        r"member .*data\.pkl fails its checksum",
    ),
    C(
        "pt-state-dict-no-arch",
        "model file",
        "a state_dict without --arch",
        T("{files}/state_dict.pt"),
        r"is a state_dict \(weights only\): give the architecture",
    ),
    C(
        "safetensors-no-arch",
        "model file",
        "safetensors weights without --arch",
        T("{files}/weights.safetensors"),
        r"holds only weights: .* names its architecture as 'mypkg\.nets:Small'",
    ),
    C(
        "safetensors-truncated",
        "model file",
        "truncated safetensors",
        [*T("{files}/truncated.safetensors"), "--arch", "model_files:small_net"],
        r"is a corrupt safetensors file",
    ),
    C(
        "safetensors-bad-header",
        "model file",
        "safetensors with a malformed header",
        [*T("{files}/header.safetensors"), "--arch", "model_files:small_net"],
        r"safetensors header is not valid JSON",
    ),
    C(
        "safetensors-wrong-arch",
        "model file",
        "weights that do not fit the architecture",
        [*T("{files}/weights.safetensors"), "--arch", M + "wider_arch"],
        r"weight 0\.weight has shape \(6, 2\) but the architecture expects \(7, 2\)",
    ),
    C(
        "safetensors-nan-weights",
        "model file",
        "safetensors with a NaN weight",
        [*T("{files}/nan.safetensors"), "--arch", "model_files:small_net"],
        r"weight 0\.bias contains NaN or inf",
    ),
    C(
        "arch-missing-module",
        "model file",
        "--arch naming a module that does not exist",
        [*T("{files}/weights.safetensors"), "--arch", "nosuchpkg.nets:Small"],
        r"cannot import module 'nosuchpkg\.nets'",
    ),
    C(
        "spec-missing-attribute",
        "model file",
        "a Python spec naming a missing attribute",
        T(M + "nothere"),
        r"has no attribute 'nothere'",
    ),
    C(
        "spec-import-error",
        "model file",
        "a Python model file that fails to import",
        T("{files}/broken.py:model"),
        r"raised ImportError: this module needs a package",
    ),
    C(
        "spec-missing-file",
        "model file",
        "a Python spec naming a missing file",
        T("{files}/nofile.py:model"),
        r"no such Python file",
    ),
    C(
        "model-fifo",
        "model file",
        "a named pipe (mkfifo) as the model file: refused at once instead of blocking",
        T("{files}/pipe.onnx"),
        r"pipe\.onnx is a named pipe \(FIFO\), not a regular file",
    ),
    C(
        "model-device",
        "model file",
        "a device (a link to /dev/zero) as the model file",
        T("{files}/device.pt2"),
        r"device\.pt2 is a character device, not a regular file",
    ),
    C(
        "arch-fifo",
        "model file",
        "a named pipe as the --arch file",
        [*T("{files}/weights.safetensors"), "--arch", "{files}/pipe_arch.py:build"],
        r"pipe_arch\.py is a named pipe \(FIFO\), not a regular file; a Python file",
    ),
    C(
        "onnx-external-fifo",
        "model file",
        "ONNX external data that is a named pipe",
        T("{files}/external_pipe.onnx", at="0.3,-0.2"),
        r"weights\.bin is a named pipe \(FIFO\), not a regular file; an external data file",
    ),
    C(
        "spec-exits",
        "model file",
        "a Python model file that calls sys.exit(0) at import (would end the run silently)",
        T("{files}/exits.py:net"),
        r"exits\.py called sys\.exit\(0\); a model or architecture may not end the program",
    ),
    C(
        "spec-factory-exits",
        "model file",
        "an --arch factory that calls sys.exit(0)",
        [*T("{files}/weights.safetensors"), "--arch", "{files}/exits_later.py:build"],
        r"exits_later\.py:build\(\) called sys\.exit\(0\)",
    ),
    C(
        "model-old-bundled-name",
        "model file",
        "a bundled network by its old file name (each has one name now)",
        T("surface_1_good_weights.csv"),
        r"thermo_softplus, binary, mnist_cnn\)$",
    ),
    C(
        "pt2-unexpected-entry",
        "model file",
        "a .pt2 with an entry torch.export.save does not write for one model (extra/)",
        T("{files}/extra.pt2"),
        r"contains an entry 'extra/notes\.txt' that fiberscope does not accept",
    ),
    C(
        "pt2-weight-size",
        "model file",
        "a .pt2 whose raw weight entry is larger than its tensor",
        T("{files}/weight_size.pt2"),
        r"data/weights/weight_0 holds 104 bytes but its tensors use 96",
    ),
    C(
        "pt-storage-size",
        "model file",
        "a TorchScript storage entry larger than its pickle declares",
        T("{files}/storage_size.pt"),
        r"storage data/0 holds 104 bytes but data\.pkl declares 96",
    ),
    C(
        "pt-legacy-format",
        "model file",
        "a state_dict in torch.save's pre-1.6 format",
        [*T("{files}/legacy.pth"), "--arch", "model_files:small_net"],
        r"uses torch\.save's old format \(before torch 1\.6\)",
    ),
    # ---------------------------------------------------------------- hostile files
    C(
        "hostile-zip-duplicate",
        "hostile file",
        "a TorchScript archive holding data.pkl twice (the second a code-running pickle)",
        T("{files}/duplicate.pt"),
        r"contains the entry 'archive/data\.pkl' twice; zip readers disagree",
    ),
    C(
        "hostile-zip-renamed",
        "hostile file",
        "a second data.pkl whose name differs only in case",
        T("{files}/renamed.pt"),
        r"contains the entry 'ARCHIVE/DATA\.PKL' twice \(also as 'archive/data\.pkl'\)",
    ),
    C(
        "hostile-zip-local-name",
        "hostile file",
        "an entry whose local header names another file than the central directory",
        T("{files}/local_name.pt"),
        r"entry 'archive/data\.pkl' is called b'archive/data\.pklx' in its local header",
    ),
    C(
        "hostile-zip-overlap",
        "hostile file",
        "an entry hidden inside another entry's bytes",
        T("{files}/overlap.pt"),
        r"overlap; refusing an archive whose entries alias each other",
    ),
    C(
        "hostile-zip-prefix",
        "hostile file",
        "a second data.pkl hidden in front of the entries the central directory lists",
        T("{files}/prefix.pt"),
        r"has data in front of its first zip entry",
    ),
    C(
        "hostile-pt2-pickle-protocol-0",
        "hostile file",
        "a .pt2 whose sample inputs are a protocol-0 pickle (no 0x80 header to recognise)",
        T("{files}/p0.pt2"),
        r"data/sample_inputs/model\.pt is a pickled Python object \(it refers to io\.open\)",
    ),
    C(
        "hostile-pt2-pickled-weight",
        "hostile file",
        "a .pt2 whose weights config says a weight is a pickle",
        T("{files}/pickled_weight.pt2"),
        r"weight/constant '0\.weight' is stored as a pickled object",
    ),
    C(
        "hostile-pt2-sympify",
        "hostile file",
        "a .pt2 shape expression that sympy.sympify would run as Python",
        T("{files}/sympify.pt2"),
        r"the shape expression .* calls something other than a shape function",
    ),
    C(
        "hostile-pt2-import",
        "hostile file",
        "a .pt2 tree spec naming a module, which torch's decoder would import (running it)",
        T("{files}/import.pt2"),
        r"loading it would import the module 'some_module', which can run arbitrary code",
    ),
    C(
        "hostile-pt2-target",
        "hostile file",
        "a .pt2 graph that calls torch.os.system",
        T("{files}/target.pt2"),
        r"the graph calls 'torch\.os\.system', which is not a torch operator",
    ),
    C(
        "hostile-pickled-module",
        "hostile file",
        "torch.save(model): a pickled nn.Module",
        T("{files}/pickled_module.pt"),
        r"pickled Python object \(it refers to torch\.nn\.modules\.container\.Sequential",
    ),
    C(
        "hostile-pickle-pt",
        "hostile file",
        "a .pt whose pickle runs code when loaded",
        T("{files}/evil.pt"),
        r"refers to io\.open\); loading it would run arbitrary code",
    ),
    C(
        "hostile-raw-pickle",
        "hostile file",
        "a raw pickle named .pth that runs code",
        T("{files}/evil_raw.pth"),
        r"refers to io\.open\)",
    ),
    C(
        "hostile-pkl",
        "hostile file",
        "a .pkl file",
        T("{files}/model.pkl"),
        r"is a pickle; unpickling runs arbitrary code, so fiberscope never loads pickles",
    ),
    C(
        "hostile-pt2-pickle",
        "hostile file",
        "a .pt2 whose sample inputs are a code-running pickle (torch.export.load would run it)",
        T("{files}/evil.pt2"),
        r"sample_inputs/model\.pt is a pickled Python object",
    ),
    C(
        "hostile-pt2-native",
        "hostile file",
        "a .pt2 carrying compiled AOTInductor code",
        T("{files}/aoti.pt2"),
        r"contains compiled AOTInductor code",
    ),
    C(
        "hostile-torchscript",
        "hostile file",
        "a TorchScript archive with a foreign pickle global",
        T("{files}/evil_torchscript.pt"),
        r"refers to io\.open, which TorchScript never",
    ),
    C(
        "hostile-zip-bomb",
        "hostile file",
        "a zip bomb",
        T("{files}/bomb.pt"),
        r"refusing a possible zip bomb",
    ),
    C(
        "hostile-onnx-traversal",
        "hostile file",
        "ONNX external data outside the model's folder",
        T("{files}/traversal.onnx"),
        r"points to external data '\.\./\.\./etc/passwd' outside",
    ),
    # ---------------------------------------------------------------- model behaviour
    C(
        "model-raises",
        "model behaviour",
        "a model that raises",
        T(M + "boom"),
        r"the model raised ZeroDivisionError",
    ),
    C(
        "model-not-a-tensor",
        "model behaviour",
        "a model that returns a float",
        T(M + "notensor"),
        r"returned float, not a torch\.Tensor",
    ),
    C(
        "model-nan",
        "model behaviour",
        "a model that returns NaN",
        T(M + "nan"),
        r"returned NaN or inf at the start point",
    ),
    C(
        "model-integer-output",
        "model behaviour",
        "a model that returns integers",
        T(M + "intout"),
        r"returned a torch\.int64 tensor",
    ),
    C(
        "model-complex-output",
        "model behaviour",
        "a model that returns complex numbers",
        T(M + "complexout"),
        r"returned a torch\.complex128 tensor",
    ),
    C(
        "model-empty-output",
        "model behaviour",
        "a model that returns an empty tensor",
        T(M + "empty"),
        r"returned an empty tensor",
    ),
    C(
        "model-detached",
        "model behaviour",
        "a non-differentiable model (detaches its input)",
        T(M + "detached"),
        r"does not depend differentiably on its input",
    ),
    C(
        "model-numpy",
        "model behaviour",
        "a model that goes through NumPy",
        T(M + "numpyish"),
        r"does not depend differentiably on its input",
    ),
    C(
        "model-rounds",
        "model behaviour",
        "a model that rounds its input (zero Jacobian)",
        T(M + "rounded"),
        r"Jacobian is zero there",
    ),
    C(
        "model-stochastic",
        "model behaviour",
        "a stochastic model (noise in forward)",
        T(M + "noisy"),
        r"the model is not deterministic",
    ),
    C(
        "model-dropout-train",
        "model behaviour",
        "dropout left on (train mode): warned, evaluated in eval mode, run completes",
        [*T(M + "Drop"), "--max-steps", "20"],
        r"^warning: the model is in training mode .* eval mode",
        code=0,
    ),
    C(
        "model-float32",
        "model behaviour",
        "a float32 model: warned about precision, run completes",
        [*T(M + "f32"), "--max-steps", "20"],
        r"^warning: the model returns torch\.float32",
        code=0,
    ),
    C(
        "model-meta-device",
        "model behaviour",
        "weights on the meta device (never loaded)",
        T(M + "meta"),
        r"weights are on the meta device",
    ),
    C(
        "model-wants-integers",
        "model behaviour",
        "a model that needs integer inputs (an embedding)",
        T(M + "embedding", at="3"),
        r"the model raised RuntimeError: Expected "
        r"tensor for argument #1 'indices'",
    ),
    C(
        "model-raises-mid-run",
        "model behaviour",
        "a model that raises part-way along the class (no partial file, no checkpoint left)",
        T(M + "midway"),
        r"the model raised RuntimeError: negative x\[0\] is not supported at \(",
    ),
    C(
        "output-dim-too-many",
        "output dimension",
        "m >= n outputs (classes are points)",
        T(M + "wide"),
        r"R\^2 -> R\^4; with m >= n the classes are points",
    ),
    C(
        "output-dim-too-few",
        "output dimension",
        "m < n - 1 outputs (classes are surfaces)",
        T(M + "radial", at="0.1,0.2,0.3"),
        r"R\^3 -> R\^1: its classes are 2-dimensional",
    ),
    # ---------------------------------------------------------------- output selection
    C(
        "output-index-range",
        "output selection",
        "an index past the model's outputs",
        [*T(M + "clf"), "--output", "logits[12]"],
        r"output 'logits\[12\]': index 12 is out of range for the model's 4 outputs",
    ),
    C(
        "output-malformed",
        "output selection",
        "a selection that does not parse",
        [*T(M + "clf"), "--output", "logits["],
        r"output 'logits\[' is not a selection",
    ),
    C(
        "output-unknown-name",
        "output selection",
        "an unknown output name",
        [*T(M + "clf"), "--output", "probz[1]"],
        r"unknown output 'probz'",
    ),
    C(
        "output-softmax-all",
        "output selection",
        "a whole softmax vector (rank K-1)",
        [*T(M + "clf"), "--output", "softmax"],
        r"all 4 softmax outputs of a row are selected",
    ),
    C(
        "output-same-class",
        "output selection",
        "logit-diff of a class with itself",
        [*T(M + "clf"), "--output", "logit-diff 1 1"],
        r"both indices name output 1",
    ),
    C(
        "output-wrong-count",
        "output selection",
        "a selection with m != n - 1 outputs",
        [*T(M + "clf"), "--output", "[0:2]"],
        r"R\^2 -> R\^2; with m >= n",
    ),
    C(
        "output-softmax-scalar",
        "output selection",
        "softmax of a single output",
        [*S1, "--output", "softmax[0]"],
        r"softmax needs a vector of at least 2 outputs",
    ),
    # ---------------------------------------------------------------- output files
    C(
        "out-exists",
        "output file",
        "an existing output without --force",
        S1,
        r"t\.csv already exists; use --force",
        setup=_existing("t.csv"),
    ),
    C(
        "out-sidecar-exists",
        "output file",
        "an existing JSON sidecar without --force",
        S1,
        r"t\.json already exists; use --force",
        setup=_existing("t.json"),
    ),
    C(
        "out-plot-exists",
        "output file",
        "an existing plot without --force",
        [*S1, "--plot", "{out}/t.png"],
        r"t\.png already exists",
        setup=_existing("t.png"),
    ),
    C(
        "out-is-directory",
        "output file",
        "-o naming a directory",
        S1,
        r"is a directory; give a file name",
        out="{out}",
    ),
    C(
        "out-folder-missing",
        "output file",
        "-o in a folder that does not exist",
        S1,
        r"folder .*missing does not exist",
        out="{out}/missing/t.csv",
    ),
    C(
        "out-parent-is-file",
        "output file",
        "-o inside a path that is a file",
        S1,
        r"afile is a file, not a folder",
        setup=_afile,
        out="{out}/afile/t.csv",
    ),
    C(
        "out-unwritable",
        "output file",
        "-o in a folder that cannot be written (even as root)",
        S1,
        r"folder /sys is not writable",
        out="/sys/fiberscope-catalog.csv",
    ),
    C(
        "out-json-result",
        "output file",
        "-o naming a .json file (the result would be its own sidecar)",
        S1,
        r"the result's JSON sidecar would be the same file; give the result a \.csv name",
        out="{out}/t.json",
    ),
    C(
        "out-plot-is-result",
        "output file",
        "--plot naming the result file",
        [*S1, "--plot", "{out}/t.csv"],
        r"--plot .*t\.csv is the same file as the result",
    ),
    C(
        "out-plot-is-sidecar",
        "output file",
        "--plot naming the JSON sidecar",
        [*S1, "--plot", "{out}/t.json"],
        r"--plot .*t\.json is the same file as the JSON sidecar",
    ),
    C(
        "out-is-model-file",
        "output file",
        "-o naming the model file itself (even with --force)",
        [*T("{out}/t.csv"), "--force"],
        r"would overwrite the model file .*t\.csv",
        setup=_paper_csv("t.csv"),
    ),
    C(
        "out-is-arch-file",
        "output file",
        "--plot naming the --arch file",
        [
            *T("{files}/weights.safetensors"),
            "--arch",
            "{out}/arch.py:Small",
            "--plot",
            "{out}/arch.py",
            "--force",
        ],
        r"would overwrite the --arch file .*arch\.py",
        setup=_arch_file,
    ),
    C(
        "out-empty",
        "output file",
        "an empty -o",
        S1,
        r"-o/--out is empty; give a file name",
        out="",
    ),
    C(
        "out-name-too-long",
        "output file",
        "an output name longer than the file system allows",
        S1,
        r"is 304 bytes long; this file system allows at most 255",
        out="{out}/" + "a" * 300 + ".csv",
    ),
    C(
        "out-derived-name-too-long",
        "output file",
        "an output name whose checkpoint stream name would be too long",
        S1,
        r"\(its checkpoint stream\): the file name .* is 258 bytes long",
        out="{out}/" + "c" * 250,
    ),
    C(
        "out-not-encodable",
        "output file",
        "a non-ASCII output name under an ASCII locale",
        S1,
        r"cannot be written under this locale's file-name encoding \(ascii\)",
        out="{out}/t\u00ebst.csv",
        context=_ascii_locale,
    ),
    C(
        "out-named-pipe",
        "output file",
        "-o naming a named pipe, with --force (only regular files are written)",
        [*S1, "--force"],
        r"t\.csv exists and is a named pipe; fiberscope writes only regular files",
        setup=_fifo,
    ),
    C(
        "out-locked",
        "output file",
        "another fiberscope run is writing the same output",
        S1,
        r"t\.csv is being written by another fiberscope run \(process <pid>\)",
        context=_locked,
    ),
    C(
        "out-disk-full",
        "output file",
        "the disk fills up at the final write: the finished run is kept in its checkpoint",
        S1,
        r"No space left on device; the finished run is kept in .*t\.csv\.ckpt .* --resume",
        context=_disk_full,
        keeps=("t.csv.ckpt", "t.csv.partial"),
    ),
    C(
        "plot-failed",
        "output file",
        "the plot fails after the result was saved (exit 3; the result is kept)",
        [*T(M + "fragile"), "--bounds=-1,1", "--plot", "{out}/t.png"],
        r"the plot .*t\.png was not written \(.*outside the training range\); the result is "
        r"saved in",
        code=3,
        keeps=("t.csv", "t.json"),
    ),
    C(
        "demo-exists",
        "output file",
        "demo with an existing file in --out-dir, without --force",
        ["demo", "--out-dir", "{out}"],
        r"class\.png already exists; use --force",
        setup=_existing("class.png"),
        out=None,
    ),
    C(
        "demo-out-dir-file",
        "output file",
        "demo --out-dir naming a file",
        ["demo", "--out-dir", "{out}/afile"],
        r"--out-dir .*afile is a file, not a folder",
        setup=_afile,
        out=None,
    ),
    C(
        "demo-out-dir-unwritable",
        "output file",
        "demo --out-dir where no folder can be created (even as root)",
        ["demo", "--out-dir", "/sys/fiberscope-demo"],
        r"cannot create folder /sys/fiberscope-demo: /sys is not writable",
        out=None,
    ),
    # ---------------------------------------------------------------- checkpoints
    C(
        "checkpoint-exists",
        "checkpoint",
        "an interrupted run's checkpoint, rerun without --resume",
        S1,
        r"holds an interrupted run of this output; add --resume",
        setup=_existing("t.csv.ckpt", "{}"),
    ),
    C(
        "resume-nothing",
        "checkpoint",
        "--resume without a checkpoint",
        [*S1, "--resume"],
        r"nothing to resume: .*t\.csv\.ckpt does not exist",
    ),
    C(
        "resume-and-force",
        "checkpoint",
        "--resume together with --force",
        [*S1, "--resume", "--force"],
        r"--resume continues an interrupted run and --force",
    ),
    C(
        "resume-corrupt",
        "checkpoint",
        "a corrupt checkpoint",
        [*S1, "--resume"],
        r"t\.csv\.ckpt was written by an older fiberscope \(checkpoint format 1\)",
        setup=_existing("t.csv.ckpt", "{oops"),
    ),
    C(
        "resume-other-options",
        "checkpoint",
        "--resume with other options than the checkpoint's",
        [*S1, "--step", "0.01", "--resume"],
        r"written with step=0\.0125, this run has step=0\.01",
        setup=_checkpoint_with_other_step,
    ),
    C(
        "checkpoint-every-negative",
        "checkpoint",
        "a negative --checkpoint-every",
        [*S1, "--checkpoint-every", "-1"],
        r"--checkpoint-every must be 0",
    ),
    # ---------------------------------------------------------------- the web app
    # (each is refused before the server starts; see docs/app.md for what the page refuses)
    C(
        "app-no-such-model",
        "app",
        "a model file that does not exist",
        ["app", "{out}/nosuch.pt2"],
        r"no such model file: <out>/nosuch\.pt2 \(bundled networks",
        out=None,
    ),
    C(
        "app-port-range",
        "app",
        "a port outside 1..65535",
        ["app", "surface_1", "--port", "70000"],
        r"--port must be from 1 to 65535, got 70000",
        out=None,
    ),
    C(
        "app-input-shape",
        "app",
        "an --input-shape that is not sizes",
        ["app", "{files}/good.onnx", "--input-shape", "1,x"],
        r"--input-shape: expected sizes such as 1,28,28, got '1,x'",
        out=None,
    ),
    C(
        "app-shape-unknown",
        "app",
        "a model whose input shape cannot be told (and no --input-shape)",
        ["app", M + "boom"],
        r"cannot tell which input shape .*boom takes .*--input-shape 1,28,28",
        out=None,
    ),
    C(
        "app-shape-base-exception",
        "app",
        "a model that raises a BaseException (not an Exception) on the shape probe",
        ["app", M + "base_boom"],
        r"base_boom raised Boom: boom when called on a probe input of shape 2",
        out=None,
    ),
    C(
        "app-classes-are-points",
        "app",
        "a 2-input model with more outputs than inputs",
        ["app", M + "wide"],
        r"maps 2 inputs to 4 outputs: its classes are points.*--output",
        out=None,
    ),
    C(
        "app-bounds-count",
        "app",
        "--bounds given three times for a 2-input model",
        ["app", "surface_1", "--bounds=-1,1", "--bounds=-1,1", "--bounds=0,1"],
        r"--bounds given 3 times but surface_1 has 2 inputs",
        out=None,
    ),
    C(
        "app-bounds-empty",
        "app",
        "an empty box",
        ["app", "surface_1", "--bounds=1,-1"],
        r"empty box on axis 0 for surface_1: 1 is not below -1",
        out=None,
    ),
    C(
        "app-threshold-nan",
        "app",
        "a NaN decision threshold",
        ["app", "binary", "--threshold", "nan"],
        r"--threshold must be a number, got nan",
        out=None,
    ),
    # ---------------------------------------------------------------- walk (classes of any dim)
    C(
        "walk-start-wrong-shape",
        "walk",
        "a start with fewer coordinates than the model has inputs",
        WK("surface_1", at="0.25"),
        r"1 coordinates but the model takes 2 inputs",
        out=WOUT,
    ),
    C(
        "walk-outputs-not-fewer",
        "walk",
        "a model with as many outputs as inputs or more (classes are points)",
        WK(M + "wide", at="0.1,0.2"),
        r"maps R\^2 -> R\^4: with as many outputs as inputs or more",
        out=WOUT,
    ),
    C(
        "walk-start-outside-box",
        "walk",
        "the start lies outside the box",
        WK("surface_1", "--bounds=0.3,1"),
        r"outside the bounds on axis 0",
        out=WOUT,
    ),
    C(
        "walk-uniform-on-a-face",
        "walk",
        "the uniform sampler from a start on a face of the box",
        WK("surface_1", "--bounds=0.25,1", "--method", "uniform"),
        r"the uniform sampler cannot start on the faces of the box: 2 coordinates",
        out=WOUT,
    ),
    C(
        "walk-nan-output",
        "walk",
        "the model returns NaN at the start",
        WK(M + "nan", at="1,2"),
        r"returned NaN or inf at (a|the) start point",
        out=WOUT,
    ),
    C(
        "walk-singular-start",
        "walk",
        "a singular start (rank J < m: here grad N = 0)",
        WK(M + "radial", at="0,0"),
        r"singular point: J has rank 0 < 1 .* add --allow-singular",
        out=WOUT,
    ),
    C(
        "walk-unknown-method",
        "walk",
        "an unknown --method",
        WK("surface_1", "--method", "hmc"),
        r"unknown method 'hmc'; use one of corrected, uniform, paper",
        out=WOUT,
    ),
    C(
        "walk-samples-zero",
        "walk",
        "zero samples",
        WK("surface_1", "--samples", "0"),
        r"samples must be a positive",
        out=WOUT,
    ),
    C(
        "walk-paper-too-large",
        "walk",
        "the authors' walk with more inputs than its n x n eigen-decomposition allows",
        WK(M + "radial", "--method", "paper", at="{files}/big.npy"),
        r"n = 5000 inputs .* above its limit of n = 4096",
        out=WOUT,
    ),
    C(
        "walk-out-not-npz",
        "walk",
        "-o not ending in .npz",
        WK("surface_1"),
        r"w\.csv: a walk is saved as NumPy arrays \(\.npz",
        out="{out}/w.csv",
    ),
    C(
        "walk-plot-is-table",
        "walk",
        "--plot naming the walk's CSV table",
        WK("surface_1", "--plot", "{out}/w.csv"),
        r"--plot .*w\.csv is the same file as the CSV table",
        out=WOUT,
    ),
    C(
        "walk-grid-not-image",
        "walk",
        "--grid for a start that is not an image",
        WK("surface_1", "--grid", "{out}/g.png"),
        r"--grid draws images, but the start has shape \(2,\)",
        out=WOUT,
    ),
    C(
        "walk-gif-not-gif",
        "walk",
        "--gif naming a file that is not .gif",
        WK("mnist_cnn", "--gif", "{out}/w.png", at="{files}/d28.png"),
        r"--gif .*w\.png: the animation is a GIF or an MP4; give a name ending in \.gif or \.mp4",
        out=WOUT,
    ),
    C(
        "traverse-target-shape",
        "walk",
        "traverse: a target image of another size than the start",
        ["traverse", "mnist_cnn", "--at", "{files}/d28.png", "--to", "{files}/d20.png"],
        r"--to has shape \(1, 20, 20\) but --at has \(1, 28, 28\)",
        out="{out}/t.npz",
    ),
    C(
        "traverse-wrong-channels",
        "walk",
        "traverse: RGB images for a grayscale model (its input does not match)",
        ["traverse", "mnist_cnn", "--at", "{files}/rgb28.png", "--to", "{files}/rgb28.png"],
        r"the MNIST CNN takes images shaped \(1, 28, 28\)",
        out="{out}/t.npz",
    ),
    C(
        "traverse-start-outside-box",
        "walk",
        "traverse: the start lies outside the box",
        ["traverse", "surface_1", "--at", "0.25,0.25", "--to", "0.5,0.5", "--bounds=0.3,1"],
        r"outside the bounds on axis 0",
        out="{out}/t.npz",
    ),
    C(
        "traverse-grid-is-result",
        "walk",
        "traverse: --grid naming the result",
        [
            "traverse",
            "mnist_cnn",
            "--at",
            "{files}/d28.png",
            "--to",
            "{files}/d28.png",
            "--grid",
            "{out}/t.npz",
        ],
        r"name the same file|is the same file as the result",
        out="{out}/t.npz",
    ),
    C(
        "confuse-scalar-model",
        "walk",
        "confuse: a model with one output (no argmax decision)",
        ["confuse", "surface_1", "--at", "0.25,0.25", "--bounds=-1,1"],
        r"at least 2 outputs .* use explore --flip",
        out="{out}/c.npz",
    ),
    C(
        "confuse-nowhere-to-look",
        "walk",
        "confuse: neither --bounds nor --toward",
        ["confuse", M + "clf", "--at", "0.1,0.2"],
        r"give --bounds .* or --toward inputs of other classes",
        out="{out}/c.npz",
    ),
    C(
        "confuse-never-flips",
        "walk",
        "confuse: a classifier whose decision is the same at every candidate of the box",
        ["confuse", M + "always0", "--at", "0.1,0.2", "--bounds=-1,1"],
        r"found no input decided otherwise; give --toward inputs",
        out="{out}/c.npz",
    ),
    C(
        "confuse-toward-shape",
        "walk",
        "confuse: a --toward input of another shape",
        ["confuse", M + "clf", "--at", "0.1,0.2", "--toward", "0.1,0.2,0.3"],
        r"--toward 0\.1,0\.2,0\.3 has shape \(3,\) but --at has \(2,\)",
        out="{out}/c.npz",
    ),
    C(
        "walk-plot-is-start",
        "walk",
        "--plot naming the --at file",
        WK("surface_1", "--plot", "{out}/x0.png", at="{out}/x0.png"),
        r"--plot .*x0\.png would overwrite the --at file",
        setup=_png_start,
        out=WOUT,
    ),
    C(
        "walk-at-missing",
        "walk",
        "--at naming a file that does not exist",
        WK("surface_1", at="{out}/x0.npy"),
        r"cannot read the start point .*x0\.npy: the file does not exist",
        out=WOUT,
    ),
    C(
        "walk-at-folder",
        "walk",
        "--at naming a folder",
        WK("surface_1", at="{out}/"),
        r"it is a folder; give a file",
        out=WOUT,
    ),
    C(
        "walk-at-fifo",
        "walk",
        "--at naming a named pipe (never opened)",
        WK("surface_1", at="{out}/x0.npy"),
        r"x0\.npy: it is not a regular file",
        setup=_fifo_start,
        out=WOUT,
    ),
    C(
        "walk-at-unknown-type",
        "walk",
        "--at naming a file of an unknown type",
        WK("surface_1", at="{files}/model.weights"),
        r"unknown file type '\.weights'",
        out=WOUT,
    ),
    C(
        "walk-at-pickled-npy",
        "walk",
        "--at naming an .npy of Python objects (never unpickled)",
        WK("surface_1", at="{files}/object.npy"),
        r"holds Python objects, which are never unpickled",
        out=WOUT,
    ),
    C(
        "walk-at-nan-file",
        "walk",
        "--at naming an .npy with a NaN",
        WK("surface_1", at="{files}/nan.npy"),
        r"non-finite value \(nan at flat index 1\)",
        out=WOUT,
    ),
    C(
        "walk-at-pt-not-tensor",
        "walk",
        "--at naming a .pt that holds a dict, not one tensor",
        WK("surface_1", at="{files}/dict.pt"),
        r"holds a dict, not one tensor",
        out=WOUT,
    ),
    C(
        "walk-at-corrupt-image",
        "walk",
        "--at naming a corrupt PNG",
        WK("surface_1", at="{files}/corrupt.png"),
        r"corrupt\.png: (the image is truncated or corrupt|not an image)",
        out=WOUT,
    ),
    C(
        "walk-at-not-numbers",
        "walk",
        "--at naming a text file with words in it",
        WK("surface_1", at="{files}/words.txt"),
        r"'hello' on line 2 is not a number",
        out=WOUT,
    ),
    # ---------------------------------------------------------------- dataset jobs
    C(
        "run-job-missing",
        "dataset job",
        "a job file that does not exist",
        ["run", "{out}/nope.toml"],
        r"the job file .*nope\.toml does not exist",
        out=None,
    ),
    C(
        "run-job-not-toml",
        "dataset job",
        "a job file that is not valid TOML",
        ["run", JOBFILE],
        r"job\.toml is not valid TOML",
        setup=_job_text('verb = "trace"\nmodel =\n'),
        out=None,
    ),
    C(
        "run-job-unknown-key",
        "dataset job",
        "an unknown key in the job file",
        ["run", JOBFILE],
        r"unknown key 'worker' in job\.toml",
        setup=_job(extra="worker = 2"),
        out=None,
    ),
    C(
        "run-job-unknown-option",
        "dataset job",
        "an option the verb does not take",
        ["run", JOBFILE],
        r"trace has no option 'samples'; its options are: ",
        setup=_job(options="samples = 10"),
        out=None,
    ),
    C(
        "run-inputs-missing",
        "dataset job",
        "inputs that do not exist",
        ["run", JOBFILE],
        r"the inputs .*missing do not exist; give a folder of \.npy/\.png files",
        setup=_job(inputs="missing"),
        out=None,
    ),
    C(
        "run-model-missing",
        "dataset job",
        "a model file that does not exist",
        ["run", JOBFILE],
        r"no such model file: .*nope\.onnx",
        setup=_job(model="nope.onnx"),
        out=None,
    ),
    C(
        "run-item-unreadable",
        "dataset job",
        "an unreadable input in the middle of the dataset (exit 4; the other items are done)",
        ["run", JOBFILE],
        r"^error: item 1 \(b\.npy\): not a valid \.npy file",
        code=4,
        setup=_job_folder(bad=b"\x93NUMPY garbage"),
        out=None,
        keeps=("store",),
    ),
    C(
        "run-item-wrong-shape",
        "dataset job",
        "an input of another shape than the others (exit 4; the other items are done)",
        ["run", JOBFILE],
        r"^error: item 1 \(b\.npy\): shape \(3,\) differs from the other items' \(2,\)",
        code=4,
        setup=_job_folder(shape=(3,)),
        out=None,
        keeps=("store",),
    ),
    C(
        "run-item-not-regular",
        "dataset job",
        "a named pipe among the inputs (exit 4; refused without opening it, the others are done)",
        ["run", JOBFILE],
        r"^error: item 1 \(b\.npy\): it is not a regular file \(a pipe, socket or device\); "
        r"give a file",
        code=4,
        setup=_job_pipes,
        out=None,
        keeps=("store",),
    ),
    C(
        "run-inputs-not-regular",
        "dataset job",
        "a named pipe as the inputs file (refused at once instead of blocking)",
        ["run", "{out}/job-pipe.toml"],
        r"the inputs pipe\.npy are not a regular file or folder \(a pipe, socket or device\)",
        setup=_job_pipes,
        out=None,
    ),
    C(
        "run-job-not-regular",
        "dataset job",
        "a named pipe as the job file (refused at once instead of blocking)",
        ["run", "{out}/pipe.toml"],
        r"the job file .*pipe\.toml is not a regular file \(a pipe, socket or device\)",
        setup=_job_pipes,
        out=None,
    ),
    C(
        "run-store-other-options",
        "dataset job",
        "a store written by the same job with another step",
        ["run", JOBFILE],
        r"was written with options\.step=0\.05, this job has options\.step=0\.1; run the "
        r"same job to continue it, or give another store folder",
        setup=_store_of_other_step,
        out=None,
    ),
    C(
        "run-store-other-version",
        "dataset job",
        "a store written by another fiberscope version",
        ["run", JOBFILE],
        r"was written by fiberscope 0\.0\.1 .* give another store folder so that results of "
        r"two versions never mix",
        setup=_store_of_other_version,
        out=None,
    ),
    C(
        "run-store-manifest-edited",
        "dataset job",
        "a store whose manifest.json was edited by hand (valid JSON, wrong fields)",
        ["run", JOBFILE],
        r"the manifest\.json of the store .* was edited or damaged \(items\[0\]\.attempts is "
        r'"two"\); restore it, or give another store folder',
        setup=_store_with_edited_manifest,
        out=None,
    ),
    C(
        "run-inputs-changed",
        "dataset job",
        "a store written from an inputs array (.npy) whose contents changed since",
        ["run", JOBFILE],
        r"the store .* was written from other input data \(the contents of pts\.npy differ from "
        r"the "
        r"ones it was written from\); restore the inputs to continue, or give another store",
        setup=_store_of_changed_inputs,
        out=None,
    ),
    C(
        "run-store-not-a-store",
        "dataset job",
        "a store folder that holds other files",
        ["run", JOBFILE],
        r"store is not empty and is not a fiberscope store \(no manifest\.json\)",
        setup=_not_a_store,
        out=None,
    ),
    C(
        "run-store-locked",
        "dataset job",
        "another fiberscope run is writing the store",
        ["run", JOBFILE],
        r"the store .* is being written by another fiberscope run \(process <pid>\)",
        context=_store_locked,
        setup=None,
        out=None,
    ),
    C(
        "run-ray-unreachable",
        "dataset job",
        "a Ray cluster address where nothing answers",
        ["run", JOBFILE, "--ray-address", "127.0.0.1:1"],
        r"cannot reach the Ray cluster at 127\.0\.0\.1:1 \(connection refused\); check the "
        r"address",
        setup=_job(extra=""),
        out=None,
    ),
    C(
        "run-device-unknown",
        "dataset job",
        "a device torch does not know in the job file",
        ["run", JOBFILE],
        r"device must be cpu, cuda, cuda:N or auto, got 'tpu'",
        setup=_job(extra='workers = 0\ndevice = "tpu"'),
        out=None,
    ),
    C(
        "run-store-disk-full",
        "dataset job",
        "the disk fills up while the job writes its items (the finished ones are kept)",
        ["run", JOBFILE],
        r"cannot write .*item-00000001\.parquet: No space left on device; the 1 finished item "
        r"is kept in the store .*; once it can be written .* run the same job again",
        setup=_job(),
        context=_store_disk_full,
        out=None,
        keeps=("store",),
    ),
    C(
        "run-store-manifest-pipe",
        "dataset job",
        "a store whose manifest.json is a named pipe (refused at once instead of blocking)",
        ["run", JOBFILE],
        r"the store .* has a manifest\.json that is not a regular file",
        setup=_store_with_a_pipe("manifest.json"),
        out=None,
    ),
    C(
        "run-store-lock-pipe",
        "dataset job",
        "a store whose .lock is a named pipe",
        ["run", JOBFILE],
        r"the store .* holds \.lock, which is not a regular file .* remove it or give another",
        setup=_store_with_a_pipe(".lock"),
        out=None,
    ),
    C(
        "run-workers-negative",
        "dataset job",
        "a negative --workers",
        ["run", JOBFILE, "--workers", "-1"],
        r"workers must be 0 \(in this process\) or more, got -1",
        setup=_job(extra=""),
        out=None,
    ),
]


def _expand(arg: str, files: Path, out: Path) -> str:
    return arg.replace("{files}", str(files)).replace("{out}", str(out))


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Contents of the regular files of ``folder`` (and the kind of anything else)."""
    return {
        p.name: p.read_bytes() if p.is_file() and not p.is_symlink() else "not a regular file"
        for p in folder.iterdir()
    }


def run_case(
    case: Case, files: Path, out: Path
) -> tuple[int, str, str, dict[str, bytes | str], dict[str, bytes | str]]:
    """Run one case in-process; return (exit code, stderr, stdout, files before, files after)
    with paths and the process id normalised."""
    if case.setup is not None:
        case.setup(out, files)
    argv = [_expand(a, files, out) for a in case.args]
    if case.out is not None:
        argv += ["-o", _expand(case.out, files, out)]
    err, std = io.StringIO(), io.StringIO()
    context = case.context(out, files) if case.context is not None else contextlib.nullcontext()
    with context:
        before = snapshot(out)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
            code = main(argv)
        after = snapshot(out)

    def norm(text: str) -> str:
        text = text.replace(str(out), "<out>").replace(str(files), "<files>")
        return text.replace(f"(process {os.getpid()})", "(process <pid>)")

    return code, norm(err.getvalue()), norm(std.getvalue()), before, after


# ---------------------------------------------------------------- the document
HEADER = """# Validation catalog: bad inputs and what fiberscope says

Every row is a `fiberscope` command with one thing wrong. Each prints **one line** on stderr
(no traceback) and exits with the code shown; errors exit with 2 and leave **no output file**
(no CSV, JSON sidecar, plot, checkpoint or lock). Rows with exit code 0 are warnings: the run
goes on and completes. Two rows keep what a finished run produced: a full disk at the final
write keeps the run's checkpoint (`--resume` then writes the result), and a plot that fails
after the result was saved keeps the result and exits with 3. A dataset job (`fiberscope
run`) whose items fail one by one runs the others, records each failure in its store and exits
with 4, one line per failed item. Every output path of a run is
checked before any work: against the others, against the input files, for its name and its
folder; a run locks its outputs while it writes them. Hostile files are refused *before*
anything in them is unpickled or run: the tests check that their payloads (which would create
a marker file) never ran.

This page is generated from the cases in `tests/cli/test_errors_catalog.py`
(`python tests/cli/test_errors_catalog.py --write`), and that test runs every row and checks
the exact line, the exit code, the absence of a traceback and of output files. `<files>` is
the folder of test model files, `<out>` the output folder, `<pid>` a process id; unless a row
says otherwise the command ends with `-o <out>/t.csv`.

"""
FOOTER = """
Python callers get the same messages as exceptions: every one derives from
`fiberscope.FiberscopeError` (`InputError`, `ModelError`, `ModelLoadError`,
`UnsafeModelError`, `OutputSelectionError`, `SingularPointError`, `OutputFileError`,
`CheckpointError`). Ctrl-C and SIGTERM are not errors: they save the points traced so far
(marked `"complete": false`) and a checkpoint, and exit with 130 and 143
(see `tests/io/test_checkpoint.py`).
"""


def _cell(text: str) -> str:
    text = text.replace("|", "\\|")
    return f"``{text}``" if "`" in text else f"`{text}`"


def render(results: dict[str, tuple[int, str]]) -> str:
    rows = [
        "| # | Category | Bad input | Command | One-line message | Exit | Test id |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, case in enumerate(CASES, 1):
        code, line = results[case.id]
        cmd = " ".join(case.args)
        if case.out is not None and case.out != "{out}/t.csv":
            cmd += f" -o {case.out}"
        cmd = cmd.replace("{files}", "<files>").replace("{out}", "<out>")
        rows.append(
            f"| {k} | {case.category} | {case.what} | {_cell(cmd)} | {_cell(line)} | {code} "
            f"| `{case.id}` |"
        )
    return HEADER + "\n".join(rows) + "\n" + FOOTER


def parse_doc(text: str) -> dict[str, tuple[int, str]]:
    """Test id -> (exit code, message) from the table of ``docs/errors.md``."""
    out: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| #"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 7 or not cells[0].isdigit():
            continue
        message = cells[4].strip("`").strip().replace("\\|", "|")
        out[cells[6].strip("`")] = (int(cells[5]), message)
    return out


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return lines[0] if len(lines) == 1 else " // ".join(lines)


# ---------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return build_files(tmp_path_factory.mktemp("files"))


@pytest.fixture(scope="module")
def documented() -> dict[str, tuple[int, str]]:
    return parse_doc(DOC.read_text())


def test_every_case_has_a_row_and_every_row_a_case(documented) -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ids) >= 25
    assert sorted(documented) == sorted(ids), (
        "docs/errors.md is out of date: python tests/cli/test_errors_catalog.py --write"
    )


#: Rows that need the optional onnx and onnx2torch (they skip without them).
_ONNX_FREE = {"onnx-empty", "onnx-is-zip", "onnx-is-text", "model-directory", "model-fifo"}


def _needs_onnx(case: Case) -> bool:
    return case.id not in _ONNX_FREE and any(".onnx" in a for a in case.args)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalog(case: Case, files: Path, documented, tmp_path: Path, capfd, caplog) -> None:
    if _needs_onnx(case) and not mf.onnx_available():
        pytest.skip("onnx and onnx2torch are not installed (optional)")
    out = tmp_path / "out"
    out.mkdir()
    code, err, std, before, after = run_case(case, files, out)
    line = _one_line(err)
    assert "Traceback" not in err + std
    # nothing else reached the terminal: no stray output on fd 2, and no library log records
    # (torch logs a traceback before raising on some corrupt archives; pytest captures those
    # records, a user's terminal would show them)
    stray = capfd.readouterr()
    assert stray.err.strip() == "", stray.err
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not logged, [f"{r.name}: {r.getMessage()[:100]}" for r in logged]
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert code == case.code, err
    assert re.search(case.expect, line), line
    assert documented.get(case.id) == (code, line), (
        f"docs/errors.md row {case.id} differs: regenerate with "
        "python tests/cli/test_errors_catalog.py --write"
    )
    if case.code == 0:
        assert {"t.csv", "t.json"} <= set(after)
    elif case.keeps:  # what the run saved before it failed, and nothing else
        assert sorted(set(after) - set(before)) == sorted(case.keeps), sorted(after)
        assert all(after[k] == v for k, v in before.items())
    else:
        assert after == before, "an error left or changed files"
    assert mf.marker_paths(files) == [] and mf.marker_paths(out) == []


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/cli/test_errors_catalog.py --write")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    work = Path(tempfile.mkdtemp(prefix="fiberscope-catalog-"))
    try:
        fdir = build_files(work / "files")
        results = {}
        for case in CASES:
            odir = work / case.id
            odir.mkdir()
            code, err, *_ = run_case(case, fdir, odir)
            results[case.id] = (code, _one_line(err))
        DOC.write_text(render(results))
        print(f"wrote {DOC} ({len(CASES)} rows)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
