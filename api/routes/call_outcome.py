"""A live call's outcome for the platform that fed it and for supervisors: which SOP agents pinned (the console
records each pin), with the call's transcript and latest suggestions while the call is kept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, StaffCaller
from api.routes.assist import check_call_id
from api.schemas import ErrorResponse
from kb_service.assist.guide import sop_card

router = APIRouter(tags=["通话辅助 assist"])


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sop_id: str = Field(min_length=1, max_length=200)


class Pin(BaseModel):
    sop_id: str
    title: str | None = Field(description="The SOP's title now (None when it was deleted since)")
    who: str = Field(description="The agent who pinned it (account name, or the service key's label)")
    ts: float
    item: dict[str, Any] | None = Field(
        default=None,
        description="The SOP as a suggestion card (steps, deadlines, ask_next…), for a console that follows the call "
        "in another tab; None when the SOP was deleted since",
    )


class CallOutcome(BaseModel):
    call_id: str
    active: bool = Field(description="The call is still kept (not ended, and spoken in within KB_ASSIST_CALL_TTL)")
    started_ts: float | None
    topic_started_ts: float | None
    segments: list[dict[str, Any]] = Field(description="The transcript (personal numbers masked), while kept")
    suggestions: list[dict[str, Any]] = Field(description="The latest suggestions: sop_id, title, match_confidence")
    pins: list[Pin] = Field(description="SOPs pinned on the call, oldest first; the last one is the call's procedure")


@router.post(
    "/v1/assist/{call_id}/pins",
    response_model=Pin,
    status_code=201,
    responses={s: {"model": ErrorResponse} for s in (401, 404, 422)},
)
async def pin(call_id: str, body: PinIn, caller: StaffCaller, state: Ready) -> Pin:
    """坐席在通话中固定了某个 SOP（控制台按 P 或点「固定」时自动上报）：作为这通电话的处理结果。"""
    check_call_id(call_id)
    sop = state.kb.searcher.get_sop(body.sop_id, "agent")
    if sop is None:
        raise HTTPException(404, f"没有 id 为 {body.sop_id} 的 SOP / unknown SOP")
    ts = await run_in_threadpool(state.assist.calls.pin, call_id, body.sop_id, caller.name)
    card = sop_card(sop, state.kb.searcher.config)  # a SOP the agent found by searching is pinned from this card
    return Pin(sop_id=body.sop_id, title=sop.title, who=caller.name, ts=ts, item=card)


@router.get(
    "/v1/assist/{call_id}", response_model=CallOutcome, responses={s: {"model": ErrorResponse} for s in (401, 404)}
)
async def outcome(call_id: str, _: StaffCaller, state: Ready) -> CallOutcome:
    """一通电话的结果：坐席固定的 SOP（最后一个即本次处理所用），以及通话仍保留时的转写和最新建议。"""
    check_call_id(call_id)
    calls = state.assist.calls
    found, pins = await run_in_threadpool(lambda: (calls.watch(call_id), calls.pins(call_id)))
    if found is None and not pins:
        raise HTTPException(404, "没有这通电话，或已超过保留时间 / unknown call, or no longer kept")
    searcher = state.kb.searcher
    cards: dict[str, dict[str, Any]] = {}
    for p in pins:
        if p["sop_id"] not in cards and (sop := searcher.get_sop(p["sop_id"], "agent")) is not None:
            cards[p["sop_id"]] = sop_card(sop, searcher.config)
    shown = [Pin(title=c["title"] if (c := cards.get(p["sop_id"])) else None, item=c, **p) for p in pins]
    if found is None:
        return CallOutcome(
            call_id=call_id, active=False, started_ts=None, topic_started_ts=None, segments=[], suggestions=[],
            pins=shown,
        )  # fmt: skip
    ctx, latest = found[1], found[2]
    items = (latest or {}).get("items", [])
    return CallOutcome(
        call_id=call_id,
        active=True,
        started_ts=ctx.started,
        topic_started_ts=ctx.topic_started(),
        segments=ctx.transcript(),
        suggestions=[{k: i.get(k) for k in ("sop_id", "title", "match_confidence", "urgent")} for i in items],
        pins=shown,
    )
