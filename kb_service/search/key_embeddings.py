"""The embeddings of candidate passages' headings and key lines, cached across questions."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from kb_service.embedding.embedders import Embedder
from kb_service.text.normalize import normalize, strip_fillers


class KeyEmbeddings:
    """The embeddings of passages' headings, cached by text (texts derive from content, so entries never go stale)."""

    SIZE = 20_000

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
