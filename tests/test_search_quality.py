"""Retrieval with the real USE-multilingual model on the sample corpus (quality floors, not tuned figures)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ingest.knowledge_base import KnowledgeBase
from kb_service.search.explain import sop_ranks
from kb_service.search.rerank import MODEL, Ranker, feature_names, model_for
from kb_service.store.base import StoreHit
from kb_service.trainer.evaluation import evaluate, load_queries, split_of
from tests.helpers import QUERIES


def test_heldout_quality_floor(use_kb: KnowledgeBase) -> None:
    queries = load_queries(QUERIES, "heldout")
    assert len(queries) >= 100
    result = evaluate(
        queries, lambda q: [h.sop_id for h in use_kb.searcher.search(q.query, top_k=10, audience=q.audience).results]
    )
    # docs/benchmarks.md reports the measured figures; these floors catch a broken pipeline, not a tuned number.
    assert result["recall@3"] >= 0.9, result["misses"][:10]
    assert result["recall@1"] >= 0.75
    assert set(result["by_kind"]) >= {"agent_keywords", "tenant_phone", "asr_noisy", "public_question"}


def test_split_is_stable_and_roughly_half() -> None:
    queries = load_queries(QUERIES)
    assert len(queries) >= 200
    tune = sum(split_of(q.query) == "tune" for q in queries)
    assert 0.35 < tune / len(queries) < 0.65


def test_results_carry_steps_scripts_time_limits_and_provenance(use_kb: KnowledgeBase) -> None:
    resp = use_kb.searcher.search("天花板在滴水，楼上漏下来的", top_k=3)
    top = resp.results[0]
    assert top.sop_id == "repair-leak-ceiling"
    assert top.steps and top.scripts and top.time_limits and top.escalation
    assert top.sections and all(s.line_start <= s.line_end for s in top.sections)
    assert len({h.sop_id for h in resp.results}) == len(resp.results)  # grouped: one hit per SOP


def test_a_question_for_a_sum_shows_the_section_that_names_it_on_the_card(use_kb: KnowledgeBase) -> None:
    # A training lead's trial: 停车费一个月多少钱 showed how to apply for the parking card, and no price
    for audience in ("agent", "public"):
        top = use_kb.searcher.search("停车费一个月多少钱", top_k=3, audience=audience).results[0]
        assert top.sop_id == "parking"
        assert top.sections[0].heading == "收费标准" and "500元/月" in top.sections[0].text
        assert all(s.audience == "public" for s in top.sections) or audience == "agent"
    # ... the line of what is priced first: 退租保洁 150元 was cut off behind deep cleaning's 299元, and 上门喂猫 led
    # with the pet deposit (the trial's re-check)
    moving_out = use_kb.searcher.search("退租保洁多少钱", top_k=3).results[0]
    assert moving_out.sections[0].text.split("\n")[0].lstrip("- ").startswith("退租保洁：一居室150元")
    cat = use_kb.searcher.search("上门喂猫多少钱", top_k=3).results[0]
    assert cat.sop_id == "pet-policy" and "上门喂猫39元" in cat.sections[0].text
    # ... and for whether a fee applies (a trial: 合同更名要手续费吗 did not bring its 手续费200元 forward)
    rename = use_kb.searcher.search("合同更名要手续费吗", top_k=3).results[0]
    assert rename.sop_id == "lease-sublet-transfer"
    assert "合同更名：手续费200元" in rename.sections[0].text.split("\n")[0]
    # A question for a way keeps the sections it matched
    how = use_kb.searcher.search("停车月卡怎么办理", top_k=3).results[0]
    assert how.sop_id == "parking" and how.sections[0].heading != "收费标准"


def test_homophone_errors_still_find_the_procedure(use_kb: KnowledgeBase) -> None:
    ids = [h.sop_id for h in use_kb.searcher.search("那个我家水笼头一直在低水", top_k=3).results]
    assert "repair-pipe-faucet" in ids


def test_public_search_never_returns_staff_content(use_kb: KnowledgeBase) -> None:
    catalog = use_kb.searcher.catalog
    for q in ["补偿标准", "内部电话", "审批权限", "赔偿多少钱", "天花板漏水", "押金扣款", "8800"]:
        for hit in use_kb.searcher.search(q, top_k=10, audience="public").results:
            assert catalog[hit.sop_id].meta.audience == "public"
            assert all(s.audience == "public" for s in hit.sections)
            assert hit.staff_only_sections == []


def test_filters_by_category_and_tags(use_kb: KnowledgeBase) -> None:
    hits = use_kb.searcher.search("漏水", top_k=10, categories=["紧急事件"]).results
    assert hits and all(h.category == "紧急事件" for h in hits)
    tag = use_kb.searcher.catalog["repair-leak-ceiling"].meta.tags[0]
    hits = use_kb.searcher.search("处理", top_k=10, tags=[tag]).results
    assert hits and all(tag in h.tags for h in hits)


def test_explain_uses_the_same_ranking(use_kb: KnowledgeBase) -> None:
    plain = use_kb.searcher.search("钥匙丢了进不去", top_k=5)
    explained = use_kb.searcher.search("钥匙丢了进不去", top_k=5, explain=True)
    assert [h.sop_id for h in plain.results] == [h.sop_id for h in explained.results]
    top = explained.results[0]
    assert top.explain is not None and set(top.explain.channels) == {"dense", "sent", "lex", "py"}
    assert top.explain.channels["sent"].rank is not None and "qdrant" in explained.timings_ms


def test_glossary_expansion_is_reported(use_kb: KnowledgeBase) -> None:
    resp = use_kb.searcher.search("房间渗水", top_k=3)
    assert any(e.found == "渗水" and e.synonyms for e in resp.expansions)


def test_colloquial_lexicon_maps_what_tenants_say_to_procedure_words() -> None:
    from kb_service.text import glossary
    from kb_service.text.lexical import LexicalEncoder, term_id

    gl = glossary.builtin()
    found = {e.found: e.synonyms for e in gl.meanings("阳台那个挂衣服的杆子摇不下来了")}
    assert any("晾衣架" in means for means in found.values()), found
    assert gl.meanings("今天天气怎么样") == []
    # a phrase of digits is a whole number: 12345 (the hotline, a complaint) is not in a phone number
    assert "12345" in {e.found for e in gl.meanings("不修我就去12345")}
    assert "12345" not in {e.found for e in gl.meanings("电话13812345678，热水器不热")}
    enc = LexicalEncoder(gl)
    with_lexicon, _, expansions = enc.query_vectors("挂衣服的杆子坏了")
    without, _, _ = enc.query_vectors("挂衣服的杆子坏了", colloquial=False)
    added = set(with_lexicon.indices) - set(without.indices)
    assert added and {term_id(t) for t in enc.terms("晾衣架")} <= set(with_lexicon.indices)
    assert any(e.found == "挂衣服的杆子" for e in expansions)


def test_a_sop_with_more_matching_sections_outranks_a_single_lucky_chunk() -> None:
    from kb_service.search.config import SearchConfig
    from kb_service.search.hits import evidence as _evidence
    from kb_service.store.base import StoreHit

    cfg = SearchConfig()
    one = [StoreHit("a", 1.0, {})]
    three = [StoreHit("b", 0.9, {}), StoreHit("c", 0.8, {}), StoreHit("d", 0.7, {})]
    assert _evidence(three, cfg) > _evidence(one, cfg)
    assert _evidence(three, SearchConfig(evidence_chunks=1)) < _evidence(one, SearchConfig(evidence_chunks=1))


def test_corpus_lexicon_entries_are_checked(tmp_path: Path) -> None:
    from kb_service.text import glossary

    path = tmp_path / "glossary.yaml"
    path.write_text("entries:\n  - {says: [挂衣服的杆子]}\n  - {says: [小强], means: [蟑螂]}\n", encoding="utf-8")
    gl, issues = glossary.load_file(path)
    assert [i.severity for i in issues] == ["error"] and "says 和 means" in issues[0].message
    assert gl.meanings("家里好多小强") and gl.meanings("家里好多小强")[0].synonyms == ("蟑螂",)


def test_a_lexicon_phrasing_with_a_gap_matches_its_parts_told_with_the_tenants_words_between(tmp_path: Path) -> None:
    from kb_service.text import glossary
    from kb_service.text.lexical import LexicalEncoder, term_id

    path = tmp_path / "glossary.yaml"
    lines = ["entries:", "  - {says: [天花板…叫, 顶上…滴滴], means: [烟感]}", "  - {says: […叫], means: [x]}"]
    lines += ["  - {says: [冰箱门关不严], means: [冰箱]}", "  - {says: [门…关不严], means: [房门]}"]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    gl, issues = glossary.load_file(path)
    assert [i.severity for i in issues] == ["error"] and "…" in issues[0].message
    said = "天花板上那个圆圆的东西一直在叫，吵死了"
    assert [e.synonyms for e in gl.meanings(said)] == [("烟感",)]
    assert gl.meanings("顶上那个东西滴滴滴") and gl.meanings("顶上滴滴")  # the gap may be empty
    assert gl.meanings("天花板刚刷过。隔壁的狗一直在叫") == []  # not across a sentence
    assert gl.meanings("叫了师傅来看看天花板") == []  # the parts in their order
    assert gl.meanings("天花板上的灯罩里面积了好多灰尘和小虫子一直在叫") == []  # nor too far apart
    # nor words a listed phrasing reads: the fridge's door is no door of the flat
    assert [e.synonyms for e in gl.meanings("冰箱门关不严了")] == [("冰箱",)]
    assert [e.synonyms for e in gl.meanings("卧室的门现在关不严了")] == [("房门",)]
    enc = LexicalEncoder(gl)
    vec, _, found = enc.query_vectors(said)
    assert {term_id(t) for t in enc.terms("烟感")} <= set(vec.indices) and found[0].synonyms == ("烟感",)
    assert found[0].found == "天花板…叫"  # the phrasing that fired, not the tenant's words (a search echoes it)


def test_every_shipped_lexicon_file_is_valid_and_lists_each_phrase_once() -> None:
    from importlib import resources

    import yaml

    from kb_service.text import glossary
    from kb_service.text.normalize import normalize

    data = resources.files("kb_service") / "data"
    files = sorted(ref.name for ref in data.iterdir() if ref.name.startswith("colloquial"))
    assert len(files) >= 3, files
    seen: dict[str, tuple[str, int]] = {}  # normalised phrase -> (file, entry): one entry may list case variants
    for name in files:
        gl, issues = glossary._from_data(yaml.safe_load((data / name).read_text(encoding="utf-8")), name)
        assert issues == [] and gl.phrases, (name, issues[:3])
        for i, (says, means) in enumerate(gl.phrases):
            assert 1 <= len(means) <= 4, (name, says[:3], means)
            for phrase in says:
                key = normalize(phrase)
                assert len(key) >= 2 and seen.setdefault(key, (name, i)) == (name, i), (name, phrase, seen[key])
    # Every file is used: a phrase only that file lists is found in a tenant's sentence.
    shipped = glossary.builtin()
    for name in files:
        only = next(p for p, (n, _) in seen.items() if n == name and not p.isascii())
        assert any(normalize(e.found) == only for e in shipped.meanings(f"你好，{only}，怎么办")), (name, only)


def test_the_learned_ranker_reorders_the_first_sops_and_the_hit_test_says_where_from(use_kb: KnowledgeBase) -> None:
    """The gym on the top floor said as a tenant would: fused evidence puts another SOP first, the shipped ranker
    (trained on eval/dev and the tuning half without examples, never on these documents' examples) puts the
    activities SOP first, the hit test shows the rank it came from, and the scores still fall down the list."""
    query, sop = "楼顶那个能跑步的屋子怎么进去", "community-activities"
    searcher = use_kb.searcher
    assert searcher.ranker is not None
    fused = searcher.search(query, top_k=5, config=replace(searcher.config, rerank=False))
    assert fused.results[0].sop_id != sop and sop in [h.sop_id for h in fused.results]
    ranked = searcher.search(query, top_k=5, explain=True)
    top = ranked.results[0]
    assert top.sop_id == sop and top.explain is not None
    assert top.explain.evidence_rank == 1 + [h.sop_id for h in fused.results].index(sop)
    scores = [h.score for h in ranked.results]
    assert scores == sorted(scores, reverse=True) and scores[0] == fused.results[0].score
    unmoved = searcher.search("门禁卡丢了怎么补办", top_k=3, explain=True).results[0]
    assert unmoved.explain is not None and unmoved.explain.evidence_rank is None


def test_the_ranker_model_must_match_the_features_the_code_computes(tmp_path: Path) -> None:
    # the model for full vectors and the one for shortened vectors (KB_EMBED_DIMENSIONS=128)
    assert model_for(512) == MODEL and model_for(128) != MODEL and model_for(64) == MODEL
    for path in (MODEL, model_for(128)):
        trained = json.loads(path.read_text(encoding="utf-8"))
        assert trained["features"] == feature_names() and len(trained["coef"]) == len(feature_names())
        assert set(trained["trained_on"]) == {"dev", "tune-noex"}  # never the held-out half or the blind corpus
    model = json.loads(MODEL.read_text(encoding="utf-8"))
    stale = tmp_path / "ranker.json"
    stale.write_text(json.dumps({**model, "features": model["features"][:-1]}), encoding="utf-8")
    with pytest.raises(ValueError, match="retrain"):
        Ranker.load(stale)


def test_the_ranker_never_takes_another_sop_above_an_emergency_procedure_first_on_evidence(
    use_kb: KnowledgeBase,
) -> None:
    """A whole-flat power cut whose breaker trips again: fused evidence puts the power-cut emergency first by a
    hair, the ranker alone would put the lighting repair there (the chat then stopped flagging it urgent). An
    emergency procedure first on evidence stays first; the ranker orders the rest."""
    query = "我是1508，刚才啪的一声全屋断电了，电闸推上去又跳下来"
    searcher = use_kb.searcher
    fused = searcher.search(query, top_k=3, config=replace(searcher.config, rerank=False)).results
    assert fused[0].sop_id == "emergency-power-outage" and fused[0].urgent
    ranked = searcher.search(query, top_k=3).results
    assert ranked[0].sop_id == "emergency-power-outage"


@pytest.mark.parametrize(
    "query",
    ["门外有陌生人一直敲门，我好害怕", "有个人在我门口转来转去好久了", "我老公喝醉了打我", "我家被偷了电脑没了"],
)
def test_a_threat_to_a_tenant_finds_the_personal_safety_procedure(use_kb: KnowledgeBase, query: str) -> None:
    """A new agent's trial found no SOP for a tenant's personal safety; a re-check found the written one missed for a
    beating and a burglary."""
    assert use_kb.searcher.search(query, top_k=3).results[0].sop_id == "emergency-personal-safety"


@pytest.mark.parametrize(
    "query",
    ["那个，我房间突然没电了，别的房间好像有电，是不是跳闸了啊", "就我这屋没电，客厅有电", "卧室没电了，其他地方有电"],
)
def test_one_rooms_power_cut_finds_the_breaker_procedure_not_the_blackout(use_kb: KnowledgeBase, query: str) -> None:
    """A new agent's trial: the power-cut emergency came first although its own scope sends one room's cut to the
    lighting repair (界限：…一个房间没电的，按 repair-electric-lighting 处理)."""
    assert use_kb.searcher.search(query, top_k=3).results[0].sop_id == "repair-electric-lighting"


def test_sops_whose_best_chunks_score_the_same_share_a_channel_rank() -> None:
    """Two SOPs holding the same script line score the same in a channel, and the engine returns tied points in no
    fixed order: the learned ranker reads these ranks, so a tie broken by chance changed the first result between
    two runs (and two worker processes) of the same query."""
    sop_of = {"a1": "a", "a2": "a", "b1": "b", "c1": "c", "d1": "d"}.get
    for order in (["a1", "b1", "a2", "c1", "d1"], ["b1", "a1", "c1", "a2", "d1"]):
        scores = {"a1": 0.42, "b1": 0.42, "a2": 0.30, "c1": 0.3000000001, "d1": 0.1}
        hits = [StoreHit(i, scores[i], {}) for i in order]
        assert sop_ranks(hits, sop_of) == {"a": (1, 0.42), "b": (1, 0.42), "c": (3, scores["c1"]), "d": (4, 0.1)}


def test_the_first_results_do_not_depend_on_how_many_are_asked_for(use_kb: KnowledgeBase) -> None:
    """The console asks for five results, the hit test for ten or twenty, a benchmark for ten: the same query ranked
    its first SOPs differently (调到杭州: early termination first for five, moving out for ten)."""
    for query in (
        "我合同还没到期，然后公司把我调到杭州去了",
        "楼上好像住了个小孩，一直蹦来蹦去跑来跑去，咚咚咚的",
        "我是楼下的 就是我家天花板 哗哗哗的往下流水 灯那里也在滴 楼上没人开门",
        "下个月就退租了，押金是当场退还是要等一段时间",
    ):
        ranked = {k: [h.sop_id for h in use_kb.searcher.search(query, top_k=k).results] for k in (1, 3, 5, 10, 20)}
        assert all(ranked[k] == ranked[5][:k] for k in (1, 3)), ranked
        assert ranked[10][:5] == ranked[5] == ranked[20][:5] and len(ranked[20]) > 10, ranked
