"""The job runner's input reader: folders of .npy/.png files, one .npy array, arrays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fiberscope.errors import InputError
from fiberscope.jobs.inputs import ItemReadError, open_inputs


def test_folder_of_npy_and_png(tmp_path) -> None:
    np.save(tmp_path / "a.npy", np.full((1, 3, 4), 0.5))
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20, mode="L").save(
        tmp_path / "b.png"
    )
    rgb = np.zeros((3, 4, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "c.png")
    (tmp_path / "notes.txt").write_text("not an item")
    (tmp_path / ".hidden.npy").write_bytes(b"")
    inputs = open_inputs(tmp_path)
    assert [i.key for i in inputs.items] == ["a.npy", "b.png", "c.png"]
    assert inputs.ignored == 1
    assert inputs.shape == (1, 3, 4)
    np.testing.assert_array_equal(inputs.read(0), np.full((1, 3, 4), 0.5))
    gray = inputs.read(1)
    assert gray.dtype == np.float64
    np.testing.assert_allclose(gray[0], np.arange(12).reshape(3, 4) * 20 / 255)
    # colour images are channels-first; here they do not match the majority shape
    assert inputs.items[2].shape == (3, 3, 4)
    with pytest.raises(ItemReadError, match=r"shape \(3, 3, 4\) differs from the other items"):
        inputs.read(2)


def test_png_colour_channels_first(tmp_path) -> None:
    rgb = np.zeros((2, 5, 3), dtype=np.uint8)
    rgb[..., 2] = 51
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "c.png")
    x = open_inputs(tmp_path).read(0)
    assert x.shape == (3, 2, 5)
    np.testing.assert_allclose(x[2], 0.2)
    np.testing.assert_allclose(x[:2], 0.0)


def test_bad_items_fail_alone(tmp_path) -> None:
    for i in range(4):
        np.save(tmp_path / f"x{i}.npy", np.full((2,), float(i)))
    (tmp_path / "x1.npy").write_bytes(b"not numpy")
    np.save(tmp_path / "x2.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    inputs = open_inputs(tmp_path)
    assert inputs.shape == (2,)
    with pytest.raises(ItemReadError, match=r"not a valid \.npy file"):
        inputs.read(1)
    with pytest.raises(ItemReadError, match="pickles are never loaded"):
        inputs.read(2)
    np.testing.assert_array_equal(inputs.read(3), [3.0, 3.0])
    # a file that disappears after the listing fails when it is read
    (tmp_path / "x3.npy").unlink()
    with pytest.raises(ItemReadError, match="does not exist"):
        inputs.read(3)


def test_one_array_file_is_memory_mapped_rows(tmp_path) -> None:
    data = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    np.save(tmp_path / "all.npy", data)
    inputs = open_inputs(tmp_path / "all.npy")
    assert len(inputs) == 4 and inputs.shape == (2, 3)
    assert inputs.items[2].key == "row 2"
    np.testing.assert_array_equal(inputs.read(2), data[2].astype(np.float64))
    assert "data_sha256" in inputs.identity()
    with pytest.raises(InputError, match=r"but the job asks for shape \(6,\)"):
        open_inputs(tmp_path / "all.npy", shape=[6])


def test_arrays_in_memory() -> None:
    inputs = open_inputs(np.zeros((3, 2)))
    assert len(inputs) == 3 and inputs.kind == "array"
    assert len(open_inputs([np.zeros(2), np.ones(2)])) == 2
    with pytest.raises(InputError, match="different shapes"):
        open_inputs([np.zeros(2), np.ones(3)])
    with pytest.raises(InputError, match=r"give an array \(N, \*shape\)"):
        open_inputs(np.zeros(3))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "do not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "holds no .npy or .png files"),
        (lambda p: (p / "x.csv").write_text("1,2") and p / "x.csv", "neither a folder nor"),
        (
            lambda p: (
                np.save(p / "o.npy", np.array([None, 1], dtype=object), allow_pickle=True)
                or p / "o.npy"
            ),
            "holds Python objects",
        ),
    ],
)
def test_unusable_inputs(tmp_path, make, message) -> None:
    with pytest.raises(InputError, match=message):
        open_inputs(make(tmp_path))


class _Unblock:
    """Open named pipes for writing after ``after`` seconds, so a reader stuck on them returns.

    A reader that blocks on a pipe is the bug; with this the test fails instead of hanging.
    """

    def __init__(self, *fifos, after: float = 10.0) -> None:
        import threading

        self.fifos, self.blocked = fifos, False
        self.timer = threading.Timer(after, self._fire)

    def _fire(self) -> None:
        import os

        for f in self.fifos:
            try:
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))  # succeeds only with a reader
                self.blocked = True
            except OSError:
                pass

    def __enter__(self) -> _Unblock:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes are POSIX")
def test_named_pipes_are_never_opened(tmp_path) -> None:
    import os

    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros(2))
    os.mkfifo(folder / "b.npy")  # an item: listing or reading it must not block
    os.mkfifo(tmp_path / "all.npy")  # the inputs themselves
    with _Unblock(folder / "b.npy", tmp_path / "all.npy") as guard:
        inputs = open_inputs(folder)
        assert inputs.shape == (2,)
        with pytest.raises(ItemReadError, match=r"^it is not a regular file \(a pipe"):
            inputs.read(1)
        np.testing.assert_array_equal(inputs.read(0), [0.0, 0.0])
        with pytest.raises(InputError, match=r"all\.npy are not a regular file or folder"):
            open_inputs(tmp_path / "all.npy")
    assert not guard.blocked


def test_items_are_read_as_start_points_are(tmp_path) -> None:
    """One reader for --at files and dataset items (fiberscope.io.inputs.read_point)."""
    rgba = np.full((2, 2, 4), 255, dtype=np.uint8)
    rgba[..., 0] = 51
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "b.png")  # opaque: alpha dropped
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "c.png")  # transparent: refused
    np.save(tmp_path / "d.npy", np.array([[[0.5, np.inf]] * 2] * 3))
    inputs = open_inputs(tmp_path)
    assert inputs.shape == (3, 2, 2)
    x = inputs.read(0)
    np.testing.assert_allclose(x[0], 0.2)
    np.testing.assert_allclose(x[1:], 1.0)
    with pytest.raises(ItemReadError, match=r"^the image has transparent pixels"):
        inputs.read(1)
    with pytest.raises(ItemReadError, match=r"^it has a non-finite value \(inf at flat index 1\)"):
        inputs.read(2)
