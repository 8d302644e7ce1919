"""A search among a few SOPs' chunks (the learned ranker's and the confidence's) is answered from the recorded
originals and facets of a large index, without the engine: the same points and scores the engine's exact search
gives, its filters kept exactly (a public search never reaches a staff-only section), and the engine's own answer
where the table cannot give one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import HashEmbedder
from kb_service.search.config import CONTENT_KINDS
from kb_service.store import facets, manifest, vector_file, within
from kb_service.store.base import ChannelQuery, FilterSpec, StoreHit
from kb_service.store.edge import EdgeStore
from kb_service.store.edge_search import ShardSearch
from tests.test_store_payloads import _add_a_line
from tests.test_store_vectors import _kb, coded  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("coded")  # graphs, codes and recorded originals for the samples
QUESTIONS = ("天花板漏水", "宠物可以养吗", "续租要提前多久说", "门禁卡丢了", "社区活动怎么报名")


def _exact(store: EdgeStore, generation: str, query: ChannelQuery, flt: FilterSpec) -> list[StoreHit]:
    """The best points by their recorded originals among those the engine's filter admits."""
    recorded = store._vector_file(generation)
    assert recorded is not None
    admitted = [h.id for h in store.scroll(generation, flt)]
    scores = recorded.scores(admitted, np.asarray(query.vector), query.channel)
    best = sorted(scores.items(), key=lambda kv: -kv[1])[: query.limit]
    return [StoreHit(id=i, score=v, payload={}) for i, v in best]


def _same(a: list[StoreHit], b: list[StoreHit]) -> bool:
    """The same scores, and the same points but where two score alike at the end of the list."""
    last = min((h.score for h in b), default=0.0)
    firm = lambda hits: {h.id for h in hits if h.score > last + 1e-6}  # noqa: E731
    return [round(h.score, 4) for h in a] == [round(h.score, 4) for h in b] and firm(a) == firm(b)


def _ingested(tmp_path: Path, sops: Path) -> tuple[KnowledgeBase, EdgeStore, str]:
    kb = _kb(tmp_path, sops, "kb")
    kb.ingest()
    assert isinstance(kb.store, EdgeStore)
    return kb, kb.store, str(kb.store.published())


def _facets_of(store: EdgeStore, generation: str) -> dict[str, facets.Facet]:
    return {h.id: facets.of(h.payload) for h in store.scroll(generation, FilterSpec())}


def test_a_search_among_a_few_sops_is_the_engines_exact_answer_without_the_engine(
    tmp_path: Path, sops_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb, store, generation = _ingested(tmp_path, sops_copy)
    recorded = store._vector_file(generation)
    assert recorded is not None and recorded.facets is not None
    held = _facets_of(store, generation)
    sop_of = {h.id: h.payload["sop_id"] for h in store.scroll(generation, FilterSpec())}
    # SOPs open to tenants with staff-only sections among them
    mixed = sorted(
        {sop_of[i] for i, (public, _) in held.items() if not public} & {sop_of[i] for i in held if held[i][0]}
    )
    assert mixed
    others = sorted(set(sop_of.values()) - set(mixed))[:4]
    embedder = HashEmbedder(dim=256)
    queried = []
    monkeypatch.setattr(ShardSearch, "_unrescored", lambda *_: pytest.fail("the engine was asked"))
    for text in QUESTIONS:
        q = embedder.embed([text])[0]
        for flt in (
            FilterSpec(sop_ids=(*mixed[:3], *others)),
            FilterSpec(sop_ids=(*mixed, *others), public_only=True),
            FilterSpec(sop_ids=tuple(mixed), section_kinds=CONTENT_KINDS, public_only=True),
            FilterSpec(sop_ids=(*mixed[:2], *others[:1]), without_examples_of=others[0]),
        ):
            for channel, limit in (("sent", 160), ("dense", 160), ("sent", 3)):
                cq = ChannelQuery(channel, q, limit)  # type: ignore[arg-type]
                found = store.search_channel(generation, cq, flt)
                queried.append((cq, flt, found))
                assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
                assert len(found) <= limit
                for h in found:
                    public, kind = held[h.id]
                    assert sop_of[h.id] in flt.sop_ids
                    assert public or not flt.public_only, "a staff-only section reached a public search"
                    assert kind in flt.section_kinds or not flt.section_kinds
                    assert not (sop_of[h.id] == flt.without_examples_of and kind == facets.EXAMPLES)
    monkeypatch.undo()
    for cq, flt, found in queried:
        assert _same(found, _exact(store, generation, cq, flt)), (cq.channel, cq.limit, flt)
    everything = store.search_channel(generation, ChannelQuery("sent", q, 1000), FilterSpec(sop_ids=tuple(mixed)))
    assert any(not held[h.id][0] for h in everything)  # the staff-only sections are there for staff
    kb.close()


def test_filters_the_table_does_not_hold_and_tables_without_facets_go_to_the_engine(
    tmp_path: Path, sops_copy: Path
) -> None:
    kb, store, generation = _ingested(tmp_path, sops_copy)
    recorded = store._vector_file(generation)
    assert recorded is not None
    some = tuple(sorted({h.payload["sop_id"] for h in store.scroll(generation, FilterSpec())})[:3])
    q = ChannelQuery("sent", HashEmbedder(dim=256).embed(["漏水"])[0], 10)
    assert within.answerable(recorded, q, FilterSpec(sop_ids=some))
    assert not within.answerable(recorded, q, FilterSpec(sop_ids=some, categories=("repair",)))
    assert not within.answerable(recorded, q, FilterSpec(sop_ids=some, tags=("漏水",)))
    assert not within.answerable(recorded, q, FilterSpec(public_only=True))  # the whole index: the engine's graph
    assert not within.answerable(recorded, ChannelQuery("lex", q.vector, 10), FilterSpec(sop_ids=some))
    kb.close()


def test_a_publish_records_facets_also_where_its_source_had_none(tmp_path: Path, sops_copy: Path) -> None:
    kb, store, first = _ingested(tmp_path, sops_copy)
    root = store.root / first
    # the table as a release before facets wrote it
    with np.load(root / vector_file.TABLE) as arrays:
        kept = {k: arrays[k] for k in arrays.files if k not in (facets.PUBLIC, facets.KIND, facets.KINDS)}
    with open(root / vector_file.TABLE, "wb") as fh:
        np.savez(fh, **kept)
    manifest.write(root)
    kb.close()

    kb = _kb(tmp_path, sops_copy, "kb")
    store = kb.store
    assert isinstance(store, EdgeStore)
    old = store._vector_file(first)
    assert old is not None and old.facets is None
    q = ChannelQuery("sent", HashEmbedder(dim=256).embed(["漏水"])[0], 10)
    assert not within.answerable(old, q, FilterSpec(sop_ids=("x",)))
    _add_a_line(sorted(sops_copy.rglob("*.md"))[1])
    kb.ingest()
    second = str(store.published())
    assert second != first
    new = store._vector_file(second)
    assert new is not None and new.facets is not None
    held = _facets_of(store, second)
    where, at = new.positions(list(held))
    assert len(where) == len(held)
    assert dict(zip([list(held)[w] for w in where], new.facets.at(at), strict=True)) == held
    kb.close()


def test_a_sop_made_staff_only_by_a_publish_leaves_public_searches_among_its_chunks(
    tmp_path: Path, sops_copy: Path
) -> None:
    kb, store, first = _ingested(tmp_path, sops_copy)
    public = sorted(p for p in sops_copy.rglob("*.md") if "\naudience: public" in p.read_text(encoding="utf-8"))[0]
    sop_id = next(
        line[4:].strip() for line in public.read_text(encoding="utf-8").splitlines() if line.startswith("id: ")
    )
    q = ChannelQuery("sent", HashEmbedder(dim=256).embed(["怎么办"])[0], 50)
    assert store.search_channel(first, q, FilterSpec(sop_ids=(sop_id,), public_only=True))
    public.write_text(public.read_text(encoding="utf-8").replace("\naudience: public", "\naudience: agent", 1), "utf-8")
    kb.ingest()
    second = str(store.published())
    recorded = store._vector_file(second)
    assert second != first and recorded is not None and recorded.facets is not None
    assert store.search_channel(second, q, FilterSpec(sop_ids=(sop_id,), public_only=True)) == []
    assert store.search_channel(second, q, FilterSpec(sop_ids=(sop_id,)))  # staff still find it
    held = _facets_of(store, second)
    where, at = recorded.positions(list(held))
    assert dict(zip([list(held)[w] for w in where], recorded.facets.at(at), strict=True)) == held
    kb.close()


def test_the_rankers_searches_of_the_same_sops_read_their_records_once(
    tmp_path: Path, sops_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranker searches the first SOPs' passage vectors, sentences and content sentences in turn: one read of
    their records gives all three (three reads took 1.5 ms a search at 100k chunks, session 60)."""
    kb, store, generation = _ingested(tmp_path, sops_copy)
    sops = sorted({h.payload["sop_id"] for h in store.scroll(generation, FilterSpec())})[:5]
    reads: list[int] = []
    read_many = vector_file.VectorFile.read_many
    monkeypatch.setattr(vector_file.VectorFile, "read_many", lambda self, *a: reads.append(1) or read_many(self, *a))
    q = HashEmbedder(dim=256).embed(["天花板漏水"])[0]
    every = FilterSpec(sop_ids=tuple(sops))
    searches = [
        (ChannelQuery("dense", q, 50), every),
        (ChannelQuery("sent", q, 50), every),
        (ChannelQuery("sent", q, 50), FilterSpec(sop_ids=every.sop_ids, section_kinds=CONTENT_KINDS)),
    ]
    found = [store.search_channel(generation, cq, flt) for cq, flt in searches]
    assert len(reads) == 1
    for (cq, flt), hits in zip(searches, found, strict=True):
        assert hits and _same(hits, _exact(store, generation, cq, flt))
    reads.clear()
    other = HashEmbedder(dim=256).embed(["门禁卡丢了"])[0]  # another question reads them again
    store.search_channel(generation, ChannelQuery("sent", other, 50), every)
    assert len(reads) == 1
    kb.close()
