"""Planted payloads: nothing in a model file may run, whatever entry it hides in.

A payload is a pickle whose ``__reduce__`` creates a marker file when it is unpickled. It is
planted into every entry of every archive fiberscope accepts (a ``torch.export`` ``.pt2`` with
its weights, constants, configs, graph and sample inputs, and the ``torch.save`` archive nested
inside it; a TorchScript ``.pt``; a ``torch.save`` state dict), with every pickle protocol 0-5,
and in every disguise zip allows: the entry replaced, the entry present twice (payload first or
last), a second entry whose name is the same after normalisation (case, ``//``, ``./``,
backslash), a local header that names another file than the central directory, an entry
whose bytes overlap another's, bytes in front of the first entry. The whole payload is also
given under every model suffix, and archives are given under the wrong suffix and with a forced
``--format``. Each file is loaded through ``fs.load_model`` and through the CLI
(``fiberscope trace FILE --at ...``): the marker must never appear, ``load_model`` must raise a
:class:`~fiberscope.errors.FiberscopeError` and the CLI must exit 2 with one ``error:`` line.

The payloads are longer than any raw tensor entry of these small test networks (the marker
name is long), so a payload planted where raw numbers belong is refused for its size rather
than read as numbers (which would be harmless, but would not prove the check).

Besides pickles, the ``.pt2`` graph JSON is attacked where torch evaluates or resolves
strings: a shape expression that ``sympy.sympify`` would run as Python, an operator target
outside ``torch.ops``, a node name that is not an identifier.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import fiberscope as fs
import model_files as mf
from fiberscope.cli.main import main
from fiberscope.errors import FiberscopeError, UnsafeModelError
from fiberscope.models import safety
from model_files import Raw, forge_zip, overlapping

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
MARKER_NAME = "PWNED-" + "m" * 120  # long: payloads outgrow every raw tensor entry


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def payload(marker: Path, protocol: int) -> bytes:
    """A pickle that creates ``marker`` when unpickled."""
    return pickle.dumps(_Evil(str(marker)), protocol=protocol)


def entries_of(data: bytes) -> list[Raw]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    return [Raw(i.filename, zf.read(i.filename)) for i in zf.infolist()]


def _renamings(name: str) -> dict[str, str]:
    root, _, rest = name.partition("/")
    return {
        "case": f"{root.upper()}/{rest}",
        "double-slash": f"{root}//{rest}",
        "dot-segment": f"{root}/./{rest}",
        "backslash": f"{root}\\{rest}".replace("/", "\\"),
    }


def variants(base: bytes, evil: bytes) -> Iterator[tuple[str, bytes]]:
    """Every disguise of ``evil`` in every entry of the archive ``base``: (label, bytes)."""
    entries = entries_of(base)
    for i, e in enumerate(entries):
        replaced = [*entries[:i], Raw(e.name, evil), *entries[i + 1 :]]
        yield f"{e.name}:replaced", forge_zip(replaced)
        yield f"{e.name}:duplicate-first", forge_zip([Raw(e.name, evil), *entries])
        yield f"{e.name}:duplicate-last", forge_zip([*entries, Raw(e.name, evil)])
        for how, other in _renamings(e.name).items():
            yield f"{e.name}:renamed-{how}", forge_zip([*entries, Raw(other, evil)])
        local = [*entries[:i], Raw(e.name, evil, local_name=e.name + "x"), *entries[i + 1 :]]
        yield f"{e.name}:local-name-differs", forge_zip(local)
        hidden = [*entries, Raw(e.name + ".hidden", evil, local_name=e.name)]
        yield f"{e.name}:local-name-duplicates", forge_zip(hidden)
        aliased = [Raw(e.name + ".evil", evil), *entries[:i], *entries[i + 1 :]]
        aliased.append(Raw(e.name, b"", alias=0))
        yield f"{e.name}:aliased", forge_zip(aliased)
        yield f"{e.name}:overlapping", overlapping(entries, i, evil)
    replaced0 = [Raw(entries[0].name, evil), *entries[1:]]
    yield "prefix", forge_zip(replaced0, prefix=evil)
    yield "prefix-relative", forge_zip(replaced0, prefix=evil, relative=True)
    for e in entries:  # a second copy of an entry, listed nowhere, before the archive
        hidden = mf.local_entry(e.name, evil)
        yield f"prefix-hidden-{e.name}", forge_zip(entries, prefix=hidden)
        yield f"prefix-hidden-relative-{e.name}", forge_zip(entries, prefix=hidden, relative=True)


def nested_sample_inputs(base: bytes, evil: bytes) -> Iterator[tuple[str, bytes]]:
    """The .pt2 with its sample-inputs archive (a torch.save zip) carrying the payload."""
    outer = entries_of(base)
    k = next(i for i, e in enumerate(outer) if e.name.endswith("sample_inputs/model.pt"))
    for label, inner in variants(outer[k].data, evil):
        yield (
            f"sample_inputs>{label}",
            forge_zip([*outer[:k], Raw(outer[k].name, inner), *outer[k + 1 :]]),
        )


# --------------------------------------------------------------------------- the archives
def pt2_base() -> bytes:
    return mf.fuzz_base("small_net.pt2")


def torchscript_base() -> bytes:
    return mf.fuzz_base("small_net.pt")


def state_dict_base() -> bytes:
    return mf.state_dict_bytes()


ARCHIVES: dict[str, tuple[str, Callable[[], bytes], Callable[..., Iterator[tuple[str, bytes]]]]] = {
    # name: (suffix, base archive, variant generator)
    "pt2": (".pt2", pt2_base, variants),
    "pt2-sample-inputs": (".pt2", pt2_base, nested_sample_inputs),
    "torchscript": (".pt", torchscript_base, variants),
    "state-dict": (".pt", state_dict_base, variants),
}


@dataclass
class Outcome:
    failures: list[str]
    loads: int = 0


def _cli(path: Path, out: Path, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["trace", str(path), "--at", "0.3,-0.2", *extra, "-o", str(out)])
    return code, err.getvalue()


def _try(
    path: Path,
    marker: Path,
    label: str,
    outcome: Outcome,
    *,
    cli: bool,
    fmt: str | None = None,
    arch: str | None = None,
) -> None:
    """Load ``path`` through the API (and the CLI); record anything but a clean refusal."""
    outcome.loads += 1
    try:
        fs.load_model(path, format=fmt, arch=arch)
        outcome.failures.append(f"{label}: loaded without error")
    except FiberscopeError as exc:
        if "\n" in str(exc):
            outcome.failures.append(f"{label}: multi-line message")
    except BaseException as exc:  # noqa: BLE001 - anything else is the bug we look for
        outcome.failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:120]}")
    if marker.exists():
        outcome.failures.append(f"{label}: THE PAYLOAD RAN (load_model)")
        marker.unlink()
    if not cli:
        return
    out = path.with_suffix(".out.csv")
    extra = (("--format", fmt) if fmt else ()) + (("--arch", arch) if arch else ())
    code, err = _cli(path, out, extra)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code != 2 or len(lines) != 1 or not lines[0].startswith("error: "):
        outcome.failures.append(f"{label}: CLI exit {code}, stderr {err[:200]!r}")
    if marker.exists():
        outcome.failures.append(f"{label}: THE PAYLOAD RAN (CLI)")
        marker.unlink()
    if out.exists():
        outcome.failures.append(f"{label}: CLI wrote {out.name}")


def _sweep(
    tmp_path: Path,
    archive: str,
    protocols: list[int],
    *,
    cli: tuple[int, ...],
    keep: Callable[[str], bool],
) -> Outcome:
    """Load every variant of ``archive`` through the API; through the CLI for ``cli`` protocols."""
    suffix, base, generate = ARCHIVES[archive]
    marker = tmp_path / MARKER_NAME
    outcome = Outcome([])
    arch = "model_files:small_net" if archive == "state-dict" else None
    for protocol in protocols:
        evil = payload(marker, protocol)
        for n, (label, data) in enumerate(generate(base(), evil)):
            if not keep(label):
                continue
            path = tmp_path / f"case{protocol}-{n}{suffix}"
            path.write_bytes(data)
            label = f"{archive} p{protocol} {label}"
            _try(path, marker, label, outcome, cli=protocol in cli, arch=arch)
            path.unlink()
    assert mf.marker_paths(tmp_path) == []
    return outcome


def _fast(label: str) -> bool:
    """The representative subset: every entry replaced, every disguise of one pickle entry."""
    pickle_entry = "/data.pkl" in label or "/sample_inputs/model.pt" in label
    return (
        label.endswith(":replaced")
        or label in ("prefix", "prefix-relative")
        or (pickle_entry and (":" in label or label.startswith("prefix-hidden")))
    )


@pytest.mark.parametrize("archive", sorted(ARCHIVES))
def test_payload_in_every_entry_every_protocol(tmp_path: Path, archive: str) -> None:
    """Every entry replaced by the payload and every disguise of data.pkl: protocols 0-5
    through load_model, protocol 0 (no pickle header to recognise) also through the CLI."""
    outcome = _sweep(tmp_path, archive, list(PROTOCOLS), cli=(0,), keep=_fast)
    assert outcome.loads > 100
    assert not outcome.failures, "\n".join(outcome.failures[:30])


@pytest.mark.slow
@pytest.mark.parametrize("archive", sorted(ARCHIVES))
def test_payload_in_every_disguise(tmp_path: Path, archive: str, request) -> None:
    """The whole sweep: every disguise of every entry, protocols 0-5, API and CLI.

    About 7 minutes on 2 cores, so it runs only when asked for: ``pytest -m slow``.
    """
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the full payload sweep runs with -m slow (about 7 minutes)")
    outcome = _sweep(tmp_path, archive, list(PROTOCOLS), cli=tuple(PROTOCOLS), keep=lambda _: True)
    assert not outcome.failures, "\n".join(outcome.failures[:30])


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_every_disguise_of_every_entry_through_the_api(tmp_path: Path, protocol: int) -> None:
    """Every disguise of every entry of every archive, through load_model (three protocols)."""
    outcome = Outcome([])
    for archive in sorted(ARCHIVES):
        sub = tmp_path / archive
        sub.mkdir()
        got = _sweep(sub, archive, [protocol], cli=(), keep=lambda _label: True)
        outcome.failures += got.failures
        outcome.loads += got.loads
    assert outcome.loads > 500
    assert not outcome.failures, "\n".join(outcome.failures[:30])


# --------------------------------------------------------------------------- whole-file payloads
SUFFIXES = (".pt2", ".pt", ".ts", ".pth", ".bin", ".onnx", ".safetensors", ".csv", ".pkl", ".sav")
FORMATS = ("pt2", "torch", "onnx", "safetensors", "paper-csv", "pickle")


def test_bare_payload_under_every_suffix_and_format(tmp_path: Path) -> None:
    marker = tmp_path / MARKER_NAME
    outcome = Outcome([])
    for protocol in PROTOCOLS:
        evil = payload(marker, protocol)
        cli = protocol in (0, pickle.HIGHEST_PROTOCOL)  # the API sees every protocol
        for suffix in SUFFIXES:
            path = mf.write(tmp_path / f"bare{protocol}{suffix}", evil)
            _try(path, marker, f"bare p{protocol} {suffix}", outcome, cli=cli)
        path = mf.write(tmp_path / f"forced{protocol}.model", evil)
        for fmt in FORMATS:
            arch = "model_files:small_net" if fmt in ("torch", "safetensors") else None
            _try(
                path,
                marker,
                f"bare p{protocol} --format {fmt}",
                outcome,
                cli=cli,
                fmt=fmt,
                arch=arch,
            )
    assert not outcome.failures, "\n".join(outcome.failures[:30])


def test_archives_under_the_wrong_suffix_or_a_forced_format(tmp_path: Path) -> None:
    """A payload-carrying .pt2 named .pt, a TorchScript named .pt2, each forced to every format."""
    marker = tmp_path / MARKER_NAME
    outcome = Outcome([])
    evil = payload(marker, 0)
    carriers = {
        "pt2-samples": mf.rewrite_zip(pt2_base(), {"data/sample_inputs/model.pt": evil}),
        "pt2-nested": mf.rewrite_zip(
            pt2_base(), {"data/sample_inputs/model.pt": mf.evil_torch_zip(marker)}
        ),
        "torchscript": mf.rewrite_zip(torchscript_base(), {"constants.pkl": evil}),
        "state-dict": mf.rewrite_zip(state_dict_base(), {"data.pkl": evil}),
    }
    for name, data in carriers.items():
        for suffix in (".pt2", ".pt", ".pth", ".ts", ".onnx", ".safetensors", ".csv"):
            path = mf.write(tmp_path / f"{name}{suffix}", data)
            _try(path, marker, f"{name} as {suffix}", outcome, cli=True)
        path = mf.write(tmp_path / f"{name}.model", data)
        for fmt in FORMATS:
            _try(path, marker, f"{name} --format {fmt}", outcome, cli=True, fmt=fmt)
    assert not outcome.failures, "\n".join(outcome.failures[:30])


# --------------------------------------------------------------------------- the graph JSON
def _pt2_with_graph(edit: Callable[[dict], None]) -> bytes:
    base = mf.pt2_bytes()
    zf = zipfile.ZipFile(io.BytesIO(base))
    name = next(n for n in zf.namelist() if n.endswith("models/model.json"))
    graph = json.loads(zf.read(name))
    edit(graph)
    return mf.rewrite_zip(base, {"models/model.json": json.dumps(graph).encode()})


@pytest.fixture(scope="module")
def dynamic_pt2(tmp_path_factory) -> bytes:
    """A .pt2 with a dynamic batch dimension: its graph holds sympy expression strings."""
    path = tmp_path_factory.mktemp("dyn") / "dyn.pt2"
    fs.save_model(mf.small_net(), path, example=mf.example())
    return path.read_bytes()


def _edit_graph(base: bytes, edit: Callable[[str], str]) -> bytes:
    zf = zipfile.ZipFile(io.BytesIO(base))
    name = next(n for n in zf.namelist() if n.endswith("models/model.json"))
    text = edit(zf.read(name).decode())
    return mf.rewrite_zip(base, {"models/model.json": text.encode()})


def test_shape_expression_that_sympy_would_run_is_refused(tmp_path: Path, dynamic_pt2) -> None:
    """torch's deserializer hands expression strings to sympy.sympify, which runs them."""
    marker = tmp_path / MARKER_NAME
    code = f"__import__('builtins').open({str(marker)!r}, 'w')"
    text = zipfile.ZipFile(io.BytesIO(dynamic_pt2)).read(
        next(n for n in zipfile.ZipFile(io.BytesIO(dynamic_pt2)).namelist() if "model.json" in n)
    )
    assert b"expr_str" in text  # the attack surface exists in a real file
    data = _edit_graph(
        dynamic_pt2,
        lambda t: t.replace('"expr_str": "Symbol(', f'"expr_str": "{code} or Symbol(', 1),
    )
    path = mf.write(tmp_path / "sympify.pt2", data)
    with pytest.raises(UnsafeModelError, match="shape expression"):
        fs.load_model(path)
    assert not marker.exists()
    code_cli, err = _cli(path, tmp_path / "o.csv")
    assert code_cli == 2 and "shape expression" in err and not marker.exists()


def test_plain_torch_runs_the_shape_expression_payload(tmp_path: Path, dynamic_pt2) -> None:
    """The hole is real in torch itself (so the check above is not vacuous), and the guard
    stops it even when torch.export.load is called directly."""
    marker = tmp_path / MARKER_NAME
    code = f"__import__('builtins').open({str(marker)!r}, 'w').close()"
    data = _edit_graph(
        dynamic_pt2,
        lambda t: t.replace('"expr_str": "Symbol(', f'"expr_str": "{code} or Symbol(', 1),
    )
    with pytest.raises(UnsafeModelError), safety.no_unpickling("direct.pt2"):
        torch.export.load(io.BytesIO(data))
    assert not marker.exists()
    with contextlib.suppress(Exception):
        torch.export.load(io.BytesIO(data))  # unguarded: torch evaluates it
    assert marker.exists(), "torch no longer evaluates shape expressions: revisit the check"


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda g: g["graph_module"]["graph"]["nodes"][1].__setitem__(
                "target", "torch.os.system"
            ),
            "not a torch operator",
        ),
        (
            lambda g: g["graph_module"]["graph"]["nodes"][1].__setitem__("target", "builtins.exec"),
            "not a torch operator",
        ),
        (
            lambda g: g["graph_module"]["graph"]["nodes"][0]["outputs"][0]["as_tensor"].__setitem__(
                "name", "x = __import__('os')"
            ),
            "not a Python identifier",
        ),
    ],
    ids=["torch-os-system", "builtins-exec", "name-injection"],
)
def test_graph_strings_torch_would_resolve_are_refused(tmp_path: Path, edit, message) -> None:
    path = mf.write(tmp_path / "graph.pt2", _pt2_with_graph(edit))
    with pytest.raises(UnsafeModelError, match=message):
        fs.load_model(path)


def test_module_named_by_the_graph_is_not_imported(tmp_path: Path, monkeypatch) -> None:
    """torch's pytree decoder imports the module an enum in a tree spec names: importing runs
    the module's code, so a .pt2 could run any module found on the path."""
    marker = tmp_path / MARKER_NAME
    mf.write(tmp_path / "fs_planted_module.py", f"open({str(marker)!r}, 'w').close()\nX = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    enum = {"__enum__": True, "fqn": "fs_planted_module:X", "name": "a"}

    def edit(graph: dict) -> None:
        sig = graph["graph_module"]["module_call_graph"][0]["signature"]
        spec = json.loads(sig["in_spec"])
        spec[1]["children_spec"][1]["context"] = json.dumps([enum])
        sig["in_spec"] = json.dumps(spec)

    path = mf.write(tmp_path / "enum.pt2", _pt2_with_graph(edit))
    with pytest.raises(UnsafeModelError, match="import the module 'fs_planted_module'"):
        fs.load_model(path)
    assert not marker.exists()
    code, err = _cli(path, tmp_path / "o.csv")
    assert code == 2 and "fs_planted_module" in err and not marker.exists()
    with contextlib.suppress(Exception):
        torch.export.load(path)  # unguarded torch imports it
    assert marker.exists(), "torch no longer imports modules named in tree specs: revisit"
    sys.modules.pop("fs_planted_module", None)


# --------------------------------------------------------------------------- the guard
def test_guard_refuses_full_unpickling_and_restores_everything(tmp_path: Path) -> None:
    marker = tmp_path / MARKER_NAME
    evil = payload(marker, 2)
    originals = (torch.load, pickle.loads, pickle.load, pickle.Unpickler, torch._C._pickle_load_obj)
    attempts = {
        "torch.load": lambda: torch.load(io.BytesIO(evil), weights_only=False),
        "torch.load default": lambda: torch.load(io.BytesIO(evil)),
        "pickle.loads": lambda: pickle.loads(evil),
        "pickle.load": lambda: pickle.load(io.BytesIO(evil)),
        "pickle.Unpickler": lambda: pickle.Unpickler(io.BytesIO(evil)).load(),
        "torch._C._pickle_load_obj": lambda: torch._C._pickle_load_obj(evil),
        "sympy.sympify": lambda: __import__("sympy").sympify("__import__('os').getpid()"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(UnsafeModelError), safety.no_unpickling("x.pt"):
            assert safety.guard_installed()
            attempt()
        assert not marker.exists(), name
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    with safety.no_unpickling("x.pt"):  # weights-only loading of plain tensors still works
        got = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    assert torch.equal(got["w"], torch.ones(2))
    assert (
        torch.load,
        pickle.loads,
        pickle.load,
        pickle.Unpickler,
        torch._C._pickle_load_obj,
    ) == originals
    assert not safety.guard_installed()
    assert pickle.loads(pickle.dumps([1, 2])) == [1, 2]


def test_guard_raises_a_refusal_that_the_library_swallowed(tmp_path: Path) -> None:
    marker = tmp_path / MARKER_NAME
    with pytest.raises(UnsafeModelError), safety.no_unpickling("x.pt"):
        try:
            pickle.loads(payload(marker, 0))
        except Exception:
            pass  # what a library that "falls back" does
    assert not marker.exists()


def test_guard_is_per_thread() -> None:
    """Other threads keep using pickle while one thread loads a model file."""
    inside, done = threading.Event(), threading.Event()
    seen: list[object] = []

    def other() -> None:
        inside.wait(5)
        seen.append(pickle.loads(pickle.dumps({"a": 1})))
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with pytest.raises(UnsafeModelError), safety.no_unpickling("x.pt"):
        inside.set()
        done.wait(5)
        pickle.loads(pickle.dumps({"a": 1}))  # this thread: refused
    t.join()
    assert seen == [{"a": 1}]
    assert not safety.guard_installed()


def test_shape_expressions_torch_writes_pass_and_code_does_not() -> None:
    for ok in (
        "Symbol('s31', positive=True, integer=True)",
        "2*s0 + 1",
        "Eq(Mod(s0, 2), 0)",
        "FloorDiv(s1, 4) >= 1",
        "Max(1, s0)",
        "-oo",
    ):
        safety.check_shape_expression(ok)
    for bad in (
        "__import__('os').system('true')",
        "Symbol('x').__class__",
        "preview(s0)",
        "s0.func",
        "(lambda: 1)()",
        "Symbol('s0', positive=__import__('os'))",
        "[s0 for s0 in ()]",
    ):
        with pytest.raises(UnsafeModelError):
            safety.check_shape_expression(bad)
