"""Learned phrasings: what agents' picks taught the search, kept in the service database.

A 👍 from an agent on a SOP for a search makes that search's phrasing (personal data masked) a learned example of
the SOP; repeated opens and copies of one SOP for similar searches do the same. A 👎 or a trainer removes a pair
(the row stays, marked removed, so that opens and copies alone never bring it back). Every change bumps one counter
that each server process polls (`LearnedIndex` in learned_index.py) to reload what it matches against.

The store opens its own connection to the database the query log lives in (`Logbook`), and reads the query log's
rows to know what a `query_id` asked.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kb_service.privacy import mask
from kb_service.text import normalize, strip_fillers

log = logging.getLogger(__name__)

EventType = Literal["open", "copy"]
Outcome = Literal["learned", "confirmed", "unchanged", "rejected"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS learned (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sop_id TEXT NOT NULL,
    phrasing TEXT NOT NULL,          -- the search's text, personal data masked
    key TEXT NOT NULL,               -- the phrasing normalised: identical keys are the same phrasing
    vector BLOB NOT NULL,            -- float32 embedding of the phrasing
    embedder TEXT NOT NULL,          -- the model that embedded it (another model's processes re-embed)
    source TEXT NOT NULL,            -- vote | events
    who TEXT NOT NULL,               -- role and key fingerprint of the agent who taught it
    query_id INTEGER,
    created_ts REAL NOT NULL,
    updated_ts REAL NOT NULL,
    confirmations INTEGER NOT NULL DEFAULT 1,
    removed_ts REAL,                 -- set by a 👎 or a trainer; the pair no longer counts
    removed_by TEXT,
    promoted_version INTEGER,        -- the SOP version whose `examples` took the phrasing
    UNIQUE (sop_id, key)
);
CREATE TABLE IF NOT EXISTS learned_confirmations (  -- one row per search that confirmed a pair
    learned_id INTEGER NOT NULL REFERENCES learned(id) ON DELETE CASCADE,
    query_id INTEGER NOT NULL,
    who TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (learned_id, query_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    query_id INTEGER NOT NULL,
    sop_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('open', 'copy')),
    who TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_sop ON events(sop_id, ts);
CREATE TABLE IF NOT EXISTS learned_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO learned_meta (name, value) VALUES ('version', 0);
"""

_PUNCT = re.compile(r"[\W_]+")


def phrasing_key(text: str) -> str:
    """The phrasing as compared for identity: masked, normalised, fillers, spaces and punctuation dropped."""
    return _PUNCT.sub("", strip_fillers(normalize(mask(text))))


@dataclass(frozen=True)
class QueryRow:
    """A logged search or chat question, as feedback and events refer to it."""

    id: int
    source: str  # search | chat
    audience: str
    query: str  # masked


@dataclass(frozen=True)
class LearnedPair:
    id: int
    sop_id: str
    phrasing: str
    key: str
    source: str
    who: str
    created_ts: float
    updated_ts: float
    confirmations: int
    promoted_version: int | None
    removed_ts: float | None


@dataclass(frozen=True)
class ActiveRow:
    """What a process needs to match against a pair."""

    id: int
    sop_id: str
    phrasing: str
    key: str
    vector: bytes
    embedder: str
    confirmations: int


class LearnedStore:
    """Thread-safe access to the learned tables; every write is its own transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA foreign_keys=ON")
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript(SCHEMA)
            except sqlite3.OperationalError:
                # A read-only database still serves the pairs it has (search keeps its learned channel); writes fail.
                self._conn.execute("SELECT value FROM learned_meta WHERE name = 'version'").fetchone()
                log.warning("the service database is read-only: learned phrasings are served but not changed")

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

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    @staticmethod
    def _bump(c: sqlite3.Connection) -> None:
        c.execute("UPDATE learned_meta SET value = value + 1 WHERE name = 'version'")

    # -- reading -------------------------------------------------------------------------------------------
    def version(self) -> int:
        """The change counter: what every process polls (one indexed read)."""
        rows = self._rows("SELECT value FROM learned_meta WHERE name = 'version'")
        return int(rows[0]["value"]) if rows else 0

    def query(self, query_id: int) -> QueryRow | None:
        rows = self._rows("SELECT id, source, audience, query FROM queries WHERE id = ?", (query_id,))
        return QueryRow(**dict(rows[0])) if rows else None

    def active(self) -> list[ActiveRow]:
        rows = self._rows(
            "SELECT id, sop_id, phrasing, key, vector, embedder, confirmations FROM learned"
            " WHERE removed_ts IS NULL ORDER BY id"
        )
        return [ActiveRow(**dict(r)) for r in rows]

    def get(self, learned_id: int) -> LearnedPair | None:
        rows = self._rows(f"SELECT {_PAIR_FIELDS} FROM learned WHERE id = ?", (learned_id,))
        return LearnedPair(**dict(rows[0])) if rows else None

    def for_sop(self, sop_id: str) -> list[LearnedPair]:
        """The SOP's active pairs, most confirmed and most recent first."""
        rows = self._rows(
            f"SELECT {_PAIR_FIELDS} FROM learned WHERE sop_id = ? AND removed_ts IS NULL"
            " ORDER BY confirmations DESC, updated_ts DESC",
            (sop_id,),
        )
        return [LearnedPair(**dict(r)) for r in rows]

    def sop_ids(self) -> set[str]:
        return {r["sop_id"] for r in self._rows("SELECT DISTINCT sop_id FROM learned")}

    # -- teaching ------------------------------------------------------------------------------------------
    def learn(
        self,
        *,
        sop_id: str,
        phrasing: str,
        vector: np.ndarray,
        embedder: str,
        source: Literal["vote", "events"],
        who: str,
        query_id: int,
    ) -> tuple[Outcome, int]:
        """Make `phrasing` a learned example of `sop_id`, or confirm it once more (once per search).

        A pair removed by a 👎 or a trainer comes back only with a new 👍 (`source="vote"`), never from events."""
        key = phrasing_key(phrasing)
        now = time.time()
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        with self._tx() as c:
            row = c.execute("SELECT id, removed_ts FROM learned WHERE sop_id = ? AND key = ?", (sop_id, key)).fetchone()
            if row is not None and row["removed_ts"] is not None and source != "vote":
                return "rejected", int(row["id"])
            outcome: Outcome
            if row is None:
                cur = c.execute(
                    "INSERT INTO learned (sop_id, phrasing, key, vector, embedder, source, who, query_id, created_ts,"
                    " updated_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (sop_id, mask(phrasing), key, blob, embedder, source, who, query_id, now, now),
                )
                learned_id, outcome = int(cur.lastrowid or 0), "learned"
            elif row["removed_ts"] is not None:
                learned_id, outcome = int(row["id"]), "learned"
                c.execute("DELETE FROM learned_confirmations WHERE learned_id = ?", (learned_id,))
                c.execute(
                    "UPDATE learned SET removed_ts = NULL, removed_by = NULL, phrasing = ?, vector = ?, embedder = ?,"
                    " source = ?, who = ?, query_id = ?, created_ts = ?, updated_ts = ? WHERE id = ?",
                    (mask(phrasing), blob, embedder, source, who, query_id, now, now, learned_id),
                )
            else:
                learned_id, outcome = int(row["id"]), "confirmed"
            added = c.execute(
                "INSERT OR IGNORE INTO learned_confirmations (learned_id, query_id, who, ts) VALUES (?, ?, ?, ?)",
                (learned_id, query_id, who, now),
            ).rowcount
            if outcome == "confirmed" and not added:
                return "unchanged", learned_id  # the same search confirming twice counts once
            c.execute(
                "UPDATE learned SET confirmations = (SELECT COUNT(*) FROM learned_confirmations WHERE learned_id = ?),"
                " updated_ts = ? WHERE id = ?",
                (learned_id, now, learned_id),
            )
            self._bump(c)
            return outcome, learned_id

    def remove(self, ids: Sequence[int], by: str) -> int:
        """Mark pairs removed (a 👎 or a trainer); returns how many were active."""
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._tx() as c:
            n = c.execute(
                f"UPDATE learned SET removed_ts = ?, removed_by = ? WHERE id IN ({marks}) AND removed_ts IS NULL",
                (time.time(), by, *ids),
            ).rowcount
            if n:
                self._bump(c)
            return int(n)

    def ids_with_key(self, sop_id: str, phrasing: str) -> list[int]:
        rows = self._rows(
            "SELECT id FROM learned WHERE sop_id = ? AND key = ? AND removed_ts IS NULL",
            (sop_id, phrasing_key(phrasing)),
        )
        return [int(r["id"]) for r in rows]

    def mark_promoted(self, learned_id: int, version: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE learned SET promoted_version = ? WHERE id = ?", (version, learned_id))

    def drop_sops(self, sop_ids: Sequence[str]) -> int:
        """Forget every pair and event of deleted SOPs."""
        if not sop_ids:
            return 0
        marks = ",".join("?" * len(sop_ids))
        with self._tx() as c:
            n = c.execute(f"DELETE FROM learned WHERE sop_id IN ({marks})", tuple(sop_ids)).rowcount
            c.execute(f"DELETE FROM events WHERE sop_id IN ({marks})", tuple(sop_ids))
            if n:
                self._bump(c)
            return int(n)

    # -- opens and copies ----------------------------------------------------------------------------------
    def add_event(self, *, query_id: int, sop_id: str, kind: EventType, who: str) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO events (ts, query_id, sop_id, type, who) VALUES (?, ?, ?, ?, ?)",
                (time.time(), query_id, sop_id, kind, who),
            )
            return int(cur.lastrowid or 0)

    def recent_events(self, sop_id: str, since: float, limit: int = 100) -> list[tuple[int, str]]:
        """(query_id, masked query) of the SOP's recent opens and copies from staff searches, newest first."""
        rows = self._rows(
            "SELECT e.query_id, q.query FROM events e JOIN queries q ON q.id = e.query_id"
            " WHERE e.sop_id = ? AND e.ts >= ? AND q.source = 'search' ORDER BY e.ts DESC LIMIT ?",
            (sop_id, since, limit),
        )
        return [(int(r["query_id"]), str(r["query"])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_PAIR_FIELDS = (
    "id, sop_id, phrasing, key, source, who, created_ts, updated_ts, confirmations, promoted_version, removed_ts"
)
