"""An exam's verdict: the pass mark it is judged against and whether it passed (pure functions over stored rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kb_service.training.practice import DrillRow, Session
from kb_service.training.records import ExamMark


def mark_of(session: Session, marks: Mapping[str, ExamMark]) -> float | None:
    """The pass mark an exam is judged against: the one it was started under; for exams from before marks were kept
    with them, the category's current one."""
    if not session.exam:
        return None
    if session.pass_mark is not None:
        return session.pass_mark
    current = marks.get(session.category or "")
    return current.pass_mark if current else None


def passed(
    session: Session, score: float | None, marks: Mapping[str, ExamMark], rows: Sequence[DrillRow]
) -> bool | None:
    """At or above the pass mark, and, for an exam started under the every-stage rule, no second stage wrong."""
    mark = mark_of(session, marks)
    if mark is None or score is None:
        return None
    stages_right = all(d.followup_correct for d in rows if d.followup.get("kind"))
    return bool(score >= mark) and (stages_right or not session.every_stage)
