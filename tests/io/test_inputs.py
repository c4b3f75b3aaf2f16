"""Start points read from files (``fiberscope.io.inputs.read_point``): formats and refusals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import model_files as mf
from fiberscope.errors import InputError
from fiberscope.io.inputs import looks_like_point_file, read_point


def test_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    got = read_point(tmp_path / "x.npy")
    assert got.dtype == np.float64 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, np.arange(6).reshape(2, 3))
    np.save(tmp_path / "i.npy", np.array([1, 2], dtype=np.int8))
    assert read_point(tmp_path / "i.npy").tolist() == [1.0, 2.0]


def test_pt_one_tensor(tmp_path: Path) -> None:
    torch.save(torch.tensor([[0.25, 0.5]], dtype=torch.float32), tmp_path / "x.pt")
    got = read_point(tmp_path / "x.pt")
    assert got.dtype == np.float64 and got.tolist() == [[0.25, 0.5]]


def test_images_are_scaled_to_unit_range_as_chw(tmp_path: Path) -> None:
    gray = (np.arange(20).reshape(4, 5) * 12).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    got = read_point(tmp_path / "g.png")
    assert got.shape == (1, 4, 5) and got.dtype == np.float64
    np.testing.assert_allclose(got[0], gray / 255.0)
    rgb = np.zeros((3, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 51
    Image.fromarray(rgb).save(tmp_path / "c.png")
    got = read_point(tmp_path / "c.png")
    assert got.shape == (3, 3, 4)
    assert got[0].min() == 1.0 and got[1].max() == 0.0 and np.allclose(got[2], 0.2)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    assert read_point(tmp_path / "c.jpg").shape == (3, 3, 4)
    opaque = np.dstack([rgb, np.full((3, 4), 255, np.uint8)])
    Image.fromarray(opaque).save(tmp_path / "o.png")  # RGBA without transparency: RGB
    np.testing.assert_array_equal(read_point(tmp_path / "o.png"), read_point(tmp_path / "c.png"))
    sixteen = (np.arange(20).reshape(4, 5) * 3000).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "s.png")
    np.testing.assert_allclose(read_point(tmp_path / "s.png")[0], sixteen / 65535.0)


def test_text(tmp_path: Path) -> None:
    (tmp_path / "row.txt").write_text("0.25, 0.5 ; 1e-3\n")
    assert read_point(tmp_path / "row.txt").tolist() == [0.25, 0.5, 0.001]
    (tmp_path / "col.csv").write_text("# a column\n1\n2\n\n3\n")
    assert read_point(tmp_path / "col.csv").tolist() == [1.0, 2.0, 3.0]
    (tmp_path / "table.csv").write_text("1,2,3\n4,5,6\n")
    assert read_point(tmp_path / "table.csv").shape == (2, 3)


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("missing.npy", None, "the file does not exist"),
        ("empty.npy", b"", "the file is empty"),
        ("x.bin", b"\x00\x01", r"unknown file type '\.bin'"),
        ("object.npy", "object", "holds Python objects, which are never unpickled"),
        ("strings.npy", "strings", r"holds <U1 values; it must hold real numbers"),
        ("complex.npy", "complex", "holds complex128 values"),
        ("nan.npy", "nan", r"non-finite value \(nan at flat index 1\)"),
        ("inf.txt", "1, inf\n", r"non-finite value \(inf at flat index 1\)"),
        ("zero.npy", "zero", "the array is empty"),
        ("garbage.npy", b"\x93NUMPY garbage", "not a valid .npy file"),
        ("archive.npy", "npz", "an .npz archive, not one array"),
        ("dict.pt", "dict", "holds a dict, not one tensor"),
        ("evil.pt", "evil", "needs unpickling Python objects"),
        ("text.pt", "not a torch file\n", "not a valid torch file"),
        ("corrupt.png", b"\x89PNG\r\n\x1a\n" + bytes(40), "(truncated or corrupt|not an image)"),
        ("fake.jpg", "just text\n", "not an image Pillow can read"),
        ("alpha.png", "alpha", "transparent pixels"),
        ("words.csv", "1,2\n3,x\n", "'x' on line 2 is not a number"),
        ("ragged.csv", "1,2\n3\n", r"rows have different lengths \(1 to 2 numbers\)"),
        ("blank.txt", "# nothing\n\n", "holds no numbers"),
        ("latin.txt", b"\xe9\xe9\n", r"not text \(UTF-8\)"),
    ],
)
def test_refusals(tmp_path: Path, name: str, write, message: str) -> None:
    p = tmp_path / name
    if isinstance(write, bytes):
        p.write_bytes(write)
    elif write == "object":
        np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif write == "strings":
        np.save(p, np.array(["a", "b"]))
    elif write == "complex":
        np.save(p, np.array([1j]))
    elif write == "nan":
        np.save(p, np.array([0.0, np.nan]))
    elif write == "zero":
        np.save(p, np.zeros(0))
    elif write == "npz":
        with p.open("wb") as fh:
            np.savez(fh, a=np.ones(2))
    elif write == "dict":
        torch.save({"x": torch.ones(2)}, p)
    elif write == "evil":
        p.write_bytes(mf.evil_torch_zip(tmp_path / "PWNED"))
    elif write == "alpha":
        Image.fromarray(np.zeros((4, 4, 4), dtype=np.uint8)).save(p)
    elif isinstance(write, str):
        p.write_text(write)
    with pytest.raises(InputError, match=message) as info:
        read_point(p)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"cannot read the start point {p}")
    assert not (tmp_path / "PWNED").exists()


def test_special_files_are_never_opened(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="it is a folder"):
        read_point(tmp_path)
    os.mkfifo(tmp_path / "pipe.npy")  # opening it would block forever
    with pytest.raises(InputError, match="not a regular file"):
        read_point(tmp_path / "pipe.npy")


def test_at_values_that_name_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "1").write_text("a file named like a number")
    assert not looks_like_point_file("1")  # numbers stay numbers
    assert not looks_like_point_file("0.25,0.25")
    assert not looks_like_point_file("1e-3;2")
    assert looks_like_point_file("x0.npy") and looks_like_point_file("digit.PNG")
    assert looks_like_point_file("./data/x0") and looks_like_point_file("/tmp")
