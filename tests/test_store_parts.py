"""A large generation keeps a point's first sentence rows in the engine and gives the others to parts of their own
(store/parts.py), so the graph search never reads a long example list whole: every search still answers with whole
points, scored by all their rows, filtered as their points are, and nothing outside the engine's search sees a part."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kb_service.settings import get_settings
from kb_service.store import edge, parts, vector_file
from kb_service.store.base import ChannelQuery, FilterSpec, IndexPoint, SearchSpec
from kb_service.store.edge import EdgeStore
from kb_service.store.layout import IndexLayout
from kb_service.store.sparse import SparseVec

DIM, ROWS = 64, 4


@pytest.fixture
def coded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    monkeypatch.setattr(edge, "VECTORS_FILE_MIN_POINTS", 0)
    yield


def _points(n: int, rng: np.random.Generator, first: int = 0) -> list[IndexPoint]:
    """Clustered points; every third a long one (an example list of 9 to 19 rows), every fourth public."""
    centres = rng.normal(size=(max(1, n // 4), DIM))
    out = []
    for i in range(first, first + n):
        rows = 9 + i % 11 if i % 3 == 0 else 2
        sent = centres[i % len(centres)] + 0.7 * rng.normal(size=(rows, DIM))
        sent /= np.linalg.norm(sent, axis=1, keepdims=True)
        out.append(
            IndexPoint(
                id=f"{i % 97:08x}-0000-4000-8000-{i:012d}",
                dense=sent.mean(axis=0).astype(np.float32),
                sentences=sent.astype(np.float32),
                lex=SparseVec([i + 1], [1.0]),
                py=SparseVec([i + 1], [1.0]),
                payload={
                    "sop_id": f"s{i % 97}",
                    "audience": "public" if i % 4 == 0 else "agent",
                    "section_kind": "examples" if rows > 2 else "steps",
                },
            )
        )
    return out


def _store(root: Path, points: list[IndexPoint], rows: int | None) -> EdgeStore:
    store = EdgeStore(root, layout=IndexLayout(sentence_rows=rows))
    store.create("g", DIM, None)
    store.upsert("g", points)
    store.seal("g")
    return store


def _best(points: list[IndexPoint], q: np.ndarray, flt: FilterSpec = FilterSpec()) -> list[tuple[float, str]]:
    """Every point's exact max-sim, best first (a sentence row of one of them asked: it is its own best)."""
    unit = q / np.linalg.norm(q)
    chosen = [p for p in points if not flt.public_only or p.payload["audience"] == "public"]
    return sorted((-float((p.sentences @ unit).max()), p.id) for p in chosen)


def test_parts_hold_the_rows_beyond_the_first_and_no_reader_sees_them(tmp_path: Path, coded: None) -> None:
    points = _points(600, np.random.default_rng(1))
    store = _store(tmp_path / "split", points, ROWS)
    long = [p for p in points if len(p.sentences) > ROWS]
    expected_parts = sum(parts.count(len(p.sentences), ROWS) for p in long)
    assert store._shard("g").info().points_count == len(points) + expected_parts  # the engine holds the parts
    assert store.info("g").points == len(points)  # they are no chunks
    assert store.info("g").dim == DIM
    assert {h.id for h in store.scroll("g", FilterSpec())} == {p.id for p in points}
    examples = FilterSpec(section_kinds=("examples",))
    assert {h.id for h in store.scroll("g", examples)} == {p.id for p in long}  # parts carry the kind, not listed
    recorded = vector_file.VectorFile.open_at(store.root / "g")
    assert recorded is not None and recorded.rows == ROWS
    whole = recorded.vectors([p.id for p in long])
    assert all(len(whole[p.id][1]) == len(p.sentences) for p in long)  # the file keeps every row
    owners = recorded.owners
    assert owners is not None and len(owners) == expected_parts
    recorded.close()
    held = store._shard("g").retrieve([p.id for p in long], with_payload=False, with_vector=["sent"])
    assert held and all(len(r.vector["sent"]) == ROWS for r in held)  # type: ignore[index]
    # read from the engine (a generation whose file went missing): whole points again, parts put back in order
    engine = edge.EngineVectors(store._shard("g")).vectors([p.id for p in long[:20]])
    for p in long[:20]:
        assert np.allclose(engine[p.id][1], p.sentences, atol=2e-3)
    store.close()


def test_a_row_only_a_part_holds_finds_its_point_scored_by_all_rows(tmp_path: Path, coded: None) -> None:
    points = _points(600, np.random.default_rng(2))
    split = _store(tmp_path / "split", points, ROWS)
    whole = _store(tmp_path / "whole", points, None)
    assert whole._shard("g").info().points_count == len(points)
    rng = np.random.default_rng(3)
    ids = {p.id for p in points}
    long = [p for p in points if len(p.sentences) > 2 * ROWS]
    for p in long[:40]:
        q = (p.sentences[-1] + 0.05 * rng.normal(size=DIM)).astype(np.float32)  # a row of its last part
        exact = _best(points, q)
        for store in (split, whole):
            found = store.search_channel("g", ChannelQuery("sent", q, 10), FilterSpec())
            assert {h.id for h in found} <= ids  # points, never parts
            assert len({h.id for h in found}) == len(found)  # each once
            assert found[0].id == exact[0][1] == p.id
            assert abs(found[0].score + exact[0][0]) < 5e-3  # the cosine of its best row, wherever that lies
        # tenants' searches: the parts are filtered as their point is
        public = split.search_channel("g", ChannelQuery("sent", q, 10), FilterSpec(public_only=True))
        assert public[0].id == _best(points, q, FilterSpec(public_only=True))[0][1]
        assert all(points[int(h.id[-12:])].payload["audience"] == "public" for h in public)
        # the fused search (sentence and lexical channels) answers with whole points too
        spec = SearchSpec(
            channels=(ChannelQuery("sent", q, 40), ChannelQuery("lex", SparseVec([1], [1.0]), 40)),
            weights=(1.0, 1.0),
            rrf_k=5,
            limit=20,
            filter=FilterSpec(),
            fusion="dbsf",
        )
        fused = split.search("g", spec)
        assert fused[0].id == p.id and {h.id for h in fused} <= ids and len({h.id for h in fused}) == len(fused)
    split.close()
    whole.close()


def test_a_publish_splits_the_points_it_adds_as_its_source_was(tmp_path: Path, coded: None) -> None:
    points = _points(600, np.random.default_rng(4))
    store = _store(tmp_path / "index", points, ROWS)
    gone = "s5"
    new = [p for p in _points(60, np.random.default_rng(5), first=600) if p.payload["sop_id"] != gone]
    store.create("h", DIM, "g")
    store.delete_sops("h", [gone])
    store.upsert("h", new)
    store.seal("h", optimize=False)
    kept = [p for p in points if p.payload["sop_id"] != gone]
    everything = [*kept, *new]
    count = sum(parts.count(len(p.sentences), ROWS) for p in everything)
    assert store._shard("h").info().points_count == len(everything) + count  # the deleted SOP's parts went too
    recorded = vector_file.VectorFile.open_at(store.root / "h")
    assert recorded is not None and recorded.rows == ROWS
    added = [p for p in new if len(p.sentences) > ROWS]
    assert added and {parts.part_id(p.id, 1) for p in added} <= recorded.added_points
    recorded.close()
    rng = np.random.default_rng(6)
    for p in added:
        q = (p.sentences[-1] + 0.05 * rng.normal(size=DIM)).astype(np.float32)
        found = store.search_channel("h", ChannelQuery("sent", q, 10), FilterSpec())
        assert found[0].id == p.id == _best(everything, q)[0][1]
    store.close()


def test_the_rows_a_point_keeps_are_a_setting_and_part_of_the_layout(tmp_path: Path) -> None:
    from ingest.knowledge_base import index_layout

    assert index_layout(get_settings(data_dir=tmp_path)).sentence_rows == 16
    assert "+rows16" in IndexLayout().name
    assert index_layout(get_settings(data_dir=tmp_path, index_sentence_rows=0)).sentence_rows is None
    assert "+rows" not in IndexLayout(sentence_rows=None).name
    assert "+rows" not in IndexLayout(vectors_file=False).name  # nothing is split where nothing is recorded


def test_a_small_generation_is_not_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the size that records its originals the engine rescores from its own vectors: every row stays."""
    monkeypatch.setattr(edge, "VECTORS_FILE_MIN_POINTS", 10_000)
    points = _points(300, np.random.default_rng(7))
    store = _store(tmp_path / "index", points, ROWS)
    assert store._shard("g").info().points_count == len(points)
    assert not (store.root / "g" / vector_file.DATA).exists()
    store.close()
