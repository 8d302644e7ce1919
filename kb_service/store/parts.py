"""A point's sentence rows split over points of their own in the engine (`IndexLayout.sentence_rows`).

The engine's max-sim reads every row of every point its graph search visits. The SOPs' example lists (5% of the
points at 100k chunks, up to 64 rows each) held a quarter of the rows, and the queries that met them took the
search's p95 (docs/benchmarks.md, sessions 60 and 61: with 16 rows a point, the sentence search's p95 fell from 10.8
to 6.4 ms, the first SOPs found as good). In a generation that records its originals (vector_file.py), sealing
therefore leaves each point its first `rows` sentence rows in the engine and gives the others, `rows` at a time, to
part points: the sentence vector alone, the filtered payload fields of their point, ids derived from its id (and
starting with its SOP's prefix, as every chunk id does). A one-vector query's max-sim over a point's rows is the best
of its parts', so nothing is approximated: a search maps the parts it finds to their point and rescores that from
the file, which holds every row. A point found through several parts counts once, so the engine's candidates name
fewer points (asking it for 25% more cost their time back at 100k chunks, for no better ranking). Parts have no
passage vector (`EdgeTranslator.owned` leaves them out of scrolls and counts) and no record in the payload or
vector file.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from kb_service.store.base import KEYWORD_FIELDS, StoreHit

PART_OF = "part_of"  # a part's payload names its point (read by nothing: for people looking at the engine's data)


def part_id(owner: str, k: int) -> str:
    """The id of part `k` (1, 2, ...) of point `owner`: its SOP prefix (the first 6 bytes), then a hash."""
    prefix = uuid.UUID(owner).bytes[:6]
    rest = hashlib.sha256(f"{owner}#rows{k}".encode()).digest()[:10]
    return str(uuid.UUID(bytes=prefix + rest, version=4))


def count(n_rows: int, rows: int) -> int:
    """How many parts a point of `n_rows` sentence rows has (beyond its own first `rows`)."""
    return max(0, -(-n_rows // rows) - 1)


def ids_of(owner: str, n_rows: int, rows: int) -> list[str]:
    return [part_id(owner, k) for k in range(1, count(n_rows, rows) + 1)]


def split(owner: str, sentences: np.ndarray, payload: dict[str, Any], rows: int) -> Iterator[tuple[str, Any, dict]]:
    """The parts of a point as (id, sentence rows, payload)."""
    shared = {k: payload[k] for k in KEYWORD_FIELDS if k in payload}
    for k in range(1, count(len(sentences), rows) + 1):
        yield part_id(owner, k), sentences[k * rows : (k + 1) * rows], {**shared, PART_OF: owner}


class Owners:
    """Which point each part of a generation belongs to (built from the vector file's record sizes)."""

    def __init__(self, owners: Iterable[tuple[str, int]], rows: int) -> None:
        self._of = {p: owner for owner, n in owners for p in ids_of(owner, n, rows)}

    def __len__(self) -> int:
        return len(self._of)

    def hits(self, found: Sequence[StoreHit]) -> list[StoreHit]:
        """The hits with parts replaced by their points, each point once (at its first place)."""
        out: dict[str, StoreHit] = {}
        for h in found:
            owner = self._of.get(h.id, h.id)
            if owner not in out:
                out[owner] = h if owner == h.id else StoreHit(id=owner, score=h.score, payload=h.payload)
        return list(out.values())
