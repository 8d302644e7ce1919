"""Calls of the HTTP form, shared by every worker process: one SQLite file in the data folder (WAL), each call's
context one row with a version for optimistic updates, forgotten after `ttl` seconds without a segment. The same
file keeps the secret that signs the console's WebSocket tickets, so any process accepts any process's ticket."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from kb_service.assist.context import CallContext

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    context TEXT NOT NULL,     -- CallContext as JSON (transcript text, numbers masked: never logged)
    suggestions TEXT,          -- the latest suggestions message, for consoles that watch the call
    version INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_updated ON calls(updated);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
SWEEP_EVERY = 100  # saves between two deletions of expired calls


class CallStore:
    def __init__(self, path: Path, ttl: float) -> None:
        self.path = path
        self.ttl = ttl
        self._lock = threading.Lock()  # one connection per process, used by one thread at a time
        self._saves = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('ticket_secret', ?)", (secrets.token_hex(32),)
        )
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'ticket_secret'").fetchone()
        self.secret = bytes.fromhex(row[0])

    def _execute(self, sql: str, params: tuple[object, ...]) -> int:
        """Rows changed."""
        with self._lock:
            return self._conn.execute(sql, params).rowcount

    def _one(self, sql: str, params: tuple[object, ...]) -> tuple[str, int] | None:
        with self._lock:
            row: tuple[str, int] | None = self._conn.execute(sql, params).fetchone()
            return row

    def load(self, call_id: str) -> tuple[CallContext, int]:
        """The call's context and its version (0: a new call; an expired call starts again)."""
        row = self._one(
            "SELECT context, version FROM calls WHERE call_id = ? AND updated >= ?", (call_id, time.time() - self.ttl)
        )
        if row is None:
            return CallContext(call_id), 0
        return CallContext.from_dict(json.loads(row[0])), int(row[1])

    def save(self, ctx: CallContext, version: int, suggestions: dict[str, Any] | None) -> bool:
        """Store the context if nobody stored another since `version` was loaded; False: load and try again.
        `suggestions`: the latest answer (None keeps the one stored)."""
        data, now = json.dumps(ctx.to_dict(), ensure_ascii=False), time.time()
        shown = json.dumps(suggestions, ensure_ascii=False) if suggestions is not None else None
        if version == 0:
            changed = self._execute(
                "INSERT INTO calls(call_id, context, suggestions, version, updated) VALUES (?, ?, ?, 1, ?) "
                "ON CONFLICT(call_id) DO UPDATE SET context = excluded.context, suggestions = excluded.suggestions, "
                "version = version + 1, updated = excluded.updated WHERE calls.updated < ?",
                (ctx.call_id, data, shown, now, now - self.ttl),
            )
        else:
            changed = self._execute(
                "UPDATE calls SET context = ?, suggestions = COALESCE(?, suggestions), version = version + 1, "
                "updated = ? WHERE call_id = ? AND version = ?",
                (data, shown, now, ctx.call_id, version),
            )
        self._sweep(now)
        return changed == 1

    def publish(self, ctx: CallContext, suggestions: dict[str, Any] | None) -> None:
        """Store a call its WebSocket connection owns (no version check), for consoles that watch it."""
        data, now = json.dumps(ctx.to_dict(), ensure_ascii=False), time.time()
        shown = json.dumps(suggestions, ensure_ascii=False) if suggestions is not None else None
        self._execute(
            "INSERT INTO calls(call_id, context, suggestions, version, updated) VALUES (?, ?, ?, 1, ?) "
            "ON CONFLICT(call_id) DO UPDATE SET context = excluded.context, "
            "suggestions = COALESCE(excluded.suggestions, suggestions), version = version + 1, "
            "updated = excluded.updated",
            (ctx.call_id, data, shown, now),
        )
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._saves += 1
        if self._saves % SWEEP_EVERY == 0:
            self._execute("DELETE FROM calls WHERE updated < ?", (now - self.ttl,))

    def version(self, call_id: str) -> int | None:
        """The call's version (it changes with every segment), None when there is no such call."""
        with self._lock:
            row = self._conn.execute("SELECT version FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return None if row is None else int(row[0])

    def watch(self, call_id: str) -> tuple[int, CallContext, dict[str, Any] | None] | None:
        """The call as a watching console needs it: version, context and latest suggestions."""
        with self._lock:
            row = self._conn.execute(
                "SELECT version, context, suggestions FROM calls WHERE call_id = ?", (call_id,)
            ).fetchone()
        if row is None:
            return None
        return int(row[0]), CallContext.from_dict(json.loads(row[1])), json.loads(row[2]) if row[2] else None

    def end(self, call_id: str) -> bool:
        return self._execute("DELETE FROM calls WHERE call_id = ?", (call_id,)) == 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()
