"""The hand-over webhook's outbox: events written with the case change they tell of (kb_service/handover/store.py),
leased to one process at a time for delivery, retried with backoff, given up after the last attempt and sent again on
request. Portable SQL only, as the case store."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from kb_service.db.logbook import Logbook


@dataclass(frozen=True)
class Lease:
    event_id: str
    case_id: str
    body: str
    attempts: int


class Outbox:
    """The outbox's rows, for the case store (which writes them) and the webhook worker (which delivers them)."""

    logbook: Logbook

    def lease(self, owner: str, lease_seconds: float, now: float | None = None) -> Lease | None:
        """Claim the next due webhook event for `lease_seconds` (one process at a time holds a row)."""
        now = time.time() if now is None else now
        with self.logbook.transaction() as c:
            row = c.execute(
                "SELECT event_id, case_id, body, attempts FROM handover_outbox WHERE status = 'pending' "
                "AND next_attempt_at <= :now AND lease_until < :now ORDER BY next_attempt_at LIMIT 1",
                {"now": now},
            ).fetchone()
            if row is None:
                return None
            claimed = c.execute(
                "UPDATE handover_outbox SET lease_owner = :owner, lease_until = :until, attempts = attempts + 1 "
                "WHERE event_id = :id AND status = 'pending' AND lease_until < :now",
                {"owner": owner, "until": now + lease_seconds, "id": row["event_id"], "now": now},
            ).rowcount
        if claimed != 1:
            return None  # another process claimed it between the two statements (possible on PostgreSQL)
        return Lease(row["event_id"], row["case_id"], row["body"], row["attempts"] + 1)

    def delivered(self, lease: Lease, owner: str) -> None:
        with self.logbook.transaction() as c:
            c.execute(
                "UPDATE handover_outbox SET status = 'delivered', delivered_at = :now, lease_until = 0, "
                "last_error = NULL WHERE event_id = :id AND lease_owner = :owner",
                {"now": time.time(), "id": lease.event_id, "owner": owner},
            )

    def failed(self, lease: Lease, owner: str, error: str, retry_at: float | None) -> None:
        """A failed attempt: retried at `retry_at`, or given up (`failed`) when None."""
        with self.logbook.transaction() as c:
            c.execute(
                "UPDATE handover_outbox SET status = :status, next_attempt_at = COALESCE(:retry_at, next_attempt_at), "
                "lease_until = 0, last_error = :error WHERE event_id = :id AND lease_owner = :owner",
                {
                    "status": "pending" if retry_at is not None else "failed",
                    "retry_at": retry_at,
                    "error": error[:300],
                    "id": lease.event_id,
                    "owner": owner,
                },
            )

    def undelivered(self, limit: int = 100) -> list[dict[str, Any]]:
        """Webhook events not delivered (waiting for an attempt, or given up), oldest first: what a receiver lacks."""
        rows = self.logbook.rows(
            "SELECT event_id, case_id, body, status, attempts, last_error, next_attempt_at, created_at "
            "FROM handover_outbox WHERE status IN ('pending', 'failed') ORDER BY created_at LIMIT :n",
            {"n": limit},
        )
        # a given-up event has no next attempt (its column keeps the last one planned)
        return [
            {
                **dict(r),
                "event": event_name(r["body"]),
                **({"next_attempt_at": None} if r["status"] == "failed" else {}),
            }
            for r in rows
        ]

    def retry_now(self, now: float | None = None, case_id: str | None = None, event_id: str | None = None) -> int:
        """Every undelivered event is due now (a receiver that is back need not wait for the backoff, up to an hour),
        or only one case's or one event's, each with a full round of attempts again (a re-check's six resends while the
        receiver still failed used up a pending event's attempts, and it was given up). How many events."""
        where = "status IN ('pending', 'failed')"
        params: dict[str, Any] = {"now": time.time() if now is None else now}
        if case_id is not None:
            where += " AND case_id = :case_id"
            params["case_id"] = case_id
        if event_id is not None:
            where += " AND event_id = :event_id"
            params["event_id"] = event_id
        with self.logbook.transaction() as c:
            return c.execute(
                f"UPDATE handover_outbox SET next_attempt_at = :now, attempts = 0, status = 'pending' WHERE {where}",
                params,
            ).rowcount

    def outbox_counts(self) -> dict[str, int]:
        rows = self.logbook.rows("SELECT status, COUNT(*) AS n FROM handover_outbox GROUP BY status")
        return {r["status"]: r["n"] for r in rows}


def event_name(body: str) -> str:
    """The `event` of a webhook body (case.opened, case.message …)."""
    try:
        return str(json.loads(body).get("event", ""))
    except (ValueError, AttributeError):
        return ""
