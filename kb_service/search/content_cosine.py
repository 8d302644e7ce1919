"""The best sentence cosine of each result's own content: the absolute similarity the search's confidence and the
chat's hand-over read (fusion scores are rescaled per query and mean nothing on their own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from kb_service.search.config import CONTENT_KINDS, CONTENT_LIMIT
from kb_service.store.base import ChannelQuery, FilterSpec, StoreHit, VectorStore


def best_content(
    store: VectorStore,
    generation: str,
    qvec: np.ndarray,
    flt: FilterSpec,
    sop_ids: Sequence[str],
    sop_of: Callable[[str], str | None],
    scored: Sequence[StoreHit] = (),
) -> dict[str, StoreHit]:
    """Each SOP's best content sentence (title, tag and example chunks left out: a question is judged by the text
    that would answer it). `scored`: content sentences the learned ranker already scored for this query, best first
    (a SOP found there has its best among them); only the SOPs not found there are searched, over their own content
    (exact: before session 35 the whole index's best 50 were read, and a result outside them had 0.0)."""
    found = {sop_of(hit.id) for hit in scored}
    missing = tuple(s for s in sop_ids if s not in found)
    searched: list[StoreHit] = []
    if missing:
        query = ChannelQuery("sent", qvec, CONTENT_LIMIT)
        searched = store.search_channel(generation, query, replace(flt, section_kinds=CONTENT_KINDS, sop_ids=missing))
    best: dict[str, StoreHit] = {}
    for hit in [*scored, *searched]:
        sop_id = sop_of(hit.id)
        if sop_id is not None:
            best.setdefault(sop_id, hit)
    return best
