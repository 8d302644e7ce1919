"""Per-point records in a file beside the engine's, found through a sorted table of ids and read with `pread`.

A sealed generation keeps what a search reads of a few points (their payloads, their vectors' originals) in such
files: `pread` copies the bytes asked for, so the pages stay in the page cache (shared between workers, reclaimable)
and are never mapped into the process, where every page a search touched, and the 64 KB around it, would count in
its resident memory (docs/benchmarks.md, sessions 56-57). The table is three small arrays loaded in memory: 16-byte
ids, offsets and sizes (28 bytes a point).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb_service.errors import REPAIR, IndexCorruptError


def key(point_id: str) -> bytes | None:
    """The id as the table keeps it (None: not a UUID, which the table cannot hold)."""
    if len(point_id) == 36:  # the canonical form every point id has: read without building a UUID (a search reads
        try:  # a few hundred)
            return bytes.fromhex(point_id.replace("-", ""))
        except ValueError:
            pass
    try:
        return uuid.UUID(point_id).bytes
    except ValueError:
        return None


def write(root: Path, data: str, table: str, records: Iterable[tuple[str, bytes]], **extra: Any) -> bool:
    """Write every point's record and the id table durably under their final names; `extra`: scalars kept in the
    table. False (and nothing written) when a point's id is not a UUID."""
    keys: list[bytes] = []
    spans: list[tuple[int, int]] = []
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{data}.")
    os.fchmod(fd, 0o644)  # as the engine's files (mkstemp makes it private)
    try:
        with os.fdopen(fd, "wb") as fh:
            at = 0
            for point_id, record in records:
                k = key(point_id)
                if k is None:
                    return False
                fh.write(record)
                keys.append(k)
                spans.append((at, len(record)))
                at += len(record)
            fh.flush()
            os.fsync(fh.fileno())
        write_table(root / table, keys, spans, **extra)
        os.replace(tmp, root / data)
        tmp = ""
        return True
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def write_table(
    path: Path,
    keys: list[bytes],
    spans: list[tuple[int, int]],
    per_point: dict[str, np.ndarray] | None = None,
    **extra: Any,
) -> None:
    """The sorted id table of records at `spans` (offset, size) of a data file, written durably; `per_point`: arrays
    of one value a key (in the order of `keys`), kept in the table's order; `extra`: other arrays, kept as given."""
    ids = np.array(keys, dtype="S16")
    order = np.argsort(ids, kind="stable")
    where = np.array(spans, dtype=np.int64).reshape(-1, 2)[order]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in extra.items()}
        arrays |= {k: np.asarray(v)[order] for k, v in (per_point or {}).items()}
        arrays |= {"ids": ids[order], "offsets": where[:, 0].astype(np.uint64), "sizes": where[:, 1].astype(np.uint32)}
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def copy_range(src: int, dst: int, src_offset: int, dst_offset: int, length: int) -> None:
    """Copy `length` bytes between two open files at the given offsets (in the kernel where it can)."""
    while length > 0:
        try:
            done = os.copy_file_range(src, dst, length, src_offset, dst_offset)
        except OSError:  # a file system that cannot: through the process
            data = os.pread(src, min(length, 1 << 22), src_offset)
            done = os.pwrite(dst, data, dst_offset) if data else 0
        if done <= 0:
            raise OSError(f"copying {length} bytes at {src_offset}: the source ends early")
        src_offset, dst_offset, length = src_offset + done, dst_offset + done, length - done


class RecordFile:
    """The records of one sealed generation's data file, found through its id table."""

    def __init__(self, data: Path, table: Path) -> None:
        with np.load(table) as arrays:
            self._ids = arrays["ids"]
            self._offsets = arrays["offsets"]
            self._sizes = arrays["sizes"]
            self.extra = {k: arrays[k] for k in arrays.files if k not in ("ids", "offsets", "sizes")}
        # Closed when the last holder lets go (or by `close`): a search still reading keeps it open.
        self._file = open(data, "rb", buffering=0)  # noqa: SIM115
        # Damage a read found (a record cut short or unreadable): the store's check reports it from then on, so the
        # health check and every later request see it, not only the request that read the record.
        self.fault: IndexCorruptError | None = None

    def fileno(self) -> int:
        return self._file.fileno()

    @property
    def name(self) -> str:
        return Path(self._file.name).name

    def spans(self, ids: Sequence[str]) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Where the recorded ones of `ids` are: their positions in `ids`, offsets and sizes (one table lookup)."""
        found, at = self.positions(ids)
        return found, self._offsets[at], self._sizes[at]

    def positions(self, ids: Sequence[str]) -> tuple[list[int], np.ndarray]:
        """The recorded ones of `ids`: their positions in `ids` and in the table."""
        keys = [key(i) for i in ids]
        if not keys or not len(self._ids):
            return [], np.zeros(0, np.int64)
        wanted = np.array([k or b"" for k in keys], dtype="S16")  # (the nil UUID's 16 zero bytes read as b"" too)
        valid = np.array([k is not None for k in keys])
        at = np.minimum(np.searchsorted(self._ids, wanted), len(self._ids) - 1)
        found = np.flatnonzero((self._ids[at] == wanted) & valid)
        return found.tolist(), at[found]

    def starting_with(self, prefix: bytes) -> np.ndarray:
        """The table positions of the ids that start with `prefix` (a SOP's chunks: kb_service.ids), in order."""
        low = int(np.searchsorted(self._ids, np.bytes_(prefix), side="left"))
        high = int(np.searchsorted(self._ids, np.bytes_(prefix + b"\xff" * (16 - len(prefix))), side="right"))
        return np.arange(low, high)

    def ids_at(self, positions: np.ndarray) -> list[str]:
        """The ids at these table positions, in their canonical form."""
        return [str(uuid.UUID(bytes=bytes(k).ljust(16, b"\0"))) for k in self._ids[positions]]

    def spans_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The offsets and sizes of the records at these table positions."""
        return self._offsets[positions], self._sizes[positions]

    def read_at(self, offset: int, size: int, point_id: str = "") -> bytes:
        raw = os.pread(self._file.fileno(), size, offset)
        if len(raw) != size:
            raise self.damaged(f"record {point_id} cut short")
        return raw

    def read_many(self, offsets: np.ndarray, sizes: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The records at `offsets` (of `sizes`) in file order, one `pread` a run of adjacent ones: their bytes end
        to end, and that order (positions in the arguments)."""
        order = np.argsort(offsets, kind="stable")
        at, ends = offsets[order].astype(np.int64), (offsets[order] + sizes[order]).astype(np.int64)
        breaks = np.flatnonzero(at[1:] != ends[:-1]) + 1
        runs = zip(np.concatenate(([0], breaks)), np.concatenate((breaks, [len(at)])), strict=True)
        return b"".join(self.read_at(int(at[a]), int(ends[b - 1] - at[a])) for a, b in runs), order

    def record(self, point_id: str) -> bytes | None:
        """The point's record as written (None: not recorded)."""
        k = key(point_id)
        if k is None or not len(self._ids):
            return None
        at = int(np.searchsorted(self._ids, np.bytes_(k)))
        if at >= len(self._ids) or self._ids[at] != k.rstrip(b"\0"):
            return None
        return self.read_at(int(self._offsets[at]), int(self._sizes[at]), point_id)

    def damaged(self, what: str) -> IndexCorruptError:
        generation, data = Path(self._file.name).parent.name, self.name
        self.fault = IndexCorruptError(
            f"索引版本 {generation} 的 {data} 已损坏（{what}）/ {data} of {generation} is damaged ({what})；{REPAIR}"
        )
        return self.fault

    def close(self) -> None:
        self._file.close()
