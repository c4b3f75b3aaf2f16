"""``python -m paper.gallery``: refusals before any work (the full run is the docs' gallery)."""

from __future__ import annotations

from pathlib import Path

from paper.gallery import FILES, main


def test_existing_files_are_kept_without_force(tmp_path: Path, capsys) -> None:
    (tmp_path / "metamers.png").write_bytes(b"old")
    assert main(["--out", str(tmp_path)]) == 2
    assert "metamers.png exists; add --force" in capsys.readouterr().err
    assert (tmp_path / "metamers.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metamers.png"]


def test_bad_sizes_are_refused(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path / "g"), "--samples", "1"]) == 2
    assert "--samples must be at least 2" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
    assert "gallery.md" in FILES
