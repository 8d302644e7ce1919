"""Request timings for Prometheus: one histogram of HTTP requests by method, route template and status.

With several worker processes (api/serving/balancer.py) each process writes its observations to files in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, set by `kb serve` before the workers start) and a
scrape of any worker reads them all, so /metrics counts every request the host served, not one worker's share. One
process alone keeps them in memory. Labels are route templates (/v1/sops/{sop_id}), never raw paths: a scanner's
thousand made-up URLs add one `unmatched` series, not a thousand.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHARED_PREFIX = "kb-metrics-"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_LOCAL = CollectorRegistry()
REQUESTS = Histogram(
    "kb_http_request_duration_seconds",
    "HTTP requests served, by method, route template and status (WebSocket sessions are not counted)",
    ["method", "route", "status"],
    buckets=BUCKETS,
    registry=_LOCAL,
)


def _route(scope: dict[str, Any]) -> str:
    route = scope.get("route")  # set by FastAPI's router on a match
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    raw = str(scope.get("path", ""))
    return "/static" if raw.startswith("/static/") else "unmatched"


class RequestTimer:
    """ASGI middleware: times each HTTP request until its last byte is handed on (a guard's refusal is not timed)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                elapsed = time.perf_counter() - started
                REQUESTS.labels(scope.get("method", ""), _route(scope), str(status)).observe(elapsed)

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                observe()  # before the last byte leaves: a client that reads the reply then scrapes sees it counted
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            observe()


def request_metrics() -> bytes:
    """The request histogram in Prometheus's text format: every worker process's (multiprocess mode), or this one's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(_LOCAL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def sweep_shared_dirs(root: Path) -> int:
    """Remove the timing folders of servers that were killed outright (SIGKILL, the OOM killer: no chance to clean
    up); a folder is named for the server process that made it. How many were removed."""
    removed = 0
    for path in root.glob(f"{SHARED_PREFIX}*-*"):
        owner = path.name[len(SHARED_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and path.is_dir() and not _alive(int(owner)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


@contextmanager
def shared_dir(workers: int) -> Iterator[None]:
    """For the block: with several worker processes, a fresh folder for their timing files (PROMETHEUS_MULTIPROC_DIR,
    removed afterwards; those of killed servers before it are removed first)."""
    if workers <= 1:
        yield
        return
    root = Path(tempfile.gettempdir())
    sweep_shared_dirs(root)
    with tempfile.TemporaryDirectory(prefix=f"{SHARED_PREFIX}{os.getpid()}-", dir=root) as shared:
        os.environ[MULTIPROC_ENV] = shared
        try:
            yield
        finally:
            os.environ.pop(MULTIPROC_ENV, None)
