"""The SOP catalogue of a published generation, read from its overview points.

Documents are kept as zlib-compressed JSON and parsed on demand (with a bounded cache): at 100k chunks a fully parsed
catalogue of ~9,000 SOPs took 580 MB and its plain JSON 85 MB; searches only ever need the few SOPs they return.
`indexed_docs` reads what a generation holds from the overview payloads the indexer writes: search and the indexer
share this read.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from kb_service.models import Sop
from kb_service.store.base import FilterSpec, VectorStore
from kb_service.store.layout import LAYOUT_FIELD, LEGACY
from kb_service.text.lexical import DEFAULT_REF_LENGTH

PARSED_CACHE_SIZE = 2_000
# zlib level 6 (its default): the sample SOPs' JSON takes 2.9x less memory; one SOP inflates in ~60 µs.
PACK_LEVEL = 6


def pack(sop_json: str) -> bytes:
    return zlib.compress(sop_json.encode("utf-8"), PACK_LEVEL)


def unpack(packed: bytes) -> str:
    return zlib.decompress(packed).decode("utf-8")


@dataclass(frozen=True)
class IndexedDoc:
    """What the published index knows of one document (read from its overview point)."""

    sop_id: str
    content_hash: str
    path: str
    embedder: str
    sop_packed: bytes  # the parsed SOP as compressed JSON (`sop_json` inflates it)
    ref_length: float
    layout: str = LEGACY  # how the generation stores its vectors (kb_service/store/layout.py)

    @property
    def sop_json(self) -> str:
        return unpack(self.sop_packed)


def overview_filter(sop_ids: Sequence[str] = ()) -> FilterSpec:
    return FilterSpec(section_kinds=("overview",), sop_ids=tuple(sop_ids))


def indexed_docs(store: VectorStore, generation: str) -> dict[str, IndexedDoc]:
    docs: dict[str, IndexedDoc] = {}
    for hit in store.scroll(generation, overview_filter()):
        p = hit.payload
        docs[p["sop_id"]] = IndexedDoc(
            p["sop_id"],
            p["content_hash"],
            p["path"],
            p["embedder"],
            pack(json.dumps(p["sop"], ensure_ascii=False)),
            float(p.get("lexical_ref_length", DEFAULT_REF_LENGTH)),
            str(p.get(LAYOUT_FIELD, LEGACY)),
        )
    return docs


class Catalog(Mapping[str, Sop]):
    """SOPs by id; `documents` holds each as packed JSON (`pack`)."""

    def __init__(self, documents: dict[str, bytes], paths: dict[str, str]) -> None:
        self._json = documents
        self._paths = paths
        self._parsed: OrderedDict[str, Sop] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, sop_id: str) -> Sop:
        with self._lock:
            sop = self._parsed.get(sop_id)
            if sop is not None:
                self._parsed.move_to_end(sop_id)
                return sop
        sop = Sop.model_validate_json(unpack(self._json[sop_id]))  # KeyError for an unknown id, as a Mapping should
        with self._lock:
            self._parsed[sop_id] = sop
            while len(self._parsed) > PARSED_CACHE_SIZE:
                self._parsed.popitem(last=False)
        return sop

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def __contains__(self, sop_id: object) -> bool:
        return sop_id in self._json

    def path_of(self, sop_id: str) -> str | None:
        """The document's file path, without parsing it."""
        return self._paths.get(sop_id)

    def has_path(self, path: str) -> bool:
        return path in self._paths.values()
