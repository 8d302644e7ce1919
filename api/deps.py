"""Request dependencies: the loaded knowledge base, the caller's role, rate limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.ratelimit import SharedRateLimiter
from api.schemas import DatabaseHealth
from api.serving.lane import Lane
from ingest.knowledge_base import KnowledgeBase
from ingest.learning import Learning
from ingest.publishing import Publisher
from ingest.replicas import Follower as ReplicaFollower
from kb_service.accounts.directory import PUBLIC, TRIAL, Directory, Identity, Refused
from kb_service.assist.service import Assist
from kb_service.db.logbook import Logbook
from kb_service.handover.store import CaseStore
from kb_service.handover.webhook import WebhookWorker
from kb_service.search.answers import ChatResponder
from kb_service.search.confidence import Confidence
from kb_service.settings import Settings
from kb_service.trainer.gap_store import GapReports
from kb_service.training.hub import Training

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
    accounts: Directory  # the same object as AppState.accounts
    training: Training  # accounts, practice, changes, exams (tables of the service database)
    confidence: Confidence  # calibrated confidence of search results (weak matches)
    assist: Assist  # live-call suggestions (WS /v1/assist and its HTTP form)
    cases: CaseStore  # hand-over cases (kb_service/handover)
    case_worker: WebhookWorker  # delivers cases to KB_HANDOVER_WEBHOOK_URL and deletes expired ones
    follower: ReplicaFollower | None  # replicas sharing a PostgreSQL database follow each other's publishes


@dataclass
class AppState:
    """What the lifespan loads once and requests share; `services` is set when loading has finished."""

    settings: Settings
    limiter: SharedRateLimiter
    lane: Lane
    accounts: Directory  # named accounts and KB_API_KEYS; the account table is attached once loading has opened it
    services: Services | None = None
    error: str | None = None  # why loading failed
    database_seen: DatabaseHealth | None = None  # /healthz's last read of the service database (routes/search.py)


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


def _token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Authorization 头格式应为 Bearer <密钥> / use 'Authorization: Bearer <key>'")
    return token.strip()


async def resolve_caller(state: AppState | Services, authorization: str | None) -> Identity:
    """The caller an `Authorization` header value (`Bearer <key>`, or None/"" for none) names: a named account, a
    KB_API_KEYS service account, the public, or everyone as the trial agent in trial mode. Raises HTTPException
    401 (bad, unknown or disabled key) or 503 (accounts cannot be read yet). Reusable outside HTTP requests (e.g. a
    WebSocket's first message); cached per process for a couple of seconds (kb_service/accounts/directory.py)."""
    accounts = state.accounts
    if accounts.trial_stale():
        await run_in_threadpool(accounts.refresh_trial)
    if accounts.trial:
        return TRIAL
    token = _token(authorization)
    if token is None:
        return PUBLIC
    caller = accounts.env_caller(token)
    if caller is not None:
        return caller
    hit = accounts.cached(token)
    if hit is None:
        refused = accounts.refused(token)
        raise HTTPException(refused.status, refused.message)
    if hit is not False:
        return hit
    try:
        return await run_in_threadpool(accounts.lookup, token)
    except Refused as exc:
        raise HTTPException(exc.status, exc.message) from None


async def current_caller(request: Request, state: State) -> Identity:
    """The person behind this request (also left on `request.state.caller` for code that has only the request)."""
    caller = await resolve_caller(state, request.headers.get("authorization"))
    request.state.caller = caller
    return caller


# The person behind a request (name + role); `CallerRole` below is the older role-only view of the same.
Caller = Annotated[Identity, Depends(current_caller)]


async def caller_role(caller: Caller) -> Role:
    """Role from `Authorization: Bearer <key>`; no key = public; trial mode (no keys, no accounts) = agent. An admin
    has a trainer's rights (and manages accounts: `AdminCaller`)."""
    return caller.rights


CallerRole = Annotated[Role, Depends(caller_role)]


async def require_staff(role: CallerRole) -> Role:
    if role == "public":
        raise HTTPException(401, "需要坐席或培训师 API 密钥 / an agent or trainer API key is required")
    return role


NO_KEY = "需要 API 密钥 / an API key is required"


def _no_key(role: str) -> None:
    """No credential at all is 401 (an agent's key on a trainer's endpoint is 403): an integrator's re-check read
    403 without a key from one endpoint and 401 from its neighbour."""
    if role == "public":
        raise HTTPException(401, NO_KEY)


async def require_trainer(role: CallerRole) -> Role:
    _no_key(role)
    if role != "trainer":
        raise HTTPException(403, "需要培训师 API 密钥 / a trainer API key is required")
    return role


StaffRole = Annotated[Role, Depends(require_staff)]
TrainerRole = Annotated[Role, Depends(require_trainer)]


async def require_staff_caller(caller: Caller) -> Identity:
    if not caller.staff:
        raise HTTPException(401, "需要坐席或培训师 API 密钥 / an agent or trainer API key is required")
    return caller


async def require_trainer_caller(caller: Caller) -> Identity:
    _no_key(caller.role)
    if not caller.trainer:
        raise HTTPException(403, "需要培训师 API 密钥 / a trainer API key is required")
    return caller


async def require_admin(caller: Caller) -> Identity:
    _no_key(caller.role)
    if caller.role != "admin":
        raise HTTPException(403, "需要管理员账号 / an admin account is required")
    return caller


StaffCaller = Annotated[Identity, Depends(require_staff_caller)]
TrainerCaller = Annotated[Identity, Depends(require_trainer_caller)]
AdminCaller = Annotated[Identity, Depends(require_admin)]


def client_id(request: Request) -> str:
    """The caller's address: the peer's, or the one a proxy in KB_TRUSTED_PROXIES forwarded (uvicorn sets it)."""
    return request.client.host if request.client else "unknown"


def tenant_client(role: Role, state: AppState | Services, request: Request) -> str | None:
    """The address of a caller without a staff key (in trial mode: every caller), None for staff."""
    return client_id(request) if role == "public" or state.accounts.trial else None


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


URGENT_CASES_FACTOR = 4  # emergencies have a bucket of their own, this many times larger


def limit_cases(request: Request, role: Role, state: AppState | Services, urgent: bool = False) -> None:
    """Hand-over cases opened without a staff key count against KB_CASE_RATE_LIMIT. Called by the route once the form
    is valid: a tenant who mistyped the phone number and is told so has not used up a hand-over. A question with a
    danger signal counts in a bucket of its own, URGENT_CASES_FACTOR times larger: tenants behind one building's
    address were refused a gas-smell case after five ordinary ones (a supervisor's trial); a flood is still capped."""
    client = tenant_client(role, state, request)
    if client is not None:
        limit = state.settings.case_rate_limit * (URGENT_CASES_FACTOR if urgent else 1)
        _enforce(state, "case-urgent" if urgent else "case", client, limit, "转人工请求")


PublicSearchLimit = Annotated[None, Depends(limit_public_search)]
ChatLimit = Annotated[None, Depends(limit_chat)]
FeedbackLimit = Annotated[None, Depends(limit_feedback)]
