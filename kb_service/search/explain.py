"""The hit test's view of a search (`explain: true`): each result's rank and score in every channel, and what a
learned phrasing added."""

from __future__ import annotations

from collections.abc import Callable

from kb_service.search.results import ChannelScore, HitExplain, LearnedExplain, SopHit
from kb_service.store.base import ChannelQuery, FilterSpec, StoreHit, VectorStore

TIE = 1e-6  # relative: scores this close are one score (a sparse sum's last bits depend on its order)


def sop_ranks(hits: list[StoreHit], sop_of: Callable[[str], str | None]) -> dict[str, tuple[int, float]]:
    """Each SOP's rank in one channel's hits (by its best chunk) and that chunk's score. SOPs whose best chunks
    score the same share a rank (two SOPs holding the same script line): the engine returns tied points in no fixed
    order, and the learned ranker reads these ranks, so a tie broken by chance moved the first result between runs."""
    ranks: dict[str, tuple[int, float]] = {}
    previous: tuple[int, float] | None = None
    for hit in hits:
        sop_id = sop_of(hit.id)
        if sop_id is None or sop_id in ranks:
            continue
        tied = previous is not None and abs(hit.score - previous[1]) <= TIE * max(1.0, abs(previous[1]))
        ranks[sop_id] = previous = (previous[0] if tied and previous else len(ranks) + 1, hit.score)
    return ranks


def explain_hits(
    store: VectorStore,
    generation: str,
    channels: list[ChannelQuery],
    flt: FilterSpec,
    results: list[SopHit],
    sop_of: Callable[[str], str | None],
    boosts: dict[str, LearnedExplain],
    moved: dict[str, int] | None = None,
) -> None:
    """Each channel's rank and score for every result, what a learned phrasing added and where the learned ranker
    moved it from (in place)."""
    per_channel: dict[str, dict[str, tuple[int, float]]] = {
        cq.channel: sop_ranks(store.search_channel(generation, cq, flt), sop_of) for cq in channels
    }
    for r in results:
        chans = {}
        for name, ranks in per_channel.items():
            rank_score = ranks.get(r.sop_id)
            chans[name] = ChannelScore(
                rank=rank_score[0] if rank_score else None, score=round(rank_score[1], 4) if rank_score else None
            )
        r.explain = HitExplain(
            channels=chans,
            fused_score=r.score,
            evidence_rank=(moved or {}).get(r.sop_id),
            learned=boosts.get(r.sop_id),
        )
