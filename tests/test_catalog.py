"""The SOP catalogue reads a SOP from its overview point when asked for: loading a generation keeps only ids and
paths, the parsed cache stays bounded, and a listing reads every SOP in one pass."""

from __future__ import annotations

import json

import pytest

from ingest.documents import load_corpus
from ingest.knowledge_base import KnowledgeBase
from kb_service.search import catalog as catalog_module
from kb_service.search.catalog import every_sop


def test_a_generation_loads_ids_and_paths_and_reads_sops_on_demand(
    hash_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    hash_kb.ingest()
    corpus = load_corpus([hash_kb.settings.sops_dir], root=hash_kb.settings.sops_dir).sops
    catalog = hash_kb.searcher.catalog
    assert set(catalog) == set(corpus) and len(catalog) == len(corpus)
    assert not catalog._parsed  # nothing read yet
    some = sorted(corpus)[0]
    assert catalog[some] == corpus[some] and catalog.path_of(some) == corpus[some].path
    with pytest.raises(KeyError):
        catalog["no-such-sop"]
    assert catalog.get("no-such-sop") is None and "no-such-sop" not in catalog
    monkeypatch.setattr(catalog_module, "PARSED_CACHE_SIZE", 3)
    for sop_id in sorted(corpus)[:10]:
        assert catalog[sop_id].meta.id == sop_id
    assert len(catalog._parsed) == 3  # bounded: the last three read
    everything = {s.meta.id: s for s in every_sop(catalog)}
    assert everything == corpus
    assert len(catalog._parsed) == 3  # a full pass does not flush the cache


def test_a_search_reads_its_results_in_one_pass_and_audiences_without_parsing(
    hash_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    hash_kb.ingest()
    corpus = load_corpus([hash_kb.settings.sops_dir], root=hash_kb.settings.sops_dir).sops
    catalog = hash_kb.searcher.catalog
    assert {i: catalog.audience_of(i) for i in corpus} == {i: s.meta.audience for i, s in corpus.items()}
    assert not catalog._parsed  # the audiences came from the overview payloads
    reads: list[list[str]] = []
    real = catalog_module.indexed_sops

    def counting(store, generation, sop_ids=()):  # type: ignore[no-untyped-def]
        reads.append(list(sop_ids))
        return real(store, generation, sop_ids)

    monkeypatch.setattr(catalog_module, "indexed_sops", counting)
    results = hash_kb.searcher.search("空调不制冷", top_k=5, audience="public").results
    assert len(results) >= 2 and all(r.audience == "public" for r in results)
    assert len(reads) == 1 and set(reads[0]) == {r.sop_id for r in results}  # one read for all results
    hash_kb.searcher.search("空调不制冷", top_k=5, audience="public")
    assert len(reads) == 1  # then from the parsed cache


def test_overview_payloads_hold_the_sop_as_one_json_string_and_older_objects_still_read(
    hash_kb: KnowledgeBase,
) -> None:
    """Since session 18 the overview point keeps the SOP as one JSON string (cheaper to hand over and parse) and no
    chunk keeps its sentence texts; a generation indexed before, with the SOP as a nested object, reads the same."""
    hash_kb.ingest()
    store, generation = hash_kb.store, str(hash_kb.store.published())
    corpus = load_corpus([hash_kb.settings.sops_dir], root=hash_kb.settings.sops_dir).sops
    overviews = list(store.scroll(generation, catalog_module.overview_filter()))
    assert overviews and all(isinstance(h.payload["sop"], str) for h in overviews)
    assert all("sentences" not in h.payload for h in overviews)
    assert {s.meta.id: s for s in catalog_module.indexed_sops(store, generation)} == corpus

    class Older:  # the same overview points as an index written before session 18 returns them
        def scroll(self, name, flt, with_vectors=False, light=False):  # type: ignore[no-untyped-def]
            for h in store.scroll(name, flt, with_vectors, light):
                yield type(h)(h.id, h.score, {**h.payload, "sop": json.loads(h.payload["sop"])})

    assert {s.meta.id: s for s in catalog_module.indexed_sops(Older(), generation)} == corpus  # type: ignore[arg-type]


def test_the_confidence_reads_the_content_cosines_the_ranker_scored(
    hash_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search with its confidence asks the engine for each channel alone once (the ranker's sentence, lexical,
    passage and content searches), not a fifth time for the confidence, and every result's confidence is its best
    content sentence all the same (compared with a search over the results' own content alone)."""
    from kb_service.search.content_cosine import best_content
    from kb_service.store.base import FilterSpec

    hash_kb.ingest()
    searcher = hash_kb.searcher
    assert searcher.ranker is not None
    calls: list[str] = []
    original = hash_kb.store.search_channel

    def counted(name, query, flt):  # type: ignore[no-untyped-def]
        calls.append(query.channel)
        return original(name, query, flt)

    monkeypatch.setattr(hash_kb.store, "search_channel", counted)
    for query in ("天花板漏水怎么办", "押金什么时候退", "空调不制冷"):
        calls.clear()
        results = searcher.search(query, top_k=5, with_confidence=True).results
        assert sorted(calls) == ["dense", "lex", "sent", "sent"]  # the ranker's four; the confidence reused one
        qvec = searcher.embed_queries([query])[0]
        generation = str(hash_kb.store.published())
        sop_of = searcher._state.sop_of  # type: ignore[union-attr]
        alone = best_content(hash_kb.store, generation, qvec, FilterSpec(), [r.sop_id for r in results], sop_of)
        assert [r.confidence for r in results] == [
            round(alone[r.sop_id].score, 4) if r.sop_id in alone else 0.0 for r in results
        ]
