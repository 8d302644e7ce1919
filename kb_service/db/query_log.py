"""The query log and feedback: every search and chat question is logged without waiting for the database.

Query-log rows are written by a background thread in batches, and their ids come from blocks the same thread reserves
ahead, so a search never waits for the database (or for another process's write lock) and never needs it to be
writable. Feedback is its own transaction. A part of `Logbook` (kb_service/db/logbook.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from kb_service.db.engine import DB_ERRORS, Session
from kb_service.errors import DatabaseUnavailableError, first_line
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


_INSERT = (
    "INSERT INTO queries ({id}ts, source, audience, query, result_ids, top_sop, top_score, confidence, handoff,"
    " took_ms, client, session, who) VALUES ({value}:ts, :source, :audience, :query, :result_ids, :top_sop,"
    " :top_score, :confidence, :handoff, :took_ms, :client, :session, :who)"
)


class QueryLog:
    """The query log's state and writer thread (a part of `Logbook`, which supplies the session and `_prepare`)."""

    _session: Session

    def _prepare(self) -> None:
        raise NotImplementedError

    def _start_log(self) -> None:
        self._stats_lock = threading.Lock()
        self._reopened = 0.0
        self._written = self._dropped = self._fallbacks = 0
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        try:
            self._prepare()
        except (*DB_ERRORS, OSError) as exc:  # e.g. a read-only file: still read; the log degrades, searches go on
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

    def _reopen_if_failing(self) -> None:
        """While writes fail, open the database afresh now and then and try a write, so that a repaired file (or a
        restarted server) is used again (and /healthz says so) without waiting for a search."""
        now = time.monotonic()
        if self._failing_since is None or now - self._reopened < REOPEN_INTERVAL:
            return
        self._reopened = now
        self._session.reset()
        try:
            self._prepare()
            with self._session.transaction() as tx:
                tx.execute(
                    "INSERT INTO service_meta (name, value) VALUES ('log_checked', :now)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    {"now": str(time.time())},
                )
        except (*DB_ERRORS, OSError) as exc:
            self._failed(exc)
        else:
            self._succeeded()

    def _client_salt(self) -> bytes:
        """The key that turns a caller's address into the `client` column: shared by every process, so a client
        counts once, and secret, so the column cannot be turned back into addresses by trying them all."""
        read = "SELECT value FROM service_meta WHERE name = 'client_salt'"
        try:
            rows = self._session.rows(read)
            if not rows:
                with self._session.transaction() as tx:
                    tx.execute(
                        "INSERT INTO service_meta (name, value) VALUES ('client_salt', :salt)"
                        " ON CONFLICT (name) DO NOTHING",
                        {"salt": secrets.token_hex(16)},
                    )
                    rows = tx.execute(read).rows
            return bytes.fromhex(rows[0]["value"])
        except DB_ERRORS as exc:  # nothing is written meanwhile, so a salt of this process's own does no harm
            self._failed(exc)
            return secrets.token_bytes(16)

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
        session: str | None = None,
        who: str | None = None,
    ) -> int:
        """Queue one row for the writer thread and return its id (for feedback) at once; never touches the database.
        `client` is the address of a public caller, `session` the widget's conversation id (both stored as keyed
        hashes), None for staff; `who` the staff caller who asked (None for tenants)."""
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
            session,
            who,
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
            written = [self._row(*r) for r in rows]
            try:
                with self._session.transaction() as tx:
                    if tx.dialect == "postgresql":  # like SQLite's NORMAL sync: a crash may lose the last rows
                        tx.execute("SET LOCAL synchronous_commit = off")
                    # Rows that carry a fallback id get a fresh one from the database (the column's default).
                    tx.executemany(_INSERT.format(id="id, ", value=":id, "), [r for r in written if r["id"]])
                    tx.executemany(_INSERT.format(id="", value=""), [r for r in written if not r["id"]])
            except DB_ERRORS as exc:
                self._failed(exc, dropped=len(rows))
            else:
                self._succeeded(written=len(rows))

    def _row(
        self,
        qid: int,
        ts: float,
        src: str,
        aud: str,
        q: str,
        ids: list[str],
        top: float | None,
        conf: float | None,
        handoff: bool,
        took: float | None,
        client: str | None,
        session: str | None,
        who: str | None,
    ) -> dict[str, Any]:
        return {
            "id": qid if qid < FALLBACK_BASE else None,
            "ts": ts,
            "source": src,
            "audience": aud,
            "query": mask(q),
            "result_ids": json.dumps(ids),
            "top_sop": ids[0] if ids else None,
            "top_score": top,
            "confidence": conf,
            "handoff": int(handoff),
            "took_ms": took,
            "client": self.client_key(client) if client else None,
            "session": self.client_key(f"session:{session}") if session else None,
            "who": who,
        }

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
        except (*DB_ERRORS, OverflowError) as exc:
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
        with self._session.transaction() as tx:
            tx.lock("query-ids")
            # Past every id in use or promised: other processes' blocks and rows already written. The database's own
            # counter (SQLite's AUTOINCREMENT, PostgreSQL's sequence) is then moved past these blocks, so that a
            # writer using it (an older version of the service during a rolling upgrade, or a row that carried a
            # fallback id) never takes an id from them.
            counters = [
                "SELECT COALESCE(MAX(next_id), 1) AS n FROM id_blocks WHERE name = 'queries'",
                "SELECT COALESCE(MAX(id), 0) + 1 AS n FROM queries",
            ]
            if tx.dialect == "sqlite":
                counters.append("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM sqlite_sequence WHERE name = 'queries'")
            start = max(int(tx.execute(sql).scalar()) for sql in counters)
            end = start + count * ID_BLOCK
            if end > FALLBACK_BASE:
                raise OverflowError("query ids exhausted")
            tx.execute(
                "INSERT INTO id_blocks (name, next_id) VALUES ('queries', :end)"
                " ON CONFLICT (name) DO UPDATE SET next_id = excluded.next_id",
                {"end": end},
            )
            if tx.dialect == "postgresql":
                tx.execute("SELECT setval(pg_get_serial_sequence('queries', 'id'), :seq)", {"seq": end - 1})
            elif not tx.execute("UPDATE sqlite_sequence SET seq = :s WHERE name = 'queries'", {"s": end - 1}).rowcount:
                tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('queries', :s)", {"s": end - 1})
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
            self._last_error, self._last_error_at = f"{type(exc).__name__}: {first_line(exc)}", now
        if first:  # once per run of failures; status() counts the rest
            log.error(
                "the service database cannot be written (%s): searches go on, query-log rows are dropped",
                first_line(exc),
            )

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
            with self._session.transaction() as tx:
                known = "SELECT 1 AS x FROM queries WHERE id = :id"
                if query_id is not None and not tx.execute(known, {"id": query_id}).rows:
                    query_id = None
                added = tx.execute(
                    "INSERT INTO feedback (ts, query_id, sop_id, vote, source, comment)"
                    " VALUES (:ts, :query_id, :sop_id, :vote, :source, :comment) RETURNING id",
                    {
                        "ts": time.time(),
                        "query_id": query_id,
                        "sop_id": sop_id,
                        "vote": vote,
                        "source": source,
                        "comment": mask(comment),
                    },
                )
                return int(added.scalar())
        except DB_ERRORS as exc:
            self._failed(exc)
            raise DatabaseUnavailableError(
                "反馈暂时无法保存（服务数据库不可写），请稍后再试 / feedback cannot be saved now: the service database "
                "is not writable"
            ) from exc
