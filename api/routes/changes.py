"""Change acknowledgements (变更确认): agents' change cards and trainers' view of who acknowledged what."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, Services, StaffCaller, TrainerCaller
from api.schemas import ErrorResponse
from ingest.parser import parse_bytes
from kb_service.accounts.directory import Identity
from kb_service.db.engine import DB_ERRORS
from kb_service.errors import first_line
from kb_service.models import Sop
from kb_service.training.changes import Change, changed_parts, numbers_changed

log = logging.getLogger("kb.api")
router = APIRouter(tags=["变更确认 changes"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 422, 503)}
ChangeId = Annotated[str, Path(min_length=3, max_length=100, pattern=r"^[a-z0-9-]+-v[0-9]+$")]


class AckOut(BaseModel):
    change_id: str
    acknowledged_ts: float


class Acknowledger(BaseModel):
    name: str
    ts: float


class ChangeStatus(Change):
    acknowledged: list[Acknowledger]
    pending: list[str] = Field(description="还没确认的在用坐席和培训师账号（变更发布前已建的，发布人除外）")
    withdrawn_by: int | None = Field(default=None, description="撤回这次修改的回滚版本号（这张变更卡已撤回）")


def record_change(
    state: Services, before: Sop | None, sop_id: str, version: int, author: str, undoes: list[int] | None = None
) -> None:
    """After a publish: a change card when steps, scripts, time limits or escalation changed. Never fails the publish
    (it already went live): a problem is logged."""
    t = state.training
    try:
        record = state.logbook.version(sop_id, version)
        if record is None:
            return
        after = parse_bytes(record.path, record.content.encode("utf-8")).sop
        if after is not None:
            t.changes.record(before, after, author=author, undoes=undoes or [])
    except (*DB_ERRORS, ValueError) as exc:
        log.error("change card for %s v%d not recorded: %s", sop_id, version, first_line(exc))


def minor_with_numbers(state: Services, before: Sop | None, sop_id: str, version: int) -> str | None:
    """A warning when a publish marked 小改动 changed a number agents act on (a trial published a shorter time limit
    as a minor change and no agent was told): the change is then recorded as any other."""
    try:
        record = state.logbook.version(sop_id, version)
    except DB_ERRORS as exc:  # the publish went live: never fail it here
        log.error("minor change of %s v%d not checked: %s", sop_id, version, first_line(exc))
        return None
    after = parse_bytes(record.path, record.content.encode("utf-8")).sop if record is not None else None
    found = numbers_changed(changed_parts(before, after)) if after is not None else None
    if found is None:
        return None
    old, new = (f"「{t}」" if t else "（无）" for t in found)
    return f"这次改动改了数字：{old} → {new}。小改动只用于不改变做法的修改（如错别字），已照常给坐席发变更确认卡片"


def _since(state: Services, caller: Identity) -> float | None:
    if caller.kind != "account":
        return None
    account = state.training.accounts.get(caller.name)
    return account.created_ts if account else None


@router.get("/v1/changes", response_model=list[Change], responses=ERRORS)
async def changes(caller: StaffCaller, state: Ready) -> list[Change]:
    """调用者还没确认的 SOP 变更（新的在前），每条附步骤、话术、时限、升级处理的改动。"""
    t = state.training
    since = await run_in_threadpool(_since, state, caller)
    return await run_in_threadpool(t.changes.cards, caller.name, since)


@router.post("/v1/changes/{change_id}/ack", response_model=AckOut, responses=ERRORS)
async def acknowledge(change_id: ChangeId, caller: StaffCaller, state: Ready) -> AckOut:
    """确认已读一条变更（重复确认保留第一次的时间）。"""
    t = state.training
    if await run_in_threadpool(t.changes.get, change_id) is None:
        raise HTTPException(404, f"没有这条变更 {change_id} / unknown change")
    ts = await run_in_threadpool(t.changes.acknowledge, change_id, caller.name)
    return AckOut(change_id=change_id, acknowledged_ts=ts)


def _status(state: Services, limit: int) -> list[ChangeStatus]:
    t = state.training
    return [
        ChangeStatus(
            **s.change.model_dump(),
            acknowledged=[Acknowledger(name=w, ts=ts) for w, ts in s.acknowledged],
            pending=s.pending,
            withdrawn_by=s.withdrawn_by,
        )
        for s in t.changes.statuses(t.accounts.list(), limit)
    ]


@router.get("/v1/changes/status", response_model=list[ChangeStatus], responses=ERRORS)
async def status(_: TrainerCaller, state: Ready) -> list[ChangeStatus]:
    """培训师：最近的变更，谁已确认、谁还没有。"""
    return await run_in_threadpool(_status, state, 50)
