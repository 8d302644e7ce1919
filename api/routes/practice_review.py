"""A practice round or exam question by question (练习回顾): what was asked, what was chosen, what was right, shown to
its taker once each answer is in (an exam's once it is handed in) and to trainers at once."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, Services, StaffCaller
from api.routes.practice import ERRORS, SessionId
from kb_service.accounts.directory import Identity
from kb_service.training import drills
from kb_service.training.hub import Training

router = APIRouter(tags=["练习 practice"])


class ReviewItem(BaseModel):
    drill_id: str
    prompt: str
    answered: bool
    correct: bool | None
    answered_sop_id: str | None
    answered_title: str | None = Field(default=None, description="选错 SOP 时：所选 SOP 的标题（作答后给出）")
    expected_sop_id: str | None = Field(description="只在作答后显示")
    expected_title: str | None
    ms: int | None
    followup_correct: bool | None
    right_line: str | None = Field(default=None, description="第二步答错时：正确的话术（作答后给出）")
    right_order: list[str] | None = Field(default=None, description="第二步答错时：步骤的正确顺序（作答后给出）")
    chosen_line: str | None = Field(default=None, description="第二步答错时：作答人选的话术")
    chosen_order: list[str] | None = Field(default=None, description="第二步答错时：作答人排的顺序")


def _review(state: Services, t: Training, caller: Identity, session_id: str) -> list[ReviewItem]:
    session = t.practice.session(session_id)
    if session is None:
        raise HTTPException(404, "没有这个练习 / unknown practice session")
    if session.who != caller.name and not caller.trainer:
        raise HTTPException(403, "这是别人的练习 / this practice session belongs to someone else")
    catalog = state.kb.searcher.catalog
    items = []
    # an exam's answers show its taker once it is handed in (a trainer sees them at once)
    sealed = session.exam and session.finished_ts is None and session.who == caller.name
    over = session.finished_ts is not None  # its unanswered questions are over too: their answers show
    for d in t.practice.drills(session_id):
        done = (d.answered_ts is not None or over) and not sealed
        missed = done and bool(d.followup) and (d.followup_correct is False or (over and not d.followup_correct))
        sop = catalog.get(d.sop_id) if done else None
        picked = catalog.get(d.answer_sop) if done and d.answer_sop and not d.correct else None
        items.append(
            ReviewItem(
                drill_id=d.drill_id,
                prompt=d.prompt,
                answered=d.answered_ts is not None,
                correct=d.correct if done else None,
                answered_sop_id=d.answer_sop,
                answered_title=picked.title if picked else None,
                expected_sop_id=d.sop_id if done else None,
                expected_title=(sop.title if sop else d.sop_id) if done else None,
                ms=d.ms,
                followup_correct=d.followup_correct if done else None,
                **(drills.right_stage(d.followup, d.followup_choice) if missed else {}),
            )
        )
    return items


@router.get("/v1/practice/sessions/{session_id}", response_model=list[ReviewItem], responses=ERRORS)
async def review(session_id: SessionId, caller: StaffCaller, state: Ready) -> list[ReviewItem]:
    """练习回顾：每题的答案与正确的 SOP（未答的题在结束前不显示答案；考试在交卷前对考生不显示对错和答案）。"""
    return await run_in_threadpool(_review, state, state.training, caller, session_id)
