"""Live-call assist: `WS /v1/assist` (call platforms and the console), its HTTP form, and the console's tickets."""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

from api.deps import AppState, Ready, Role, Services, StaffRole, resolve_role
from api.schemas import ErrorResponse
from kb_service.assist.context import CallContext
from kb_service.assist.tickets import TICKET_SECONDS, issue, verify
from kb_service.errors import KbError

log = logging.getLogger("kb.assist")
router = APIRouter(tags=["通话辅助 assist"])
POLICY_VIOLATION = 1008  # WebSocket close code: no valid credential
TRY_AGAIN_LATER = 1013  # the model and the index are still loading
MAX_CALLS_PER_CONNECTION = 64
CALL_ID = r"^[A-Za-z0-9._:\-]{1,100}$"


class SegmentIn(BaseModel):
    """A segment of the call's transcript (`final: false` for a partial result the recogniser may still revise)."""

    speaker: Literal["tenant", "agent"]
    text: str = Field(max_length=5000)
    final: bool = True


class SegmentMessage(SegmentIn):
    type: Literal["segment"]
    call_id: str = Field(pattern=CALL_ID)


class EndMessage(BaseModel):
    type: Literal["end"]
    call_id: str = Field(pattern=CALL_ID)


class SuggestionsOut(BaseModel):
    type: Literal["suggestions"] = "suggestions"
    call_id: str
    items: list[dict[str, Any]] = Field(
        description="SOP cards, best first: sop_id, title, score (combined), match_confidence, weak, steps, "
        "script_lines, scripts, time_limits, escalation, sections… (the fields of a search result)"
    )
    weak: bool = Field(description="The best suggestion is a weak match (below the measured threshold)")
    topic_changed: bool = Field(description="This segment started a new topic in the call")
    changed: bool = Field(description="The first suggestion differs from the one before")
    took_ms: float


class Ticket(BaseModel):
    ticket: str
    expires_in: int


def _check_text(services: Services, text: str) -> None:
    if len(text) > services.settings.max_query_chars:
        raise KbError(
            f"一段转写最多 {services.settings.max_query_chars} 个字符 / a segment has at most "
            f"{services.settings.max_query_chars} characters"
        )


@router.post("/v1/assist/ticket", response_model=Ticket, responses={401: {"model": ErrorResponse}})
def ticket(role: StaffRole, state: Ready) -> Ticket:
    """A ticket for the console's WebSocket (`/v1/assist?ticket=…`), valid 60 s, for browsers that cannot send an
    Authorization header on a WebSocket."""
    return Ticket(ticket=issue(state.assist.calls.secret, role), expires_in=TICKET_SECONDS)


@router.post(
    "/v1/assist/{call_id}/segments",
    response_model=SuggestionsOut,
    responses={s: {"model": ErrorResponse} for s in (401, 422, 503)},
)
async def post_segment(call_id: str, body: SegmentIn, role: StaffRole, state: Ready) -> SuggestionsOut:
    """The HTTP form of a `segment` message: always answers with the current suggestions (`changed` says whether
    the first one changed). The call lives in the shared store, so any worker process may take any segment."""
    _check_call_id(call_id)
    _check_text(state, body.text)
    answer = await state.lane.submit(None, lambda _: state.assist.segment(call_id, body.speaker, body.text, body.final))
    return SuggestionsOut(**answer.message(), changed=answer.changed)


@router.post("/v1/assist/{call_id}/end", status_code=204, responses={401: {"model": ErrorResponse}})
def end_call(call_id: str, role: StaffRole, state: Ready) -> None:
    """The HTTP form of an `end` message: the call's context is forgotten."""
    _check_call_id(call_id)
    state.assist.end(call_id)


def _check_call_id(call_id: str) -> None:
    if not re.fullmatch(CALL_ID, call_id):
        raise HTTPException(422, "call_id 只能含字母、数字和 ._:-，最长 100 / call_id: letters, digits, ._:- only")


def _socket_role(websocket: WebSocket, state: AppState) -> Role | None:
    """The role of the upgrade's Authorization header, else of its `ticket` query parameter; None: refuse."""
    header = websocket.headers.get("authorization", "")
    ticket_ = websocket.query_params.get("ticket", "")
    if ticket_ and not header:
        if state.services is None:
            return None
        role = verify(state.services.assist.calls.secret, ticket_)
        return role  # type: ignore[return-value]
    try:
        role_ = resolve_role(state, header)
    except HTTPException:
        return None
    return None if role_ == "public" else role_


@router.websocket("/v1/assist")
async def assist_socket(websocket: WebSocket) -> None:
    """Segments in, suggestions out; several calls may share the connection (each message names its call)."""
    state: AppState = websocket.app.state.kb_state
    if _socket_role(websocket, state) is None:
        await websocket.close(code=POLICY_VIOLATION, reason="需要坐席密钥或票据 / an agent key or ticket is required")
        return
    services = state.services
    if services is None:
        await websocket.close(code=TRY_AGAIN_LATER, reason="service is loading")
        return
    await websocket.accept()
    calls: dict[str, CallContext] = {}
    try:
        while True:
            reply = await _handle(services, calls, await websocket.receive_text())
            if reply is not None:
                await websocket.send_json(reply)
    except WebSocketDisconnect:
        return


def _error(message: str, call_id: object = None) -> dict[str, Any]:
    return {"type": "error", "call_id": call_id if isinstance(call_id, str) else None, "message": message}


async def _handle(services: Services, calls: dict[str, CallContext], raw: str) -> dict[str, Any] | None:
    """One message in; the reply (suggestions or an error) or None. Bad input gets an error and loses nothing."""
    try:
        data = json.loads(raw)
    except ValueError:
        return _error("消息必须是 JSON / a message must be JSON")
    kind = data.get("type") if isinstance(data, dict) else None
    call_id = data.get("call_id") if isinstance(data, dict) else None
    try:
        if kind == "end":
            calls.pop(EndMessage.model_validate(data).call_id, None)
            return None
        if kind != "segment":
            return _error("type 应为 segment 或 end / type must be segment or end", call_id)
        msg = SegmentMessage.model_validate(data)
        _check_text(services, msg.text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _error(f"消息格式错误：{where} / invalid message: {where}: {first['msg']}", call_id)
    except KbError as exc:
        return _error(str(exc), call_id)
    ctx = calls.get(msg.call_id)
    if ctx is None:
        if len(calls) >= MAX_CALLS_PER_CONNECTION:
            return _error(
                f"一个连接最多同时 {MAX_CALLS_PER_CONNECTION} 通电话，请先结束 / at most "
                f"{MAX_CALLS_PER_CONNECTION} open calls per connection: end one first",
                msg.call_id,
            )
        ctx = calls[msg.call_id] = CallContext(msg.call_id)
    follower = services.assist.follower
    try:
        answer = await services.lane.submit(None, lambda _: follower.step(ctx, msg.speaker, msg.text, msg.final))
    except KbError as exc:  # e.g. no usable index just now: the call and the connection stay
        return _error(str(exc), msg.call_id)
    return None if answer is None else {**answer.message(), "changed": answer.changed}
