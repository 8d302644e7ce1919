"""Per-client request limits shared by every worker process of one server.

The counts live in a small SQLite file of their own under the data directory (not the service database, so a
read-only service database changes nothing here); with PostgreSQL as the service database (`KB_DATABASE_URL`), in
its `rate_limits` table (UNLOGGED), shared by every replica behind the load balancer. Each (limit, client) pair is
one row holding the theoretical arrival time of the GCRA algorithm (a token bucket kept as one timestamp):
`per_minute` requests may come at once, then one every 60/`per_minute` seconds. A check is one UPSERT statement
(atomic across processes, no fsync: `synchronous=OFF`, losing counts in a power cut is harmless), about 30 µs. When
the storage cannot be used, requests are let through and the failures are counted (`status()`, shown in /healthz): a
limit must never stop the service.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kb_service.db.engine import DB_ERRORS, Database
from kb_service.errors import first_line

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds: limits are per minute
PRUNE_INTERVAL = 300.0  # seconds between two deletions of rows whose bucket is full again
# Seconds a check may wait for another process's write; it runs on the event loop, and the statement it waits for
# takes microseconds, so a longer wait means something is wrong: the request goes through and the failure is counted.
BUSY_TIMEOUT = 0.2
BACKOFF = 5.0  # seconds after a failed check in which requests go through without trying the storage again

SCHEMA = """
CREATE TABLE IF NOT EXISTS limits (
    name TEXT NOT NULL,           -- which limit: search | chat
    client TEXT NOT NULL,         -- client address (IPv6: its /64 network)
    tat REAL NOT NULL,            -- GCRA theoretical arrival time (Unix seconds)
    PRIMARY KEY (name, client)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS limits_tat ON limits(tat);
"""

# Take one request from the bucket if it has one: the row moves on by one interval, and RETURNING says it did.
_TAKE = """
INSERT INTO {table} (name, client, tat) VALUES (:name, :client, :now + :interval)
ON CONFLICT (name, client) DO UPDATE SET tat = {max}({table}.tat, :now) + :interval
WHERE {max}({table}.tat, :now) + :interval - :now <= :window
RETURNING tat
"""
# (table, SQL) for the SQLite file and for PostgreSQL.
_SQL = {
    "sqlite": ("limits", _TAKE.format(table="limits", max="MAX")),
    "postgresql": ("rate_limits", _TAKE.format(table="rate_limits", max="GREATEST")),
}


@dataclass(frozen=True)
class LimitStatus:
    ok: bool  # False from a failed check until the next one that works
    failures: int
    failing_since: float | None
    last_error: str | None


def client_key(address: str) -> str:
    """The address a limit counts: an IPv6 client's whole /64 (one subscriber gets that many addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class SharedRateLimiter:
    """`check(name, client, per_minute)`: None when the request may go ahead, else seconds until one may."""

    def __init__(self, path: Path, database: Database | None = None) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        # With PostgreSQL: its own connection; a check waits BUSY_TIMEOUT at most, like SQLite's busy timeout.
        self._session = database.session(statement_timeout_ms=int(BUSY_TIMEOUT * 1000)) if database else None
        self._lock = threading.Lock()
        self._failures = 0
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self._pruned = 0.0
        self._retry_at = 0.0

    def check(self, name: str, client: str, per_minute: int) -> int | None:
        now = time.time()
        interval = WINDOW / per_minute
        params = {"name": name, "client": client_key(client), "now": now, "interval": interval, "window": WINDOW}
        with self._lock:
            if now < self._retry_at:
                self._failures += 1
                return None
            try:
                taken, tat = self._take(params)
            except (*DB_ERRORS, OSError, IndexError) as exc:  # IndexError: the row vanished between two statements
                self._failed(exc)
                return None
            self._back()
        if taken:
            return None
        return max(1, math.ceil(tat + interval - now - WINDOW))

    def _take(self, params: dict[str, object]) -> tuple[bool, float]:
        """(whether a request was taken, the bucket's time when not); prunes full buckets now and then."""
        session = self._session
        if session is None:
            conn = self._connect()

            def run(sql: str, args: dict[str, object]) -> list[tuple[object, ...]]:
                return list(conn.execute(sql, args).fetchall())
        else:

            def run(sql: str, args: dict[str, object]) -> list[tuple[object, ...]]:
                return [tuple(r.values()) for r in session.rows(sql, args)]

        table, take = _SQL["sqlite" if session is None else "postgresql"]
        taken = run(take, params)
        tat = 0.0
        if not taken:
            tat = float(run(f"SELECT tat FROM {table} WHERE name = :name AND client = :client", params)[0][0])  # type: ignore[arg-type]
        now = float(params["now"])  # type: ignore[arg-type]
        if now - self._pruned > PRUNE_INTERVAL:
            self._pruned = now
            run(f"DELETE FROM {table} WHERE tat < :now", {"now": now})  # full buckets carry no information
        return bool(taken), tat

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=OFF")
                conn.executescript(SCHEMA)
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        # The first line only: a driver's error goes on with the statement and its parameters, a client's address
        # among them, over several lines (an operator's trial saw them in /healthz and the log)
        self._last_error = f"{type(exc).__name__}: {first_line(exc)}"
        self._retry_at = time.time() + BACKOFF
        if self._failing_since is None:
            self._failing_since = time.time()
            log.warning("rate limits cannot be checked (%s): requests go through unlimited meanwhile", first_line(exc))
        if self._conn is not None:  # open afresh next time (the file may have been replaced or repaired)
            self._conn.close()
            self._conn = None
        if self._session is not None:
            self._session.reset()

    def status(self) -> LimitStatus:
        with self._lock:
            if self._failing_since is not None and time.time() >= self._retry_at:
                self._probe()
            return LimitStatus(
                ok=self._failing_since is None,
                failures=self._failures,
                failing_since=self._failing_since,
                last_error=self._last_error,
            )

    def _probe(self) -> None:
        """Failing, a health check tries the storage again: after a database outage `degraded` lasted until the
        next anonymous request (an operator's trial: over 40 s with the database back)."""
        try:
            if self._session is None:
                self._connect().execute("SELECT 1")
            else:
                self._session.rows("SELECT 1")
        except (*DB_ERRORS, OSError) as exc:
            self._failed(exc)
            return
        self._back()

    def _back(self) -> None:
        if self._failing_since is not None:
            log.warning("rate limits work again after %d failed checks", self._failures)
            self._failing_since = None
            self._last_error = None  # what failed is in the log; the health check shows what holds now

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._session is not None:
                self._session.close()
