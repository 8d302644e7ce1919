"""Searches of a generation whose originals are recorded (`vector_file.py`): the engine returns its codes' best
candidates unrescored, they are rescored from the file, and the channels are fused here as the engine fuses them.

What the engine did with `rescore=True` is done in the same order: each vector channel's `limit` × oversampling best
candidates by their codes are rescored with the originals and the `limit` best kept; the channels' lists are then
fused by distribution-based score fusion (Qdrant's DBSF: each list's scores mapped from mean ± 3 sample standard
deviations to 0..1, summed per point). At 100k chunks one build ranked the 300 labelled queries alike either way
(R@1 and R@3 identical; docs/benchmarks.md, session 57).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from kb_service.store.base import ChannelQuery, SearchSpec, StoreHit
from kb_service.store.vector_file import CHANNELS, VectorFile

# Two-bit codes score hundreds below zero; a point the engine scored exactly (in a segment without codes: the
# measured builds had none, a publish's points got codes too) has a cosine, above this, comes first and keeps it.
EXACT_FLOOR = -2.0
_ROUNDS = 4  # at most this many widenings to reach past the unindexed points (each takes all those it saw)

Run = Callable[[ChannelQuery, int], list[StoreHit]]  # one channel's `limit` best, unrescored


def nearest(
    run: Run, vectors: VectorFile, query: ChannelQuery, oversampling: float, binary: bool, added: Run | None = None
) -> list[StoreHit]:
    """The `query.limit` best points of one vector channel, by their originals' similarity. `added`: the engine's
    exact search of the points publishes added (two-bit codes are fitted per segment, so the codes of a publish's
    small segment do not compare with the large one's: an edited SOP's chunks fell out of the candidates and its
    own examples stopped finding it, an operator's trial)."""
    owners = vectors.owners if query.channel == "sent" else None
    want = math.ceil(query.limit * oversampling)
    limit = want
    for _ in range(_ROUNDS):
        found = run(query, limit)
        exact = [h for h in found if binary and h.score > EXACT_FLOOR]
        coded = [h for h in found if not (binary and h.score > EXACT_FLOOR)]
        if len(coded) >= want or len(found) < limit:
            break
        limit = want + len(exact)  # the unindexed points come first: ask past them
    more = added(query, query.limit) if added is not None else []
    if owners is not None:  # every point a part or its own rows found, rescored from all its rows
        coded, exact, more = owners.hits([*coded, *exact, *more]), [], []
    scores = vectors.scores([h.id for h in coded], query.vector, query.channel)  # type: ignore[arg-type]
    rescored = [StoreHit(id=h.id, score=scores[h.id], payload={}) for h in coded if h.id in scores]
    best = {h.id: h for h in [*exact, *rescored, *more]}
    return sorted(best.values(), key=lambda h: -h.score)[: query.limit]


def fused(
    run: Run, vectors: VectorFile, spec: SearchSpec, oversampling: float, binary: bool, added: Run | None = None
) -> list[StoreHit]:
    """The spec's channels searched (vector channels rescored) and fused by DBSF, its `limit` best."""
    lists = [
        nearest(run, vectors, c, oversampling, binary, added) if c.channel in CHANNELS else run(c, c.limit)
        for c in spec.channels
    ]
    return dbsf(lists)[: spec.limit]


def dbsf(lists: Sequence[list[StoreHit]]) -> list[StoreHit]:
    """Qdrant's distribution-based score fusion of ranked lists."""
    total: dict[str, float] = {}
    for hits in lists:
        for hit, score in zip(hits, _normalised([h.score for h in hits]), strict=True):
            total[hit.id] = total.get(hit.id, 0.0) + score
    return [StoreHit(id=i, score=s, payload={}) for i, s in sorted(total.items(), key=lambda kv: -kv[1])]


def _normalised(scores: list[float]) -> list[float]:
    if len(scores) < 2:
        return [0.5] * len(scores)
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
    low, high = mean - 3 * std, mean + 3 * std
    if high == low:
        return [0.5] * len(scores)
    return [(s - low) / (high - low) for s in scores]
