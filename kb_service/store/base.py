"""The store contract. A store holds named generations of the index and one published pointer.

Ingest builds a new generation (a copy of the published one plus the changes), seals it and publishes it in one
atomic step; readers keep using the previous generation until they see the new pointer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from kb_service.store.layout import IndexLayout
from kb_service.store.sparse import SparseVec

Channel = Literal["dense", "sent", "lex", "py"]
KEYWORD_FIELDS = ("sop_id", "audience", "category", "tags", "section_kind")
# Payload fields never needed to display a hit; searches return ids and scores only (payload reads dominate
# Qdrant's latency on small indexes) and fetch display payloads for the few chunks shown.
HEAVY_FIELDS = ["sop", "sentences"]


@dataclass
class IndexPoint:
    id: str
    dense: np.ndarray
    sentences: np.ndarray
    lex: SparseVec
    py: SparseVec
    payload: dict[str, Any]


@dataclass(frozen=True)
class FilterSpec:
    """Payload filter; `public_only` restricts to chunks tenants may see."""

    public_only: bool = False
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sop_ids: tuple[str, ...] = ()
    section_kinds: tuple[str, ...] = ()
    without_examples_of: str | None = None  # leave out this SOP's example-query chunk (publishing checks)


OVERVIEWS = FilterSpec(section_kinds=("overview",))  # one point per document, its payload the whole SOP


@dataclass(frozen=True)
class ChannelQuery:
    channel: Channel
    vector: np.ndarray | SparseVec
    limit: int


@dataclass(frozen=True)
class SearchSpec:
    channels: tuple[ChannelQuery, ...]
    weights: tuple[float, ...]
    rrf_k: int
    limit: int
    filter: FilterSpec = field(default_factory=FilterSpec)
    fusion: Literal["rrf", "dbsf"] = "rrf"  # dbsf: distribution-based score fusion (weights are not used)


@dataclass(frozen=True)
class StoreHit:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoreInfo:
    generation: str
    points: int
    dim: int


Vectors = dict[str, tuple[np.ndarray, np.ndarray]]  # point id -> (passage vector, sentence vectors)


class StoredVectors(Protocol):
    """A generation's vectors as stored, for a new generation to take instead of embedding the same texts again (a
    chunk id is derived from everything embedded: the same id, the same texts)."""

    def vectors(self, ids: Sequence[str]) -> Vectors:
        """Those of these points the generation holds."""

    def close(self) -> None: ...


class VectorStore(Protocol):
    layout: IndexLayout  # how new generations store their vectors; opened ones keep the layout they were built with

    def published(self) -> str | None:
        """Name of the published generation, or None before the first ingest."""

    def lost(self) -> str | None:
        """The generation the published pointer names when it is gone (its folder deleted by hand), else None."""

    def generations(self) -> list[str]: ...

    def create(self, name: str, dim: int, copy_from: str | None) -> None:
        """Create generation `name`, empty or as a copy of `copy_from`."""

    def upsert(self, name: str, points: Sequence[IndexPoint]) -> None: ...

    def delete_sops(self, name: str, sop_ids: Sequence[str]) -> None: ...

    def seal(self, name: str, optimize: bool = True) -> None:
        """Make the generation durable and ready to serve; `optimize` builds search graphs where worth it (a
        one-document publish skips it: its few new points are scanned exactly until the next full ingest)."""

    def publish(self, name: str) -> None:
        """Atomically point readers at generation `name`."""

    def drop(self, name: str) -> None: ...

    def sealed_at(self, name: str) -> float | None:
        """When generation `name` was sealed (epoch seconds); None when unknown or not sealed."""

    def check(self, name: str) -> None:
        """Raise IndexNotReadyError (IndexCorruptError for damage) if generation `name` cannot serve; cheap enough
        to run every second on the live generation. Opening a generation verifies it fully."""

    def info(self, name: str) -> StoreInfo: ...

    def scroll(self, name: str, flt: FilterSpec, with_vectors: bool = False, light: bool = False) -> Iterator[StoreHit]:
        """Every point the filter matches, read a page at a time (a caller that keeps little holds little);
        `light`: payloads without the heavy fields."""

    def search(self, name: str, spec: SearchSpec) -> list[StoreHit]:
        """Fused search: each channel is a prefetch, fused by weighted RRF inside Qdrant."""

    def search_channel(self, name: str, query: ChannelQuery, flt: FilterSpec) -> list[StoreHit]:
        """One channel alone: its true similarities (cosines rescored from the originals even where the layout's
        ranking search is not rescored), which the search's confidence, the learned ranker and hit tests read."""

    def overviews(self, name: str) -> Iterator[StoreHit]:
        """Every document's overview point with its light payload (what a generation's catalogue is read from)."""

    def retrieve(self, name: str, ids: Sequence[str], fields: Sequence[str] = ()) -> list[StoreHit]:
        """Display payloads (without the heavy fields) of a few chunks; only `fields` when given."""

    def stored_vectors(self, name: str) -> StoredVectors:
        """Generation `name`'s vectors, readable while other files of it are damaged where they are recorded apart
        (raises IndexCorruptError when they cannot be read intact)."""

    def forget(self, name: str) -> None:
        """Release any handle this process holds on generation `name` (it stays on disk)."""

    def close(self) -> None: ...
