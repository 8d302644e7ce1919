"""Calls of the HTTP form, shared by every worker process (and every replica) through the service database: each
call's context one row of `assist_calls` with a version for optimistic updates, forgotten after `ttl` seconds without
a segment; the SOPs agents pinned on a call (`assist_pins`, the call's outcome), kept `ttl` seconds after the pin.
The secret that signs the console's WebSocket tickets is a row of `service_meta`, so any process accepts any
process's ticket.

Tables made by the service database's migrations (kb_service/db/migrations); portable SQL (SQLite or PostgreSQL).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from kb_service.assist.context import CallContext
from kb_service.db import migrate
from kb_service.db.engine import Database

SWEEP_EVERY = 100  # saves between two deletions of expired calls
SECRET = "assist_ticket_secret"  # service_meta.name


class CallStore:
    def __init__(self, target: Database | Path, ttl: float) -> None:
        self.db = Database.of(target)
        self.ttl = ttl
        self._saves = 0
        migrate.upgrade(self.db)  # done already when the query log opened the same database first
        self._session = self.db.session()  # thread-safe: one connection, used by one thread at a time
        self.secret = self._secret()

    def _secret(self) -> bytes:
        """The ticket secret: made by the first process, read by every other (the first writer wins)."""
        read = "SELECT value FROM service_meta WHERE name = :name"
        rows = self._session.rows(read, {"name": SECRET})
        if not rows:
            with self._session.transaction() as tx:
                tx.execute(
                    "INSERT INTO service_meta (name, value) VALUES (:name, :value) ON CONFLICT (name) DO NOTHING",
                    {"name": SECRET, "value": secrets.token_hex(32)},
                )
                rows = tx.execute(read, {"name": SECRET}).rows
        return bytes.fromhex(str(rows[0]["value"]))

    def _execute(self, sql: str, params: dict[str, Any]) -> int:
        """Rows changed."""
        with self._session.transaction() as tx:
            return tx.execute(sql, params).rowcount

    def load(self, call_id: str) -> tuple[CallContext, int]:
        """The call's context and its version (0: a new call; an expired call starts again)."""
        rows = self._session.rows(
            "SELECT context, version FROM assist_calls WHERE call_id = :id AND updated >= :since",
            {"id": call_id, "since": time.time() - self.ttl},
        )
        if not rows:
            return CallContext(call_id), 0
        return CallContext.from_dict(json.loads(rows[0]["context"])), int(rows[0]["version"])

    def save(self, ctx: CallContext, version: int, suggestions: dict[str, Any] | None) -> bool:
        """Store the context if nobody stored another since `version` was loaded; False: load and try again.
        `suggestions`: the latest answer (None keeps the one stored)."""
        now = time.time()
        params = {
            "id": ctx.call_id,
            "context": json.dumps(ctx.to_dict(), ensure_ascii=False),
            "shown": json.dumps(suggestions, ensure_ascii=False) if suggestions is not None else None,
            "now": now,
            "version": version,
            "expired": now - self.ttl,
        }
        if version == 0:  # a new call, or one expired that starts again
            changed = self._execute(
                "INSERT INTO assist_calls (call_id, context, suggestions, version, updated)"
                " VALUES (:id, :context, :shown, 1, :now) ON CONFLICT (call_id) DO UPDATE SET"
                " context = excluded.context, suggestions = excluded.suggestions,"
                " version = assist_calls.version + 1, updated = excluded.updated"
                " WHERE assist_calls.updated < :expired",
                params,
            )
        else:
            changed = self._execute(
                "UPDATE assist_calls SET context = :context, suggestions = COALESCE(:shown, suggestions),"
                " version = version + 1, updated = :now WHERE call_id = :id AND version = :version",
                params,
            )
        self._sweep(now)
        return changed == 1

    def publish(self, ctx: CallContext, suggestions: dict[str, Any] | None) -> None:
        """Store a call its WebSocket connection owns (no version check), for consoles that watch it."""
        now = time.time()
        self._execute(
            "INSERT INTO assist_calls (call_id, context, suggestions, version, updated)"
            " VALUES (:id, :context, :shown, 1, :now) ON CONFLICT (call_id) DO UPDATE SET"
            " context = excluded.context, suggestions = COALESCE(excluded.suggestions, assist_calls.suggestions),"
            " version = assist_calls.version + 1, updated = excluded.updated",
            {
                "id": ctx.call_id,
                "context": json.dumps(ctx.to_dict(), ensure_ascii=False),
                "shown": json.dumps(suggestions, ensure_ascii=False) if suggestions is not None else None,
                "now": now,
            },
        )
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._saves += 1
        if self._saves % SWEEP_EVERY == 0:
            self.sweep(now)

    def sweep(self, now: float | None = None) -> int:
        """Delete the calls (and pins) expired at `now`; returns how many calls."""
        since = (time.time() if now is None else now) - self.ttl
        self._execute("DELETE FROM assist_pins WHERE ts < :since", {"since": since})
        return max(self._execute("DELETE FROM assist_calls WHERE updated < :since", {"since": since}), 0)

    # -- pins: the call's outcome ---------------------------------------------------------------------------------
    def pin(self, call_id: str, sop_id: str, who: str) -> float:
        """Record that `who` pinned `sop_id` on the call (kept after the call ends, for `ttl` seconds)."""
        now = time.time()
        self._execute(
            "INSERT INTO assist_pins (call_id, sop_id, who, ts) VALUES (:call, :sop, :who, :ts)",
            {"call": call_id, "sop": sop_id, "who": who, "ts": now},
        )
        return now

    def pins(self, call_id: str) -> list[dict[str, Any]]:
        """The call's pins, oldest first: [{"sop_id", "who", "ts"}]."""
        rows = self._session.rows(
            "SELECT sop_id, who, ts FROM assist_pins WHERE call_id = :call AND ts >= :since ORDER BY ts, id",
            {"call": call_id, "since": time.time() - self.ttl},
        )
        return [{"sop_id": r["sop_id"], "who": r["who"], "ts": float(r["ts"])} for r in rows]

    def version(self, call_id: str) -> int | None:
        """The call's version (it changes with every segment), None when there is no such call."""
        rows = self._session.rows("SELECT version FROM assist_calls WHERE call_id = :id", {"id": call_id})
        return int(rows[0]["version"]) if rows else None

    def watch(self, call_id: str) -> tuple[int, CallContext, dict[str, Any] | None] | None:
        """The call as a watching console needs it: version, context and latest suggestions."""
        rows = self._session.rows(
            "SELECT version, context, suggestions FROM assist_calls WHERE call_id = :id", {"id": call_id}
        )
        if not rows:
            return None
        r = rows[0]
        shown = json.loads(r["suggestions"]) if r["suggestions"] else None
        return int(r["version"]), CallContext.from_dict(json.loads(r["context"])), shown

    def live(self, within: float, limit: int = 50) -> list[dict[str, Any]]:
        """The calls with a segment in the last `within` seconds, emergencies first, then the latest: id, start, last
        segment, segments, the title of the SOP suggested first now unless the match is weak, whether it is an
        emergency; none of the call's words (the list is for choosing a call)."""
        rows = self._session.rows(
            "SELECT context, suggestions FROM assist_calls WHERE updated >= :since ORDER BY updated DESC LIMIT :limit",
            {"since": time.time() - within, "limit": limit},
        )
        out = []
        for r in rows:
            c = CallContext.from_dict(json.loads(r["context"]))
            shown = json.loads(r["suggestions"]) if r["suggestions"] else {}
            first = (shown.get("items") or [{}])[0]
            # a weak first suggestion names no topic (a trial's chip read 停电 for a hallway light at 27 %)
            weak = bool(shown.get("weak")) and bool(first)
            seen = {"started": c.started, "updated": c.updated, "segments": c.segments, "weak": weak}
            topic = None if weak else first.get("title")
            out.append({"call_id": c.call_id, **seen, "topic": topic, "urgent": bool(first.get("urgent")) and not weak})
        return sorted(out, key=lambda c: not c["urgent"])  # emergencies first, each group the latest first

    def end(self, call_id: str) -> bool:
        return self._execute("DELETE FROM assist_calls WHERE call_id = :id", {"id": call_id}) == 1

    def close(self) -> None:
        self._session.close()
