"""A person's practice records (我的练习记录): their own latest rounds and exams, and the same list a trainer reads for
anyone (the training report's per-person view)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, StaffCaller
from api.routes.practice import ERRORS
from kb_service.training import verdict
from kb_service.training.hub import Training

router = APIRouter(tags=["练习 practice"])


class MineItem(BaseModel):
    session_id: str
    ts: float = Field(description="开始时间（Unix 秒）")
    category: str | None
    exam: bool
    total: int = Field(description="题数")
    answered: int
    correct: int | None = Field(description="找对 SOP 的题数（自己未交卷的考试为 null）")
    second_correct: int | None
    second_total: int = Field(description="有第二步的题数")
    finished: bool
    score: float | None = Field(description="完成后的得分（两步合计，见作答接口）")
    median_ms: int | None = Field(description="找 SOP 用时的中位数（毫秒）")
    passed: bool | None = Field(default=None, description="考试：得分是否达到开考时的及格线（练习和未完成为空）")
    certified: bool | None = Field(
        default=None,
        description="考试：交卷时是否取得认证（达到及格线，但考试已撤下或分类已无 SOP 时为 false；练习和旧记录为空）",
    )
    pass_mark: float | None = Field(default=None, description="考试：开考时的及格线")
    every_stage: bool = Field(default=False, description="考试：开考时是否要求每题第二步都答对")


def sessions_of(t: Training, name: str, limit: int, own: bool = False) -> list[MineItem]:
    """One person's latest practice rounds and exams, newest first, with whether each finished exam passed; `own`: the
    person reads them, so an exam not handed in yet keeps its counts of right answers to itself."""
    marks = t.records.marks()
    items = []
    for session, rows in t.practice.history(name, limit):
        answered = [d for d in rows if d.answered_ts is not None]
        sealed = own and session.exam and session.finished_ts is None
        times = sorted(d.ms for d in answered if d.ms is not None)
        items.append(
            MineItem(
                session_id=session.session_id,
                ts=session.ts,
                category=session.category,
                exam=session.exam,
                total=len(rows),
                answered=len(answered),
                correct=None if sealed else sum(1 for d in answered if d.correct),
                second_correct=None if sealed else sum(1 for d in rows if d.followup_correct),
                second_total=sum(1 for d in rows if d.followup.get("kind")),
                finished=session.finished_ts is not None,
                score=session.score,
                median_ms=times[len(times) // 2] if times else None,
                passed=verdict.passed(session, session.score, marks, rows),
                certified=session.certified,
                pass_mark=verdict.mark_of(session, marks),
                every_stage=session.every_stage,
            )
        )
    return items


@router.get("/v1/practice/mine", response_model=list[MineItem], responses=ERRORS)
async def mine(caller: StaffCaller, state: Ready, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[MineItem]:
    """我的练习记录：调用者本人最近的练习和考试（最新的在前），只含本人的记录。

    每一轮可以用 GET /v1/practice/sessions/{session_id} 回顾。"""
    return await run_in_threadpool(sessions_of, state.training, caller.name, limit, True)
