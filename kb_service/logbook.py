"""The service database (SQLite under the data directory): query log, feedback and published SOP versions."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from kb_service.errors import VersionConflictError
from kb_service.privacy import mask

log = logging.getLogger(__name__)

# Query ids one process reserves at a time. Ids stay unique across processes sharing the database; rows are ordered
# by their timestamp, not their id.
ID_BLOCK = 256
# Seconds between two writes of queued query-log rows.
WRITE_INTERVAL = 0.2

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
    took_ms REAL
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


class Logbook:
    """Thread-safe access to the SQLite database. Query-log rows are written by a background thread in batches, so
    a search never waits for the database (or for another process's write lock); every other write is its own
    transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # WAL with NORMAL sync never corrupts the database; a power cut may lose the last few log rows, which
            # is the right trade for a log written on every search (FULL would fsync each request).
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
        self._migrate_versions()
        self._ids = threading.Lock()
        self._next_id = self._block_end = 0
        # Rows wait in a list that the writer thread takes every WRITE_INTERVAL seconds: appending is one
        # uncontended lock, where waking a thread per search (a queue) cost measurable CPU at hundreds of requests/s.
        self._pending: list[tuple[Any, ...]] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="query-log", daemon=True)
        self._writer.start()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
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
    ) -> int:
        """Queue one row for the writer thread and return its id (for feedback) at once."""
        query_id = self._allocate_id()
        row = (query_id, time.time(), source, audience, query, result_ids, top_score, confidence, handoff, took_ms)
        with self._pending_lock:
            self._pending.append(row)
        return query_id

    def flush(self) -> None:
        """Write the query-log rows queued so far (and wait for a write in progress)."""
        with self._flush_lock:
            with self._pending_lock:
                rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                with self._tx() as c:
                    c.executemany(
                        "INSERT INTO queries (id, ts, source, audience, query, result_ids, top_sop, top_score,"
                        " confidence, handoff, took_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                qid,
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
                            )
                            for qid, ts, src, aud, q, ids, top, conf, handoff, took in rows
                        ],
                    )
            except sqlite3.Error:  # a log row must never fail a search or a report; say so and go on
                log.exception("could not write %d query-log rows", len(rows))

    def _allocate_id(self) -> int:
        with self._ids:
            if self._next_id >= self._block_end:
                with self._tx() as c:
                    # Past every id in use or promised: other processes' blocks, rows already written, and SQLite's
                    # AUTOINCREMENT counter, which is then moved past this block so that a writer using it (an older
                    # version of the service during a rolling upgrade) never takes an id from the block.
                    start = max(
                        int(c.execute(sql).fetchone()[0])
                        for sql in (
                            "SELECT COALESCE(MAX(next_id), 1) FROM id_blocks WHERE name = 'queries'",
                            "SELECT COALESCE(MAX(id), 0) + 1 FROM queries",
                            "SELECT COALESCE(MAX(seq), 0) + 1 FROM sqlite_sequence WHERE name = 'queries'",
                        )
                    )
                    end = start + ID_BLOCK
                    c.execute("INSERT OR REPLACE INTO id_blocks (name, next_id) VALUES ('queries', ?)", (end,))
                    if c.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'queries'", (end - 1,)).rowcount == 0:
                        c.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('queries', ?)", (end - 1,))
                self._next_id, self._block_end = start, end
            self._next_id += 1
            return self._next_id - 1

    def _write_loop(self) -> None:
        while not self._stop.wait(WRITE_INTERVAL):
            self.flush()

    def add_feedback(
        self, *, sop_id: str, vote: int, source: str, query_id: int | None = None, comment: str = ""
    ) -> int:
        self.flush()  # the query it refers to may still be queued
        with self._tx() as c:
            if query_id is not None and c.execute("SELECT 1 FROM queries WHERE id = ?", (query_id,)).fetchone() is None:
                query_id = None
            cur = c.execute(
                "INSERT INTO feedback (ts, query_id, sop_id, vote, source, comment) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), query_id, sop_id, vote, source, mask(comment)),
            )
            return int(cur.lastrowid or 0)

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
