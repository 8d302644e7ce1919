"""Chunks' display payloads by id, read from the store once: ids derive from content, so a payload never changes and
is kept across generations (a bounded LRU shared by the threads of one process)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from kb_service.store.base import VectorStore

PAYLOAD_CACHE_SIZE = 20_000
# Section kinds of the chunks the learned ranker reads (every matched chunk of the first SOPs, not only those shown):
# only that field is read from the store, a string each, kept apart so the display payloads' cache holds what is shown
KIND_CACHE_SIZE = 200_000


class PayloadCache:
    def __init__(self, store: VectorStore, size: int = PAYLOAD_CACHE_SIZE) -> None:
        self.store = store
        self.size = size
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, dict[str, object]] = OrderedDict()
        self._kinds: OrderedDict[str, str] = OrderedDict()

    def get(self, generation: str, ids: list[str]) -> dict[str, dict[str, object]]:
        """Payloads by chunk id; only unseen chunks are read from the store."""
        with self._lock:
            found = {i: self._cache[i] for i in ids if i in self._cache}
            for i in found:
                self._cache.move_to_end(i)
        missing = [i for i in ids if i not in found]
        if missing:
            fetched = {h.id: h.payload for h in self.store.retrieve(generation, missing)}
            with self._lock:
                self._cache.update(fetched)
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
            found.update(fetched)
        return found

    def kinds(self, generation: str, ids: list[str]) -> dict[str, str]:
        """Section kinds by chunk id (only that field is read from the store)."""
        with self._lock:
            found = {i: self._kinds[i] for i in ids if i in self._kinds}
        missing = [i for i in ids if i not in found]
        if missing:
            fetched = {
                h.id: str(h.payload.get("section_kind", ""))
                for h in self.store.retrieve(generation, missing, ("section_kind",))
            }
            with self._lock:
                self._kinds.update(fetched)
                while len(self._kinds) > KIND_CACHE_SIZE:
                    self._kinds.popitem(last=False)
            found.update(fetched)
        return found
