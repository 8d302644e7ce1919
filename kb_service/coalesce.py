"""Concurrent single-query embeddings share one model call (when KB_SEARCH_THREADS > 1).

A model call has a fixed cost that a batch of queries shares: with the token cache, USE on this machine kind takes
1.0 ms CPU for one query and 0.74 ms per query in a batch of four (benchmarks/embed_batch.py). When several search
threads run in one process, requests arrive while another query is being embedded, so they are coalesced: the first
caller embeds whatever has queued up while the previous batch ran, the others wait for their row. There is no timer
and no added wait: a lone query is embedded at once. With the default single search thread per process there is never
a second caller, and the service does not wrap its embedder in this."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from kb_service.embedders import SMALL_BATCH, Embedder


class _Slot:
    __slots__ = ("error", "text", "vector")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.vector is not None or self.error is not None


class CoalescingEmbedder:
    """Wraps an embedder; `embed([text])` calls from several threads are batched, longer calls pass through."""

    def __init__(self, inner: Embedder, max_batch: int = SMALL_BATCH) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._queue: list[_Slot] = []
        self._busy = False
        self.batches = 0  # model calls made for single queries (observability and tests)
        self.queries = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) != 1:
            return self.inner.embed(texts)
        mine = _Slot(texts[0])
        with self._cv:
            self._queue.append(mine)
        while True:
            with self._cv:
                while self._busy and not mine.done:
                    self._cv.wait()
                if mine.done:
                    break
                # Nobody is embedding: lead the next batch, from the front of the queue (FIFO, so after at most a
                # few batches this query's own).
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self._busy = True
            self._run(batch)
        if mine.error is not None:
            raise mine.error
        assert mine.vector is not None
        return mine.vector[None, :]

    def _run(self, batch: list[_Slot]) -> None:
        try:
            vectors = self.inner.embed([s.text for s in batch])
            for slot, vector in zip(batch, vectors, strict=True):
                slot.vector = vector
        except BaseException as exc:  # every waiter gets the error, not a hang
            for slot in batch:
                slot.error = exc
        finally:
            with self._cv:
                self._busy = False
                self.batches += 1
                self.queries += len(batch)
                self._cv.notify_all()
