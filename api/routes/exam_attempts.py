"""An exam's earlier attempts when the person starts one: the same day's is continued, an older one left after an
answer is handed in as it stands, and a retake waits the category's time after an attempt that was not a pass."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from fastapi import HTTPException

from kb_service.accounts.directory import Identity
from kb_service.training import verdict
from kb_service.training.hub import Training
from kb_service.training.practice import DrillRow, Session
from kb_service.training.records import ExamMark

PRACTISED_SECONDS = 86400  # an exam avoids the prompts the person practised this recently (their answers were shown)
# ... and, where the bank allows, those colleagues answered this recently (new agents sit side by side and talk)
EXPOSED_SECONDS = 14 * 86400


def unfinished_exam(t: Training, caller: Identity, category: str) -> tuple[Session, list[DrillRow]] | None:
    """This person's exam of the category started in the last day with stages left: 参加考试 again continues it
    (a trial reloaded the page mid-exam; the next 参加考试 handed it in at 0 % and locked the retake)."""
    since = time.time() - PRACTISED_SECONDS
    return next(
        (
            (x, ds)
            for x, ds in t.practice.history(caller.name, limit=10)
            if x.exam
            and x.category == category
            and x.finished_ts is None
            and x.ts > since
            and any(_open(d) for d in ds)
        ),
        None,
    )


def _open(d: DrillRow) -> bool:
    """A stage of the drill is not answered: its SOP, or its second stage (a trial left only the last second stage
    open; 参加考试 handed the attempt in, certified it at 67 % and started another)."""
    return d.answered_ts is None or (d.followup_ts is None and bool(d.followup.get("kind")))


def abandoned(session: Session, rows: list[DrillRow]) -> bool:
    return session.finished_ts is None and any(d.answered_ts is not None for d in rows)


def handed_in(t: Training, session: Session, rows: list[DrillRow]) -> Session:
    """Finish an unfinished exam with the score its answers so far earn; certify it if that passes."""
    score = combined_score(rows)
    marks = t.records.marks()
    passed = bool(verdict.passed(session, score, marks, rows)) and session.category in marks
    if t.practice.finish(session.session_id, score, passed) and passed and session.category:
        t.records.certify(session.who, session.category, score, session.session_id)
    return replace(session, finished_ts=time.time(), score=score, certified=passed)


def wait_to_retake(t: Training, who: str, mark: ExamMark, attempts: list[Session]) -> None:
    """Refuse a retake started within the category's wait after an attempt that was not a pass (a trial passed by
    memory: 60 % → 40 % → 100 % in 12 minutes, the answers shown after each attempt)."""
    if not attempts:
        return
    last = max(attempts, key=lambda x: x.ts)
    passed = next((c.ts for c in t.records.certifications(who) if c.category == mark.category), None)
    if passed is not None and passed >= last.ts:
        return  # the latest attempt was a pass: taking it again renews the certification
    left = last.ts + mark.retake_minutes * 60 - time.time()
    if left > 0:
        minutes = math.ceil(left / 60)
        raise HTTPException(
            429,
            f"上次“{mark.category}”考试未通过：{minutes} 分钟后可以重考，先去练习吧 / retake in {minutes} min",
            headers={"Retry-After": str(math.ceil(left))},
        )


def combined_score(rows: list[DrillRow]) -> float:
    """Every stage is one point: (SOPs found + second stages right) / (drills + drills with a second stage)."""
    stages = len(rows) + sum(1 for d in rows if d.followup.get("kind"))
    points = sum(1 for d in rows if d.correct) + sum(1 for d in rows if d.followup_correct)
    return points / stages if stages else 0.0
