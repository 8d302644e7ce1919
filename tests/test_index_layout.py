"""Index layouts: int8 codes in memory with Float16 originals on disk, recorded per generation, never mixed.

A generation keeps the layout it was built with (it stays readable whatever is configured); a changed setting
re-indexes everything on the next ingest or publish, and the quantised, indexed search path ranks like Float16.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ingest.documents import load_corpus
from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.search.catalog import indexed_docs
from kb_service.store import edge, edge_search
from kb_service.store.base import ChannelQuery, FilterSpec, IndexPoint
from kb_service.store.edge import EdgeStore
from kb_service.store.layout import INT8, LEGACY, PREVIOUS, IndexLayout
from kb_service.store.sparse import SparseVec
from tests.helpers import SOPS as SOPS_DIR
from tests.helpers import hash_settings

QUESTIONS = ("天花板漏水", "空调不制冷", "门锁打不开", "押金什么时候退", "热水器没有热水", "网络断了")
PREVIOUS_SETTINGS = {
    "index_quantization": "none",
    "index_vectors_on_disk": False,
    "index_aux_on_disk": False,
    "index_lexical_datatype": "float32",
}


def _kb(tmp_path: Path, sops: Path, **extra: object) -> KnowledgeBase:
    return KnowledgeBase.from_settings(hash_settings(tmp_path, sops, **extra), embedder=HashEmbedder())


def _engine_config(kb: KnowledgeBase) -> dict[str, dict[str, object]]:
    name = kb.store.published()
    path = kb.settings.data_dir / "index" / str(name) / "edge_config.json"
    return json.loads(path.read_text())["vectors"]  # type: ignore[no-any-return]


def _layouts(kb: KnowledgeBase) -> set[str]:
    return {d.layout for d in indexed_docs(kb.store, str(kb.store.published())).values()}


def test_a_changed_layout_reindexes_everything_and_old_generations_stay_readable(
    tmp_path: Path, sops_copy: Path
) -> None:
    old = _kb(tmp_path, sops_copy, **PREVIOUS_SETTINGS)
    first = old.ingest()
    assert first.ok and first.relayout is None
    assert all("quantization_config" not in v for v in _engine_config(old).values())
    assert _layouts(old) == {LEGACY}
    old.close()

    new = _kb(tmp_path, sops_copy)  # the default layout: two-bit codes, originals and hit-test channels on disk
    new.warm_up()  # the previous generation serves as it was built
    assert new.searcher.search("天花板漏水", top_k=3).results
    report = new.ingest()
    assert report.relayout == f"{LEGACY} → {IndexLayout().name}"
    # every point stored again the new way, none of the old generation's files copied, and its vectors taken
    # point by point instead of embedding the same texts again (an operator's trial: the upgrade re-embedded 529 s)
    assert report.chunks == first.chunks and report.reused_chunks == report.chunks and report.embedded_chunks == 0
    taken = [[r.sop_id for r in new.searcher.search(q, top_k=3).results] for q in QUESTIONS]
    assert new.ingest(rebuild=True).embedded_chunks == first.chunks  # and embedded again, as `--rebuild` does
    embedded = [[r.sop_id for r in new.searcher.search(q, top_k=3).results] for q in QUESTIONS]
    # the same firsts and the same SOPs (the hash embedder's equal cosines leave ties in the engine's segment order)
    assert [r[0] for r in taken] == [r[0] for r in embedded] and [set(r) for r in taken] == [set(r) for r in embedded]
    vectors = _engine_config(new)
    assert vectors["sent"]["memory"] == "cold" and vectors["dense"]["memory"] == "cold"
    assert vectors["sent"]["quantization_config"] == {
        "binary": {"encoding": "two_bits", "query_encoding": "scalar8bits", "memory": "pinned"}
    }
    # the passage vector, which the ranker and hit tests search, has codes too: rescored from the recorded originals
    assert vectors["dense"]["quantization_config"] == vectors["sent"]["quantization_config"]
    assert _layouts(new) == {IndexLayout().name}
    again = new.ingest()
    assert again.relayout is None and again.embedded_chunks == 0
    new.close()


def test_a_publish_after_a_layout_change_reindexes_from_the_recorded_documents(tmp_path: Path, sops_copy: Path) -> None:
    old = _kb(tmp_path, sops_copy, **PREVIOUS_SETTINGS)
    total = old.ingest().chunks
    old.close()
    sop = next(iter(load_corpus([sops_copy], root=sops_copy).sops.values()))
    new = _kb(tmp_path, sops_copy)
    report = new.indexer.apply([sop], [])
    assert report.relayout is not None and report.updated == [sop.meta.id]
    assert report.reused_chunks == report.chunks == total and report.embedded_chunks == 0  # none of its text changed
    assert _layouts(new) == {IndexLayout().name}
    new.close()


def _points(n: int, dim: int, rng: np.random.Generator) -> list[IndexPoint]:
    centres = rng.normal(size=(n // 4, dim))  # clustered, like chunks of related SOPs
    out = []
    for i in range(n):
        sent = centres[i % len(centres)] + 0.6 * rng.normal(size=(3, dim))
        sent /= np.linalg.norm(sent, axis=1, keepdims=True)
        out.append(
            IndexPoint(
                id=f"00000000-0000-0000-0000-{i:012d}",
                dense=sent.mean(axis=0).astype(np.float32),
                sentences=sent.astype(np.float32),
                lex=SparseVec([i + 1], [1.0]),
                py=SparseVec([i + 1], [1.0]),
                payload={"sop_id": f"s{i}", "audience": "agent", "section_kind": "steps"},
            )
        )
    return out


def test_int8_codes_with_rescoring_rank_like_float16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)  # build graphs and int8 codes although the index is small
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    rng = np.random.default_rng(5)
    points = _points(800, 64, rng)
    queries = [p.sentences[0] + 0.3 * rng.normal(size=64) for p in points[:: len(points) // 60]]
    ranked: dict[str, list[list[str]]] = {}
    layouts = {
        "f16": PREVIOUS,
        "int8": INT8,
        "binary": IndexLayout(quantization="binary", aux_on_disk=False),
        "turbo8": IndexLayout(quantization="binary", aux_on_disk=False, originals="turbo8"),  # rescored from TQ codes
    }
    for name, layout in layouts.items():
        store = EdgeStore(tmp_path / name, layout=layout)
        store.create("g", 64, None)
        store.upsert("g", points)
        store.seal("g")
        quantised = list((tmp_path / name / "g").rglob("quantized.data"))
        assert bool(quantised) == (name != "f16")
        config = json.loads((tmp_path / name / "g" / "edge_config.json").read_text())["vectors"]
        assert config["sent"]["datatype"] == ("turbo8" if name == "turbo8" else "float16")
        ranked[name] = [
            [h.id for h in store.search_channel("g", ChannelQuery(channel, q, 10), FilterSpec())]
            for q in queries
            for channel in ("dense", "sent")
        ]
        store.close()
    for name in ("int8", "binary", "turbo8"):
        pairs = list(zip(ranked["f16"], ranked[name], strict=True))
        same_first = np.mean([a[0] == b[0] for a, b in pairs])
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in pairs])
        assert same_first >= 0.95 and overlap >= 0.9, (name, same_first, overlap)


def test_the_previous_int8_layout_and_the_binary_default_with_hit_test_channels_on_disk_rank_alike(
    tmp_path: Path, sops_copy: Path
) -> None:
    """The default before session 13 (int8 codes for every channel) and the default now (two-bit codes for the ranked
    sentence vectors; the passage vector, unquantised, and the pinyin index in mapped files): switching re-indexes,
    and searches and the hit test's per-channel ranks go on."""
    old = _kb(
        tmp_path,
        sops_copy,
        index_quantization="int8",
        index_aux_on_disk=False,
        index_lexical_datatype="float32",
        index_vectors_file=False,
    )
    old.ingest()
    assert _engine_config(old)["dense"]["quantization_config"]["scalar"]["type"] == "int8"
    before = old.searcher.search("天花板漏水", top_k=3, explain=True).results
    old.close()
    lean = _kb(tmp_path, sops_copy)
    report = lean.ingest()
    assert report.relayout == f"{INT8.name} → f16-disk+bin2+aux-disk+lex8+vf+rows16"
    assert IndexLayout().name == "f16-disk+bin2+aux-disk+lex8+vf+rows16"
    name = lean.store.published()
    config = json.loads((lean.settings.data_dir / "index" / str(name) / "edge_config.json").read_text())
    assert config["sparse_vectors"]["py"]["memory"] == "cold" and config["sparse_vectors"]["lex"].get("memory") is None
    after = lean.searcher.search("天花板漏水", top_k=3, explain=True).results
    assert [r.sop_id for r in after] == [r.sop_id for r in before]
    assert after[0].explain is not None and after[0].explain.channels["dense"].rank is not None
    assert after[0].explain.channels["py"].rank is not None
    lean.close()


def test_without_rescoring_the_ranking_search_reads_the_codes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KB_INDEX_RESCORE=false ranks by the in-memory codes alone: the search parameters ask for no rescoring."""
    assert edge_search.params(IndexLayout(), 128).quantization.rescore is True
    params = edge_search.params(IndexLayout(rescore=False), 128)
    assert params.quantization.rescore is False and params.quantization.oversampling is None
    kb = _kb(tmp_path, SOPS_DIR, index_rescore=False)
    assert kb.store.layout.rescore is False and kb.store.layout.name == IndexLayout().name  # not part of the name
    kb.close()


def test_without_rescoring_a_channel_alone_still_scores_in_cosines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The confidence, the learned ranker and hit tests read one channel's scores as cosines: with
    KB_INDEX_RESCORE=false they are rescored all the same (two-bit codes score hundreds below zero), while the fused
    ranking search alone is served from the codes."""
    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)  # the codes and graphs of a large index
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    rng = np.random.default_rng(7)
    points = _points(400, 64, rng)
    query = points[3].sentences[0] + 0.2 * rng.normal(size=64)
    store = EdgeStore(tmp_path / "codes", layout=IndexLayout(aux_on_disk=False, rescore=False))
    store.create("g", 64, None)
    store.upsert("g", points)
    store.seal("g")
    assert list((tmp_path / "codes" / "g").rglob("quantized.data"))
    unit = query / np.linalg.norm(query)
    for channel in ("sent", "dense"):
        found = store.search_channel("g", ChannelQuery(channel, query, 10), FilterSpec())
        assert found
        by_id = {p.id: p for p in points}
        for hit in found:
            point = by_id[hit.id]
            vectors = point.sentences if channel == "sent" else point.dense[None, :]
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            assert hit.score == pytest.approx(float((vectors @ unit).max()), abs=2e-3)  # Float16 originals
    store.close()


def test_lexical_weights_in_one_byte_reindex_and_rank_like_float32(
    tmp_path: Path, sops_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`KB_INDEX_LEXICAL_DATATYPE=uint8` stores the lexical channel's weights in one byte (a quarter of the in-memory
    inverted index's weights): a changed setting re-indexes, the engine records the datatype, and the lexical
    channel ranks the sample SOPs' example questions as it does with float32 weights."""
    monkeypatch.setattr(edge, "HNSW_MIN_POINTS", 0)  # the immutable index a large corpus is served from
    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 1)
    questions = [q for sop in load_corpus([sops_copy], root=sops_copy).sops.values() for q in sop.meta.examples]
    ranked: dict[str, list[list[str]]] = {}
    for datatype in ("float32", "uint8"):  # the previous default, then the shipped one
        kb = _kb(tmp_path, sops_copy, index_lexical_datatype=datatype)
        report = kb.ingest()
        assert (report.relayout is not None) == (datatype == "uint8")
        name = str(kb.store.published())
        sparse = json.loads((kb.settings.data_dir / "index" / name / "edge_config.json").read_text())["sparse_vectors"]
        assert sparse["lex"].get("datatype") == (None if datatype == "float32" else "uint8"), sparse
        assert sparse["py"].get("datatype") is None  # the hit-test channel is left as it was
        ranked[datatype] = []
        for q in questions:
            lex = kb.lexical.query_vectors(q, True, True, False)[0]
            hits = kb.store.search_channel(name, ChannelQuery("lex", lex, 10), FilterSpec())
            ranked[datatype].append([h.id for h in hits])
        kb.close()
    pairs = list(zip(ranked["float32"], ranked["uint8"], strict=True))
    assert len(pairs) >= 100
    same_first = np.mean([a[:1] == b[:1] for a, b in pairs])
    overlap = np.mean([len(set(a) & set(b)) / max(len(a), 1) for a, b in pairs])
    assert same_first >= 0.95 and overlap >= 0.9, (same_first, overlap)
