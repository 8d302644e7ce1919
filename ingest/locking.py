"""The writer lock: one writer of the index, the SOP folder and the version history at a time, across processes.

Ingest (`Indexer.sync`), trainers' publishing (`Publisher`) and the recovery of interrupted publishes all write under
it. It is re-entrant within a process, so a publish that holds it can call `Indexer.apply`, which takes it again.
`WriterLock` is the seam. With PostgreSQL as the service database (replicas on several hosts sharing the version
history), `writer_lock` adds a PostgreSQL advisory lock inside the file lock: the file lock still orders the
processes of one data directory, the advisory lock the replicas (always taken in that order, so no two wait on each
other). The server releases an advisory lock when its holder's connection ends, as the kernel does an `flock`.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from kb_service.db.engine import Database, lock_key
from kb_service.errors import first_line

log = logging.getLogger(__name__)

LOCK_FILE = "ingest.lock"


class WriterLock(Protocol):
    def hold(self) -> AbstractContextManager[None]:
        """Block until this thread is the only writer; re-entrant within the thread that holds it."""
        ...


class ReentrantLock:
    """Per-process re-entrancy around a cross-process lock: the outermost hold takes it, inner holds only count.

    Other threads of the process wait on the thread lock, so the cross-process lock is taken once per process."""

    def __init__(self) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class FileWriterLock(ReentrantLock):
    """`flock` on `<data_dir>/ingest.lock`; the kernel releases it when the holding process dies."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._fh: IO[str] | None = None

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a")  # noqa: SIM115 - held open for as long as the lock is held
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except BaseException:
            fh.close()
            raise
        self._fh = fh

    def _release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


_file_locks: dict[Path, FileWriterLock] = {}
_registry = threading.Lock()


def file_writer_lock(data_dir: Path) -> FileWriterLock:
    """The process's one lock object for `data_dir`: two handles on the same data in one process (an old and a new
    `KnowledgeBase`) share it, so nesting them never waits on a second file descriptor of the same process."""
    path = (data_dir / LOCK_FILE).resolve()
    with _registry:
        lock = _file_locks.get(path)
        if lock is None:
            lock = _file_locks[path] = FileWriterLock(path)
        return lock


class AdvisoryWriterLock(ReentrantLock):
    """A PostgreSQL session advisory lock, held on a connection of its own for as long as the lock is held."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self._key = lock_key("writer")
        self._conn: Connection | None = None

    def _acquire(self) -> None:
        conn = self.db.engine.connect()
        try:
            if not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self._key})").scalar():
                # Another replica publishes or ingests: said, not a silent minute (an operator's trial: two hosts'
                # first `kb ingest` together, the second took twice as long and printed nothing)
                log.warning("waiting for another replica's publish or ingest to finish (they take turns)")
                conn.exec_driver_sql(f"SELECT pg_advisory_lock({self._key})")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self._key})")
        except SQLAlchemyError as exc:
            # The database went away while the lock was held: ending the session releases it (a lost connection
            # has already). Raising here turned a publish that had finished into a 503 "retry" (an operator's trial).
            log.warning("writer lock: could not unlock (%s); its session is closed instead", first_line(exc))
            conn.invalidate()
        finally:
            conn.close()


class BothLocks:
    """The data directory's file lock, then the replicas' advisory lock."""

    def __init__(self, local: WriterLock, shared: WriterLock) -> None:
        self.local = local
        self.shared = shared

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self.local.hold(), self.shared.hold():
            yield


_advisory_locks: dict[str, AdvisoryWriterLock] = {}


def writer_lock(data_dir: Path, db: Database) -> WriterLock:
    """The writer lock of `data_dir`: its file lock, plus the advisory lock when `db` is shared by replicas."""
    local = file_writer_lock(data_dir)
    if not db.shared:
        return local
    with _registry:
        shared = _advisory_locks.get(db.url)
        if shared is None:
            shared = _advisory_locks[db.url] = AdvisoryWriterLock(db)
    return BothLocks(local, shared)
