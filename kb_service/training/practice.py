"""Practice sessions and their drills, per person, in the service database.

A drill's right answer stays on the server: the trainee sees the utterance (and, after answering, the second stage);
each stage is answered once. The SQL is portable (named parameters, ON CONFLICT, ids from `secrets`).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from kb_service.accounts.store import Database
from kb_service.errors import KbError, NotFoundError
from kb_service.training.drills import Drill


class PracticeError(KbError):
    """A practice request that cannot be honoured; `status` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Session:
    session_id: str
    who: str
    ts: float
    category: str | None
    exam: bool
    size: int
    finished_ts: float | None
    score: float | None
    pass_mark: float | None = None  # an exam's pass mark when it started (None: practice, or an exam from before)
    every_stage: bool = False  # an exam started under the rule that every second stage must be right
    assignment_id: str | None = None  # the training assignment a practice round was started from
    certified: bool | None = None  # a finished exam: whether finishing it granted the certification


@dataclass(frozen=True)
class DrillRow:
    drill_id: str
    session_id: str
    position: int
    sop_id: str
    category: str
    prompt: str
    source: str
    difficulty: int
    followup: dict[str, Any]
    created_ts: float
    answered_ts: float | None
    answer_sop: str | None
    correct: bool | None
    ms: int | None
    followup_ts: float | None
    followup_correct: bool | None
    followup_choice: Any = None  # the option index or the order the trainee gave (None: not stored, before 0011)


def _session(r: Any) -> Session:
    return Session(
        r["session_id"],
        r["who"],
        r["ts"],
        r["category"],
        bool(r["exam"]),
        r["size"],
        r["finished_ts"],
        r["score"],
        r["pass_mark"],
        bool(r["every_stage"]),
        r["assignment_id"],
        None if r["certified"] is None else bool(r["certified"]),
    )


def _drill(r: Any) -> DrillRow:
    def flag(v: Any) -> bool | None:
        return None if v is None else bool(v)

    return DrillRow(
        drill_id=r["drill_id"],
        session_id=r["session_id"],
        position=r["position"],
        sop_id=r["sop_id"],
        category=r["category"],
        prompt=r["prompt"],
        source=r["source"],
        difficulty=r["difficulty"],
        followup=json.loads(r["followup"]),
        created_ts=r["created_ts"],
        answered_ts=r["answered_ts"],
        answer_sop=r["answer_sop"],
        correct=flag(r["correct"]),
        ms=r["ms"],
        followup_ts=r["followup_ts"],
        followup_correct=flag(r["followup_correct"]),
        followup_choice=json.loads(r["followup_choice"]) if r["followup_choice"] else None,
    )


class PracticeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        who: str,
        category: str | None,
        exam: bool,
        drills: list[Drill],
        pass_mark: float | None = None,
        every_stage: bool = False,
        assignment_id: str | None = None,
    ) -> tuple[Session, list[DrillRow]]:
        """A new round; an exam keeps the pass mark (and the every-stage rule) it is taken under, a round started
        from a training assignment names it."""
        now = time.time()
        sid = secrets.token_urlsafe(12)
        session = Session(sid, who, now, category, exam, len(drills), None, None, pass_mark, every_stage, assignment_id)
        rows = [
            {
                "drill_id": secrets.token_urlsafe(9),
                "session_id": session.session_id,
                "position": i,
                "sop_id": d.candidate.sop_id,
                "category": d.candidate.category,
                "prompt": d.candidate.prompt,
                "source": d.candidate.source,
                "difficulty": d.difficulty,
                "followup": json.dumps(d.followup, ensure_ascii=False),
                "created_ts": now,
            }
            for i, d in enumerate(drills)
        ]
        with self.db.transaction() as c:
            c.execute(
                "INSERT INTO practice_sessions"
                " (session_id, who, ts, category, exam, size, pass_mark, every_stage, assignment_id) VALUES"
                " (:session_id, :who, :ts, :category, :exam, :size, :pass_mark, :every_stage, :assignment_id)",
                {
                    "session_id": session.session_id,
                    "who": who,
                    "ts": now,
                    "category": category,
                    "exam": int(exam),
                    "size": len(drills),
                    "pass_mark": pass_mark,
                    "every_stage": int(every_stage),
                    "assignment_id": assignment_id,
                },
            )
            for row in rows:
                c.execute(
                    "INSERT INTO practice_drills (drill_id, session_id, position, sop_id, category, prompt, source,"
                    " difficulty, followup, created_ts) VALUES (:drill_id, :session_id, :position, :sop_id,"
                    " :category, :prompt, :source, :difficulty, :followup, :created_ts)",
                    row,
                )
        return session, self.drills(session.session_id)

    def session(self, session_id: str) -> Session | None:
        rows = self.db.rows("SELECT * FROM practice_sessions WHERE session_id = :id", {"id": session_id})
        return _session(rows[0]) if rows else None

    def drills(self, session_id: str) -> list[DrillRow]:
        rows = self.db.rows(
            "SELECT * FROM practice_drills WHERE session_id = :id ORDER BY position", {"id": session_id}
        )
        return [_drill(r) for r in rows]

    def drill(self, drill_id: str) -> DrillRow | None:
        rows = self.db.rows("SELECT * FROM practice_drills WHERE drill_id = :id", {"id": drill_id})
        return _drill(rows[0]) if rows else None

    def owned(self, session_id: str, drill_id: str, who: str) -> tuple[Session, DrillRow]:
        """The session and drill a caller answers: 404 unknown, 403 someone else's, 422 not in this session."""
        session = self.session(session_id)
        if session is None:
            raise NotFoundError(f"没有这个练习 {session_id} / unknown practice session")
        if session.who != who:
            raise PracticeError(403, "这是别人的练习，不能作答 / this practice session belongs to someone else")
        drill = self.drill(drill_id)
        if drill is None:
            raise NotFoundError(f"没有这道题 {drill_id} / unknown drill")
        if drill.session_id != session_id:
            raise PracticeError(422, "这道题不属于这个练习 / this drill is not part of this session")
        return session, drill

    def answer_find(self, drill_id: str, sop_id: str, correct: bool, ms: int) -> None:
        with self.db.transaction() as c:
            cur = c.execute(
                "UPDATE practice_drills SET answered_ts = :ts, answer_sop = :sop, correct = :ok, ms = :ms"
                " WHERE drill_id = :id AND answered_ts IS NULL",
                {"ts": time.time(), "sop": sop_id, "ok": int(correct), "ms": ms, "id": drill_id},
            )
            if cur.rowcount == 0:
                raise PracticeError(409, "这道题已经答过了 / this drill was answered already")

    def set_followup(self, drill_id: str, followup: dict[str, Any]) -> None:
        """The drill's second stage as kept (an exam's decoy beside it after a wrong pick), until it is answered."""
        with self.db.transaction() as c:
            c.execute(
                "UPDATE practice_drills SET followup = :f WHERE drill_id = :id AND followup_ts IS NULL",
                {"f": json.dumps(followup, ensure_ascii=False), "id": drill_id},
            )

    def answer_followup(self, drill_id: str, correct: bool, choice: int | list[int] | None = None) -> None:
        """The second stage's verdict, and what was chosen (a line's index or an order) for the review."""
        with self.db.transaction() as c:
            cur = c.execute(
                "UPDATE practice_drills SET followup_ts = :ts, followup_correct = :ok, followup_choice = :choice"
                " WHERE drill_id = :id AND followup_ts IS NULL AND answered_ts IS NOT NULL",
                {"ts": time.time(), "ok": int(correct), "id": drill_id, "choice": json.dumps(choice)},
            )
            if cur.rowcount == 0:
                raise PracticeError(409, "这一步已经答过了 / this stage was answered already")

    def finish(self, session_id: str, score: float, certified: bool | None = None) -> bool:
        """Mark the session finished with its score and, for an exam, whether that certified its person; False if
        another request finished it first."""
        with self.db.transaction() as c:
            cur = c.execute(
                "UPDATE practice_sessions SET finished_ts = :ts, score = :score, certified = :cert"
                " WHERE session_id = :id AND finished_ts IS NULL",
                {
                    "ts": time.time(),
                    "score": score,
                    "cert": certified if certified is None else int(certified),
                    "id": session_id,
                },
            )
            return bool(cur.rowcount)

    def history(self, who: str, limit: int = 20) -> list[tuple[Session, list[DrillRow]]]:
        """One person's latest sessions (newest first) with their drills: what "我的练习记录" shows them."""
        rows = self.db.rows(
            "SELECT * FROM practice_sessions WHERE who = :who ORDER BY ts DESC LIMIT :n", {"who": who, "n": limit}
        )
        return [(s, self.drills(s.session_id)) for s in map(_session, rows)]

    def exams(self, since: float, until: float) -> list[tuple[Session, list[DrillRow]]]:
        """Every exam started in [since, until) with its drills, oldest first (the report's 考试记录)."""
        window = {"since": since, "until": until}
        where = "s.exam = 1 AND s.ts >= :since AND s.ts < :until"
        sessions = self.db.rows(f"SELECT s.* FROM practice_sessions s WHERE {where} ORDER BY s.ts", window)
        drills: dict[str, list[DrillRow]] = {}
        for r in self.db.rows(  # every exam's drills in one read, not one per exam
            "SELECT d.* FROM practice_drills d JOIN practice_sessions s ON s.session_id = d.session_id"
            f" WHERE {where} ORDER BY d.session_id, d.position",
            window,
        ):
            drills.setdefault(r["session_id"], []).append(_drill(r))
        return [(s, drills.get(s.session_id, [])) for s in map(_session, sessions)]

    def asked_others(self, who: str, since: float) -> set[str]:
        """Prompts of anyone else's rounds started since `since`: those colleagues saw them, and the answers once they
        answered (a re-check: two exams started together, neither answered yet, shared 9 of 10 questions)."""
        rows = self.db.rows(
            "SELECT DISTINCT d.prompt FROM practice_drills d JOIN practice_sessions s ON s.session_id = d.session_id"
            " WHERE s.who != :who AND s.ts >= :since",
            {"who": who, "since": since},
        )
        return {r["prompt"] for r in rows}

    def recent_results(self, who: str, limit: int = 20) -> list[bool]:
        rows = self.db.rows(
            "SELECT d.correct FROM practice_drills d JOIN practice_sessions s ON s.session_id = d.session_id"
            " WHERE s.who = :who AND d.answered_ts IS NOT NULL ORDER BY d.answered_ts DESC LIMIT :n",
            {"who": who, "n": limit},
        )
        return [bool(r["correct"]) for r in rows]

    def answered(self, since: float) -> list[dict[str, Any]]:
        """Every answered drill since `since`, with its person (for the report)."""
        rows = self.db.rows(
            "SELECT s.who, d.sop_id, d.answer_sop, d.category, d.correct, d.ms, d.answered_ts, d.followup_correct,"
            " d.difficulty"
            " FROM practice_drills d JOIN practice_sessions s ON s.session_id = d.session_id"
            " WHERE d.answered_ts IS NOT NULL AND d.answered_ts >= :since",
            {"since": since},
        )
        return [dict(r) for r in rows]
