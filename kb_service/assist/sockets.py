"""How many live-assist WebSocket connections each account holds open, counted in the service database so the cap
holds across every worker process and replica. A connection holds a lease (a row) renewed while it is open; a
process that died leaves leases that run out after `LEASE_SECONDS`. Like the rate limits, the count fails open: while
the database cannot be written a connection is let in rather than every console refused."""

from __future__ import annotations

import logging
import secrets
import time

from kb_service.db.engine import DB_ERRORS, Database

log = logging.getLogger("kb.assist")
LEASE_SECONDS = 30.0  # a connection renews its lease every few seconds (api/routes/assist.py RECHECK_SECONDS)
OPEN = "sockets:open"  # the lock that makes count-then-insert one step across processes


class SocketLeases:
    def __init__(self, db: Database, per_holder: int) -> None:
        self.db = db
        self.per_holder = per_holder  # 0: no cap
        self._session = db.session()

    def open(self, holder: str, now: float | None = None) -> tuple[bool, str | None]:
        """(allowed, lease id): not allowed when `holder` already holds `per_holder` live connections; a lease id of
        None when the database could not be written (allowed: fails open) or there is no cap."""
        if self.per_holder <= 0:
            return True, None
        now = time.time() if now is None else now
        lease = secrets.token_hex(8)
        try:
            with self._session.transaction() as tx:
                tx.lock(OPEN)
                tx.execute("DELETE FROM assist_sockets WHERE expires_at < :now", {"now": now})
                held = tx.execute(
                    "SELECT COUNT(*) FROM assist_sockets WHERE holder = :holder AND expires_at >= :now",
                    {"holder": holder, "now": now},
                ).scalar()
                if int(held or 0) >= self.per_holder:
                    return False, None
                tx.execute(
                    "INSERT INTO assist_sockets (socket_id, holder, expires_at) VALUES (:id, :holder, :until)",
                    {"id": lease, "holder": holder, "until": now + LEASE_SECONDS},
                )
        except DB_ERRORS as exc:
            log.warning("assist connection count unavailable, connection let in: %s", type(exc).__name__)
            return True, None
        return True, lease

    def renew(self, lease: str | None, now: float | None = None) -> None:
        if lease is None:
            return
        until = (time.time() if now is None else now) + LEASE_SECONDS
        try:
            with self._session.transaction() as tx:
                tx.execute(
                    "UPDATE assist_sockets SET expires_at = :until WHERE socket_id = :id", {"until": until, "id": lease}
                )
        except DB_ERRORS:
            pass  # the lease may run out meanwhile: the account gets one connection more, never fewer

    def close(self, lease: str | None) -> None:
        if lease is None:
            return
        try:
            with self._session.transaction() as tx:
                tx.execute("DELETE FROM assist_sockets WHERE socket_id = :id", {"id": lease})
        except DB_ERRORS:
            pass  # it runs out after LEASE_SECONDS

    def held(self, holder: str, now: float | None = None) -> int:
        rows = self._session.rows(
            "SELECT COUNT(*) AS n FROM assist_sockets WHERE holder = :holder AND expires_at >= :now",
            {"holder": holder, "now": time.time() if now is None else now},
        )
        return int(rows[0]["n"] or 0)
