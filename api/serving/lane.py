"""The blocking work of a server process (searches, chat answers) runs on one thread, in batches of what queued up.

The work is CPU-bound Python (model, index), so one thread per process is fastest: a second one only contends for
the GIL and lengthens every request's tail (docs/benchmarks.md, HTTP load). Requests wait in the event loop, which
stays free for health checks and static files. Each time the thread finishes a batch it takes everything that queued up
meanwhile, up to 16 requests: their query embeddings are one model call (0.74 ms CPU per query in a batch of four
against 1.0 ms alone, benchmarks/embed_batch.py) and then each request runs in arrival order. A lone request runs at
once, with no timer and no added wait. `threads` > 1 (KB_SEARCH_THREADS) runs that many batches at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from anyio import to_thread

from kb_service.embedding.embedders import SMALL_BATCH

T = TypeVar("T")
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(eq=False)
class _Job:
    query: str | None  # embedded together with the batch's other queries; None: nothing to embed up front
    run: Callable[[np.ndarray | None], Any]
    future: asyncio.Future[Any]


class Lane:
    """`await lane.submit(query, run)` calls `run(query_vector)` on the lane's thread and returns its result."""

    def __init__(self, embed: Embed, threads: int = 1, max_batch: int = SMALL_BATCH) -> None:
        self._embed = embed
        self._threads = threads
        self._max_batch = max_batch
        self._queue: deque[_Job] = deque()
        self._draining = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # thread hops made (observability and tests)
        self.jobs = 0
        self._local = threading.local()

    def embed_ms(self) -> float:
        """In a job: its share of the batch's embedding call (what the hit test reports as the query's embed time)."""
        return float(getattr(self._local, "embed_ms", 0.0))

    async def submit(self, query: str | None, run: Callable[[np.ndarray | None], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(query, run, future))
        if self._draining < self._threads:
            self._draining += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch: list[_Job] = []
                while self._queue and len(batch) < self._max_batch:
                    job = self._queue.popleft()
                    if not job.future.done():  # a request cancelled while waiting (client gone) is skipped
                        batch.append(job)
                if not batch:
                    continue
                outcomes = await to_thread.run_sync(self._run, batch)
                self.batches += 1
                self.jobs += len(batch)
                for job, (ok, value) in zip(batch, outcomes, strict=True):
                    if job.future.done():
                        continue
                    if ok:
                        job.future.set_result(value)
                    else:
                        job.future.set_exception(value)
        finally:
            self._draining -= 1

    def _run(self, batch: list[_Job]) -> list[tuple[bool, Any]]:
        """On the lane's thread: one embedding call for the batch, then each job; errors go to their own job."""
        queries = [job.query for job in batch if job.query is not None]
        vectors: list[np.ndarray] = []
        failed: Exception | None = None
        started = time.perf_counter()
        try:
            vectors = list(self._embed(queries)) if queries else []
        except Exception as exc:  # every job that needed a vector gets the error
            failed = exc
        self._local.embed_ms = (time.perf_counter() - started) * 1000 / len(queries) if queries else 0.0
        outcomes: list[tuple[bool, Any]] = []
        next_vector = iter(vectors)
        for job in batch:
            if job.query is not None and failed is not None:
                outcomes.append((False, failed))
                continue
            try:
                outcomes.append((True, job.run(next(next_vector) if job.query is not None else None)))
            except Exception as exc:
                outcomes.append((False, exc))
        return outcomes
