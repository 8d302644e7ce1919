"""Learning from use over HTTP: agents' opens and copies, what votes teach, and trainers' view of learned phrasings."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Ready, Role, Services, StaffRole, TrainerCaller, TrainerRole
from api.schemas import ErrorResponse
from ingest.learning import EventOutcome, Learning
from ingest.publishing import PublishResult
from kb_service.db.engine import DB_ERRORS
from kb_service.errors import first_line
from kb_service.learning.store import LearnedPair, QueryRow
from kb_service.text.privacy import mask, masked_something

log = logging.getLogger("kb.api")
router = APIRouter(tags=["从使用中学习 learning"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 403, 404, 409, 422, 503)}
SopId = Annotated[str, Path(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=80, description="SOP id")]
LearnedId = Annotated[int, Path(ge=1, le=2**53, description="学到的问法编号")]
# A search answered by another worker process reaches the database within the query log's write interval (0.2 s).
QUERY_WAIT_SECONDS = 1.5


class EventRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query_id": 12, "sop_id": "repair-leak-ceiling", "type": "open"}]},
    )

    query_id: int = Field(ge=1, le=2**53, description="检索返回的 query_id")
    sop_id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")
    type: Literal["open", "copy"] = Field(description="open = 查看全文；copy = 复制了一句话术")
    previous_query_id: int | None = Field(
        default=None,
        ge=1,
        le=2**53,
        description="坐席在这次检索之前没有采用结果、换了说法的那次检索（90 秒内）：这次查看或复制也算作那次说法的",
    )


class EventOut(BaseModel):
    id: int
    similar_events: int = Field(description="同一 SOP 在相似检索下的查看/复制次数（含本次）")
    similar_searches: int
    learned: str | None = Field(description="本次操作让这个问法成为学到的示例时为 learned / confirmed")


class LearnedOut(BaseModel):
    id: int
    sop_id: str
    phrasing: str = Field(description="检索原文（已隐去手机号、身份证号、房号）")
    source: str = Field(description="vote = 坐席点了有用；events = 多次查看/复制")
    who: str = Field(description="教会它的调用方：角色:密钥指纹")
    created_ts: float
    updated_ts: float
    confirmations: int
    promoted_version: int | None
    promotable: bool = Field(True, description="可以加入示例问法：不含遮盖的个人信息（如 [姓名]）")
    confirmed_by: list[str] = Field([], description="确认过它的人，每人一次，最早的在前")


class LearnedSeenOut(LearnedOut):
    title: str | None = Field(description="SOP 标题（SOP 已不在发布的版本里时为空）")


class LearnedPageOut(BaseModel):
    items: list[LearnedSeenOut]
    total: int = Field(description="时间范围内学到的问法总数")


class RemovedOut(BaseModel):
    id: int
    removed: bool


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="示例查询回归失败时仍然发布")


def caller_name(request: Request, role: Role) -> str:
    """Who taught a pair: the named account's name; for a KB_API_KEYS key the role and a short fingerprint of the key
    (never the key)."""
    caller = getattr(request.state, "caller", None)  # set by api.deps.current_caller
    if caller is not None and caller.kind == "account":
        return str(caller.name)
    _, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return f"{role}:{hashlib.sha256(token.encode()).hexdigest()[:6]}" if token else role


def _learning(state: Services) -> Learning:
    if state.learning is None:
        raise HTTPException(503, "学习功能尚未就绪 / learning is not available yet")
    return state.learning


async def logged_query(
    state: Services, role: Role, query_id: int, client: str | None = None, who: str | None = None
) -> QueryRow:
    """The logged search or chat question `query_id` names, visible to this caller (404 / 403 otherwise): a tenant
    (`client`: their address) votes on their own questions only (a security review voted 👎 on other tenants'
    answers by counting query ids, which the trainers' feedback and the service report read), and so does staff
    (`who`: `caller_name`; a trial's agent taught a SOP a colleague's words by their search's id)."""
    learning, logbook = _learning(state), state.logbook
    await run_in_threadpool(logbook.flush)  # this process's own recent searches
    deadline = asyncio.get_running_loop().time() + QUERY_WAIT_SECONDS
    while (query := await run_in_threadpool(learning.store.query, query_id)) is None:
        if asyncio.get_running_loop().time() > deadline:
            raise HTTPException(404, f"没有编号为 {query_id} 的查询 / unknown query_id {query_id}")
        await asyncio.sleep(0.1)
    if role == "public" and query.audience != "public":
        raise HTTPException(403, "这是员工的检索，不能以租客身份反馈 / this query was not made from the public side")
    if role == "public" and client is not None and query.client != state.logbook.client_key(client):
        raise HTTPException(403, "只能对自己的提问反馈 / a tenant votes on their own questions only")
    if role != "public" and who is not None and query.who is not None and query.who != who:
        raise HTTPException(403, "只能对自己的检索反馈 / staff vote on their own searches only")
    return query


def answered_with(query: QueryRow, sop_id: str) -> bool:
    """Whether the logged question returned that SOP (a tenant votes on the answer they got, not on any document:
    a re-check of a security review 👎'd any SOP with a question of its own)."""
    try:
        return sop_id in json.loads(query.result_ids or "[]")
    except ValueError:
        return False


async def teach(state: Services, request: Request, role: Role, query: QueryRow, sop_id: str, vote: int) -> str | None:
    """What a vote teaches (feedback route): staff votes on their searches only; a tenant's vote never teaches."""
    if role == "public" or query.source != "search":
        return None
    learning = _learning(state)
    vector = await state.lane.submit(query.query, _embedded)  # embedded like a search, on the lane's thread
    try:
        return await run_in_threadpool(learning.vote, query, sop_id, vote, caller_name(request, role), vector)
    except DB_ERRORS as exc:  # the vote itself is recorded (or not) by the feedback route; say so and go on
        log.warning("could not apply a vote to the learned phrasings: %s", first_line(exc))
        return None


def _embedded(vector: np.ndarray | None) -> np.ndarray:
    if vector is None:  # the lane embeds every query it is given; a logged query is never empty
        raise RuntimeError("the lane gave no vector for a logged query")
    return vector


def _visible_sop(state: Services, sop_id: str) -> None:
    if state.kb.searcher.get_sop(sop_id, "agent") is None:
        raise HTTPException(404, f"没有 id 为 {sop_id} 的 SOP / unknown SOP '{sop_id}'")


@router.post("/v1/events", response_model=EventOut, responses=ERRORS)
async def event(body: EventRequest, request: Request, role: StaffRole, state: Ready) -> EventOut:
    """坐席在某次检索后查看了哪份 SOP 的全文、复制了哪句话术（多次出现后成为学到的问法）。"""
    _visible_sop(state, body.sop_id)
    query = await logged_query(state, role, body.query_id, who=caller_name(request, role))
    if query.source != "search":
        raise HTTPException(422, "只能记录检索后的查看和复制，这是租客聊天的提问 / events refer to searches, not chats")
    learning = _learning(state)
    # The few similar searches' texts are embedded here, off the lane: an agent's click is rare next to searches.
    try:
        out: EventOutcome = await run_in_threadpool(
            learning.event, query, body.sop_id, body.type, caller_name(request, role), state.kb.searcher.embed_queries
        )
    except DB_ERRORS as exc:
        raise HTTPException(503, "服务数据库暂时无法写入，操作未记录 / the service database cannot be written") from exc
    if body.previous_query_id is not None:
        await _reformulated(state, role, body, query, caller_name(request, role))
    return EventOut(
        id=out.event_id, similar_events=out.similar_events, similar_searches=out.similar_searches, learned=out.learned
    )


async def _reformulated(state: Services, role: Role, body: EventRequest, query: QueryRow, who: str) -> None:
    """The search the agent left unused before this one, in other words: what they opened or copied now answers its
    words too (counted as an open or a copy of them). A previous search that is unknown, older than 90 s, being typed
    or that had this SOP first already teaches nothing; the event itself stands whatever happens here."""
    if body.previous_query_id is None:
        return
    try:
        before = await logged_query(state, role, body.previous_query_id, who=who)
    except HTTPException:
        return
    learning = _learning(state)
    if not learning.reformulated(before, query, body.sop_id):
        return
    try:
        await run_in_threadpool(learning.event, before, body.sop_id, body.type, who, state.kb.searcher.embed_queries)
    except DB_ERRORS as exc:
        log.warning("could not count a reformulated search's event: %s", first_line(exc))


@router.get("/v1/sops/{sop_id}/learned", response_model=list[LearnedOut], responses=ERRORS)
async def learned_of(sop_id: SopId, _: TrainerRole, state: Ready) -> list[LearnedOut]:
    """这份 SOP 学到的问法：谁教的、何时、被确认了几次。"""
    _visible_sop(state, sop_id)
    store = _learning(state).store
    pairs = await run_in_threadpool(store.for_sop, sop_id)
    confirmers = await run_in_threadpool(store.confirmers, [p.id for p in pairs])
    return [LearnedOut(**_pair_fields(p, confirmers)) for p in pairs]


@router.get("/v1/learned", response_model=LearnedPageOut, responses=ERRORS)
async def learned_recently(
    _: TrainerRole,
    state: Ready,
    days: Annotated[int, Query(ge=1, le=366, description="最近多少天内学到或确认的")] = 30,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> LearnedPageOut:
    """所有 SOP 最近学到的问法，最近学到或确认的在前：培训师一处看完坐席教会了检索什么。"""
    store = _learning(state).store
    since = time.time() - days * 86400
    pairs, total = await run_in_threadpool(store.recent, since, limit, offset)
    confirmers = await run_in_threadpool(store.confirmers, [p.id for p in pairs])
    sops = {s: state.kb.searcher.get_sop(s, "agent") for s in {p.sop_id for p in pairs}}
    titles = {s: sop.title if sop is not None else None for s, sop in sops.items()}
    items = [LearnedSeenOut(**_pair_fields(p, confirmers), title=titles[p.sop_id]) for p in pairs]
    return LearnedPageOut(items=items, total=total)


def _pair_fields(p: LearnedPair, confirmers: dict[int, list[str]]) -> dict[str, Any]:
    """A pair as the trainer sees it: personal data masked, never promotable with a placeholder in it."""
    return {
        "id": p.id,
        "sop_id": p.sop_id,
        "phrasing": mask(p.phrasing),
        "source": p.source,
        "who": p.who,
        "created_ts": p.created_ts,
        "updated_ts": p.updated_ts,
        "confirmations": p.confirmations,
        "promoted_version": p.promoted_version,
        "promotable": not masked_something(p.phrasing),
        "confirmed_by": confirmers.get(p.id, []),
    }


@router.delete("/v1/learned/{learned_id}", response_model=RemovedOut, responses=ERRORS)
async def remove(learned_id: LearnedId, request: Request, role: TrainerRole, state: Ready) -> RemovedOut:
    """删除一条学到的问法（之后只有坐席再次点「有用」才会重新学到）。"""
    store = _learning(state).store
    try:
        removed = await run_in_threadpool(store.remove, [learned_id], caller_name(request, role))
    except DB_ERRORS as exc:
        raise HTTPException(503, "服务数据库暂时无法写入，未删除 / the service database cannot be written") from exc
    if not removed:
        raise HTTPException(404, f"没有编号为 {learned_id} 的学到的问法 / unknown learned phrasing {learned_id}")
    return RemovedOut(id=learned_id, removed=True)


@router.post("/v1/learned/{learned_id}/promote", response_model=PublishResult, responses=ERRORS)
async def promote(
    learned_id: LearnedId, caller: TrainerCaller, state: Ready, body: PromoteRequest | None = None
) -> PublishResult:
    """把学到的问法加入 SOP 文件头的示例问法（examples），发布为新版本。"""
    learning, publisher = _learning(state), state.publisher
    force = body.force if body is not None else False
    pair = await run_in_threadpool(learning.store.get, learned_id)
    if pair is not None and masked_something(
        pair.phrasing
    ):  # 「我叫[姓名]，身份证[身份证号]…」 as a document's example
        raise HTTPException(
            422, "这条问法含有遮盖的个人信息（如 [姓名]），不能加入示例问法 / the phrasing holds masked personal data"
        )
    return await run_in_threadpool(learning.promote, learned_id, publisher, author=caller.name, force=force)
