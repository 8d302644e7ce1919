"""Request dependencies: the loaded knowledge base, the caller's role, rate limits."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request

from api.lane import Lane
from kb_service.chat import ChatResponder
from kb_service.learning import Learning
from kb_service.logbook import Logbook
from kb_service.publishing import Publisher
from kb_service.service import KnowledgeBase
from kb_service.settings import Settings

Role = Literal["public", "agent", "trainer"]


@dataclass
class AppState:
    """What the lifespan loads once and requests share."""

    settings: Settings
    limiter: RateLimiter  # chat requests per client
    # Searches and chat answers (model, index) run on one thread per process, in batches (see lane.py).
    lane: Lane
    kb: KnowledgeBase | None = None
    logbook: Logbook | None = None
    chat: ChatResponder | None = None
    publisher: Publisher | None = None
    learning: Learning | None = None  # learned phrasings (agents' votes, opens and copies)
    ready: bool = False
    error: str | None = None


class RateLimiter:
    """Sliding one-minute window per client; in memory, per replica."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> int | None:
        """None when allowed, else seconds until the next request is allowed."""
        now = time.monotonic()
        with self._lock:
            hits = [t for t in self._hits.get(client, []) if now - t < 60]
            if len(hits) >= self.per_minute:
                self._hits[client] = hits
                return max(1, int(60 - (now - hits[0])) + 1)
            hits.append(now)
            self._hits[client] = hits
            if len(self._hits) > 10_000:  # forget idle clients
                self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < 60}
            return None


async def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.kb_state
    return state


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency on a worker thread, and three such
# hops per request cost more CPU than the work they guard (measured: benchmarks/load_http.py).
State = Annotated[AppState, Depends(app_state)]


async def ready_state(state: State) -> AppState:
    if not state.ready or state.kb is None:
        raise HTTPException(503, "服务正在加载模型和索引，请稍后再试 / service is loading, retry shortly")
    return state


Ready = Annotated[AppState, Depends(ready_state)]


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
    return request.client.host if request.client else "unknown"
