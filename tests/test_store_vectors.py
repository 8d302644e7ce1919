"""A sealed generation with codes keeps its vectors' originals in a file of its own, and searches rescore the engine's
candidates from it by `pread`: the engine's mapped originals, which at 100k chunks kept 875 MB resident in every
worker, are never read by a search, and the rankings are the engine's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
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

    kb = _kb(tmp_path, sops_copy, "recorded", index_aux_on_disk=False)
    kb.ingest()
    store = kb.store
    assert isinstance(store, EdgeStore)
    root = store.root / str(store.published())
    assert vector_file.FILES <= set(manifest.read(root))  # checked when opened
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
        # the recorded originals are the engine's vectors: each point's best sentence scores as the engine scores it
        q = HashEmbedder(dim=256).embed(["天花板漏水"])[0]
        found = store._unrescored(second, FilterSpec())(ChannelQuery("sent", q, 5), 5)  # noqa: SLF001
        exact = store.search_channel(second, ChannelQuery("sent", q, 5), FilterSpec())
        assert [h.id for h in exact][:1] and all(-1.0 <= h.score <= 1.0 for h in exact) and found
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
