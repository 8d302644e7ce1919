"""Hand-over cases, their conversation and the webhook outbox, in the service database.

Tables made by the service database's migrations (kb_service/db/migrations). Portable SQL only (named parameters,
ON CONFLICT, ids from `secrets`, no AUTOINCREMENT), through `Logbook.transaction()` and `Logbook.rows()`, so the same
statements run on SQLite and PostgreSQL. Every process of a server uses these tables; an outbox row is delivered by
whichever process holds its lease (`lease_until`, kb_service/handover/outbox.py); messages of one case are numbered
under a lock (`handover:<case_id>`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from kb_service.db.logbook import Logbook
from kb_service.handover.lookup import closed_filter
from kb_service.handover.outbox import Outbox

CaseStatus = Literal["open", "taken", "closed"]
Author = Literal["tenant", "bot", "agent", "system"]


@dataclass(frozen=True)
class Message:
    seq: int
    author: str
    text: str
    created_at: float


@dataclass(frozen=True)
class Delivery:
    status: str  # pending | delivered | failed | none (no webhook configured when the case was opened)
    attempts: int
    last_error: str | None
    delivered_at: float | None
    next_attempt_at: float | None


@dataclass(frozen=True)
class Case:
    case_id: str
    session_id: str
    status: str
    priority: str
    question: str
    contact: dict[str, Any]
    sop_id: str | None
    sop_title: str | None
    taken_by: str | None
    created_at: float
    updated_at: float
    closed_at: float | None
    delivery: Delivery
    rating: int | None = None  # the tenant's 满意 (1) / 不满意 (-1) of a closed case
    urgent_question: str | None = None  # the tenant's words that raised the case to urgent (`make_urgent`)


class RequestTakenError(Exception):
    """A case form's request_id that another caller's request already opened a case with."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_CASE_COLUMNS = """c.case_id, c.session_id, c.status, c.priority, c.question, c.contact, c.sop_id, c.sop_title,
    c.taken_by, c.created_at, c.updated_at, c.closed_at, c.rating, c.urgent_question, o.status AS d_status,
    o.attempts AS d_attempts, o.last_error AS d_error, o.delivered_at AS d_at, o.next_attempt_at AS d_next"""
# A case's delivery is its case.opened event's (written with the case, in the same instant); later events of the case
# (case.message, case.priority_raised, case.taken, case.closed) are delivered alike but not shown as the case's
_INSERT_CASE = """
INSERT INTO handover_cases (case_id, token_hash, session_id, status, priority, question, contact, sop_id, sop_title,
    created_at, updated_at, expires_at, request_id, opened_contact, opened_by)
VALUES (:case_id, :token_hash, :session_id, 'open', :priority, :question, :contact, :sop_id, :sop_title, :now, :now,
    :expires_at, :request_id, :contact, :opened_by)
"""
_CASE_FROM = "handover_cases c LEFT JOIN handover_outbox o ON o.case_id = c.case_id AND o.created_at = c.created_at"


def _case(r: Any) -> Case:
    delivery = Delivery(
        status=r["d_status"] or "none",
        attempts=r["d_attempts"] or 0,
        last_error=r["d_error"],
        delivered_at=r["d_at"],
        next_attempt_at=r["d_next"] if r["d_status"] == "pending" else None,
    )
    return Case(
        case_id=r["case_id"],
        session_id=r["session_id"],
        status=r["status"],
        priority=r["priority"],
        question=r["question"],
        contact=json.loads(r["contact"]),
        sop_id=r["sop_id"],
        sop_title=r["sop_title"],
        taken_by=r["taken_by"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        closed_at=r["closed_at"],
        delivery=delivery,
        rating=r["rating"],
        urgent_question=r["urgent_question"],
    )


class CaseStore(Outbox):
    """Cases, messages and the outbox; `retention_days` bounds how long a case is kept."""

    def __init__(self, logbook: Logbook, retention_days: int, events: bool = False) -> None:
        self.logbook = logbook
        self.retention_days = retention_days
        self.events = events  # a webhook is configured: what happens to a case after it opened is sent too

    def _event(self, c: Any, case_id: str, body: dict[str, Any], now: float) -> None:
        """Queue a webhook event of the case in the transaction that changes it (nothing changed goes unsent)."""
        text = json.dumps({**body, "case_id": case_id, "occurred_at": now}, ensure_ascii=False, sort_keys=True)
        c.execute(
            "INSERT INTO handover_outbox (event_id, case_id, body, status, attempts, next_attempt_at, "
            "lease_until, created_at) VALUES (:event_id, :case_id, :body, 'pending', 0, :now, 0, :now)",
            {"event_id": secrets.token_hex(8), "case_id": case_id, "body": text, "now": now},
        )

    # -- cases -------------------------------------------------------------------------------------------
    def open_case(
        self,
        *,
        session_id: str,
        question: str,
        contact: dict[str, Any],
        priority: str,
        sop: tuple[str, str] | None,
        conversation: Sequence[tuple[str, str]],
        webhook_body: dict[str, Any] | None,
        request_id: str | None = None,
        opened_by: str | None = None,
    ) -> tuple[Case, str]:
        """A new case with its first messages (and its webhook event, written in the same transaction, so a case
        is never left without its delivery); returns the case and the tenant's token. A `request_id` the session
        sent before gets the case it opened then, with a new token (the first answer's never arrived), when the
        same caller sends it (`opened_by`, the keyed hash of a public caller's address); from another caller it
        raises RequestTakenError."""
        if request_id is not None and (again := self._reopened(session_id, request_id, opened_by)) is not None:
            return again
        now = time.time()
        case_id = secrets.token_hex(8)
        token = secrets.token_urlsafe(24)
        row = {
            "request_id": request_id,
            "opened_by": opened_by,
            "case_id": case_id,
            "token_hash": token_hash(token),
            "session_id": session_id,
            "priority": priority,
            "question": question,
            "contact": json.dumps(contact, ensure_ascii=False),
            "sop_id": sop[0] if sop else None,
            "sop_title": sop[1] if sop else None,
            "now": now,
            "expires_at": now + self.retention_days * 86400,  # informative: purge_expired reads the setting as it is
        }
        try:
            self._insert(row, conversation, webhook_body)
        except IntegrityError:  # the same request, sent twice at once: the other one opened the case
            again = self._reopened(session_id, request_id, opened_by) if request_id is not None else None
            if again is None:
                raise
            return again
        case = self.get(case_id)
        if case is None:  # just written in a committed transaction
            raise LookupError(case_id)
        return case, token

    def _insert(
        self, row: dict[str, Any], conversation: Sequence[tuple[str, str]], webhook_body: dict[str, Any] | None
    ) -> None:
        case_id, now = row["case_id"], row["now"]
        with self.logbook.transaction() as c:
            c.execute(_INSERT_CASE, row)
            for seq, (author, text) in enumerate(conversation, start=1):
                c.execute(
                    "INSERT INTO handover_messages (case_id, seq, author, text, created_at) "
                    "VALUES (:case_id, :seq, :author, :text, :now)",
                    {"case_id": case_id, "seq": seq, "author": author, "text": text, "now": now},
                )
            if webhook_body is not None:
                self._event(c, case_id, webhook_body, now)

    def _reopened(self, session_id: str, request_id: str, opened_by: str | None) -> tuple[Case, str] | None:
        """The case a request with this id opened for the session, its token replaced (only hashes are kept), when
        the caller who opened it sends it again; RequestTakenError when another caller does."""
        token = secrets.token_urlsafe(24)
        mine = "opened_by IS NULL" if opened_by is None else "opened_by = :by"
        with self.logbook.transaction() as c:
            found = c.execute(
                f"UPDATE handover_cases SET token_hash = :hash WHERE session_id = :s AND request_id = :r AND {mine}",
                {"hash": token_hash(token), "s": session_id, "r": request_id, "by": opened_by},
            ).rowcount
        if not found:
            if self.logbook.rows(
                "SELECT 1 FROM handover_cases WHERE session_id = :s AND request_id = :r",
                {"s": session_id, "r": request_id},
            ):
                raise RequestTakenError(session_id)
            return None
        rows = self.logbook.rows(
            "SELECT case_id FROM handover_cases WHERE session_id = :s AND request_id = :r",
            {"s": session_id, "r": request_id},
        )
        case = self.get(rows[0]["case_id"]) if rows else None
        return (case, token) if case is not None else None

    def get(self, case_id: str) -> Case | None:
        rows = self.logbook.rows(f"SELECT {_CASE_COLUMNS} FROM {_CASE_FROM} WHERE c.case_id = :id", {"id": case_id})
        return _case(rows[0]) if rows else None

    def token_matches(self, case_id: str, token: str) -> bool:
        rows = self.logbook.rows("SELECT token_hash FROM handover_cases WHERE case_id = :id", {"id": case_id})
        return bool(rows) and hmac.compare_digest(rows[0]["token_hash"], token_hash(token))

    def list_cases(self, statuses: tuple[str, ...], limit: int = 200, typed: str = "") -> list[Case]:
        """Cases in these states: urgent first, unclaimed before taken, then oldest first (the queue's order); closed
        cases alone are history, the latest closed first. `typed`: only the cases matching what an agent typed (a
        number, a phone number or its last digits, a room, a name, the question's words: `closed_filter`)."""
        narrow, found = closed_filter(typed)
        params: dict[str, Any] = {f"s{i}": s for i, s in enumerate(statuses)} | found
        marks = ", ".join(f":s{i}" for i in range(len(statuses)))
        order = (
            "c.closed_at DESC, c.created_at DESC"
            if statuses == ("closed",)
            else "CASE WHEN c.priority = 'urgent' THEN 0 ELSE 1 END, CASE WHEN c.status = 'open' THEN 0 ELSE 1 END, "
            "c.created_at"
        )
        where = f"c.status IN ({marks})" + (f" AND {narrow}" if narrow else "")
        sql = f"SELECT {_CASE_COLUMNS} FROM {_CASE_FROM} WHERE {where} ORDER BY {order} LIMIT :limit"
        return [_case(r) for r in self.logbook.rows(sql, {**params, "limit": limit})]

    def ahead_of(self, case: Case) -> int:
        """How many cases nobody has taken yet come before this one in the queue (urgent first, then oldest): what
        the tenant is told while waiting."""
        urgent = case.priority == "urgent"
        sql = (
            "SELECT COUNT(*) AS n FROM handover_cases WHERE status = 'open' AND case_id <> :id AND "
            + ("priority = 'urgent' AND " if urgent else "")
            + "(priority = 'urgent' OR created_at <= :created)"
        )
        return int(self.logbook.rows(sql, {"id": case.case_id, "created": case.created_at})[0]["n"] or 0)

    def take(self, case_id: str, agent: str, force: bool = False) -> bool:
        """Take an open case, or one this agent holds already (or, with `force`, one another agent holds): in one
        statement, so two agents taking the same case at once cannot both get it. False when it was not taken."""
        now = time.time()
        with self.logbook.transaction() as c:
            held = c.execute("SELECT taken_by FROM handover_cases WHERE case_id = :id", {"id": case_id}).fetchone()
            cur = c.execute(
                "UPDATE handover_cases SET status = 'taken', updated_at = :now, taken_by = :agent "
                "WHERE case_id = :id AND (status = 'open' OR (status = 'taken' AND (taken_by = :agent OR :force)))",
                {"now": now, "agent": agent, "id": case_id, "force": bool(force)},
            )
            taken = cur.rowcount > 0
            if taken and self.events and held is not None and held["taken_by"] != agent:
                self._event(c, case_id, {"event": "case.taken", "taken_by": agent}, now)
            return taken

    def set_status(self, case_id: str, status: CaseStatus, taken_by: str | None = None) -> bool:
        """Take or close a case (a closed case stays closed; `taken_by` is recorded only when nobody had taken it);
        False when there is no such case."""
        now = time.time()
        with self.logbook.transaction() as c:
            cur = c.execute(
                "UPDATE handover_cases SET status = :status, updated_at = :now, "
                "taken_by = COALESCE(taken_by, :taken_by), "
                "closed_at = CASE WHEN :status = 'closed' THEN :now ELSE closed_at END "
                "WHERE case_id = :id AND status <> 'closed'",
                {"status": status, "now": now, "taken_by": taken_by, "id": case_id},
            )
            changed = cur.rowcount > 0
            if changed and self.events:
                self._event(c, case_id, {"event": f"case.{status}"}, now)
        return changed

    def rate(self, case_id: str, rating: int) -> bool:
        """The tenant's rating of a closed case (1 satisfied, -1 not; a later one replaces it); False when the case is
        not closed (or gone)."""
        with self.logbook.transaction() as c:
            cur = c.execute(
                "UPDATE handover_cases SET rating = :rating, rated_at = :now WHERE case_id = :id AND status = 'closed'",
                {"rating": rating, "now": time.time(), "id": case_id},
            )
            return cur.rowcount > 0

    def set_sop(self, case_id: str, sop_id: str, title: str | None) -> bool:
        """The SOP an open case is about now (an emergency the tenant reported in it); False when closed or gone."""
        with self.logbook.transaction() as c:
            cur = c.execute(
                "UPDATE handover_cases SET sop_id = :sop, sop_title = :title, updated_at = :now "
                "WHERE case_id = :id AND status <> 'closed'",
                {"sop": sop_id, "title": title, "now": time.time(), "id": case_id},
            )
            return cur.rowcount > 0

    def make_urgent(self, case_id: str, sop: tuple[str, str | None] | None = None, said: str | None = None) -> bool:
        """Raise an open or taken case to urgent (the tenant reported an emergency in it: `said`, what the queue
        shows for it), about the emergency's SOP when one matched; False when it already was or is closed."""
        now = time.time()
        sop_id, title = sop if sop is not None else (None, None)
        with self.logbook.transaction() as c:
            cur = c.execute(
                "UPDATE handover_cases SET priority = 'urgent', updated_at = :now, sop_id = COALESCE(:sop, sop_id), "
                "sop_title = CASE WHEN :sop IS NULL THEN sop_title ELSE :title END, urgent_question = :said "
                "WHERE case_id = :id AND status <> 'closed' AND priority <> 'urgent'",
                {"now": now, "id": case_id, "sop": sop_id, "title": title, "said": said},
            )
            raised = cur.rowcount > 0
            if raised and self.events:  # the company's queue shows the case as urgent too (an integrator's trial)
                event = {"event": "case.priority_raised", "priority": "urgent", "sop_id": sop_id, "sop_title": title}
                self._event(c, case_id, event, now)
            return raised

    def opened_with(self, case_id: str) -> dict[str, Any] | None:
        """The contact details the case was opened with (None: unknown, a case of an earlier release)."""
        rows = self.logbook.rows("SELECT opened_contact FROM handover_cases WHERE case_id = :id", {"id": case_id})
        return json.loads(rows[0]["opened_contact"]) if rows and rows[0]["opened_contact"] else None

    def update_contact(self, case_id: str, contact: dict[str, Any]) -> bool:
        """The tenant's corrected contact details (a form sent again after no answer, its phone number fixed); False
        when the case is closed or gone, or nothing changed."""
        now = time.time()
        text = json.dumps(contact, ensure_ascii=False)
        with self.logbook.transaction() as c:
            changed = c.execute(
                "UPDATE handover_cases SET contact = :contact, updated_at = :now "
                "WHERE case_id = :id AND status <> 'closed' AND contact <> :contact",
                {"contact": text, "now": now, "id": case_id},
            ).rowcount
            if changed and self.events:
                self._event(c, case_id, {"event": "case.contact_changed", "contact": contact}, now)
            return changed > 0

    # -- messages ----------------------------------------------------------------------------------------
    def add_message(self, case_id: str, author: Author, text: str) -> Message | None:
        """Append a message; None when the case does not exist or is closed."""
        now = time.time()
        with self.logbook.transaction() as c:
            c.lock(f"handover:{case_id}")  # two messages at once must not read the same MAX(seq) (READ COMMITTED)
            found = c.execute(
                "SELECT status, taken_by FROM handover_cases WHERE case_id = :id", {"id": case_id}
            ).fetchone()
            if found is None or found["status"] == "closed":
                return None
            seq = c.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM handover_messages WHERE case_id = :id", {"id": case_id}
            ).scalar()
            # An agent writes in a case they hold (api/routes/cases.py `hold`): the holder now is who sent it
            sender = found["taken_by"] if author == "agent" else None
            c.execute(
                "INSERT INTO handover_messages (case_id, seq, author, text, created_at, sender) "
                "VALUES (:id, :seq, :author, :text, :now, :sender)",
                {"id": case_id, "seq": seq, "author": author, "text": text, "now": now, "sender": sender},
            )
            c.execute("UPDATE handover_cases SET updated_at = :now WHERE case_id = :id", {"now": now, "id": case_id})
            if self.events and author in ("tenant", "agent"):
                self._event(c, case_id, {"event": "case.message", "author": author, "seq": seq, "text": text}, now)
        return Message(seq, author, text, now)

    def messages(self, case_id: str, after: int = 0) -> list[Message]:
        rows = self.logbook.rows(
            "SELECT seq, author, text, created_at FROM handover_messages WHERE case_id = :id AND seq > :after "
            "ORDER BY seq",
            {"id": case_id, "after": after},
        )
        return [Message(r["seq"], r["author"], r["text"], r["created_at"]) for r in rows]

    def purge_expired(self, now: float | None = None) -> int:
        """Delete cases opened more than `retention_days` ago, as the setting says now (with their messages and
        webhook events); returns how many. The expiry each case was given when opened is not what counts: a company
        that shortened the retention kept every existing tenant's details for the old period (a security review)."""
        oldest = (time.time() if now is None else now) - self.retention_days * 86400
        params = {"oldest": oldest}
        expired = "SELECT case_id FROM handover_cases WHERE created_at < :oldest"
        with self.logbook.transaction() as c:
            c.execute(f"DELETE FROM handover_messages WHERE case_id IN ({expired})", params)
            c.execute(f"DELETE FROM handover_outbox WHERE case_id IN ({expired})", params)
            n = c.execute("DELETE FROM handover_cases WHERE created_at < :oldest", params).rowcount
        return max(n, 0)
