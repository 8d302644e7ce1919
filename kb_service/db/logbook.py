"""The service database (SQLite under the data directory): query log, feedback and published SOP versions."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from kb_service.errors import DatabaseUnavailableError, VersionConflictError
from kb_service.text.privacy import mask

log = logging.getLogger(__name__)

# Query ids one process reserves at a time. Ids stay unique across processes sharing the database; rows are ordered
# by their timestamp, not their id. The writer thread keeps a spare block ready, so a process runs out only above
# ID_BLOCK searches per WRITE_INTERVAL (5,000/s), several times what one process serves.
ID_BLOCK = 1024
# Seconds between two writes of queued query-log rows (and checks that a spare block of ids is ready).
WRITE_INTERVAL = 0.2
# Query ids from here up are never reserved (blocks would have to hand out 4.5e15 ids first). When no reserved id is
# at hand (the database cannot be written), a process hands out ids from a random point of [2**52, 2**53): they stay
# below JavaScript's 2**53 limit, cannot collide with a reserved id, and are never written as row ids (a row that
# carries one gets a fresh id if the database takes it after all), so feedback that names one finds no query rather
# than the wrong one.
FALLBACK_BASE = 2**52
FALLBACK_SPAN = 2**52
# Seconds between two attempts, while writes fail, to open the database afresh: a connection opened on a read-only file
# stays read-only after the file is fixed.
REOPEN_INTERVAL = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    source TEXT NOT NULL,            -- search | chat
    audience TEXT NOT NULL,
    query TEXT NOT NULL,             -- personal data masked before it is stored
    result_ids TEXT NOT NULL,        -- JSON list of sop ids in rank order
    top_sop TEXT,
    top_score REAL,
    confidence REAL,
    handoff INTEGER NOT NULL DEFAULT 0,
    took_ms REAL,
    client TEXT                      -- keyed hash of a public caller's address (gap report caps); NULL for staff
);
CREATE INDEX IF NOT EXISTS queries_ts ON queries(ts);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    query_id INTEGER REFERENCES queries(id),
    sop_id TEXT NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    source TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback(ts);
CREATE TABLE IF NOT EXISTS id_blocks (   -- query ids are handed out in blocks, so a search never waits for the database
    name TEXT PRIMARY KEY,
    next_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS service_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sop_versions (
    sop_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    ts REAL NOT NULL,
    action TEXT NOT NULL,            -- publish | rollback | delete
    author TEXT NOT NULL,
    path TEXT NOT NULL,
    content TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'live',   -- pending while a publish is under way; only live rows are history
    content_hash TEXT NOT NULL DEFAULT '', -- sha256 of content, compared with the index's to recover a publish
    previous BLOB,                   -- the file before a pending publish replaced it (NULL: there was none)
    PRIMARY KEY (sop_id, version)
);
"""
# Columns added to sop_versions after its first release: databases created before get them at start-up.
VERSION_COLUMNS = {
    "state": "TEXT NOT NULL DEFAULT 'live'",
    "content_hash": "TEXT NOT NULL DEFAULT ''",
    "previous": "BLOB",
}


@dataclass(frozen=True)
class VersionRecord:
    sop_id: str
    version: int
    ts: float
    action: str
    author: str
    path: str
    content: str
    state: str = "live"
    content_hash: str = ""
    previous: bytes | None = None


def has_pending_versions(path: Path) -> bool:
    """Whether an interrupted publish left a pending version (read-only: readers need not write the database)."""
    if not path.exists():
        return False
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(sop_versions)")}
        if "state" not in columns:
            return False
        return conn.execute("SELECT 1 FROM sop_versions WHERE state = 'pending' LIMIT 1").fetchone() is not None
    finally:
        conn.close()


@dataclass(frozen=True)
class LogStatus:
    """How this process's query log is doing: what it could not write and since when (shown in /healthz). Searches
    never wait for the log, so a database that cannot be written shows here, not in their answers."""

    ok: bool  # False from a failed write until the next one that succeeds
    rows_written: int
    rows_dropped: int  # rows given up because the database did not take them
    fallback_ids: int  # query ids handed out while no reserved block was at hand
    pending: int  # rows waiting for the writer thread
    failing_since: float | None  # Unix seconds of the first failure of the current run
    last_error: str | None
    last_error_at: float | None


class Logbook:
    """Thread-safe access to the SQLite database. Query-log rows are written by a background thread in batches, and
    their ids come from blocks the same thread reserves ahead, so a search never waits for the database (or for another
    process's write lock) and never needs it to be writable; every other write is its own transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._conn = self._connect()
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._reopened = 0.0
        self._written = self._dropped = self._fallbacks = 0
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        try:
            self._prepare()
        except sqlite3.Error as exc:  # e.g. a read-only file: it is still read; the log degrades, searches go on
            self._failed(exc)
        self._salt = self._client_salt()
        self._ids = threading.Lock()
        self._next_id = self._block_end = 0
        self._spare: tuple[int, int] | None = None
        self._fallback_next = FALLBACK_BASE + secrets.randbelow(FALLBACK_SPAN)
        # Rows wait in a list that the writer thread takes every WRITE_INTERVAL seconds: appending is one
        # uncontended lock, where waking a thread per search (a queue) cost measurable CPU at hundreds of requests/s.
        self._pending: list[tuple[Any, ...]] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._top_up()  # the first blocks of ids, at start-up
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="query-log", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=10)
        conn.row_factory = sqlite3.Row
        return conn

    def _prepare(self) -> None:
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL sync never corrupts the database; a power cut may lose the last few log rows, which
            # is the right trade for a log written on every search (FULL would fsync each request).
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
        self._migrate()
        self._migrate_versions()

    def _reopen_if_failing(self) -> None:
        """While writes fail, open the database afresh now and then and try a write, so that a repaired file is used
        again (and /healthz says so) without waiting for a search."""
        now = time.monotonic()
        if self._failing_since is None or now - self._reopened < REOPEN_INTERVAL:
            return
        self._reopened = now
        try:
            conn = self._connect()
        except sqlite3.Error:
            return
        with self._lock:
            old, self._conn = self._conn, conn
        old.close()
        try:
            self._prepare()
            with self._tx() as c:
                c.execute("INSERT OR REPLACE INTO service_meta (name, value) VALUES ('log_checked', ?)", (time.time(),))
        except sqlite3.Error as exc:
            self._failed(exc)
        else:
            self._succeeded()

    def _migrate(self) -> None:
        """Columns added since a database was created (the first process to start adds them)."""
        columns = "SELECT name FROM pragma_table_info('queries')"
        index = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'queries_client'"
        with self._lock:
            if self._conn.execute(index).fetchone() is not None:
                return
        with self._tx() as c:
            if "client" not in {r["name"] for r in c.execute(columns)}:
                c.execute("ALTER TABLE queries ADD COLUMN client TEXT")
            # The gap report reads a flooding client's latest rows only.
            c.execute("CREATE INDEX IF NOT EXISTS queries_client ON queries(client, ts) WHERE client IS NOT NULL")

    def _client_salt(self) -> bytes:
        """The key that turns a caller's address into the `client` column: shared by every process, so a client
        counts once, and secret, so the column cannot be turned back into addresses by trying them all."""
        read = "SELECT value FROM service_meta WHERE name = 'client_salt'"
        try:
            with self._lock:
                row = self._conn.execute(read).fetchone()
            if row is None:
                with self._tx() as c:
                    c.execute(
                        "INSERT OR IGNORE INTO service_meta (name, value) VALUES ('client_salt', ?)",
                        (secrets.token_hex(16),),
                    )
                    row = c.execute(read).fetchone()
            return bytes.fromhex(row["value"])
        except sqlite3.Error as exc:  # nothing is written meanwhile, so a salt of this process's own does no harm
            self._failed(exc)
            return secrets.token_bytes(16)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite may have rolled back already (e.g. after an I/O error)
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT) on the shared connection, for the other service tables
        (e.g. the gap report's)."""
        return self._tx()

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        self.flush()  # a report sees every query this process has answered
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    # -- query log and feedback ------------------------------------------------------------------------------
    def log_query(
        self,
        *,
        source: str,
        audience: str,
        query: str,
        result_ids: list[str],
        top_score: float | None,
        confidence: float | None = None,
        handoff: bool = False,
        took_ms: float | None = None,
        client: str | None = None,
    ) -> int:
        """Queue one row for the writer thread and return its id (for feedback) at once; never touches the database.
        `client` is the address of a public caller (stored as a keyed hash), None for staff."""
        query_id = self._allocate_id()
        row = (
            query_id,
            time.time(),
            source,
            audience,
            query,
            result_ids,
            top_score,
            confidence,
            handoff,
            took_ms,
            client,
        )
        with self._pending_lock:
            self._pending.append(row)
        return query_id

    def status(self) -> LogStatus:
        with self._pending_lock:
            pending = len(self._pending)
        with self._stats_lock:
            return LogStatus(
                ok=self._failing_since is None,
                rows_written=self._written,
                rows_dropped=self._dropped,
                fallback_ids=self._fallbacks,
                pending=pending,
                failing_since=self._failing_since,
                last_error=self._last_error,
                last_error_at=self._last_error_at,
            )

    def client_key(self, address: str) -> str:
        return hashlib.blake2b(address.encode(), key=self._salt, digest_size=8).hexdigest()

    def flush(self) -> None:
        """Write the query-log rows queued so far (and wait for a write in progress). Rows the database does not
        take are dropped and counted (`status()`): a log row must never fail a search or a report."""
        with self._flush_lock:
            with self._pending_lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                with self._tx() as c:
                    c.executemany(
                        "INSERT INTO queries (id, ts, source, audience, query, result_ids, top_sop, top_score,"
                        " confidence, handoff, took_ms, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                qid if qid < FALLBACK_BASE else None,
                                ts,
                                src,
                                aud,
                                mask(q),
                                json.dumps(ids),
                                ids[0] if ids else None,
                                top,
                                conf,
                                int(handoff),
                                took,
                                self.client_key(client) if client else None,
                            )
                            for qid, ts, src, aud, q, ids, top, conf, handoff, took, client in rows
                        ],
                    )
            except sqlite3.Error as exc:
                self._failed(exc, dropped=len(rows))
            else:
                self._succeeded(written=len(rows))

    def _allocate_id(self) -> int:
        with self._ids:
            if self._next_id >= self._block_end and self._spare is not None:
                (self._next_id, self._block_end), self._spare = self._spare, None
            if self._next_id < self._block_end:
                self._next_id += 1
                return self._next_id - 1
            self._fallbacks += 1
            query_id = self._fallback_next
            self._fallback_next = FALLBACK_BASE + (query_id + 1 - FALLBACK_BASE) % FALLBACK_SPAN
            return query_id

    def _top_up(self) -> None:
        """Reserve blocks of ids until one is in use and one is spare. Runs at start-up and on the writer thread,
        never in a request; when the database cannot be written, requests get fallback ids meanwhile."""
        with self._ids:
            wanted = int(self._next_id >= self._block_end) + int(self._spare is None)
        if not wanted:
            return
        try:
            blocks = self._reserve(wanted)
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self._succeeded()
        with self._ids:
            for block in blocks:
                if self._next_id >= self._block_end:
                    self._next_id, self._block_end = block
                else:
                    self._spare = block

    def _reserve(self, count: int) -> list[tuple[int, int]]:
        with self._tx() as c:
            # Past every id in use or promised: other processes' blocks, rows already written, and SQLite's
            # AUTOINCREMENT counter, which is then moved past these blocks so that a writer using it (an older
            # version of the service during a rolling upgrade, or a row that carried a fallback id) never takes an
            # id from them.
            start = max(
                int(c.execute(sql).fetchone()[0])
                for sql in (
                    "SELECT COALESCE(MAX(next_id), 1) FROM id_blocks WHERE name = 'queries'",
                    "SELECT COALESCE(MAX(id), 0) + 1 FROM queries",
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM sqlite_sequence WHERE name = 'queries'",
                )
            )
            end = start + count * ID_BLOCK
            if end > FALLBACK_BASE:
                raise sqlite3.DataError("query ids exhausted")
            c.execute("INSERT OR REPLACE INTO id_blocks (name, next_id) VALUES ('queries', ?)", (end,))
            if c.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'queries'", (end - 1,)).rowcount == 0:
                c.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('queries', ?)", (end - 1,))
        return [(start + i * ID_BLOCK, start + (i + 1) * ID_BLOCK) for i in range(count)]

    def _write_loop(self) -> None:
        while not self._stop.wait(WRITE_INTERVAL):
            self._reopen_if_failing()
            self._top_up()
            self.flush()

    def _failed(self, exc: Exception, dropped: int = 0) -> None:
        now = time.time()
        with self._stats_lock:
            first = self._failing_since is None
            if first:
                self._failing_since = now
            self._dropped += dropped
            self._last_error, self._last_error_at = f"{type(exc).__name__}: {exc}", now
        if first:  # once per run of failures; status() counts the rest
            log.error("the service database cannot be written (%s): searches go on, query-log rows are dropped", exc)

    def _succeeded(self, written: int = 0) -> None:
        with self._stats_lock:
            recovered = self._failing_since is not None
            self._failing_since = None
            self._written += written
            dropped = self._dropped
        if recovered:
            log.warning("the service database takes writes again (%d query-log rows dropped so far)", dropped)

    def add_feedback(
        self, *, sop_id: str, vote: int, source: str, query_id: int | None = None, comment: str = ""
    ) -> int:
        self.flush()  # the query it refers to may still be queued
        try:
            with self._tx() as c:
                if (
                    query_id is not None
                    and c.execute("SELECT 1 FROM queries WHERE id = ?", (query_id,)).fetchone() is None
                ):
                    query_id = None
                cur = c.execute(
                    "INSERT INTO feedback (ts, query_id, sop_id, vote, source, comment) VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), query_id, sop_id, vote, source, mask(comment)),
                )
                return int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            self._failed(exc)
            raise DatabaseUnavailableError(
                "反馈暂时无法保存（服务数据库不可写），请稍后再试 / feedback cannot be saved now: the service database "
                "is not writable"
            ) from exc

    # -- versions --------------------------------------------------------------------------------------------
    def _migrate_versions(self) -> None:
        def missing(c: sqlite3.Connection) -> list[str]:
            have = {r["name"] for r in c.execute("PRAGMA table_info(sop_versions)")}
            return [name for name in VERSION_COLUMNS if name not in have]

        with self._lock:
            if not missing(self._conn):  # the usual case writes nothing (a read-only database still opens)
                return
        with self._tx() as c:  # in one transaction: processes starting together add each column once
            for name in missing(c):
                c.execute(f"ALTER TABLE sop_versions ADD COLUMN {name} {VERSION_COLUMNS[name]}")

    def versions(self, sop_id: str) -> list[VersionRecord]:
        """The published (live) versions, oldest first."""
        rows = self.rows("SELECT * FROM sop_versions WHERE sop_id = ? AND state = 'live' ORDER BY version", (sop_id,))
        return [VersionRecord(**dict(r)) for r in rows]

    def version(self, sop_id: str, version: int) -> VersionRecord | None:
        rows = self.rows(
            "SELECT * FROM sop_versions WHERE sop_id = ? AND version = ? AND state = 'live'", (sop_id, version)
        )
        return VersionRecord(**dict(rows[0])) if rows else None

    def latest_version(self, sop_id: str) -> int:
        rows = self.rows("SELECT MAX(version) AS v FROM sop_versions WHERE sop_id = ? AND state = 'live'", (sop_id,))
        return int(rows[0]["v"] or 0)

    def pending_versions(self) -> list[VersionRecord]:
        """Versions whose publish has not finished (interrupted, or under way in the process holding the lock)."""
        rows = self.rows("SELECT * FROM sop_versions WHERE state = 'pending' ORDER BY sop_id, version")
        return [VersionRecord(**dict(r)) for r in rows]

    @contextmanager
    def _durable_tx(self) -> Iterator[sqlite3.Connection]:
        """A transaction that is on disk when it returns: a publish goes on only after its version row is (the
        query log's NORMAL sync may lose the last commits in a power cut)."""
        with self._lock:
            self._conn.execute("PRAGMA synchronous=FULL")
        try:
            with self._tx() as c:
                yield c
        finally:
            with self._lock:
                self._conn.execute("PRAGMA synchronous=NORMAL")

    def add_versions(self, records: list[VersionRecord], expected_latest: int) -> None:
        """Insert versions of one SOP in one transaction, only if no version, live or pending, came after
        `expected_latest` (compare-and-set)."""
        with self._durable_tx() as c:
            sop_id = records[0].sop_id
            row = c.execute("SELECT MAX(version) AS v FROM sop_versions WHERE sop_id = ?", (sop_id,)).fetchone()
            if int(row["v"] or 0) != expected_latest:
                raise VersionConflictError(
                    f"SOP {sop_id} 已被他人更新到版本 {row['v']}，请刷新后再保存 / "
                    f"{sop_id} was changed by someone else (now version {row['v']})"
                )
            c.executemany(
                "INSERT INTO sop_versions (sop_id, version, ts, action, author, path, content, state, content_hash,"
                " previous) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [astuple(r) for r in records],  # fields in column order
            )

    def mark_live(self, sop_id: str, version: int) -> None:
        """The pending version (and any pending one before it) went live: it joins the history."""
        with self._durable_tx() as c:
            c.execute(
                "UPDATE sop_versions SET state = 'live', previous = NULL"
                " WHERE sop_id = ? AND version <= ? AND state = 'pending'",
                (sop_id, version),
            )

    def discard_pending(self, sop_id: str, version: int) -> None:
        """The pending version (and any pending one before it) never went live: forget it."""
        with self._durable_tx() as c:
            c.execute(
                "DELETE FROM sop_versions WHERE sop_id = ? AND version <= ? AND state = 'pending'", (sop_id, version)
            )

    def close(self) -> None:
        self._stop.set()
        self._writer.join(timeout=10)
        self.flush()
        with self._lock:
            self._conn.close()
