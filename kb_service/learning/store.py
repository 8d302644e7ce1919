"""Learned phrasings: what agents' picks taught the search, kept in the service database.

A 👍 from an agent on a SOP for a search makes that search's phrasing (personal data masked) a learned example of
the SOP; repeated opens and copies of one SOP for similar searches do the same. A 👎 or a trainer removes a pair
(the row stays, marked removed, so that opens and copies alone never bring it back). Every change bumps one counter
that each server process polls (`LearnedIndex` in learned_index.py) to reload what it matches against.

The store opens its own connection to the database the query log lives in (`Logbook`: SQLite or PostgreSQL, tables
made by kb_service/db/migrations), and reads the query log's rows to know what a `query_id` asked. Its writes queue on
one lock (`learned`), so that two processes teaching the same phrasing at once count it once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import RowMapping

from kb_service.db import migrate
from kb_service.db.engine import DB_ERRORS, Database, Tx
from kb_service.db.versions import DELETED_SOPS
from kb_service.errors import first_line
from kb_service.text.normalize import normalize, strip_fillers
from kb_service.text.privacy import mask

log = logging.getLogger(__name__)

EventType = Literal["open", "copy"]
Outcome = Literal["learned", "confirmed", "unchanged", "rejected"]

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
    client: str | None = None  # a public caller's keyed hash (query_log.client_key), None for staff
    result_ids: str | None = None  # the SOPs it returned, as logged (JSON list)
    ts: float = 0.0  # when it was asked
    who: str | None = None  # the staff caller who asked (None: a tenant, or a row of an earlier release)


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

    def __init__(self, target: Database | Path) -> None:
        self.db = Database.of(target)
        try:
            migrate.upgrade(self.db)  # done already when the query log opened the same database first
        except (*DB_ERRORS, OSError) as exc:
            log.error(
                "learned phrasings cannot be written (%s): agent search uses the pairs it can read", first_line(exc)
            )
        self._session = self.db.session()

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        """A write transaction; a connection that failed (a read-only file, a lost server) is opened afresh by the
        next one, while reads go on with what can be read."""
        with self._session.transaction() as tx:
            tx.lock("learned")
            yield tx

    def _rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[RowMapping]:
        return self._session.rows(sql, params)

    @staticmethod
    def _bump(c: Tx) -> None:
        c.execute("UPDATE learned_meta SET value = value + 1 WHERE name = 'version'")

    # -- reading -------------------------------------------------------------------------------------------
    def version(self) -> int:
        """The change counter: what every process polls (one indexed read)."""
        rows = self._rows("SELECT value FROM learned_meta WHERE name = 'version'")
        return int(rows[0]["value"]) if rows else 0

    def query(self, query_id: int) -> QueryRow | None:
        rows = self._rows(
            "SELECT id, source, audience, query, client, result_ids, ts, who FROM queries WHERE id = :id",
            {"id": query_id},
        )
        return QueryRow(**dict(rows[0])) if rows else None

    def active(self) -> list[ActiveRow]:
        rows = self._rows(
            "SELECT id, sop_id, phrasing, key, vector, embedder, confirmations FROM learned"
            " WHERE removed_ts IS NULL ORDER BY id"
        )
        return [ActiveRow(**dict(r)) for r in rows]

    def get(self, learned_id: int) -> LearnedPair | None:
        rows = self._rows(f"SELECT {_PAIR_FIELDS} FROM learned WHERE id = :id", {"id": learned_id})
        return LearnedPair(**dict(rows[0])) if rows else None

    def for_sop(self, sop_id: str) -> list[LearnedPair]:
        """The SOP's active pairs, most confirmed and most recent first."""
        rows = self._rows(
            f"SELECT {_PAIR_FIELDS} FROM learned WHERE sop_id = :sop AND removed_ts IS NULL"
            " ORDER BY confirmations DESC, updated_ts DESC",
            {"sop": sop_id},
        )
        return [LearnedPair(**dict(r)) for r in rows]

    def recent(self, since_ts: float, limit: int, offset: int = 0) -> tuple[list[LearnedPair], int]:
        """Every SOP's active pairs taught or confirmed since `since_ts`, most recently first (a page of them), and
        how many there are."""
        where = "FROM learned WHERE removed_ts IS NULL AND updated_ts >= :since"
        page = self._rows(
            f"SELECT {_PAIR_FIELDS} {where} ORDER BY updated_ts DESC, id DESC LIMIT :limit OFFSET :offset",
            {"since": since_ts, "limit": limit, "offset": offset},
        )
        total = self._rows(f"SELECT COUNT(*) AS n {where}", {"since": since_ts})
        return [LearnedPair(**dict(r)) for r in page], int(total[0]["n"])

    def confirmers(self, ids: Sequence[int]) -> dict[int, list[str]]:
        """Who confirmed each pair, each person once, first confirmer first (a trial: a second agent's confirmation
        showed nowhere, and one agent's repeated 👍 read like several people's)."""
        if not ids:
            return {}
        rows = self._rows(
            "SELECT learned_id, who, MIN(ts) AS first_ts FROM learned_confirmations WHERE learned_id IN :ids"
            " GROUP BY learned_id, who ORDER BY learned_id, first_ts",
            {"ids": list(ids)},
        )
        out: dict[int, list[str]] = {}
        for r in rows:
            out.setdefault(int(r["learned_id"]), []).append(str(r["who"]))
        return out

    def sop_ids(self) -> set[str]:
        return {r["sop_id"] for r in self._rows("SELECT DISTINCT sop_id FROM learned")}

    def deleted_sops(self) -> set[str]:
        """SOPs the version history records as deleted (their newest live version is a deletion)."""
        return {r["sop_id"] for r in self._rows(DELETED_SOPS)}

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
        """Make `phrasing` a learned example of `sop_id`, or confirm it once more (once per search; `confirmations`
        counts each person once a day).

        A pair removed by a 👎 or a trainer comes back only with a new 👍 (`source="vote"`), never from events."""
        key, now, blob = phrasing_key(phrasing), time.time(), np.asarray(vector, dtype=np.float32).tobytes()
        fields = dict(phrasing=mask(phrasing), vector=blob, embedder=embedder, source=source, who=who, now=now)
        fields["query_id"] = query_id
        with self._tx() as c:
            found = "SELECT id, removed_ts FROM learned WHERE sop_id = :sop AND key = :key"
            row = c.execute(found, {"sop": sop_id, "key": key}).fetchone()
            if row is not None and row["removed_ts"] is not None and source != "vote":
                return "rejected", int(row["id"])
            outcome: Outcome
            if row is None:
                cur = c.execute(
                    "INSERT INTO learned (sop_id, phrasing, key, vector, embedder, source, who, query_id, created_ts,"
                    " updated_ts) VALUES (:sop, :phrasing, :key, :vector, :embedder, :source, :who, :query_id, :now,"
                    " :now) RETURNING id",
                    {**fields, "sop": sop_id, "key": key},
                )
                learned_id, outcome = int(cur.scalar()), "learned"
            elif row["removed_ts"] is not None:
                learned_id, outcome = int(row["id"]), "learned"
                c.execute("DELETE FROM learned_confirmations WHERE learned_id = :id", {"id": learned_id})
                c.execute(
                    "UPDATE learned SET removed_ts = NULL, removed_by = NULL, phrasing = :phrasing, vector = :vector,"
                    " embedder = :embedder, source = :source, who = :who, query_id = :query_id, created_ts = :now,"
                    " updated_ts = :now WHERE id = :id",
                    {**fields, "id": learned_id},
                )
            else:
                learned_id, outcome = int(row["id"]), "confirmed"
            added = c.execute(
                "INSERT INTO learned_confirmations (learned_id, query_id, who, ts) VALUES (:id, :query_id, :who, :now)"
                " ON CONFLICT (learned_id, query_id) DO NOTHING",
                {"id": learned_id, "query_id": query_id, "who": who, "now": now},
            ).rowcount
            if outcome == "confirmed" and not added:
                return "unchanged", learned_id  # the same search confirming twice counts once
            # Confirmations count people, each once a day: one agent's repeated searches and 👍 on a day are one
            # (a trial: one agent's five searches read as five confirmations and raised the boost like five people's)
            c.execute(
                "UPDATE learned SET confirmations = (SELECT COUNT(*) FROM (SELECT DISTINCT who, CAST(ts / 86400 AS"
                " INTEGER) AS day FROM learned_confirmations WHERE learned_id = :id) AS each_day), updated_ts = :now"
                " WHERE id = :id",
                {"id": learned_id, "now": now},
            )
            self._bump(c)
            return outcome, learned_id

    def remove(self, ids: Sequence[int], by: str) -> int:
        """Mark pairs removed (a 👎 or a trainer); returns how many were active."""
        if not ids:
            return 0
        with self._tx() as c:
            n = c.execute(
                "UPDATE learned SET removed_ts = :now, removed_by = :by WHERE id IN :ids AND removed_ts IS NULL",
                {"now": time.time(), "by": by, "ids": list(ids)},
            ).rowcount
            if n:
                self._bump(c)
            return int(n)

    def removed(self, sop_id: str, embedder: str) -> list[tuple[str, np.ndarray]]:
        """The keys and vectors (of `embedder`) of the SOP's pairs a 👎 or a trainer removed."""
        rows = self._rows(
            "SELECT key, vector FROM learned WHERE sop_id = :sop AND removed_ts IS NOT NULL AND embedder = :embedder",
            {"sop": sop_id, "embedder": embedder},
        )
        return [(str(r["key"]), np.frombuffer(r["vector"], dtype=np.float32)) for r in rows]

    def ids_with_key(self, sop_id: str, phrasing: str) -> list[int]:
        rows = self._rows(
            "SELECT id FROM learned WHERE sop_id = :sop AND key = :key AND removed_ts IS NULL",
            {"sop": sop_id, "key": phrasing_key(phrasing)},
        )
        return [int(r["id"]) for r in rows]

    def mark_promoted(self, learned_id: int, version: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE learned SET promoted_version = :v WHERE id = :id", {"v": version, "id": learned_id})

    def drop_sops(self, sop_ids: Sequence[str]) -> int:
        """Forget every pair and event of deleted SOPs."""
        if not sop_ids:
            return 0
        with self._tx() as c:
            n = c.execute("DELETE FROM learned WHERE sop_id IN :ids", {"ids": list(sop_ids)}).rowcount
            c.execute("DELETE FROM events WHERE sop_id IN :ids", {"ids": list(sop_ids)})
            if n:
                self._bump(c)
            return int(n)

    # -- opens and copies ----------------------------------------------------------------------------------
    def add_event(self, *, query_id: int, sop_id: str, kind: EventType, who: str) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO events (ts, query_id, sop_id, type, who) VALUES (:ts, :query_id, :sop, :type, :who)"
                " RETURNING id",
                {"ts": time.time(), "query_id": query_id, "sop": sop_id, "type": kind, "who": who},
            )
            return int(cur.scalar())

    def recent_events(self, sop_id: str, since: float, limit: int = 100) -> list[tuple[int, str]]:
        """(query_id, masked query) of the SOP's recent opens and copies from staff searches, newest first."""
        rows = self._rows(
            "SELECT e.query_id, q.query FROM events e JOIN queries q ON q.id = e.query_id"
            " WHERE e.sop_id = :sop AND e.ts >= :since AND q.source = 'search' ORDER BY e.ts DESC LIMIT :n",
            {"sop": sop_id, "since": since, "n": limit},
        )
        return [(int(r["query_id"]), str(r["query"])) for r in rows]

    def close(self) -> None:
        self._session.close()


_PAIR_FIELDS = (
    "id, sop_id, phrasing, key, source, who, created_ts, updated_ts, confirmations, promoted_version, removed_ts"
)
