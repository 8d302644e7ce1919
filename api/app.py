"""The FastAPI application: loads the model and index once, in the background, at start-up."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors
from api.deps import AppState, Services
from api.ratelimit import SharedRateLimiter
from api.routes import (
    accounts,
    assignments,
    assist,
    call_outcome,
    case_close,
    case_rating,
    cases,
    changes,
    chat,
    drill_pool,
    exams,
    learning,
    lint,
    metrics,
    pages,
    practice,
    practice_history,
    practice_review,
    reports,
    search,
    sops,
    training_report,
    webhook_outbox,
)
from api.serving.cors import TenantCors
from api.serving.guards import BodyGuard
from api.serving.lane import Lane
from api.serving.metrics import RequestTimer
from api.serving.security import SecurityHeaders, hide_tickets
from api.webhook_events import webhooks
from ingest.knowledge_base import KnowledgeBase
from ingest.learning import Learning
from ingest.publishing import Publisher
from ingest.replicas import Follower as ReplicaFollower
from kb_service.accounts.directory import KNOWN_EVERY, Directory
from kb_service.assist.follower import Follower
from kb_service.assist.service import Assist
from kb_service.assist.sockets import SocketLeases
from kb_service.assist.store import CallStore
from kb_service.db.engine import DB_ERRORS, Database
from kb_service.db.logbook import Logbook
from kb_service.errors import IndexMismatchError, IndexNotReadyError, KbError, first_line
from kb_service.handover.store import CaseStore
from kb_service.handover.webhook import WebhookWorker
from kb_service.search.answers import ChatResponder
from kb_service.search.confidence import Confidence
from kb_service.search.searcher import Searcher
from kb_service.settings import Settings, get_settings
from kb_service.trainer.gap_store import GapReports
from kb_service.trainer.gaps import GapReporter
from kb_service.training.hub import Training

log = logging.getLogger("kb.api")
STATIC = Path(__file__).parent / "static"

DESCRIPTION = """
公寓物业客服 SOP 知识库检索服务：坐席在通话中输入租客说的话，毫秒级返回处理步骤、时限、升级路径和标准话术；
租客聊天窗口只回答公开内容并注明出处；培训师发布、测试和维护文档。

认证：`Authorization: Bearer <API 密钥>`。不带密钥只能访问公开内容；坐席密钥可访问内部内容；培训师密钥可发布文档。
"""


# Every route module the application serves.
ROUTERS = (
    search,
    sops,
    chat,
    cases,
    case_close,
    case_rating,
    webhook_outbox,
    learning,
    reports,
    assist,
    call_outcome,
    accounts,
    practice,
    practice_history,
    practice_review,
    exams,
    assignments,
    drill_pool,
    changes,
    lint,
    training_report,
    metrics,
    pages,
)


def _load(state: AppState) -> None:
    try:
        kb = KnowledgeBase.from_settings(state.settings)
        try:
            kb.warm_up()
        except (IndexNotReadyError, IndexMismatchError) as exc:
            # The model is loaded; the index cannot be used yet. The searcher keeps following the published pointer
            # and starts serving when a good generation is published (no restart); /healthz says why meanwhile.
            log.error("index not usable: %s", first_line(exc))
        logbook = kb.logbook()
        training = _open_training(state, logbook)
        learning: Learning | None = None
        try:
            learning = Learning.open(kb, kb.database)
        except DB_ERRORS as exc:  # search and everything else work without learned phrasings
            log.error("learned phrasings unavailable: %s", first_line(exc))
        confidence = Confidence(urgent_categories=state.settings.urgent_category_set)
        calls = CallStore(kb.database, state.settings.assist_call_ttl)  # in the service database
        sockets = SocketLeases(calls.db, state.settings.assist_sockets_per_account)
        cases = CaseStore(logbook, state.settings.case_retention_days, bool(state.settings.handover_webhook_url))
        worker = _webhook_worker(cases, state.settings)
        publisher = Publisher(kb, logbook)
        follower = _follower(kb, logbook, publisher)
        state.services = Services(
            settings=state.settings,
            limiter=state.limiter,
            lane=state.lane,
            kb=kb,
            logbook=logbook,
            chat=ChatResponder.from_settings(kb.searcher, state.settings, confidence),
            publisher=publisher,
            gaps=GapReports(GapReporter(logbook, kb.embedder, state.settings.chat_min_confidence)),
            learning=learning,
            accounts=state.accounts,
            training=training,
            confidence=confidence,
            assist=Assist(Follower(kb.searcher, confidence), calls, logbook, sockets),
            cases=cases,
            case_worker=worker,
            follower=follower,
        )
        worker.start()
        # What start-up loaded lives as long as the process: keep it out of the cyclic garbage collector, whose
        # full passes over a 100k-chunk index's objects paused requests for tens of milliseconds.
        gc.freeze()
        log.info(
            "knowledge base loaded: generation %s, %d SOPs, embedder %s, service database %s",
            kb.searcher.refresh(),
            len(kb.searcher.catalog),
            kb.embedder.name,
            kb.database.describe(),  # which one, without its password (an operator's trial could not tell)
        )
        threading.Thread(target=_warm_keys, args=(state.services.chat,), name="kb-warm-keys", daemon=True).start()
    except (KbError, OSError) as exc:
        state.error = str(exc)
        log.error("knowledge base failed to load: %s", first_line(exc))
    except Exception as exc:  # anything else (e.g. a locked database) must show in /healthz, not end the thread quietly
        state.error = f"{type(exc).__name__}: {exc}"
        log.exception("knowledge base failed to load")


def _warm_keys(chat: ChatResponder) -> None:
    """The published SOPs' passage keys embedded while the worker already serves (its first tenants wait less)."""
    try:
        started = time.perf_counter()
        n = chat.warm_up()
        log.info("chat: %d passage keys embedded in %.1f s", n, time.perf_counter() - started)
    except Exception:  # a cache only: questions embed what they need
        log.exception("chat: embedding the passage keys ahead failed")


def _open_training(state: AppState, logbook: Logbook) -> Training:
    """The training tables (opening them reads nothing), and named accounts for the key lookups."""
    training = Training.open(logbook)
    state.accounts.attach(training.accounts, every=KNOWN_EVERY)
    if state.accounts.refresh_trial():
        log.warning(
            "没有 KB_API_KEYS 也没有账号：本地试用模式，无认证，所有请求按坐席处理 / running WITHOUT authentication "
            "(trial mode: no KB_API_KEYS and no accounts); `kb users add` ends it within seconds"
        )
    return training


def _webhook_worker(cases: CaseStore, settings: Settings) -> WebhookWorker:
    return WebhookWorker(
        cases,
        settings.handover_webhook_url,
        settings.handover_webhook_secret,
        backoff_base=settings.handover_webhook_backoff,
        max_attempts=settings.handover_webhook_max_attempts,
    )


def _follower(kb: KnowledgeBase, logbook: Logbook, publisher: Publisher) -> ReplicaFollower | None:
    """With PostgreSQL, this replica follows the others' publishes: caught up now, then in the background."""
    if not kb.database.shared:
        return None
    follower = ReplicaFollower(kb, logbook)
    try:
        follower.catch_up()
    except (KbError, OSError, *DB_ERRORS) as exc:  # serve what this replica has; the thread retries
        log.error("could not catch up with other replicas at start-up: %s", first_line(exc))
    follower.start()
    publisher.follow = follower.catch_up
    return follower


def _searcher(state: AppState) -> Searcher:
    if state.services is None:  # the lane runs only requests that passed the readiness check
        raise RuntimeError("search before the knowledge base was loaded")
    return state.services.kb.searcher


def _middleware(app: FastAPI, settings: Settings) -> None:
    if settings.origins:
        app.add_middleware(TenantCors, allow_origins=settings.origins)
    app.add_middleware(RequestTimer)  # inside the guards: what the routes serve, by route template (/metrics)
    app.add_middleware(BodyGuard, max_markdown_bytes=settings.max_sop_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: every response gets the headers, refusals included


def create_app(settings: Settings | None = None, *, load_in_background: bool = True) -> FastAPI:
    settings = settings or get_settings()
    hide_tickets(logging.getLogger("uvicorn.error"))
    hide_tickets(logging.getLogger("uvicorn.access"))
    state = AppState(
        settings=settings,
        limiter=SharedRateLimiter(
            settings.data_dir / "ratelimit.sqlite3", Database(settings.database_url) if settings.database_url else None
        ),
        lane=Lane(lambda queries: _searcher(state).embed_queries(queries), threads=settings.search_threads),
        accounts=Directory(dict(settings.parsed_api_keys)),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load_in_background:
            threading.Thread(target=_load, args=(state,), name="kb-load", daemon=True).start()
        else:
            _load(state)
        yield
        state.accounts.close()
        if (services := state.services) is not None:
            services.case_worker.stop()
            if services.follower is not None:
                services.follower.close()
            if services.learning is not None:
                services.learning.close()
            services.kb.close()
            services.logbook.close()
            services.assist.close()
        state.limiter.close()

    app = FastAPI(
        title="公寓物业客服知识库 API / SOP search API",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # api/routes/pages.py serves Swagger UI from local assets
        redoc_url=None,
        webhooks=webhooks,
    )
    app.state.kb_state = state
    errors.install(app)
    _middleware(app, settings)
    for module in ROUTERS:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(pages.DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    return app
