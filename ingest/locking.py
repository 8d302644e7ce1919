"""The writer lock: one writer of the index, the SOP folder and the version history at a time, across processes.

Ingest (`Indexer.sync`), trainers' publishing (`Publisher`) and the recovery of interrupted publishes all write under
it. It is re-entrant within a process, so a publish that holds it can call `Indexer.apply`, which takes it again.
`WriterLock` is the seam. With PostgreSQL as the service database (replicas on several hosts sharing the version
history), `writer_lock` adds a PostgreSQL advisory lock inside the file lock: the file lock still orders the
processes of one data directory, the advisory lock the replicas (always taken in that order, so no two wait on each
other). The server releases an advisory lock when its holder's connection ends, as the kernel does an `flock`.

The holder writes what it is doing into the lock file (`holder`), so a writer that has to wait says for what: a
trainer's publish sent during a 9-minute `kb ingest` waited for it without a word (an operator's trial). A trainer's
request waits `KB_PUBLISH_WAIT_SECONDS` at most and is then refused with the holder named (`WriterBusyError`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from kb_service.db.engine import Database, lock_key
from kb_service.errors import WriterBusyError, first_line

log = logging.getLogger(__name__)

LOCK_FILE = "ingest.lock"


_POLL = 0.1  # seconds between tries while a bounded wait lasts


class WriterLock(Protocol):
    def hold(self, purpose: str = "", wait: float | None = None) -> AbstractContextManager[None]:
        """Wait until this thread is the only writer; re-entrant within the thread that holds it. `purpose`: what
        the holder does, told to writers that wait; `wait`: seconds at most, then `WriterBusyError` (None: no limit)."""
        ...


def busy(holder: str, waited: float) -> WriterBusyError:
    return WriterBusyError(
        f"索引正在被其他任务写入：{holder}；等了 {waited:.0f} 秒，本次操作没有进行（编辑内容仍在），请稍后重试 / "
        f"the index is being written by another task ({holder}); nothing was changed, try again later"
    )


class ReentrantLock:
    """Per-process re-entrancy around a cross-process lock: the outermost hold takes it, inner holds only count.

    Other threads of the process wait on the thread lock, so the cross-process lock is taken once per process."""

    def __init__(self) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._purpose = ""  # what the outermost hold of this process does

    @contextmanager
    def hold(self, purpose: str = "", wait: float | None = None) -> Iterator[None]:
        deadline = None if wait is None else time.monotonic() + wait
        if not self._thread_lock.acquire(timeout=-1 if wait is None else wait):
            raise busy(self._purpose or "本进程的另一个任务 / another task of this process", wait or 0.0)
        try:
            if self._depth == 0:
                self._acquire(purpose, deadline)
                self._purpose = purpose
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._purpose = ""
                    self._release()
        finally:
            self._thread_lock.release()

    def _acquire(self, purpose: str, deadline: float | None) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


def wait_for(
    take: Callable[[], bool], block: Callable[[], object], deadline: float | None, holder: Callable[[], str]
) -> None:
    """Take the lock: `take` tries without waiting; when it fails the wait is logged with the holder, then `block`
    waits for as long as it takes, or, with a `deadline`, `take` is tried again until then and `WriterBusyError`
    names the holder."""
    if take():
        return
    log.warning("waiting for the writer lock: %s", holder())
    started = time.monotonic()
    if deadline is None:
        block()
    else:
        while not take():
            if time.monotonic() >= deadline:
                raise busy(holder(), time.monotonic() - started)
            time.sleep(_POLL)
    log.warning("took the writer lock after waiting %.1f s", time.monotonic() - started)  # (a trial: how long?)


class FileWriterLock(ReentrantLock):
    """`flock` on `<data_dir>/ingest.lock`; the kernel releases it when the holding process dies."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._fh: IO[str] | None = None

    def _acquire(self, purpose: str, deadline: float | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for as long as the lock is held
        try:
            wait_for(lambda: _try_flock(fh), lambda: fcntl.flock(fh, fcntl.LOCK_EX), deadline, self.holder)
            fh.truncate(0)  # (appended writes go to the start of the emptied file)
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            fh.write(json.dumps({"purpose": purpose, "pid": os.getpid(), "host": socket.gethostname(), "since": since}))
            fh.flush()
        except BaseException:
            fh.close()
            raise
        self._fh = fh

    def _release(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.truncate(0)
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def holder(self) -> str:
        """What the process holding the lock said it does, when and where (read from the lock file)."""
        try:
            said = json.loads(self.path.read_text(encoding="utf-8"))
            return f"{said['purpose'] or '写入'}（主机 {said['host']} 进程 {said['pid']}，{said['since']} 开始）"
        except (OSError, ValueError, KeyError, TypeError):  # not written yet, or by an older version
            return "另一个进程 / another process"


def _try_flock(fh: IO[str]) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


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

    def _acquire(self, purpose: str, deadline: float | None) -> None:
        conn = self.db.engine.connect()
        try:
            # Another replica publishes or ingests: said, not a silent minute (an operator's trial: two hosts'
            # first `kb ingest` together, the second took twice as long and printed nothing)
            wait_for(
                lambda: bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self._key})").scalar()),
                lambda: conn.exec_driver_sql(f"SELECT pg_advisory_lock({self._key})"),
                deadline,
                lambda: "另一台副本的发布或同步 / another replica's publish or ingest",
            )
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
    def hold(self, purpose: str = "", wait: float | None = None) -> Iterator[None]:
        started = time.monotonic()
        with self.local.hold(purpose, wait):
            left = None if wait is None else max(0.0, wait - (time.monotonic() - started))
            with self.shared.hold(purpose, left):
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
