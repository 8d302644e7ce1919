"""The tenant chat endpoint and feedback."""

from __future__ import annotations

import logging

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CallerRole, ChatLimit, FeedbackLimit, Ready, TrainerRole, tenant_client
from api.routes.learning import answered_with, caller_name, logged_query, teach
from api.schemas import ChatRequest, ErrorResponse, FeedbackRequest
from kb_service.db.engine import DB_ERRORS
from kb_service.errors import DatabaseUnavailableError, first_line
from kb_service.search.chat_models import ChatAnswer
from kb_service.search.chat_wording import urgent_after_hours
from kb_service.search.hits import behind_emergency
from kb_service.training.hub import Training

log = logging.getLogger("kb.api")
router = APIRouter()


class ChatOut(ChatAnswer):
    query_id: int | None = None


class FeedbackOut(BaseModel):
    id: int
    learned: str | None = None  # learned | confirmed | unchanged | rejected: what the vote taught agent search
    behind_emergency: bool = Field(
        False,
        description="学到的问法带险情信号（如煤气味）而这份 SOP 不是应急处置：相关的应急处置 SOP 仍排在它前面",
    )


def _person_vote(training: Training, feedback_id: int, who: str, sop_id: str, vote: int) -> None:
    try:
        training.records.vote(feedback_id, who, sop_id, vote)
    except DB_ERRORS as exc:  # the vote itself is stored; only the per-person view misses it
        log.warning("vote not recorded per person: %s", first_line(exc))


@router.post(
    "/v1/chat",
    response_model=ChatOut,
    tags=["租客聊天 chat"],
    responses={s: {"model": ErrorResponse} for s in (422, 429, 503)},
)
async def chat(body: ChatRequest, request: Request, role: CallerRole, state: Ready, _: ChatLimit) -> ChatOut:
    """租客提问：只用公开内容摘录作答并注明出处；没有把握时转人工（handoff: true）。"""
    client = tenant_client(role, state, request)
    responder, logbook = state.chat, state.logbook

    def run(query_vector: np.ndarray | None) -> tuple[ChatAnswer, int]:
        answer, hits = responder.answer(body.question, query_vector)
        # An emergency is handed over by policy: with a public safety instruction shown it is no gap in the knowledge
        # base (the gap report listed every gas smell as 转人工 or 低置信度); without one it is. Its logged row then
        # has no hand-over and no confidence (the public search's, which did not choose the instruction).
        by_policy = answer.urgent and bool(answer.sources)
        query_id = logbook.log_query(
            source="chat",
            audience="public",
            query=body.question,
            result_ids=[h.sop_id for h in hits],
            top_score=hits[0].score if hits else None,
            confidence=None if by_policy else answer.confidence,
            handoff=answer.handoff and not by_policy,
            client=client,
            session=body.session_id if client else None,
            who=None if role == "public" else caller_name(request, role),
        )
        return answer, query_id

    answer, query_id = await state.lane.submit(body.question, run)  # batched with searches, on the same thread
    hours = state.settings.service_window
    if answer.urgent and hours is not None and not hours.open_now():
        answer.answer = urgent_after_hours(answer.answer)  # nobody on duty: no 优先安排人工客服 (a re-check trial)
    # A hand-over's confidence would say how well staff-only documents matched (a security review read 0.72 for a
    # question only a staff procedure covers): the logged row keeps it for the gap report, the tenant gets none
    shown = answer.model_dump() | ({"confidence": 0.0} if answer.handoff else {})
    return ChatOut(**shown, query_id=query_id)


@router.post(
    "/v1/chat/try",
    response_model=ChatAnswer,
    tags=["培训师 trainer"],
    responses={s: {"model": ErrorResponse} for s in (401, 403, 422, 503)},
)
async def chat_try(body: ChatRequest, _: TrainerRole, state: Ready) -> ChatAnswer:
    """培训师试问：租客聊天对这句话会怎么回答（与 /v1/chat 相同，只用公开内容），附置信度；
    不记入查询日志、缺口报告和服务指标。A trainer's hit test of the tenant chat: the answer /v1/chat would give,
    its confidence kept, nothing logged."""
    answer, _hits = await state.lane.submit(body.question, lambda qvec: state.chat.answer(body.question, qvec))
    hours = state.settings.service_window
    if answer.urgent and hours is not None and not hours.open_now():
        answer.answer = urgent_after_hours(answer.answer)
    return answer


@router.post(
    "/v1/feedback",
    response_model=FeedbackOut,
    tags=["反馈 feedback"],
    responses={s: {"model": ErrorResponse} for s in (404, 422, 429, 503)},
)
async def feedback(
    body: FeedbackRequest, request: Request, role: CallerRole, state: Ready, _: FeedbackLimit
) -> FeedbackOut:
    """👍/👎 on a result (console) or an answer (chat widget); 503 while the service database cannot be written. A
    staff 👍 on a SOP for one of their searches (even a SOP the search did not return) teaches agent search that
    phrasing; a 👎 removes it (api/routes/learning.py)."""
    visible = state.kb.searcher.get_sop(body.sop_id, "public" if role == "public" else "agent")
    if visible is None:
        raise HTTPException(404, f"没有 id 为 {body.sop_id} 的 SOP / unknown SOP")
    if not state.logbook.status().ok:  # the vote could not be stored, nor the query it names found
        raise DatabaseUnavailableError(
            "反馈暂时无法保存（服务数据库不可写），请稍后再试 / feedback cannot be saved now: the service database "
            "is not writable"
        )
    client = tenant_client(role, state, request)
    if role == "public" and body.query_id is None:  # what a tenant votes on is an answer they were given
        raise HTTPException(422, "请对具体的回答反馈（缺少 query_id）/ a tenant's vote names the answer's query_id")
    voter = caller_name(request, role)
    query = await logged_query(state, role, body.query_id, client, voter) if body.query_id is not None else None
    if role == "public" and query is not None and not answered_with(query, body.sop_id):
        raise HTTPException(403, "只能对回答的出处反馈 / a tenant votes on the SOP their answer came from")
    fid = await run_in_threadpool(
        state.logbook.add_feedback,
        sop_id=body.sop_id,
        vote=body.vote,
        source="chat" if role == "public" else "console",
        query_id=body.query_id,
        comment=body.comment,
    )
    if role != "public":  # per person, for the training-needs report
        await run_in_threadpool(_person_vote, state.training, fid, request.state.caller.name, body.sop_id, body.vote)
    learned = await teach(state, request, role, query, body.sop_id, body.vote) if query is not None else None
    urgent = state.kb.searcher.config.urgent_categories
    taught = learned in ("learned", "confirmed")
    behind = query is not None and taught and behind_emergency(query.query, visible, urgent)
    return FeedbackOut(id=fid, learned=learned, behind_emergency=behind)


class ServiceHoursOut(BaseModel):
    in_service_hours: bool = Field(description="Agents answer cases now (always true without KB_SERVICE_HOURS)")
    service_hours: str | None = Field(None, description="When agents answer, e.g. 09:00–21:00; null = around the clock")
    timezone: str | None = Field(None, description="The hours' time zone (KB_SERVICE_TIMEZONE); null = the server's")


@router.get("/v1/service-hours", response_model=ServiceHoursOut, tags=["租客聊天 chat"])
async def service_hours(state: Ready) -> ServiceHoursOut:
    """人工客服的服务时间，以及现在是否在服务时间内：挂件在租客提问之前就据此说明人工客服何时在线（一位手机端试用者
    在表单提交后才知道没人值班）。"""
    hours = state.settings.service_window
    if hours is None:
        return ServiceHoursOut(in_service_hours=True, service_hours=None, timezone=None)
    zone = state.settings.service_timezone.strip() or None
    return ServiceHoursOut(in_service_hours=hours.open_now(), service_hours=hours.label, timezone=zone)
