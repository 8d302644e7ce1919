"""The embeddings of candidate passages' headings and key lines, cached across questions."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import numpy as np

from kb_service.embedding.embedders import Embedder
from kb_service.text.normalize import normalize, strip_fillers


class KeyEmbeddings:
    """The embeddings of passages' headings, cached by text (texts derive from content, so entries never go stale)."""

    SIZE = 20_000
    WARMED = 3_000  # keys a worker embeds at start (`warm`; the sample SOPs have ~400, ~5 ms each)

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self.embedder.embed([strip_fillers(normalize(t)) for t in missing])
            with self._lock:
                for t, v in zip(missing, vectors, strict=True):
                    self._cache[t] = v / (np.linalg.norm(v) or 1.0)
                while len(self._cache) > self.SIZE:
                    self._cache.popitem(last=False)
        with self._lock:
            return np.stack([self._cache[t] for t in texts])

    def warm(self, texts: Iterable[str], budget: int, batch: int = 16) -> int:
        """Embed up to `budget` of `texts` not cached yet, a small batch at a time (a worker's requests go on beside
        it); how many were embedded. A worker's first tenant questions then wait for no heading to be embedded
        (session 35's trial: the first chat answer took 1.1 s, then 0.2 s while the cache filled)."""
        pending: list[str] = []
        done, limit = 0, min(budget, self.SIZE)
        for text in texts if limit > 0 else ():  # lazily: a large catalogue is read only as far as the budget goes
            with self._lock:
                if text in self._cache or text in pending:
                    continue
            pending.append(text)
            if len(pending) == batch or done + len(pending) >= limit:
                done += len(self.get(pending))
                pending = []
            if done >= limit:
                break
        return done + (len(self.get(pending)) if pending else 0)
