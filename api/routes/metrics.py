"""GET /metrics: Prometheus's text format, for staff keys (a scrape config sends one as a bearer token).

Two kinds of figures: this host's HTTP requests (api/serving/metrics.py: every worker process's), and the service's
shared state read from the service database (kb_service/db/vitals.py), which every replica reports alike (aggregate
those with max(), not sum(), across replicas). The index figures are this process's: the generation it serves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from api.deps import AppState, StaffRole, State
from api.serving.metrics import request_metrics
from kb_service.db.engine import DB_ERRORS
from kb_service.db.replica_reports import agreement
from kb_service.db.vitals import Vitals, read_vitals

router = APIRouter(tags=["运维 ops"])


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class _Shared(Collector):
    """The figures of one scrape, from what was read before it (collect() must not block on the database)."""

    def __init__(self, state: AppState, vitals: Vitals | None, differing: int | None = None) -> None:
        self.state = state
        self.vitals = vitals
        self.differing = differing  # other replicas serving other contents (None: no replicas, or not read)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        services = self.state.services
        ready = _gauge("kb_ready", "1 when searches work: the model is loaded and an index generation answers")
        sops = _gauge("kb_index_sops", "SOP documents in the index generation this process serves")
        chunks = _gauge("kb_index_chunks", "Indexed chunks of that generation")
        status = services.kb.searcher.status() if services is not None else None
        ready.add_metric([], 1.0 if status is not None and status.ready else 0.0)
        sops.add_metric([], float(len(services.kb.searcher.catalog)) if services is not None else 0.0)
        chunks.add_metric([], float(status.chunks) if status is not None else 0.0)
        yield from (ready, sops, chunks)
        database = _gauge("kb_database_up", "1 when this process read the service database for this scrape")
        database.add_metric([], 0.0 if self.vitals is None else 1.0)
        yield database
        if self.differing is not None:
            replicas = _gauge(
                "kb_replicas_differing",
                "Other replicas heard from in the last 5 minutes whose SOP contents differ from this one's",
            )
            replicas.add_metric([], float(self.differing))
            yield replicas
        if self.vitals is not None:
            yield from _shared(self.vitals)


def _shared(v: Vitals) -> Iterator[GaugeMetricFamily]:
    window = f"the last {v.window_seconds // 60} minutes"
    asked = _gauge("kb_questions_recent", f"Questions logged in {window}, by source", ["source"])
    handed = _gauge("kb_handed_over_recent", f"Of those, handed over to a person (chat), in {window}", ["source"])
    empty = _gauge("kb_no_result_recent", f"Of those, with no result at all, in {window}", ["source"])
    for source, f in sorted(v.recent.items()):
        asked.add_metric([source], f.questions)
        handed.add_metric([source], f.handed_over)
        empty.add_metric([source], f.no_result)
    yield from (asked, handed, empty)
    waiting = _gauge("kb_cases_waiting", "Hand-over cases nobody has taken yet, by priority", ["priority"])
    oldest = _gauge("kb_cases_oldest_wait_seconds", "How long the oldest waiting case has waited", ["priority"])
    for priority in sorted({"urgent", "normal", *v.waiting}):
        waiting.add_metric([priority], v.waiting.get(priority, 0))
        oldest.add_metric([priority], v.oldest_wait_s.get(priority, 0.0))
    taken = _gauge("kb_cases_taken", "Hand-over cases an agent holds, not closed")
    taken.add_metric([], v.taken)
    webhook = _gauge("kb_webhook_events", "Hand-over webhook events by delivery status", ["status"])
    for state in sorted({"pending", "delivered", "failed", *v.webhook}):
        webhook.add_metric([state], v.webhook.get(state, 0))
    calls = _gauge("kb_assist_live_calls", f"Calls with a transcript segment in {window}")
    calls.add_metric([], v.live_calls)
    learned = _gauge("kb_learned_phrasings", "Phrasings agent search has learned from agents' votes, in force")
    learned.add_metric([], v.learned)
    yield from (waiting, oldest, taken, webhook, calls, learned)


def _scrape(state: AppState) -> bytes:
    vitals, differing = None, None
    services = state.services
    if services is not None:
        try:
            vitals = read_vitals(services.logbook)
            if services.follower is not None:
                found = agreement(services.logbook, services.follower.own_report(), time.time())
                differing = sum(c.same is False for c in found.replicas)
        except DB_ERRORS:  # reported as kb_database_up 0; the request figures are still served
            vitals, differing = None, None
    registry = CollectorRegistry()
    registry.register(_Shared(state, vitals, differing))
    return request_metrics() + generate_latest(registry)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(_: StaffRole, state: State) -> Response:
    """Prometheus 指标（文本格式）：本机各进程的 HTTP 请求耗时直方图，以及服务数据库中的共享状态（近 5 分钟的提问、
    待接入工单、webhook 投递、进行中的通话、已学习的说法）。需要员工密钥（抓取配置里作为 Bearer token）。"""
    body = await run_in_threadpool(_scrape, state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
