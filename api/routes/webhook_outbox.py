"""The hand-over webhook's undelivered events, for whoever runs the receiving system: which events it lacks and why,
and a way to send them again now (an integrator's trial: after a long outage of their ticketing system, given-up
events had no way back and a recovered receiver waited up to an hour for the next attempt)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, StaffRole, TrainerRole
from api.routes.cases import ERRORS
from api.webhook_events import EVENTS

router = APIRouter(tags=["转人工 hand-over"])


class OutboxEvent(BaseModel):
    event_id: str = Field(description="X-KB-Event-Id: the same for every attempt")
    case_id: str
    event: str = Field(description=", ".join(EVENTS))
    status: str = Field(description="pending (an attempt is due at next_attempt_at) or failed (given up)")
    attempts: int
    last_error: str | None
    next_attempt_at: float | None
    created_at: float


class Outbox(BaseModel):
    counts: dict[str, int] = Field(description="events by status: pending, delivered, failed")
    undelivered: list[OutboxEvent] = Field(description="the oldest 100 events not delivered")


class RetryIn(BaseModel):
    """Which undelivered events to send again; no body (or `{}`) sends them all."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field must not resend everything unnoticed
    case_id: str | None = Field(default=None, max_length=64, description="only this case's events")
    event_id: str | None = Field(default=None, max_length=64, description="only this event (X-KB-Event-Id)")


class Retried(BaseModel):
    due: int = Field(description="events now due: tried again within seconds, in the order they were written")


@router.get("/v1/handover/webhook", response_model=Outbox, responses=ERRORS)
async def outbox(_: StaffRole, state: Ready) -> Outbox:
    """转人工 webhook 的投递情况：各状态的事件数，以及尚未送达（等待重试或已放弃）的事件，最早的在前。"""
    cases = state.cases
    counts = await run_in_threadpool(cases.outbox_counts)
    rows = await run_in_threadpool(cases.undelivered)
    return Outbox(counts=counts, undelivered=[OutboxEvent(**{k: r[k] for k in OutboxEvent.model_fields}) for r in rows])


@router.post("/v1/handover/webhook/retry", response_model=Retried, responses=ERRORS)
async def retry(_: TrainerRole, state: Ready, body: RetryIn | None = None) -> Retried:
    """接收系统恢复后立即重发：未送达的事件（含已放弃的，重新计满尝试次数）马上重试；可只重发某个请求（`case_id`）
    或某个事件（`event_id`）。没有符合的事件时 `due` 为 0。"""
    which = body or RetryIn()
    if any(getattr(which, name) is None for name in which.model_fields_set):  # {"case_id": null} is no filter
        raise HTTPException(422, "case_id / event_id 不能为 null / case_id and event_id may not be null")
    due = await run_in_threadpool(state.cases.retry_now, None, which.case_id, which.event_id)
    return Retried(due=due)
