"""Copying a generation's files without filling their holes; replacing a small file in one step.

The engine's segment files are large and mostly unwritten (its storages grow in preallocated 32 MB chunks), so on disk
a small index takes a few megabytes. A plain copy (`shutil.copytree`) writes the holes out as zeros: every published
generation then took about 235 MB for a hundred chunks. This copy moves only the data regions (SEEK_DATA/SEEK_HOLE) and
keeps the holes as holes; where the file system cannot report holes it copies the whole file.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def copy_tree(source: Path, target: Path, ignore: Callable[[str, list[str]], Iterable[str]] | None = None) -> None:
    """Copy the directory `source` to the new directory `target`, keeping sparse files sparse."""
    shutil.copytree(source, target, ignore=ignore, copy_function=copy_file)


def copy_file(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        try:
            regions = list(_data_regions(src.fileno(), size))
        except (OSError, AttributeError):  # no hole reporting on this system: copy everything
            regions = [(0, size)]
        for start, end in regions:
            _copy_range(src.fileno(), dst.fileno(), start, end)
        dst.truncate(size)
    shutil.copystat(source, target)


def _data_regions(fd: int, size: int) -> Iterator[tuple[int, int]]:
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # no data after offset: the rest is a hole
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        offset = end


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    os.lseek(src, start, os.SEEK_SET)
    os.lseek(dst, start, os.SEEK_SET)
    remaining = end - start
    while remaining > 0:
        chunk = os.read(src, min(remaining, 1 << 20))
        if not chunk:
            return
        os.write(dst, chunk)
        remaining -= len(chunk)


def write_file(path: Path, data: bytes) -> None:
    """Replace the file in one step: a reader, a crash or a full disk leaves the old content or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
