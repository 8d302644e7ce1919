"""The same contract on every store backend: the embedded engine and qdrant-client (local mode stands in for a
server; with KB_QDRANT_URL set the same tests also run against that real server)."""

from __future__ import annotations

import numpy as np
import pytest

from kb_service.store.base import ChannelQuery, FilterSpec, SearchSpec, VectorStore
from kb_service.store.sparse import SparseVec
from tests.helpers import DIM, point


def _spec(vec: np.ndarray, flt: FilterSpec | None = None, term: int = 100) -> SearchSpec:
    chans = (ChannelQuery("sent", vec, 10), ChannelQuery("lex", SparseVec([term], [1.0]), 10))
    return SearchSpec(channels=chans, weights=(1.0, 0.5), rrf_k=5, limit=10, filter=flt or FilterSpec())


def test_publish_is_atomic_and_generations_are_independent(store: VectorStore) -> None:
    assert store.published() is None
    store.create("g1", DIM, None)
    store.upsert("g1", [point("a", 0), point("a", 1)])
    store.seal("g1")
    assert store.published() is None  # nothing published until publish()
    store.publish("g1")
    assert store.published() == "g1"
    store.create("g2", DIM, copy_from="g1")
    store.delete_sops("g2", ["a"])
    store.upsert("g2", [point("b", 0)])
    store.seal("g2")
    assert store.info("g1").points == 2 and store.info("g2").points == 1
    assert store.published() == "g1"
    store.publish("g2")
    assert store.published() == "g2" and set(store.generations()) >= {"g1", "g2"}
    assert store.info("g2").dim == DIM


def test_fused_search_finds_the_exact_point_and_filters_audience(store: VectorStore) -> None:
    store.create("g1", DIM, None)
    points = [point("a", 0, "public"), point("a", 1, "agent"), point("b", 0, "agent")]
    store.upsert("g1", points)
    store.seal("g1")
    hits = store.search("g1", _spec(points[1].dense, term=2))
    assert hits[0].id == points[1].id and hits[0].payload == {}
    public = store.search("g1", _spec(points[1].dense, FilterSpec(public_only=True)))
    assert [h.id for h in public] == [points[0].id]
    assert store.search("g1", _spec(points[0].dense, FilterSpec(sop_ids=("b",))))[0].id == points[2].id
    alone = store.search_channel("g1", ChannelQuery("dense", points[2].dense, 3), FilterSpec())
    assert alone[0].id == points[2].id and alone[0].score == pytest.approx(1.0, abs=1e-3)  # Float16 storage


def test_retrieve_and_scroll_return_payloads_without_heavy_fields(store: VectorStore) -> None:
    store.create("g1", DIM, None)
    points = [point("a", 0, kind="overview"), point("a", 1)]
    store.upsert("g1", points)
    got = store.retrieve("g1", [points[1].id])
    assert got[0].payload["heading"] == "h1" and "sop" not in got[0].payload
    kinds = store.retrieve("g1", [points[0].id, points[1].id], ("section_kind",))  # what the learned ranker reads
    assert {h.id: h.payload for h in kinds} == {
        points[0].id: {"section_kind": "overview"},
        points[1].id: {"section_kind": "steps"},
    }
    overviews = list(store.scroll("g1", FilterSpec(section_kinds=("overview",))))
    assert [h.payload["sop_id"] for h in overviews] == ["a"] and overviews[0].payload["sop"] == {"big": "x" * 100}


def test_drop_removes_a_generation(store: VectorStore) -> None:
    store.create("g1", DIM, None)
    store.drop("g1")
    assert "g1" not in store.generations()


def test_a_generations_vectors_are_read_back_as_stored(store: VectorStore) -> None:
    """What a re-index takes instead of embedding the same texts again (ingest/indexer.py): each point's passage and
    sentence vectors, as the cosine layout stores them (unit length, Float16)."""
    store.create("g1", DIM, None)
    points = [point("a", 0), point("a", 1), point("b", 0)]
    store.upsert("g1", points)
    store.seal("g1")
    stored = store.stored_vectors("g1")
    try:
        got = stored.vectors([points[0].id, points[2].id, "00000000-0000-4000-8000-000000000000"])
    finally:
        stored.close()
    assert set(got) == {points[0].id, points[2].id}  # a point the generation does not hold is left out
    for p in (points[0], points[2]):
        dense, sentences = got[p.id]
        unit = p.sentences / np.linalg.norm(p.sentences, axis=1, keepdims=True)
        assert np.allclose(dense, p.dense / np.linalg.norm(p.dense), atol=2e-3)
        assert sentences.shape == p.sentences.shape and np.allclose(sentences, unit, atol=2e-3)
