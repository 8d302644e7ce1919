"""The SOP catalogue of a published generation, read from its overview points.

Only what every SOP needs at hand is kept (id, path, content hash); a SOP itself is read from its overview point when
asked for and kept parsed in a bounded cache: at 100k chunks a fully parsed catalogue of ~9,000 SOPs took 580 MB and
its JSON 85 MB, plus the pages of the index's payload file that reading it all touched, while searches only ever need
the few SOPs they return. `indexed_docs` reads what a generation holds from the overview payloads the indexer
writes: search and the indexer share this read.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from kb_service.models import Sop
from kb_service.store.base import FilterSpec, VectorStore
from kb_service.store.layout import LAYOUT_FIELD, LEGACY
from kb_service.text.lexical import DEFAULT_REF_LENGTH

PARSED_CACHE_SIZE = 512  # searches return at most a few dozen SOPs, read in one pass (`prefetch`)


@dataclass(frozen=True)
class IndexedDoc:
    """What the published index knows of one document (read from its overview point, without the SOP itself)."""

    sop_id: str
    content_hash: str
    path: str
    embedder: str
    ref_length: float
    layout: str = LEGACY  # how the generation stores its vectors (kb_service/store/layout.py)
    audience: str | None = None  # the document's audience (None: an index written before it was recorded)
    expansion: str | None = None  # id of its lexicon expansion chunk ("" none; None: indexed before they existed)


def overview_filter(sop_ids: Sequence[str] = ()) -> FilterSpec:
    return FilterSpec(section_kinds=("overview",), sop_ids=tuple(sop_ids))


def indexed_docs(store: VectorStore, generation: str) -> dict[str, IndexedDoc]:
    docs: dict[str, IndexedDoc] = {}
    for hit in store.overviews(generation):
        p = hit.payload
        docs[p["sop_id"]] = IndexedDoc(
            p["sop_id"],
            p["content_hash"],
            p["path"],
            p["embedder"],
            float(p.get("lexical_ref_length", DEFAULT_REF_LENGTH)),
            str(p.get(LAYOUT_FIELD, LEGACY)),
            p.get("doc_audience"),
            p.get("expansion_id"),
        )
    return docs


def indexed_sops(store: VectorStore, generation: str, sop_ids: Sequence[str] = ()) -> Iterator[Sop]:
    """The SOPs a generation holds (those of `sop_ids`, or all), as recorded when they were indexed."""
    for hit in store.scroll(generation, overview_filter(sop_ids)):
        raw = hit.payload["sop"]  # a JSON string; an object in generations indexed before session 18
        yield Sop.model_validate_json(raw) if isinstance(raw, str) else Sop.model_validate(raw)


def every_sop(sops: Mapping[str, Sop]) -> Iterator[Sop]:
    """Every SOP of a mapping: a `Catalog` reads them in one pass, any other mapping gives its values."""
    return sops.every() if isinstance(sops, Catalog) else iter(sops.values())


class Catalog(Mapping[str, Sop]):
    """The SOPs of one generation by id, read from `store` when first asked for (`paths`: every id's file)."""

    def __init__(
        self,
        store: VectorStore | None,
        generation: str,
        paths: dict[str, str],
        audiences: Mapping[str, str | None] | None = None,
    ) -> None:
        self._store = store
        self._generation = generation
        self._paths = paths
        self._audiences = audiences or {}
        self._parsed: OrderedDict[str, Sop] = OrderedDict()
        self._lock = threading.Lock()
        self._fingerprint: str | None = None

    def __getitem__(self, sop_id: str) -> Sop:
        with self._lock:
            sop = self._parsed.get(sop_id)
            if sop is not None:
                self._parsed.move_to_end(sop_id)
                return sop
        if sop_id not in self._paths or self._store is None:
            raise KeyError(sop_id)  # an unknown id, as a Mapping should
        sop = next(indexed_sops(self._store, self._generation, [sop_id]), None)
        if sop is None:
            raise KeyError(sop_id)
        self._keep(sop)
        return sop

    def prefetch(self, sop_ids: Sequence[str]) -> None:
        """Read the given SOPs that are not parsed yet in one pass over the store (a search's results: one read
        instead of one per SOP)."""
        with self._lock:
            missing = [i for i in dict.fromkeys(sop_ids) if i not in self._parsed and i in self._paths]
        if len(missing) > PARSED_CACHE_SIZE:
            missing = missing[:PARSED_CACHE_SIZE]  # more would evict each other
        if missing and self._store is not None:
            for sop in indexed_sops(self._store, self._generation, missing):
                self._keep(sop)

    def _keep(self, sop: Sop) -> None:
        with self._lock:
            self._parsed[sop.meta.id] = sop
            self._parsed.move_to_end(sop.meta.id)
            while len(self._parsed) > PARSED_CACHE_SIZE:
                self._parsed.popitem(last=False)

    def every(self) -> Iterator[Sop]:
        """Every SOP in one pass over the store (what a listing or a report reads; the cache is left as it is)."""
        if self._store is None or not self._paths:
            return iter(())
        return indexed_sops(self._store, self._generation)

    def fingerprint(self) -> str:
        """A hash of every SOP's id and content hash (read once per generation): two indexes serving the same
        contents have the same fingerprint, whatever their generations are named."""
        if self._fingerprint is None:
            pairs = sorted(f"{sop.meta.id}\t{sop.content_hash}\n" for sop in self.every())
            self._fingerprint = hashlib.sha256("".join(pairs).encode()).hexdigest()[:16]
        return self._fingerprint

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, sop_id: object) -> bool:
        return sop_id in self._paths

    def audience_of(self, sop_id: str) -> str:
        """The document's audience, without reading it when the index recorded it (KeyError for an unknown id)."""
        return self._audiences.get(sop_id) or self[sop_id].meta.audience

    def path_of(self, sop_id: str) -> str | None:
        """The document's file path, without reading it."""
        return self._paths.get(sop_id)

    def has_path(self, path: str) -> bool:
        return path in self._paths.values()
