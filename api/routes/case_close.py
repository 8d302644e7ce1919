"""Closing a hand-over case: by the agent who holds it (or a supervisor), never over an emergency the tenant reported
in it that nobody has answered yet."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, StaffCaller
from api.routes.cases import CLOSED_MESSAGE, ERRORS, CaseOut, case_out, hold, staff_case, taker
from kb_service.handover.store import Case, Message

router = APIRouter(tags=["转人工 cases"])


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="Close although an emergency the tenant reported has no reply (else 409)")


UNANSWERED_EMERGENCY = (
    "租客在这个请求里报告了紧急情况，还没有人回复：请先回复租客；确已处理请点「仍要关闭」"
    " / the tenant reported an emergency nobody has answered: reply first, or close with force"
)


def _unanswered_emergency(case: Case, said: list[Message]) -> bool:
    """An emergency the tenant reported in the open case (the service's urgent answer after it, a bot message written
    after the case opened) with no agent message since: a supervisor's trial closed one 1.2 s after it came in."""
    replied = max((m.seq for m in said if m.author == "agent"), default=0)
    return any(m.author == "bot" and m.seq > replied and m.created_at > case.created_at for m in said)


@router.post("/v1/cases/{case_id}/close", response_model=CaseOut, responses=ERRORS)
async def close_case(case_id: str, caller: StaffCaller, state: Ready, body: CloseIn | None = None) -> CaseOut:
    """坐席关闭自己接入的请求（待接入的请求由关闭者接入后关闭，记在其名下）；其他坐席接入的请求 409，培训师和管理员
    （主管）可关闭任何请求。租客在请求里报告的紧急情况还没有人回复时 409（`force` 仍要关闭）。租客仍可查看对话，
    但不能再发送消息。"""
    case = await staff_case(state, case_id)
    said = await run_in_threadpool(state.cases.messages, case_id)
    if not (body and body.force) and _unanswered_emergency(case, said):
        raise HTTPException(409, UNANSWERED_EMERGENCY)
    if caller.rights != "trainer":
        await hold(state, case_id, caller, announce=False)
    await run_in_threadpool(state.cases.add_message, case_id, "system", CLOSED_MESSAGE)
    closer = taker(caller, "")  # kept only when nobody had taken the case
    if not await run_in_threadpool(lambda: state.cases.set_status(case_id, "closed", taken_by=closer)):
        raise HTTPException(409, "该请求已关闭 / the case is already closed")
    return case_out(await staff_case(state, case_id))
