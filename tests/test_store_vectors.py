"""A sealed generation with codes keeps its vectors' originals in a file of its own, and searches rescore the engine's
candidates from it by `pread`: the engine's mapped originals, which at 100k chunks kept 875 MB resident in every
worker, are never read by a search, and the rankings are the engine's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.errors import IndexCorruptError
from kb_service.store import edge, manifest, rescored, vector_file
from kb_service.store.base import ChannelQuery, FilterSpec, SearchSpec
from kb_service.store.edge import EdgeStore
from kb_service.store.layout import PREVIOUS
from tests.helpers import hash_settings
from tests.test_store_overviews import _resident_kb
from tests.test_store_payloads import _add_a_line

QUESTIONS = ("天花板漏水", "空调不制冷", "门锁打不开", "押金什么时候退", "热水器没有热水", "停车费多少钱", "网络断了")


def _kb(tmp_path: Path, sops: Path, name: str, **extra: object) -> KnowledgeBase:
    settings = hash_settings(tmp_path / name, sops, **extra)
    return KnowledgeBase.from_settings(settings, embedder=HashEmbedder(dim=256))


@pytest.fixture
def coded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Graphs and two-bit codes for the small sample corpus, as a large index is served."""
    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    monkeypatch.setattr(edge, "VECTORS_FILE_MIN_POINTS", 0)
    yield


def _original_kb(root: Path) -> int:
    """Resident KB of the engine's mapped originals (not its in-memory codes) under `root`."""
    return sum(_resident_kb(root, f"/vector_storage-{c}/") for c in vector_file.CHANNELS)


def _ranked(kb: KnowledgeBase) -> list[list[str]]:
    return [[r.sop_id for r in kb.searcher.search(q, top_k=3, explain=True).results] for q in QUESTIONS]


def test_searches_rescore_from_the_recorded_originals_as_the_engine_did(
    tmp_path: Path, sops_copy: Path, coded: None
) -> None:
    # every channel quantised alike (aux_on_disk false), so only where the rescoring reads its originals differs
    engine = _kb(tmp_path, sops_copy, "engine", index_vectors_file=False, index_aux_on_disk=False)
    engine.ingest()
    expected = _ranked(engine)
    assert not (engine.store.root / str(engine.store.published()) / vector_file.DATA).exists()  # type: ignore[attr-defined]
    engine.close()

    kb = _kb(tmp_path, sops_copy, "recorded", index_aux_on_disk=False, index_sentence_rows=0)
    kb.ingest()
    store = kb.store
    assert isinstance(store, EdgeStore)
    root = store.root / str(store.published())
    assert set(manifest.read(root)) >= vector_file.FILES  # checked when opened
    kb.searcher.refresh(force=True)
    before = _original_kb(root)
    ranked = _ranked(kb)
    touched = _original_kb(root) - before
    kb.close()
    assert touched == 0, f"searching mapped {touched} KB of the engine's originals"
    # the same SOPs, the same first; the hash embedder gives equal cosines to repeated sentences, and the engine's
    # order among equals is its segments' (a tie decided the order of a second and third SOP)
    assert [r[0] for r in ranked] == [r[0] for r in expected]
    assert [set(r) for r in ranked] == [set(r) for r in expected]


def test_a_publish_records_the_new_originals_and_copies_the_others(
    tmp_path: Path, sops_copy: Path, coded: None
) -> None:
    kb = _kb(tmp_path, sops_copy, "kb")
    kb.ingest()
    store = kb.store
    assert isinstance(store, EdgeStore)
    first = str(store.published())
    files = sorted(sops_copy.rglob("*.md"))
    _add_a_line(files[1])
    files[0].unlink()
    kb.ingest()
    second = str(store.published())
    assert second != first
    before = vector_file.VectorFile.open_at(store.root / first)
    after = vector_file.VectorFile.open_at(store.root / second)
    assert before is not None and after is not None
    try:
        engine = {h.id: h for h in store.scroll(second, FilterSpec(), with_vectors=False)}
        old = {h.id for h in store.scroll(first, FilterSpec())}
        assert {i for i in engine if after.record(i) is not None} == set(engine)  # every point, none deleted
        kept = set(engine) & old
        assert kept and set(engine) - old  # some copied, some new
        assert all(after.record(i) == before.record(i) for i in kept)
        # the recorded originals are the engine's vectors, copied and new points alike
        new = sorted(set(engine) - old)
        some = [*sorted(kept)[:20], *new]
        engine_vectors = edge.EngineVectors(store._shard(second))  # (a long point's later rows from its parts)
        held = engine_vectors.vectors(some)
        assert set(held) == set(some)
        for i, (dense, sent) in held.items():
            rows = np.frombuffer(after.record(i) or b"", dtype=np.float16).reshape(-1, 256)
            assert np.allclose(rows[0], dense, atol=1e-3) and np.allclose(rows[1:], sent, atol=1e-3)
        # and the scores read from them are the engine's cosines
        q = HashEmbedder(dim=256).embed(["天花板漏水"])[0]
        exact = store.search_channel(second, ChannelQuery("sent", q, 20), FilterSpec())
        held = engine_vectors.vectors([h.id for h in exact])
        cosines = {i: float((sent @ (q / np.linalg.norm(q))).max()) for i, (_, sent) in held.items()}
        assert exact and all(abs(h.score - cosines[h.id]) < 2e-3 for h in exact), [
            (h.score, cosines[h.id]) for h in exact
        ]
    finally:
        before.close()
        after.close()
        kb.close()


def test_the_fusion_is_the_engines_distribution_based_fusion(tmp_path: Path) -> None:
    """Where nothing is quantised the engine's fused scores are exact: the fusion here must give the same."""
    store = EdgeStore(tmp_path / "index", layout=PREVIOUS)
    rng = np.random.default_rng(3)
    from tests.test_index_layout import _points

    store.create("g", 64, None)
    store.upsert("g", _points(300, 64, rng))
    store.seal("g")
    for i in range(10):
        q = rng.normal(size=64).astype(np.float32)
        channels = (ChannelQuery("sent", q, 40), ChannelQuery("dense", q, 30))
        spec = SearchSpec(channels=channels, weights=(1.0, 1.0), rrf_k=5, limit=25, filter=FilterSpec(), fusion="dbsf")
        engine = store.search("g", spec)
        ours = rescored.dbsf([store.search_channel("g", c, FilterSpec()) for c in channels])[:25]
        assert [h.id for h in ours] == [h.id for h in engine], i
        assert np.allclose([h.score for h in ours], [h.score for h in engine], atol=1e-4)
    store.close()


def test_a_damaged_vector_file_is_refused_not_read(tmp_path: Path, sops_copy: Path, coded: None) -> None:
    """Cut short after sealing (a full disk, an operator's copy): the cheap check refuses the generation, as it
    refuses any damaged index file, and a process opening it refuses it too (`kb ingest --rebuild` repairs it)."""
    kb = _kb(tmp_path, sops_copy, "kb")
    kb.ingest()
    store = kb.store
    assert isinstance(store, EdgeStore)
    generation = str(store.published())
    assert kb.searcher.search("天花板漏水", top_k=3).results
    data = store.root / generation / vector_file.DATA
    with open(data, "r+b") as fh:
        fh.truncate(data.stat().st_size - 1024)
    with pytest.raises(IndexCorruptError, match=vector_file.DATA):
        store.check(generation)
    fresh = EdgeStore(store.root)
    with pytest.raises(IndexCorruptError, match="repair it: kb ingest"):
        fresh.search_channel(generation, ChannelQuery("sent", np.ones(256, np.float32), 5), FilterSpec())
    fresh.close()
    kb.close()


def test_only_a_large_index_with_codes_records_its_originals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_index_layout import _points

    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    points = _points(300, 64, np.random.default_rng(4))
    for name, least, recorded in (("small", 301, False), ("large", 300, True)):
        monkeypatch.setattr(edge, "VECTORS_FILE_MIN_POINTS", least)
        store = EdgeStore(tmp_path / name)
        store.create("g", 64, None)
        store.upsert("g", points)
        store.seal("g")
        assert (store.root / "g" / vector_file.DATA).is_file() is recorded, name
        assert not (store.root / "g" / vector_file.PENDING).exists()
        copy = "h"  # a publish on it records what its source recorded
        store.create(copy, 64, "g")
        store.upsert(copy, points[:3])
        store.seal(copy, optimize=False)
        assert (store.root / copy / vector_file.DATA).is_file() is recorded, name
        assert (
            store.search_channel(copy, ChannelQuery("sent", points[0].sentences[0], 3), FilterSpec())[0].id
            == points[0].id
        )
        store.close()


def test_a_publish_refuses_to_copy_damaged_originals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish copies the published generation's recorded originals record by record: bytes changed in them
    (same size, so the live size check passes) must stop it, not be sealed as good into the new generation."""
    from tests.test_index_layout import _points

    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    monkeypatch.setattr(edge, "VECTORS_FILE_MIN_POINTS", 0)
    points = _points(200, 64, np.random.default_rng(6))
    store = EdgeStore(tmp_path / "index")
    store.create("g", 64, None)
    store.upsert("g", points)
    store.seal("g")
    store.publish("g")
    store.close()
    data = tmp_path / "index" / "g" / vector_file.DATA
    with open(data, "r+b") as fh:
        fh.seek(4096)
        fh.write(bytes(512))
    publisher = EdgeStore(tmp_path / "index")  # another process (kb ingest) building on the published generation
    with pytest.raises(IndexCorruptError, match=r"vectors\.bin.*repair it: kb ingest"):
        publisher.create("h", 64, "g")
    assert publisher.generations() == ["g"]  # nothing copied
    publisher.close()


def _published_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[EdgeStore, list[Any], list[Any]]:
    """A generation of 1,500 points with graphs, codes and recorded originals, and a publish's copy of it ("h") that
    adds 30 points."""
    from tests.test_index_layout import _points

    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    monkeypatch.setattr(edge, "VECTORS_FILE_MIN_POINTS", 0)
    points = _points(1500, 64, np.random.default_rng(5))
    new = _points(1530, 64, np.random.default_rng(9))[1500:]  # ids the first 1500 do not have
    store = EdgeStore(tmp_path / "index")
    store.create("g", 64, None)
    store.upsert("g", points)
    store.seal("g")
    store.create("h", 64, "g")
    store.upsert("h", new)
    store.seal("h", optimize=False)
    return store, points, new


def test_a_publishs_points_are_found_although_their_codes_score_on_a_scale_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's trial: after a publish the edited SOP's own examples no longer found it (its chunks scored 1.77
    instead of 2.50). Two-bit codes are fitted per segment, and a publish's points sit in a small segment of their
    own, so ranking all candidates by their codes together dropped them; they are searched apart."""
    store, points, new = _published_copy(tmp_path, monkeypatch)
    recorded = vector_file.VectorFile.open_at(store.root / "h")
    assert recorded is not None and set(recorded.added) == {p.id for p in new}
    recorded.close()
    everything = [*points, *new]
    rng = np.random.default_rng(2)
    for p in new:  # a question about what the publish added: the true best point is the engine's
        q = (p.sentences[0] + 0.2 * rng.normal(size=64)).astype(np.float32)
        truth = max(everything, key=lambda x: float((x.sentences @ (q / np.linalg.norm(q))).max()))
        best = store.search_channel("h", ChannelQuery("sent", q, 10), FilterSpec())[0]
        assert best.id == truth.id
    store.close()


def test_a_publish_leaves_no_appendable_segment_resident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator's trial: one publish grew each worker from 518 to 820 MB until the next full build. The engine kept
    the publish's points in its appendable segment, whose code files are preallocated (32 MB each) and held in memory
    by every process searching it; they are indexed in a small segment of their own instead."""
    builder, _, new = _published_copy(tmp_path, monkeypatch)
    builder.close()
    worker = EdgeStore(tmp_path / "index")  # a serving process
    for p in new:
        for channel, vector in (("sent", p.sentences[0]), ("dense", p.dense)):
            assert worker.search_channel("h", ChannelQuery(channel, vector, 10), FilterSpec())[0].id == p.id
    resident = _resident_kb(tmp_path / "index" / "h", "quantized")
    worker.close()
    assert resident < 4 * 1024, f"{resident} KB of codes resident for 1,530 points of 64 dimensions"


def test_vectors_changed_in_place_are_refused_while_serving(tmp_path: Path, sops_copy: Path, coded: None) -> None:
    """An operator's trial overwrote part of vectors.bin with random bytes, the size kept: the live size check passed
    and searches returned wrong SOPs with null scores until a restart. Values that are not numbers are damage."""
    kb = _kb(tmp_path, sops_copy, "kb")
    kb.ingest()
    store = kb.store
    assert isinstance(store, EdgeStore)
    generation = str(store.published())
    data = store.root / generation / vector_file.DATA
    with open(data, "r+b") as fh:
        fh.write(np.random.default_rng(1).bytes(data.stat().st_size))
    with pytest.raises(IndexCorruptError, match=r"vectors\.bin"):
        kb.searcher.search("天花板漏水", top_k=3)
    with pytest.raises(IndexCorruptError, match=r"vectors\.bin"):
        store.check(generation)  # from then on: the health check says so
    assert kb.searcher.status().generation is None
    kb.close()


def test_an_ingest_repairs_a_damaged_index_taking_the_vectors_left_intact(
    tmp_path: Path, sops_copy: Path, coded: None
) -> None:
    """An operator's trial: repairing a damaged index was a full re-embedding (8.5 min at 32k chunks, every search
    answering 503 meanwhile). `kb ingest` re-indexes a damaged published generation, taking the vectors its recorded
    originals hold when they are intact, and embeds everything only when they are not."""
    kb = _kb(tmp_path, sops_copy, "kb")
    first = kb.ingest()
    expected = _ranked(kb)
    damaged = kb.store.root / str(kb.store.published())  # type: ignore[attr-defined]
    kb.close()
    os.truncate(next(damaged.glob("segments/*/vector_storage-sent/vectors/chunk_0.mmap")), 4096)  # the engine's
    kb = _kb(tmp_path, sops_copy, "kb")
    report = kb.ingest()
    assert report.repaired == damaged.name and not report.failed
    assert report.reused_chunks == report.chunks == first.chunks and report.embedded_chunks == 0
    ranked = _ranked(kb)
    assert [r[0] for r in ranked] == [r[0] for r in expected] and [set(r) for r in ranked] == [set(r) for r in expected]
    repaired = kb.store.root / str(kb.store.published())  # type: ignore[attr-defined]
    kb.close()

    (repaired / vector_file.DATA).write_bytes(b"\0" * (repaired / vector_file.DATA).stat().st_size)  # both damaged
    os.truncate(next(repaired.glob("segments/*/vector_storage-sent/vectors/chunk_0.mmap")), 4096)
    kb = _kb(tmp_path, sops_copy, "kb")
    report = kb.ingest()
    assert report.repaired == repaired.name and report.reused_chunks == 0 and report.embedded_chunks == first.chunks
    assert [r[0] for r in _ranked(kb)] == [r[0] for r in expected]
    kb.close()
