"""Generation copies keep the engine's sparse files sparse (a plain copy wrote 235 MB of zeros per generation)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kb_service.store import files


def allocated(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def test_a_copied_tree_has_the_same_bytes_and_keeps_holes_as_holes(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "segment").mkdir(parents=True)
    chunk = source / "segment" / "chunk_0.mmap"
    with open(chunk, "wb") as f:  # 32 MB file with data at the start, in the middle and at the end only
        f.write(b"head" * 1024)
        f.seek(16 << 20)
        f.write(os.urandom(8192))
        f.seek((32 << 20) - 5)
        f.write(b"tail!")
    (source / "status.dat").write_bytes(b"\x01" * 16)
    if allocated(source) > 8 << 20:
        pytest.skip("this file system does not keep holes")

    files.copy_tree(source, tmp_path / "copy")

    for original in (chunk, source / "status.dat"):
        copy = tmp_path / "copy" / original.relative_to(source)
        assert copy.stat().st_size == original.stat().st_size
        assert copy.read_bytes() == original.read_bytes()
    assert allocated(tmp_path / "copy") < 2 * allocated(source) + (1 << 20)


def test_a_file_without_holes_is_copied_whole(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    (tmp_path / "a").write_bytes(data)
    files.copy_file(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == data


def test_an_empty_file_and_a_file_that_is_all_hole(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with open(tmp_path / "hole", "wb") as f:
        f.truncate(5 << 20)
    files.copy_file(tmp_path / "empty", tmp_path / "empty2")
    files.copy_file(tmp_path / "hole", tmp_path / "hole2")
    assert (tmp_path / "empty2").read_bytes() == b""
    assert (tmp_path / "hole2").read_bytes() == b"\0" * (5 << 20)
