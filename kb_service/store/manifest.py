"""Checksums of a sealed generation's files, written when it is sealed and checked before it is opened.

The embedded engine maps its files into memory: a file truncated or overwritten on disk makes searches fail or, for a
mapped page past the new end of file, kills the process (SIGBUS). A generation whose files differ from what was
recorded at seal time is refused instead of opened.

Two levels: `check` compares only presence and sizes (a few `stat` calls; cheap enough to run every second on the
live generation), `verify` also compares content digests (run once per process when it opens a generation).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

from kb_service.errors import IndexCorruptError

MANIFEST = "MANIFEST.json"
FORMAT = 1
_BLOCK = 1 << 16
_ZERO = bytes(_BLOCK)


def digest(path: Path) -> str:
    """sha256 of a file's non-zero 64 KiB blocks, each prefixed by its offset.

    The engine preallocates large sparse files (245 MB apparent, 3 MB of data for the sample corpus): holes are
    skipped without reading (SEEK_DATA) and all-zero blocks are left out, so the cost follows the data. With the
    size compared separately this still changes with any byte: a block that becomes zero drops out of the digest.
    JSON files are digested by content (the engine rewrites them in another key order each time it opens them).
    """
    if path.suffix == ".json":
        canonical = json.dumps(json.loads(path.read_bytes()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            start, end = _data_region(fd, pos, size)
            if start >= size:
                break
            start -= start % _BLOCK
            os.lseek(fd, start, os.SEEK_SET)
            while start < end:
                block = fh.read(_BLOCK)
                if not block:
                    break
                if block != (_ZERO if len(block) == _BLOCK else bytes(len(block))):
                    h.update(start.to_bytes(8, "little"))
                    h.update(block)
                start += len(block)
            pos = start
    return h.hexdigest()


def _data_region(fd: int, pos: int, size: int) -> tuple[int, int]:
    """The next [start, end) that may hold data at or after `pos` (the whole rest where holes are not reported)."""
    try:
        start = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # only a hole remains
            return size, size
        return pos, size  # the file system does not report holes: read everything
    return start, os.lseek(fd, start, os.SEEK_HOLE)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def write(root: Path) -> None:
    """Record the size and digest of every file under `root` (durably: written, synced, then renamed in place)."""
    files = {str(p.relative_to(root)): [p.stat().st_size, digest(p)] for p in _files(root)}
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "files": files}, indent=0))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, root / MANIFEST)


def remove(root: Path) -> None:
    """A generation about to be changed no longer matches its manifest: it gets a new one when sealed again."""
    (root / MANIFEST).unlink(missing_ok=True)


def read(root: Path) -> dict[str, tuple[int, str]]:
    """What sealing recorded: relative path -> (size, digest). FileNotFoundError when nothing was recorded."""
    try:
        files = json.loads((root / MANIFEST).read_text())["files"]
        return {str(rel): (int(size), str(sha)) for rel, (size, sha) in files.items()}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexCorruptError(
            f"索引版本 {root.name} 的校验清单无法读取 / unreadable manifest of {root.name}: {exc}"
        ) from exc


def exists(root: Path) -> bool:
    return (root / MANIFEST).is_file()


def check(root: Path, *, full: bool, only: str | None = None, skip: tuple[str, ...] = ()) -> None:
    """Raise IndexCorruptError if a recorded file is missing or has another size (or, with `full`, other content);
    `only`: that recorded file alone; `skip`: recorded files not checked (a copy left them out).

    A generation without a manifest (sealed before checksums existed) passes: the caller decides what to say."""
    name = root.name
    if not root.is_dir():
        raise IndexCorruptError(f"索引版本 {name} 不存在 / index generation {name} does not exist")
    try:
        recorded = read(root)
    except FileNotFoundError:
        return
    if only is not None:
        if only not in recorded:
            raise IndexCorruptError(f"索引版本 {name} 未记录文件 {only} / {only} is not recorded in {name}")
        recorded = {only: recorded[only]}
    for rel, (size, sha) in recorded.items():
        if rel in skip:
            continue
        _check_file(root, rel, size, sha if full else None)


def _check_file(root: Path, rel: str, size: int, sha: str | None) -> None:
    name, path = root.name, root / rel
    try:
        actual = path.stat().st_size
    except OSError:
        raise IndexCorruptError(f"索引版本 {name} 缺少文件 {rel} / index generation {name} is missing {rel}") from None
    json_file = path.suffix == ".json"
    if not json_file and actual != size:
        raise IndexCorruptError(
            f"索引版本 {name} 的文件 {rel} 大小为 {actual} 字节，封存时为 {size} 字节 / "
            f"{rel} of {name} has {actual} bytes, {size} when sealed"
        )
    if sha is None:
        return
    try:
        same = digest(path) == sha
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"索引版本 {name} 的文件 {rel} 无法读取 / cannot read {rel}: {exc}") from exc
    if not same:
        raise IndexCorruptError(
            f"索引版本 {name} 的文件 {rel} 内容与封存时不一致 / {rel} of {name} differs from when it was sealed"
        )
