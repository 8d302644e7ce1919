"""The service database (SQLite under the data directory): query log, feedback and published SOP versions."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb_service.errors import VersionConflictError
from kb_service.privacy import mask

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
CREATE TABLE IF NOT EXISTS sop_versions (
    sop_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    ts REAL NOT NULL,
    action TEXT NOT NULL,            -- publish | rollback | delete
    author TEXT NOT NULL,
    path TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (sop_id, version)
);
"""


@dataclass(frozen=True)
class VersionRecord:
    sop_id: str
    version: int
    ts: float
    action: str
    author: str
    path: str
    content: str


class Logbook:
    """Thread-safe access to the SQLite database; every write is its own transaction."""

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
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO queries (ts, source, audience, query, result_ids, top_sop, top_score, confidence, handoff,"
                " took_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    source,
                    audience,
                    mask(query),
                    json.dumps(result_ids),
                    result_ids[0] if result_ids else None,
                    top_score,
                    confidence,
                    int(handoff),
                    took_ms,
                ),
            )
            return int(cur.lastrowid or 0)

    def add_feedback(
        self, *, sop_id: str, vote: int, source: str, query_id: int | None = None, comment: str = ""
    ) -> int:
        with self._tx() as c:
            if query_id is not None and c.execute("SELECT 1 FROM queries WHERE id = ?", (query_id,)).fetchone() is None:
                query_id = None
            cur = c.execute(
                "INSERT INTO feedback (ts, query_id, sop_id, vote, source, comment) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), query_id, sop_id, vote, source, mask(comment)),
            )
            return int(cur.lastrowid or 0)

    # -- versions --------------------------------------------------------------------------------------------
    def versions(self, sop_id: str) -> list[VersionRecord]:
        rows = self.rows("SELECT * FROM sop_versions WHERE sop_id = ? ORDER BY version", (sop_id,))
        return [VersionRecord(**dict(r)) for r in rows]

    def version(self, sop_id: str, version: int) -> VersionRecord | None:
        rows = self.rows("SELECT * FROM sop_versions WHERE sop_id = ? AND version = ?", (sop_id, version))
        return VersionRecord(**dict(rows[0])) if rows else None

    def latest_version(self, sop_id: str) -> int:
        rows = self.rows("SELECT MAX(version) AS v FROM sop_versions WHERE sop_id = ?", (sop_id,))
        return int(rows[0]["v"] or 0)

    def add_version(self, record: VersionRecord, expected_latest: int) -> None:
        """Insert a version only if nobody published since `expected_latest` (compare-and-set)."""
        with self._tx() as c:
            row = c.execute("SELECT MAX(version) AS v FROM sop_versions WHERE sop_id = ?", (record.sop_id,)).fetchone()
            if int(row["v"] or 0) != expected_latest:
                raise VersionConflictError(
                    f"SOP {record.sop_id} 已被他人更新到版本 {row['v']}，请刷新后再保存 / "
                    f"{record.sop_id} was changed by someone else (now version {row['v']})"
                )
            c.execute(
                "INSERT INTO sop_versions (sop_id, version, ts, action, author, path, content)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.sop_id, record.version, record.ts, record.action, record.author, record.path, record.content),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
