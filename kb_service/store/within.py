"""A vector channel's nearest points among a few SOPs' chunks, exact, from a generation's recorded originals.

The learned ranker and the confidence search each channel again among the first SOPs' chunks only (a filter on
`sop_ids`). A SOP's chunks are one run of the vector table (their ids start with the SOP's prefix, kb_service.ids),
and the table records what else such a filter asks (`facets.py`), so every one of those points is scored from its
originals and the best kept: no engine query (each cost 0.5 ms of planning and result objects for a hundred
points), and exact where the engine's rescored codes were close to it.
"""

from __future__ import annotations

import numpy as np

from kb_service.ids import sop_prefix
from kb_service.store import facets
from kb_service.store.base import ChannelQuery, FilterSpec, StoreHit
from kb_service.store.vector_file import CHANNELS, VectorFile


def answerable(vectors: VectorFile, query: ChannelQuery, flt: FilterSpec) -> bool:
    """Whether `nearest` answers this search exactly: a vector channel among named SOPs, filtered on nothing the
    table does not record."""
    return (
        vectors.facets is not None
        and query.channel in CHANNELS
        and bool(flt.sop_ids)
        and not flt.categories
        and not flt.tags
    )


def nearest(vectors: VectorFile, query: ChannelQuery, flt: FilterSpec) -> list[StoreHit] | None:
    """The `query.limit` best of the points `flt` admits, best first; None where not `answerable`."""
    recorded = vectors.facets
    if recorded is None or not answerable(vectors, query, flt):
        return None
    runs = {s: vectors.starting_with(bytes.fromhex(sop_prefix(s))) for s in dict.fromkeys(flt.sop_ids)}
    positions = np.concatenate([np.zeros(0, np.int64), *runs.values()])
    keep = np.ones(len(positions), dtype=bool)
    if flt.public_only:
        keep &= recorded.public[positions]
    if flt.section_kinds:
        keep &= np.isin(recorded.kind[positions], recorded.codes(flt.section_kinds))
    if flt.without_examples_of in runs:
        examples = np.isin(positions, runs[flt.without_examples_of])
        keep &= ~(examples & np.isin(recorded.kind[positions], recorded.codes([facets.EXAMPLES])))
    positions = positions[keep]
    scores = vectors.scores_at(positions, np.asarray(query.vector), query.channel)
    best = np.argsort(-scores, kind="stable")[: query.limit]
    ids = vectors.ids_at(positions[best])
    return [StoreHit(id=i, score=float(scores[b]), payload={}) for i, b in zip(ids, best, strict=True)]
