"""Request dependencies: the loaded knowledge base, the caller's role, rate limits."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request

from api.ratelimit import SharedRateLimiter
from api.serving.lane import Lane
from ingest.knowledge_base import KnowledgeBase
from ingest.learning import Learning
from ingest.publishing import Publisher
from ingest.replicas import Follower
from kb_service.db.logbook import Logbook
from kb_service.search.answers import ChatResponder
from kb_service.settings import Settings
from kb_service.trainer.gap_store import GapReports

Role = Literal["public", "agent", "trainer"]


@dataclass(frozen=True)
class Services:
    """What a request needs once start-up has loaded everything: no field is missing."""

    settings: Settings
    limiter: SharedRateLimiter  # public searches and chat questions per client, shared by the worker processes
    # Searches and chat answers (model, index) run on one thread per process, in batches (see lane.py).
    lane: Lane
    kb: KnowledgeBase
    logbook: Logbook
    chat: ChatResponder
    publisher: Publisher
    gaps: GapReports
    learning: Learning | None  # learned phrasings; None when their tables could not be opened (search works without)
    follower: Follower | None = None  # replicas sharing a PostgreSQL database follow each other's publishes


@dataclass
class AppState:
    """What the lifespan loads once and requests share; `services` is set when loading has finished."""

    settings: Settings
    limiter: SharedRateLimiter
    lane: Lane
    services: Services | None = None
    error: str | None = None  # why loading failed


async def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.kb_state
    return state


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency on a worker thread, and three such
# hops per request cost more CPU than the work they guard (measured: benchmarks/load_http.py).
State = Annotated[AppState, Depends(app_state)]


async def ready_state(state: State) -> Services:
    if state.services is None:
        raise HTTPException(503, "服务正在加载模型和索引，请稍后再试 / service is loading, retry shortly")
    return state.services


Ready = Annotated[Services, Depends(ready_state)]


async def caller_role(request: Request, state: State) -> Role:
    """Role from `Authorization: Bearer <key>`; no key = public; trial mode (no keys configured) = agent."""
    keys = state.settings.parsed_api_keys
    header = request.headers.get("authorization", "")
    if not keys:
        return "agent"
    if not header:
        return "public"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Authorization 头格式应为 Bearer <密钥> / use 'Authorization: Bearer <key>'")
    for key, role in keys.items():
        if hmac.compare_digest(key.encode(), token.strip().encode()):
            return role
    raise HTTPException(401, "API 密钥无效 / invalid API key")


CallerRole = Annotated[Role, Depends(caller_role)]


async def require_staff(role: CallerRole) -> Role:
    if role == "public":
        raise HTTPException(401, "需要坐席或培训师 API 密钥 / an agent or trainer API key is required")
    return role


async def require_trainer(role: CallerRole) -> Role:
    if role != "trainer":
        raise HTTPException(403, "需要培训师 API 密钥 / a trainer API key is required")
    return role


StaffRole = Annotated[Role, Depends(require_staff)]
TrainerRole = Annotated[Role, Depends(require_trainer)]


def client_id(request: Request) -> str:
    """The caller's address: the peer's, or the one a proxy in KB_TRUSTED_PROXIES forwarded (uvicorn sets it)."""
    return request.client.host if request.client else "unknown"


def tenant_client(role: Role, state: AppState | Services, request: Request) -> str | None:
    """The address of a caller without a staff key (in trial mode: every caller), None for staff."""
    return client_id(request) if role == "public" or not state.settings.auth_enabled else None


def _enforce(state: AppState | Services, name: str, client: str, per_minute: int, what: str) -> None:
    retry = state.limiter.check(name, client, per_minute)
    if retry is not None:
        raise HTTPException(
            429,
            f"{what}太频繁，请 {retry} 秒后再试 / too many requests, retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


async def limit_public_search(request: Request, role: CallerRole, state: State) -> None:
    """Searches without a key count against KB_PUBLIC_SEARCH_RATE_LIMIT (trial mode treats callers as agents)."""
    if role == "public":
        _enforce(state, "search", client_id(request), state.settings.public_search_rate_limit, "查询")


async def limit_chat(request: Request, role: CallerRole, state: State) -> None:
    """Chat questions without a staff key count against KB_CHAT_RATE_LIMIT."""
    client = tenant_client(role, state, request)
    if client is not None:
        _enforce(state, "chat", client, state.settings.chat_rate_limit, "提问")


async def limit_feedback(request: Request, role: CallerRole, state: State) -> None:
    """Votes without a staff key count against KB_CHAT_RATE_LIMIT too (their own count): they feed the gap report."""
    client = tenant_client(role, state, request)
    if client is not None:
        _enforce(state, "feedback", client, state.settings.chat_rate_limit, "反馈")


PublicSearchLimit = Annotated[None, Depends(limit_public_search)]
ChatLimit = Annotated[None, Depends(limit_chat)]
FeedbackLimit = Annotated[None, Depends(limit_feedback)]
