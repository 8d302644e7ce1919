"""Search and health."""

from __future__ import annotations

import time
from typing import TypedDict

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.deps import AppState, Caller, CallerRole, PublicSearchLimit, Ready, Services, State, client_id
from api.routes.learning import caller_name
from api.schemas import (
    DatabaseHealth,
    ErrorResponse,
    Health,
    QueryLogHealth,
    RateLimitHealth,
    ReplicaHealth,
    ReplicasHealth,
    SearchRequest,
    check_query_length,
)
from kb_service.db.engine import DB_ERRORS
from kb_service.db.replica_reports import agreement
from kb_service.search.searcher import SearchResponse

router = APIRouter()


class SearchOut(SearchResponse):
    query_id: int | None = None


class WhoAmI(BaseModel):
    role: str
    auth: bool
    name: str = Field(description="账号名；服务密钥为 角色:指纹；无密钥为 public；试用模式为 trial")
    admin: bool = Field(description="管理员（可管理账号）")
    max_query_chars: int = Field(description="查询框最多可输入的字数（KB_MAX_QUERY_CHARS）")
    account: bool = Field(False, description="具名账号（kb users）：转人工请求只有接手的人能回复")
    company: str = Field("", description="公司名称（KB_COMPANY_NAME）：新建 SOP 的话术模板里用它")


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["运维 ops"])
def healthz(state: State, role: CallerRole) -> Health | JSONResponse:
    """200 only when searches work: the model is loaded and a published index generation is open, intact and
    answering a read; 503 with `reason` otherwise. A load balancer needs no key; counts, the generation and detailed
    reasons are shown to staff keys only (the generation's name is a publish time)."""
    staff = role != "public"
    if state.services is None:
        loading = "正在加载模型和索引 / loading the model and the index"
        failed = "服务启动失败 / the service failed to start"
        reason = (state.error if staff else failed) if state.error else loading
        body = Health(
            status="error" if state.error else "loading",
            documents=0 if staff else None,
            chunks=0 if staff else None,
            embedder="",
            generation=None,
            auth=state.accounts.auth_enabled,
            reason=reason,
            **_degradation(state, staff),
        )
        return JSONResponse(body.model_dump(), status_code=503)
    kb = state.services.kb
    index = kb.searcher.status()
    health = Health(
        status="ok" if index.ready else "error",
        documents=len(kb.searcher.catalog) if staff else None,
        chunks=index.chunks if staff else None,
        embedder=kb.embedder.name,
        generation=index.generation if staff else None,
        auth=state.accounts.auth_enabled,
        reason=index.reason if staff or index.reason is None else _PUBLIC_REASON[index.ready],
        **_degradation(state, staff),
    )
    return health if index.ready else JSONResponse(health.model_dump(), status_code=503)


_PUBLIC_REASON = {
    True: "正在使用上一个索引版本 / serving the previous index generation",
    False: "索引不可用 / the index is not available",
}


class _Degradation(TypedDict):
    query_log: QueryLogHealth | None
    rate_limits: RateLimitHealth | None
    database: DatabaseHealth | None


DATABASE_CHECK_SECONDS = 5.0  # a load balancer polls /healthz often: the database is read at most this often


def _database(state: AppState) -> DatabaseHealth | None:
    """Whether this process can read the service database (the hand-over outbox's counts: one small read)."""
    if state.services is None:
        return None
    seen = state.database_seen
    if seen is not None and time.time() - seen.checked_at < DATABASE_CHECK_SECONDS:
        return seen
    try:
        counts = state.services.cases.outbox_counts()
        seen = DatabaseHealth(
            status="ok",
            checked_at=time.time(),
            webhook=counts if state.settings.handover_webhook_url else None,
            replicas=_replicas(state.services),
        )
    except DB_ERRORS as exc:
        error = type(exc).__name__
        seen = DatabaseHealth(status="unavailable", checked_at=time.time(), error=error, webhook=None, replicas=None)
    state.database_seen = seen
    return seen


def _replicas(services: Services) -> ReplicasHealth | None:
    """With replicas (PostgreSQL), whether the others serve what this one does."""
    if services.follower is None:
        return None
    own, now = services.follower.own_report(), time.time()
    found = agreement(services.logbook, own, now)
    others = [
        ReplicaHealth(
            replica=c.report.replica[:8],
            host=c.report.host,
            documents=c.report.documents,
            fingerprint=c.report.fingerprint,
            seen_s_ago=round(now - c.report.ts, 1),
            same=c.same,
        )
        for c in found.replicas
    ]
    return ReplicasHealth(status=found.status, documents=own.documents, fingerprint=own.fingerprint, others=others)


def _degradation(state: AppState, staff: bool) -> _Degradation:
    """What works in a lesser way in this process: the query log (searches go on without it) and the rate limits
    (requests go through when they cannot be checked). Staff keys only: the details name files and counts."""
    if not staff:
        return _Degradation(query_log=None, rate_limits=None, database=None)
    query_log = None
    if state.services is not None:
        log = state.services.logbook.status()
        query_log = QueryLogHealth(
            status="ok" if log.ok else "degraded",
            rows_written=log.rows_written,
            rows_dropped=log.rows_dropped,
            fallback_ids=log.fallback_ids,
            pending=log.pending,
            failing_since=log.failing_since,
            last_error=log.last_error,
            last_error_at=log.last_error_at,
        )
    limits = state.limiter.status()
    rate_limits = RateLimitHealth(
        status="ok" if limits.ok else "degraded",
        failures=limits.failures,
        failing_since=limits.failing_since,
        last_error=limits.last_error,
    )
    return _Degradation(query_log=query_log, rate_limits=rate_limits, database=_database(state))


@router.get("/v1/whoami", response_model=WhoAmI, tags=["认证 auth"])
def whoami(role: CallerRole, caller: Caller, state: State) -> WhoAmI:
    """The role of the presented API key (public without one; admins have a trainer's role), and whose key it is."""
    return WhoAmI(
        role=role,
        auth=state.accounts.auth_enabled,
        name=caller.name,
        admin=caller.role == "admin",
        max_query_chars=state.settings.max_query_chars,
        account=caller.kind == "account",
        company=state.settings.company_name,
    )


@router.post(
    "/v1/search",
    response_model=SearchOut,
    tags=["检索 search"],
    responses={s: {"model": ErrorResponse} for s in (401, 422, 429, 503)},
)
async def search(
    body: SearchRequest, request: Request, role: CallerRole, state: Ready, _: PublicSearchLimit
) -> Response:
    """检索 SOP：每个结果一份 SOP，附匹配小节、处理步骤、话术、时限和升级路径。

    Without a staff key (or with `audience: public`) only public content is searched; searches without a key are
    limited per client (429 with Retry-After). A hit test (`explain`, trainers) is not logged: it gets no `query_id`
    and does not count in the gap report."""
    check_query_length(body.query, state.settings.max_query_chars)
    audience = "public" if role == "public" else body.audience
    if body.explain and role != "trainer" and not state.accounts.trial:
        raise HTTPException(403, "命中测试需要培训师密钥 / explain needs a trainer key")
    kb, logbook, confidence = state.kb, state.logbook, state.confidence
    client = client_id(request) if role == "public" else None

    def run(query_vector: np.ndarray | None) -> tuple[SearchResponse, int | None]:
        # On the lane's thread (model, index, database): the event loop never waits on it. The query's vector was
        # embedded with the others of its batch.
        resp = kb.searcher.search(
            body.query,
            top_k=body.top_k,
            audience=audience,
            categories=body.filters.category,
            tags=body.filters.tags,
            explain=body.explain,
            with_confidence=True,
            query_vector=query_vector,
        )
        if query_vector is not None:  # embedded with its batch before the search: report its share
            embed_ms = state.lane.embed_ms()
            resp.timings_ms["embed"] = round(embed_ms, 3)
            resp.took_ms = round(resp.took_ms + embed_ms, 3)
        confidence.annotate(resp, kb.searcher.catalog, audience)
        # A trainer's hit test checks the documents, a practice search answers a drill: no tenant asked either, so
        # no gap, no on-the-job statistics and no query_id.
        if body.explain or (body.practice and role != "public"):  # a tenant's search is always logged (a review)
            return resp, None
        query_id = logbook.log_query(
            source="search",
            audience=audience,
            query=body.query,
            result_ids=[r.sop_id for r in resp.results],
            top_score=resp.results[0].score if resp.results else None,
            # Below the weak-match threshold the gap report counts it unanswered; an emergency procedure first for
            # danger words, or a SOP first for words agents confirmed, is no weak match (a trial: every gas-smell
            # search of another company's documents listed as 低置信度), so its row keeps no confidence, as chat's.
            confidence=None if resp.emergency or resp.learned_first else resp.confidence,
            took_ms=resp.took_ms,
            client=client,
            who=None if role == "public" else caller_name(request, role),  # a 👍 teaches its asker's words only
        )
        return resp, query_id

    resp, query_id = await state.lane.submit(body.query, run)
    if role == "public":
        resp.generation = None  # its name is the time of the last publish, of any document (staff-only ones too)
    # Serialised once by pydantic (the schema above documents it); FastAPI's re-validation of a large nested
    # response measurably slowed every search.
    out = SearchOut.model_construct(**dict(resp), query_id=query_id)
    return Response(out.model_dump_json(), media_type="application/json")
