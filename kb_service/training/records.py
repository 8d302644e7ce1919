"""Per-person training records: exam pass marks and certifications per category (valid for the exam's `valid_days`,
then kept as history), on-the-job search outcomes the console reports, and who voted 👍/👎 (the feedback table
itself predates named accounts and has no person).

Tables made by the service database's migrations; portable SQL (named parameters, ON CONFLICT, ids from `secrets`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kb_service.accounts.store import Database
from kb_service.db.engine import DB_ERRORS

Outcome = Literal["copy", "open", "research", "abandon"]


DAY = 86400.0


@dataclass(frozen=True)
class ExamMark:
    category: str
    pass_mark: float
    size: int
    set_by: str
    ts: float
    valid_days: int | None = None  # how long a pass certifies; None: no expiry
    every_stage: bool = False  # a pass also needs every second stage right (emergencies)
    retake_minutes: int = 0  # after a failed attempt, the wait before the next may start (0: at once)
    sop_ids: tuple[str, ...] = ()  # the SOPs of the category it draws its questions from (empty: all of them)


@dataclass(frozen=True)
class Certification:
    who: str
    category: str
    ts: float
    score: float
    pass_mark: float | None = None  # the mark the pass was judged against (None: an exam from before marks were kept)

    def expires(self, mark: ExamMark | None) -> float | None:
        """When this pass stops certifying under the category's exam as it is set now (None: never)."""
        return self.ts + mark.valid_days * DAY if mark is not None and mark.valid_days else None

    def valid(self, mark: ExamMark | None, now: float | None = None) -> bool:
        """Certified now: the category still has an exam and the pass has not expired."""
        end = self.expires(mark)
        return mark is not None and (end is None or end > (time.time() if now is None else now))


class Records:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- exams ------------------------------------------------------------------------------------------------
    def set_mark(
        self,
        category: str,
        pass_mark: float,
        size: int,
        by: str,
        valid_days: int | None = None,
        every_stage: bool = False,
        retake_minutes: int = 0,
        sop_ids: Sequence[str] = (),
    ) -> ExamMark:
        chosen = tuple(dict.fromkeys(sop_ids))
        mark = ExamMark(category, pass_mark, size, by, time.time(), valid_days, every_stage, retake_minutes, chosen)
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO exam_marks"
                " (category, pass_mark, size, set_by, ts, valid_days, every_stage, retake_minutes, sop_ids)"
                " VALUES (:c, :m, :s, :by, :ts, :v, :e, :r, :ids) ON CONFLICT (category) DO UPDATE SET"
                " pass_mark = excluded.pass_mark, size = excluded.size, set_by = excluded.set_by, ts = excluded.ts,"
                " valid_days = excluded.valid_days, every_stage = excluded.every_stage,"
                " retake_minutes = excluded.retake_minutes, sop_ids = excluded.sop_ids",
                {
                    "ids": json.dumps(list(chosen)) if chosen else None,
                    "r": retake_minutes,
                    "c": category,
                    "m": pass_mark,
                    "s": size,
                    "by": by,
                    "ts": mark.ts,
                    "v": valid_days,
                    "e": int(every_stage),
                },
            )
        return mark

    def delete_mark(self, category: str) -> bool:
        """Withdraw a category's exam (its passes stay as history); False if it had none."""
        with self.db.transaction() as c:
            return bool(c.execute("DELETE FROM exam_marks WHERE category = :c", {"c": category}).rowcount)

    def marks(self) -> dict[str, ExamMark]:
        rows = self.db.rows("SELECT * FROM exam_marks ORDER BY category")
        return {
            r["category"]: ExamMark(
                r["category"],
                r["pass_mark"],
                r["size"],
                r["set_by"],
                r["ts"],
                r["valid_days"],
                bool(r["every_stage"]),
                int(r["retake_minutes"] or 0),
                tuple(json.loads(r["sop_ids"])) if r["sop_ids"] else (),
            )
            for r in rows
        }

    def certify(self, who: str, category: str, score: float, session_id: str) -> None:
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO certifications (who, category, ts, score, session_id) VALUES (:w, :c, :ts, :s, :sid)"
                " ON CONFLICT (who, category) DO UPDATE SET ts = excluded.ts, score = excluded.score,"
                " session_id = excluded.session_id",
                {"w": who, "c": category, "ts": time.time(), "s": score, "sid": session_id},
            )

    def certifications(self, who: str | None = None) -> list[Certification]:
        sql = (
            "SELECT c.who, c.category, c.ts, c.score, s.pass_mark FROM certifications c"
            " LEFT JOIN practice_sessions s ON s.session_id = c.session_id"
        )
        rows = self.db.rows(sql + " WHERE c.who = :w ORDER BY c.category", {"w": who}) if who else self.db.rows(sql)
        return [Certification(r["who"], r["category"], r["ts"], r["score"], r["pass_mark"]) for r in rows]

    def valid_certifications(self, who: str | None = None) -> list[Certification]:
        """The certifications that count now: their category still has an exam and they have not expired."""
        marks, now = self.marks(), time.time()
        return [c for c in self.certifications(who) if c.valid(marks.get(c.category), now)]

    # -- on the job ---------------------------------------------------------------------------------------------
    def episode(self, who: str, outcome: Outcome, query_id: int | None, sop_id: str | None, ms: int | None) -> str:
        episode_id = secrets.token_urlsafe(9)
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO work_episodes (episode_id, ts, who, query_id, sop_id, outcome, ms)"
                " VALUES (:id, :ts, :who, :q, :sop, :o, :ms)",
                {"id": episode_id, "ts": time.time(), "who": who, "q": query_id, "sop": sop_id, "o": outcome, "ms": ms},
            )
        return episode_id

    def vote(self, feedback_id: int, who: str, sop_id: str, vote: int) -> None:
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO person_votes (feedback_id, ts, who, sop_id, vote) VALUES (:id, :ts, :who, :sop, :v)"
                " ON CONFLICT (feedback_id) DO NOTHING",
                {"id": feedback_id, "ts": time.time(), "who": who, "sop": sop_id, "v": vote},
            )

    def episodes(self, since: float) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.rows("SELECT * FROM work_episodes WHERE ts >= :s", {"s": since})]

    def votes(self, since: float) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.rows("SELECT * FROM person_votes WHERE ts >= :s", {"s": since})]

    def logged_searches(self, since: float, until: float) -> dict[str, tuple[int, int]]:
        """Per SOP, from the query log and learning events: staff searches that put it first, and how many of them an
        agent followed with an open or a copy of that SOP (a copy from a card below it says the first one did not
        serve: a trial). Empty when the learning tables are missing."""
        try:
            rows = self.db.rows(
                "SELECT q.top_sop AS sop_id, COUNT(*) AS n,"
                " SUM(CASE WHEN e.query_id IS NULL THEN 0 ELSE 1 END) AS acted"
                " FROM queries q LEFT JOIN (SELECT DISTINCT query_id, sop_id FROM events WHERE ts >= :since) e"
                " ON e.query_id = q.id AND e.sop_id = q.top_sop"
                " WHERE q.source = 'search' AND q.client IS NULL AND q.audience = 'agent'"
                " AND q.top_sop IS NOT NULL AND q.ts >= :since AND q.ts < :until GROUP BY q.top_sop",
                {"since": since, "until": until},
            )
        except DB_ERRORS:
            return {}
        return {r["sop_id"]: (int(r["n"]), int(r["acted"] or 0)) for r in rows}
