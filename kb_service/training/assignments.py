"""Training assignments (培训任务): a trainer asks named people to pass a category's exam, or to finish a practice
round on chosen SOPs, by a due date.

Whether an assignment is done is read from the practice records each time, never stored, so it cannot disagree with
them: an exam assignment is done by a pass of its category after it was assigned (the certification's time), a
practice one by a finished round started from it. Portable SQL (named parameters, ids from `secrets`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from kb_service.accounts.store import Database

Kind = Literal["exam", "practice"]
Status = Literal["open", "overdue", "done", "withdrawn"]


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    who: str
    kind: Kind
    category: str | None  # an exam's category; a practice round's (None: any category)
    sop_ids: tuple[str, ...]  # a practice round on these SOPs only (empty: the category's, or all)
    size: int  # drills in the practice round (an exam's size is the exam's)
    due_ts: float
    note: str
    assigned_by: str
    assigned_ts: float
    withdrawn_ts: float | None = None

    def same_task(self, other: Assignment) -> bool:
        return (self.who, self.kind, self.category, sorted(self.sop_ids)) == (
            other.who,
            other.kind,
            other.category,
            sorted(other.sop_ids),
        )


@dataclass(frozen=True)
class Progress:
    """How one assignment stands: `attempts` are the exams of its category (or rounds started from it) since it was
    assigned, `best_score` their best finished score."""

    status: Status
    done_ts: float | None
    attempts: int
    best_score: float | None


def status_of(a: Assignment, done_ts: float | None, now: float) -> Status:
    if a.withdrawn_ts is not None:
        return "withdrawn"
    if done_ts is not None:
        return "done"
    return "overdue" if now > a.due_ts else "open"


def _assignment(r: Any) -> Assignment:
    return Assignment(
        r["assignment_id"],
        r["who"],
        r["kind"],
        r["category"],
        tuple(json.loads(r["sop_ids"])) if r["sop_ids"] else (),
        int(r["size"]),
        float(r["due_ts"]),
        r["note"] or "",
        r["assigned_by"],
        float(r["assigned_ts"]),
        r["withdrawn_ts"],
    )


def _insert(c: Any, a: Assignment) -> None:
    c.execute(
        "INSERT INTO training_assignments (assignment_id, who, kind, category, sop_ids, size, due_ts, note,"
        " assigned_by, assigned_ts) VALUES (:id, :who, :kind, :category, :sops, :size, :due, :note, :by, :ts)",
        {
            "id": a.assignment_id,
            "who": a.who,
            "kind": a.kind,
            "category": a.category,
            "sops": json.dumps(list(a.sop_ids), ensure_ascii=False) if a.sop_ids else None,
            "size": a.size,
            "due": a.due_ts,
            "note": a.note,
            "by": a.assigned_by,
            "ts": a.assigned_ts,
        },
    )


class AssignmentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def assign(
        self,
        people: Sequence[str],
        kind: Kind,
        *,
        category: str | None,
        sop_ids: Sequence[str] = (),
        size: int,
        due_ts: float,
        note: str,
        by: str,
    ) -> list[tuple[Assignment, bool]]:
        """One assignment per person; the same task still to do for a person gets the new due date and note instead
        of a second row (a double click, or a trainer extending a deadline). (assignment, whether it existed)."""
        now = time.time()
        wanted = [
            Assignment(
                secrets.token_urlsafe(9),
                who,
                kind,
                category,
                tuple(dict.fromkeys(sop_ids)),
                size,
                due_ts,
                note,
                by,
                now,
            )
            for who in dict.fromkeys(people)
        ]
        theirs = self.list(people=[w.who for w in wanted])
        stands = self.progress(theirs, now)
        pending = [a for a in theirs if stands[a.assignment_id].status in ("open", "overdue")]
        out: list[tuple[Assignment, bool]] = []
        with self.db.transaction() as c:
            for a in wanted:
                old = next((p for p in pending if p.same_task(a)), None)
                if old is not None:
                    c.execute(
                        "UPDATE training_assignments SET due_ts = :due, note = :note, size = :size"
                        " WHERE assignment_id = :id",
                        {"due": due_ts, "note": note, "size": size, "id": old.assignment_id},
                    )
                    out.append((replace(old, due_ts=due_ts, note=note, size=size), True))
                    continue
                _insert(c, a)
                out.append((a, False))
        return out

    def get(self, assignment_id: str) -> Assignment | None:
        rows = self.db.rows("SELECT * FROM training_assignments WHERE assignment_id = :id", {"id": assignment_id})
        return _assignment(rows[0]) if rows else None

    def withdraw(self, assignment_id: str) -> bool:
        """Withdraw an assignment (kept as history); False when unknown or withdrawn already."""
        with self.db.transaction() as c:
            cur = c.execute(
                "UPDATE training_assignments SET withdrawn_ts = :ts WHERE assignment_id = :id AND withdrawn_ts IS NULL",
                {"ts": time.time(), "id": assignment_id},
            )
            return bool(cur.rowcount)

    def list(self, people: Iterable[str] | None = None, withdrawn: bool = False) -> list[Assignment]:
        """Assignments, newest first: of these people (None: everyone's), without withdrawn ones unless asked."""
        sql, params = "SELECT * FROM training_assignments", {}
        if people is not None:
            params = {f"w{i}": who for i, who in enumerate(sorted(set(people)))}
            if not params:
                return []
            sql += " WHERE who IN (" + ", ".join(f":{k}" for k in params) + ")"
        rows = [_assignment(r) for r in self.db.rows(sql + " ORDER BY assigned_ts DESC", params)]
        return [a for a in rows if withdrawn or a.withdrawn_ts is None]

    def progress(self, assignments: Sequence[Assignment], now: float | None = None) -> dict[str, Progress]:
        """How each assignment stands, read from certifications and practice rounds (two reads for them all)."""
        now = time.time() if now is None else now
        if not assignments:
            return {}
        people = sorted({a.who for a in assignments})
        names = {f"w{i}": who for i, who in enumerate(people)}
        where = ", ".join(f":{k}" for k in names)
        passes = {
            (r["who"], r["category"]): float(r["ts"])
            for r in self.db.rows(f"SELECT who, category, ts FROM certifications WHERE who IN ({where})", names)
        }
        rounds = self.db.rows(
            "SELECT who, category, exam, ts, finished_ts, score, assignment_id FROM practice_sessions"
            f" WHERE who IN ({where}) AND ts >= :since",
            {**names, "since": min(a.assigned_ts for a in assignments)},
        )
        out: dict[str, Progress] = {}
        for a in assignments:
            if a.kind == "exam":
                mine = [r for r in rounds if r["exam"] and r["who"] == a.who and r["category"] == a.category]
                mine = [r for r in mine if r["ts"] >= a.assigned_ts]
                passed = passes.get((a.who, a.category or ""))
                done = passed if passed is not None and passed >= a.assigned_ts else None
            else:
                mine = [r for r in rounds if r["assignment_id"] == a.assignment_id]
                done = min((r["finished_ts"] for r in mine if r["finished_ts"] is not None), default=None)
            scores = [float(r["score"]) for r in mine if r["finished_ts"] is not None and r["score"] is not None]
            out[a.assignment_id] = Progress(status_of(a, done, now), done, len(mine), max(scores) if scores else None)
        return out
