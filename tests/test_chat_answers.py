"""The tenant chat's answer selection and urgency with the real model on the sample corpus (the issue's examples),
and the front-matter fields they read (`priority`, `handover_fields`) with their lint messages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingest.knowledge_base import KnowledgeBase
from ingest.parser import parse_bytes
from kb_service.search import answer_types, objects, passages, question_parts, smalltalk
from kb_service.search.answers import HANDOFF_MESSAGE, HANDOFF_PLACED, TYPED_OVERRIDE, ChatResponder
from kb_service.search.confidence import Confidence
from kb_service.search.excerpts import label_named, labelled
from kb_service.search.passages import FAQ_FOCUS_WEIGHT, TYPE_WEIGHT, mismatch, named, words
from kb_service.search.qualified import qualified_everywhere
from kb_service.search.situations import handled_by_staff
from kb_service.search.tenant_wording import addressed_to_tenant, speaks_to_staff
from kb_service.settings import get_settings
from kb_service.text import tone
from kb_service.text.danger import DangerSignals

HEAD = "---\nid: t-doc\ntitle: 测试\ncategory: 报修\naudience: public\n{extra}---\n# 测试\n\n## 处理步骤\n1. 第一步。\n"


@pytest.fixture(scope="module")
def chat(use_kb: KnowledgeBase) -> ChatResponder:
    return ChatResponder.from_settings(use_kb.searcher, get_settings(emergency_phone="400-000-1234"))


def test_gas_smell_is_urgent_with_the_phone_first_and_the_steps_not_the_introduction(chat: ChatResponder) -> None:
    answer, _ = chat.answer("闻到煤气味怎么办")
    assert answer.urgent and answer.handoff and answer.priority == "urgent"
    assert answer.answer.startswith("紧急电话：400-000-1234")
    assert answer.sources and answer.sources[0].section == "燃气安全"  # the instruction, not 适用场景
    assert "关闭燃气阀门" in answer.answer


def test_an_emergency_instruction_lists_this_dangers_case_first(chat: ChatResponder) -> None:
    """A supervisor's trial: trapped in a lift, the emergency contacts were shown with the gas company's number first
    and 电梯困人 last. A list's case for this danger comes first; numbered steps and unlabelled lines keep theirs."""
    answer, _ = chat.answer("我被困在电梯里了")
    assert answer.urgent and answer.sources and answer.sources[0].section == "紧急联系方式"
    assert answer.answer.index("电梯困人：") < answer.answer.index("燃气抢修")
    danger = chat.danger
    assert danger is not None
    steps = "1. 关闭燃气阀门\n2. 电梯困人：按紧急呼叫按钮"
    assert danger.lines_first(steps, ["lift"]) == steps
    listed = "- 认清安全出口\n- 发现起火：用灭火器\n- 撤离时捂住口鼻"
    assert danger.lines_first(listed, ["fire"]) == "- 发现起火：用灭火器\n- 认清安全出口\n- 撤离时捂住口鼻"
    assert danger.lines_first(listed, ["lift"]) == listed


def test_an_emergency_in_the_tenants_words_shows_the_public_safety_instruction(chat: ChatResponder) -> None:
    # 厨房有股煤气味: no everyday answer passes the answer threshold; the safety guide's gas section answers the
    # question read with the matched gas procedure's title. Without that search the urgent answer had no instruction.
    answer, _ = chat.answer("厨房有股煤气味")
    assert answer.urgent and answer.sources and answer.sources[0].section == "燃气安全"
    assert "关闭燃气阀门" in answer.answer
    danger, chat.danger = chat.danger, None
    try:
        before, _ = chat.answer("厨房有股煤气味")
    finally:
        chat.danger = danger
    assert before.urgent and not before.sources


def test_an_emergency_no_passage_names_gets_the_safety_guides_general_steps(chat: ChatResponder) -> None:
    """房间淹了 and a radiator bursting were urgent with no instruction at all: the public safety guide has no
    flooding section, and its steps for any emergency (they name the main water valve) scored below the bar. A guide
    for several dangers now gives the passage of it that fits the danger; a single-danger procedure never does
    (test_another_dangers_procedure_is_no_safety_instruction)."""
    # nor the guide's water outage (停电停水时怎么办) for a burst pipe or water through a light (a trial, session 45)
    for question in (
        "房间淹了",
        "暖气片爆裂了 热水喷得到处都是 好烫",
        "厨房水管爆了，水喷得到处都是",
        "天花板漏水，灯里在滴水",
    ):
        answer, _ = chat.answer(question)
        assert answer.urgent and answer.sources, question
        assert (answer.sources[0].sop_id, answer.sources[0].section) == ("safety-guide-public", "处理步骤"), question
        assert "总水阀" in answer.answer and "不要点蜡烛" not in answer.answer


def test_danger_signals_make_a_question_urgent_whatever_document_it_matches(chat: ChatResponder) -> None:
    # 着火了怎么办 is best matched by the public safety guide (priority normal); 水管爆了 by the everyday pipe repair.
    for question, section in (("着火了怎么办", "火灾逃生"), ("水管爆了，水一直往外喷", None)):
        answer, _ = chat.answer(question)
        assert answer.urgent and answer.priority == "urgent", question
        assert answer.answer.startswith("紧急电话：400-000-1234")
        if section:
            assert answer.sources[0].section == section
        qvec = chat.searcher.embed_queries([question])[0]
        assert chat.match(question, qvec).priority == "urgent"  # the case is queued first too
    # The search itself now puts the fire procedure above the safety guide for the words' danger signal (session 28)
    assert chat.searcher.search("着火了怎么办", audience="agent").results[0].sop_id == "emergency-fire-alarm"
    for calm in ("紧急情况打什么电话", "燃气灶打不着火了"):  # the same topics, nothing happening
        assert not chat.answer(calm)[0].urgent, calm
    # A supply cut matches the gas procedures but is no leak (a new customer's trial: the gas alarm, 119/120/110)
    for cut in ("燃气停了做不了饭", "天然气停了什么时候来气"):
        answer, _ = chat.answer(cut)
        assert not answer.urgent and answer.priority == "normal", cut
    assert chat.answer("燃气停了，厨房还有股煤气味")[0].urgent  # a danger signal still decides


def test_a_tenant_is_never_answered_with_an_escalation_rule(chat: ChatResponder) -> None:
    # A trial: 断网好几天了有补偿吗 was answered with network-wifi's public 升级处理 section (who escalates to the store
    # manager after how long): agents' rules, not an answer, even where the author left them public.
    answer, _ = chat.answer("断网好几天了有补偿吗")
    assert all(src.section != "升级处理" for src in answer.sources), answer.sources
    assert "值班主管" not in answer.answer and "店长" not in answer.answer


def test_danger_signals_ignore_ordinary_phrases() -> None:
    signals = DangerSignals.builtin()
    assert [s.kind for s in signals.found("厨房着火了")] == ["fire", "fire"]
    assert signals.found("燃气灶打不着火了") == [] and signals.found("烟感误报怎么办") == []
    # Water spraying out is an emergency (a trial: 厨房水管裂了在喷水 raised no alarm); a shower's weak jet is not
    assert [s.kind for s in signals.found("厨房水管裂了在喷水")] == ["water"]
    assert signals.found("软管崩开了，水一直喷") and signals.found("花洒喷水很小") == []
    extended = DangerSignals({"lift": ["困梯"]}, ignore=["困梯演练"])
    assert extended.found("有人困梯") and not extended.found("下周困梯演练")


def test_a_power_cut_told_as_one_rooms_is_no_blackout_but_a_shock_still_is() -> None:
    """A new agent's trial: 我房间突然没电了，别的房间好像有电 was put first as the blackout emergency (险情优先),
    while the power-cut SOP itself sends one room's cut to the lighting repair."""
    signals = DangerSignals.builtin()
    for confined in (
        "那个，我房间突然没电了，别的房间好像有电，是不是跳闸了啊",
        "突然没电了，客厅有电",
        "卧室突然断电 其他房间都有电",
    ):
        assert signals.found(confined) == [], confined
    for whole in ("家里突然没电了", "突然没电了，客厅也没有电", "客厅没有电了，突然全黑"):
        assert [s.kind for s in signals.found(whole)] == ["power"], whole
    assert [s.kind for s in signals.found("突然没电了，别的房间有电，插座在冒火花")] == ["electrical"]


def test_a_threat_at_home_is_a_security_emergency_and_a_call_back_is_none() -> None:
    """A new agent's trial (陌生人一直敲门，我好害怕) and a training manager's re-check (我老公喝醉了打我,
    我家被偷了电脑没了) got no emergency; 打我电话 asks for a call, 快递被偷 and 陌生人敲门要不要开 are questions."""
    signals = DangerSignals.builtin()
    threats = ("门外有陌生人一直敲门，我好害怕", "我老公喝醉了打我", "我男朋友动手打我", "我家被偷了电脑没了")
    for said in (*threats, "门口有人一直不走 我好害怕"):
        assert [s.kind for s in signals.found(said)][:1] == ["security"], said
    calm = (
        "师傅来之前打我电话",
        "有事打我手机",
        "麻烦打我这个号码",
        "快递被偷了",
        "陌生人敲门要不要开",
        "楼上一直敲东西好吵",
    )
    for said in calm:
        assert signals.found(said) == [], said


@pytest.mark.parametrize(
    ("said", "urgent"),
    [
        # A trial (session 20): water pouring from the ceiling, or dripping from a light, was an ordinary hand-over.
        ("天花板的水哗哗往下流", True),
        ("水从天花板灌下来了 灯都在滴水", True),
        ("楼上漏水 水很大 一直哗哗往下流", True),
        ("天花板漏水了水一直往下流", True),
        ("好的 现在水更大了 灯也在滴水", True),
        # Session 28's trial: the listed phrases with words inside them, and water spreading to other rooms
        ("楼上漏水了，天花板在往下哗哗灌水，灯里也在滴水", True),
        ("哗哗的往下流 灯里面都在滴水 都流到卧室去了", True),
        ("马桶水哗哗流个不停", False),
        ("家里天花板在往下滴水怎么办", False),  # dripping: the everyday leak procedure (30 minutes on site)
        ("水龙头关不紧一直滴水", False),
        ("热水器出水很大是正常的吗", False),
        # A phone trial (session 39): water reaching the wiring; a tap that will not close stays a repair
        ("天花板一直在往下漏水 滴到电线那了", True),
        ("卫生间顶上漏水，旁边就是电线", True),
        ("水龙头漏水关不住", False),
        # A trial (session 45): a socket wet through; a water heater's socket without power stays a repair
        ("天花板一直往下漏水，插座都湿了", True),
        ("插座被水泡了", True),
        ("天花板漏水，插座在滴水", True),
        ("热水器插座没电了", False),
        # A supervisor's trial (session 49): a leak the tenant calls severe, water welling out
        ("漏水很严重", True),
        ("卫生间漏水很严重 水一直往外冒", True),
        ("天花板一直在滴水", False),
    ],
)
def test_water_pouring_from_above_is_an_emergency_and_a_drip_is_not(said: str, urgent: bool) -> None:
    assert bool([s for s in DangerSignals.builtin().found(said) if s.kind == "water"]) is urgent


@pytest.mark.parametrize(
    ("said", "kind", "signalled"),
    [
        # a phone trial and its re-check (session 39): the generic advice, or a place's everyday answer
        ("电梯卡在8楼和9楼中间了 我和孩子在里面 门打不开", "lift", True),
        ("电梯到了8楼中间那个按钮不亮", "lift", False),
        ("电梯里面的广告太吵了", "lift", False),
        ("停车场有人被车撞了", "medical", True),
        ("游泳池里有人溺水了", "medical", True),
        ("手机掉水里了", "medical", False),
        ("车祸险怎么买", "medical", False),
    ],
)
def test_a_lift_stuck_drowning_or_a_person_hit_by_a_car_is_an_emergency(said: str, kind: str, signalled: bool) -> None:
    assert bool([s for s in DangerSignals.builtin().found(said) if s.kind == kind]) is signalled


@pytest.mark.parametrize(
    ("said", "gas"),
    [
        ("哎不对 我闻到一股臭味 像臭鸡蛋那种", True),
        ("厨房那边味道特别冲 是不是漏气了啊 我有点头晕", True),  # 漏气 and 头晕 together
        ("空调漏气了要加氟吗", False),  # 漏气 alone is the air conditioner's
        ("空调漏气吹的风有股味道", False),
        ("最近老是有点头晕", False),
    ],
)
def test_words_ordinary_alone_signal_a_gas_leak_together(said: str, gas: bool) -> None:
    assert bool([s for s in DangerSignals.builtin().found(said) if s.kind == "gas"]) is gas


def test_words_with_a_danger_signal_bring_the_emergency_procedure_first_in_search(use_kb: KnowledgeBase) -> None:
    """The everyday leak repair was first for water pouring down a light fitting into the bedroom (a trial), and
    the search said neither emergency nor a confident match."""
    for said in (
        "厕所顶上在渗水，现在哗哗的往下流，灯里面都在滴水，都流到卧室去了",
        "天花板在往下哗哗灌水，灯里也在滴水",
    ):
        resp = use_kb.searcher.search(said, audience="agent", with_confidence=True)
        Confidence().annotate(resp, use_kb.searcher.catalog)
        assert resp.results[0].sop_id == "emergency-flooding" and resp.emergency and not resp.weak, said
        assert "repair-leak-ceiling" in [h.sop_id for h in resp.results[1:3]]  # the repair is still there, second
    calm = use_kb.searcher.search("天花板在往下滴水", audience="agent")
    assert calm.results[0].sop_id == "repair-leak-ceiling"  # a drip without a danger signal stays a repair


def test_a_rental_deposit_question_is_not_answered_with_the_pet_deposit(chat: ChatResponder) -> None:
    for question in ("押金什么时候退", "退房后押金多久能退"):
        answer, _ = chat.answer(question)
        assert not answer.sources or answer.sources[0].sop_id != "pet-policy", (question, answer.sources)


def test_a_lost_card_is_answered_from_the_door_card_procedure(chat: ChatResponder) -> None:
    answer, _ = chat.answer("门卡丢了怎么办")
    assert not answer.handoff and answer.sources[0].sop_id == "access-door-card"


def test_a_glossary_phrase_in_the_question_is_named_by_its_parts(chat: ChatResponder) -> None:
    # The glossary teaches jieba 快递丢了 as one word; its 丢 counted nowhere, so every passage with 快递 named it
    # alike, and the FAQ pair nearest in wording (快递可以让前台代收吗？「可以，每天08:00–22:00前台免费代收…」) answered
    # over the steps for a lost parcel (丢件：…).
    assert words("快递丢了怎么办") == ["快递丢了"]
    answer, _ = chat.answer("快递丢了怎么办")
    assert not answer.handoff and answer.sources[0].sop_id == "parcel-service"
    assert "丢件" in answer.answer and "前台免费代收" not in answer.answer


def test_a_fee_asked_in_plain_words_is_answered_by_the_fee_pair(chat: ChatResponder) -> None:
    """A tenant's trial: 阳台晾衣杆摇不下来了，修要收钱吗 was told a repeat repair is free (修好没几天又坏了怎么办？),
    as the pair 维修要收费吗？ asks in words the tenant did not say: 收费 (the tenant asks the same, 收钱) and 维修
    (the tenant's verb alone, 修). 前 of 到期前 is no verb: it names no 提前."""
    for question in ("阳台晾衣杆摇不下来了，修要收钱吗", "修东西要收钱吗"):
        answer, _ = chat.answer(question)
        assert not answer.handoff and answer.sources[0].section == "维修要收费吗？", question
    texts = ["维修要收费吗？", "修好没几天又坏了怎么办？"]
    assert named(["维修", "收费"], texts, "修要收钱吗") > named(["维修", "收费"], texts, "换要收钱吗")
    assert named(["提前"], texts, "到期前多久要说") == 0.0


def test_a_question_for_which_thing_is_answered_only_by_a_passage_naming_such_things(chat: ChatResponder) -> None:
    """A hard out-of-scope question, 住这边的话补办身份证去哪个派出所, was told where to reissue a door card (补办,
    身份证): it asks which 派出所, and no document names one. Which 门店 or 快递柜 is still answered."""
    assert objects.which_of("补办身份证去哪个派出所") == "派出所" and objects.which_of("找哪个部门") is None
    answer, _ = chat.answer("住这边的话补办身份证去哪个派出所")
    assert answer.handoff and not answer.sources
    for question, sop in (("门卡丢了去哪个门店补办", "access-door-card"), ("快递放在哪个快递柜", "parcel-service")):
        answer, _ = chat.answer(question)
        assert not answer.handoff and answer.sources[0].sop_id == sop, question


def test_a_bare_no_answers_only_a_question_asking_yes_or_no_or_about_the_same_things(chat: ChatResponder) -> None:
    """A hard out-of-scope question, 附近哪里能租到储物间 东西太多房间放不下, got 「不可以。走廊和楼梯间是消防通道…」:
    that no refuses what the pair's own question asked (楼道里可以放鞋柜或者自行车吗？), not what the tenant asks. About
    the same things a no corrects the question: 健身房怎么预约 is told 「不需要，…刷脸入场即可」."""
    refusal, corridor = "不可以。走廊和楼梯间是消防通道。", words("楼道里可以放鞋柜或者自行车吗？")
    assert answer_types.unasked_no("附近哪里能租到储物间", refusal, corridor)
    assert not answer_types.unasked_no("楼道里能放鞋柜吗", refusal, corridor)
    assert not answer_types.unasked_no("哪里能放", "可以。", corridor)
    answer, _ = chat.answer("附近哪里能租到储物间 东西太多房间放不下")
    assert answer.handoff and not answer.sources
    answer, _ = chat.answer("健身房怎么预约")
    assert not answer.handoff and answer.sources[0].section == "健身房需要预约吗？"


def test_an_unanswerable_question_hands_over_with_the_matched_sops_form_fields(chat: ChatResponder) -> None:
    answer, _ = chat.answer("家里天花板在往下滴水怎么办")
    assert answer.handoff and not answer.urgent
    assert any("水是从哪里来的" in f for f in answer.handover_fields)  # repair-leak-ceiling's front matter
    off_topic, _ = chat.answer("附近有什么好吃的火锅店推荐吗")
    assert off_topic.handoff and off_topic.sources == [] and off_topic.handover_fields == []


def test_object_mismatch_rules() -> None:
    q = "押金什么时候退"
    assert mismatch(words(q), q, "宠物押金多少钱？能退吗？") == "宠物"
    assert mismatch(words(q), q, "押金什么时候退还？") is None
    pet = "我想养条狗需要交押金吗"  # a member of the class names it: the dog's deposit is the pet deposit
    assert mismatch(words(pet), pet, "宠物押金多少钱？能退吗？") is None
    q2 = "外卖能送到门口吗"
    assert mismatch(words(q2), q2, "外卖能送到房间门口吗？") is None  # 门口 is a place, not the same object
    q3 = "退房后押金多久能退"
    assert qualified_everywhere(words(q3), q3, "1. 交宠物押金。\n2. 退房时宠物押金退还。") == "宠物"
    assert qualified_everywhere(words(q3), q3, "验房后押金 7 天内退还。") is None
    # After 按 (according to) a noun says how, not which object: 按临停标准收费 still prices parking (a trial's
    # 临时停车怎么收费 was handed over while 临时停车多少钱 was answered)
    q5 = "临时停车怎么收费"
    assert qualified_everywhere(words(q5), q5, "- 访客：2小时内免费，超出部分按临停标准收费。") is None
    assert qualified_everywhere(words(q5), q5, "- 固定车位收费：每月500元。") == "车位"
    # Who does it is no narrower kind of it: 服务人员上门, 消杀公司上门 still speak of 上门 (a second company's
    # 保洁上门的时候我不在家可以吗 was handed over)
    q6 = "保洁上门的时候我不在家可以吗"
    steps = "1. 服务人员上门前30分钟电话联系，租客不在家可授权临时密码。\n2. 由专业消杀公司上门。"
    assert qualified_everywhere(words(q6), q6, steps) is None
    # A heading about what a named noun owns is about that (a trial: a visiting friend answered with the pet FAQ)
    pet = "临时寄养朋友的宠物也要登记吗？"
    for q4, owned in (("我朋友来住几天需要登记吗", "宠物"), ("朋友的猫寄养在我这要登记吗", None)):  # 猫 is a 宠物
        assert mismatch(words(q4), q4, pet) == owned, q4
    # A qualifier is named by a character of its own, not by one it shares with the noun it qualifies: the 租 of
    # 房租 names no 续租 (房租几号交 got 续租房租会涨吗？'s answer); what a colloquial phrase stands for names it
    renewal = "续租房租会涨吗？"
    for q7, meant, other in (
        ("房租几号交", "租金缴纳 账单核对", "续租"),
        ("再住一年房租会涨吗", "续租 租金调整", None),
    ):
        assert mismatch(words(q7), q7, renewal, meant) == other, q7
    assert mismatch(words(pet), pet, "宠物押金多少钱？能退吗？", "") is None  # a member still names its class


def test_front_matter_priority_and_handover_fields() -> None:
    ok = parse_bytes("t.md", HEAD.format(extra="priority: urgent\nhandover_fields: [水从哪里来]\n").encode())
    assert ok.sop is not None and ok.sop.meta.priority == "urgent" and ok.sop.meta.handover_fields == ["水从哪里来"]
    bad = parse_bytes("t.md", HEAD.format(extra="priority: 很急\n").encode())
    assert bad.sop is None and any("priority" in i.message and i.line == 6 for i in bad.issues)
    too_many = "handover_fields: [a, b, c, d, e]\n"
    bad = parse_bytes("t.md", HEAD.format(extra=too_many).encode())
    assert bad.sop is None and any("handover_fields" in i.message for i in bad.issues)
    unset = parse_bytes("t.md", HEAD.format(extra="").encode())
    assert unset.sop is not None and unset.sop.meta.priority is None and unset.sop.meta.handover_fields == []


def test_what_only_staff_documents_cover_is_handed_over_not_answered_from_a_public_text_on_another_topic(
    chat: ChatResponder,
) -> None:
    # Each matches a staff-only procedure first; the public texts that share a word (the utility-bill steps, the
    # door-card steps, the deduction rules) are about something else (the new-user trial's wrong answers).
    for question, staff_sop in (
        ("马桶堵了", "repair-drain-blocked"),
        ("钥匙丢了进不去门", "access-lost-key"),
    ):
        answer, _ = chat.answer(question)
        assert answer.handoff and answer.sources == [], (question, answer.sources)
        assert chat.match(question, chat.searcher.embed_queries([question])[0]).sop_id == staff_sop


def test_a_time_a_public_passage_gives_is_answered_though_a_staff_procedure_matches_first(
    chat: ChatResponder,
) -> None:
    # The staff deposit-refund procedure is the question's first document; the public moving-out rules say when the
    # deposit comes back. Before, the tenant was handed over for a time the public text states.
    question = "押金什么时候退"
    assert chat.match(question, chat.searcher.embed_queries([question])[0]).sop_id == "deposit-refund"
    answer, _ = chat.answer(question)
    assert not answer.handoff and answer.sources[0].sop_id == "moveout-process", answer.sources
    assert "押金" in answer.answer and re.search(r"\d+\s*个?工作日", answer.answer), answer.answer
    chat.typed_override = None  # the previous behaviour: a staff topic is handed over whatever the passage gives
    try:
        assert chat.answer(question)[0].handoff
    finally:
        chat.typed_override = TYPED_OVERRIDE


def test_an_emergency_shows_no_public_text_about_another_emergency(chat: ChatResponder) -> None:
    answer, _ = chat.answer("电梯困住了")
    assert answer.urgent and answer.answer.startswith("紧急电话：400-000-1234")
    # The safety guide's fire escape was shown before; now its contacts section, whose lift line is the instruction.
    assert [s.section for s in answer.sources] == ["紧急联系方式"] and "电梯困人" in answer.answer
    assert "湿毛巾" not in answer.answer and "火灾逃生" not in answer.answer
    # A widget trial: a break-in got the fire-escape paragraph, which lists 110 like every safety page
    burglary, _ = chat.answer("有人在撬我家的门！")
    assert burglary.urgent and burglary.handoff and "拨打 110" in burglary.answer
    assert all(s.section != "火灾逃生" for s in burglary.sources) and "湿毛巾" not in burglary.answer


def test_the_staff_topic_check_can_be_switched_off_and_then_answers_as_before(use_kb: KnowledgeBase) -> None:
    first = ChatResponder.from_settings(use_kb.searcher, get_settings())
    first.staff_topic_check = False
    first.weak_floor = False  # a weak match too: that floor alone hands it over as well
    # The first version's wrong answer, the door-card steps, is what the check prevents. (马桶堵了's utility-bill
    # steps no longer come first either way: they are written for staff, session 32.)
    answer, _ = first.answer("钥匙丢了进不去门")
    assert not answer.handoff and answer.sources[0].sop_id == "access-door-card"
    first.staff_topic_check = True
    assert first.answer("钥匙丢了进不去门")[0].handoff


def test_a_question_for_a_time_is_answered_by_the_passage_that_gives_one(chat: ChatResponder) -> None:
    answer, _ = chat.answer("健身房几点开门")
    assert not answer.handoff and answer.sources[0].sop_id == "community-activities"
    assert "06:00" in answer.answer


def test_money_that_has_not_come_back_is_answered_with_how_long_it_takes(chat: ChatResponder) -> None:
    # A trial: 押金还没到账怎么办 was told the moving-out cautions (验房须本人在场…); the time limits say when it comes
    answer, _ = chat.answer("押金还没到账怎么办")
    assert not answer.handoff and answer.sources[0].section == "时限要求", answer.sources
    assert "7个工作日内原路退回" in answer.answer


def test_answer_kinds() -> None:
    kinds = [t.name for t in answer_types.asked("健身房几点开门，要收费吗")]
    assert kinds == ["time", "amount"]
    assert answer_types.asked("马桶堵了") == []
    assert answer_types.asked("邻居门口的垃圾放了好几天了") == []  # how long it lasted, not a question for a time
    assert answer_types.asks_duration("押金几天能到账") and not answer_types.asks_duration("健身房几点开门")
    assert answer_types.asks_duration("押金还没到账怎么办") and not answer_types.asks_duration("押金到账了吗")
    # Whether a fee applies is no question for a sum (免费 answers it), but an agent's card reads it as one
    for fee in ("合同更名要手续费吗", "换房收费吗", "维修要不要钱", "搬家有费用吗", "宽带是免费的吗"):
        assert answer_types.asks_fee(fee) and not answer_types.asks_price(fee), fee
    for other in ("押金能退吗", "电费怎么交", "门卡丢了怎么办", "费用怎么交"):
        assert not answer_types.asks_fee(other), other
    time_only = answer_types.asked("几点开门")
    assert answer_types.holds(time_only, "每天06:00–23:00开放") == 1.0
    assert answer_types.holds(time_only, "请在App预约") == 0.0
    yes_no = answer_types.asked("阳台能不能烧烤")
    assert answer_types.holds(yes_no, "不可以。阳台禁止明火。") == 1.0
    how = answer_types.asked("房租发票怎么开")
    assert [t.name for t in how] == ["how"] and answer_types.holds(how, "1. APP—“我的账单”—申请开票") == 1.0
    assert answer_types.holds(how, "租金、服务费：增值税普通发票或专用发票") == 0.0  # the cases, not the way
    assert answer_types.asked("空调坏了怎么办") == []  # 怎么办 asks for help, not for a way of doing something


def test_an_faq_about_something_the_question_does_not_ask_gives_way_to_the_passage_that_answers(
    use_kb: KnowledgeBase,
) -> None:
    """门禁卡丢了怎么补 asks how, not what it costs: the steps answer, not the FAQ 补办门禁卡要收费吗？ that the
    previous release chose; and 访客的车停一天多少钱 asks a price, not where to park."""
    chat = ChatResponder.from_settings(use_kb.searcher, get_settings())
    for question, faq, answering in (
        ("门禁卡丢了怎么补", "补办门禁卡要收费吗？", "处理步骤"),
        ("访客的车停一天多少钱", "朋友来访车停哪里？", "收费标准"),
    ):
        # (a price question is also kept from the FAQ by price_strict, a question for a way by the steps' kind)
        chat.faq_focus, chat.price_strict, chat.type_weight = 0.0, False, 0.0
        before, _ = chat.answer(question)
        assert before.sources and before.sources[0].section == faq  # what the FAQ focus changes
        chat.faq_focus, chat.price_strict, chat.type_weight = FAQ_FOCUS_WEIGHT, True, TYPE_WEIGHT
        after, _ = chat.answer(question)
        assert not after.handoff and after.sources[0].section == answering, (question, after.sources)


def test_the_share_of_an_faq_question_the_tenant_names() -> None:
    texts = ["补办门禁卡要收费吗？ 工本费20元。", "1. 登记身份。\n2. 补办门禁卡。", "门禁卡失效怎么办"]
    assert named(words("门禁卡丢了怎么补办"), texts, "门禁卡丢了怎么补办") == 1.0
    share = named(words("补办门禁卡要收费吗"), texts, "门禁卡丢了怎么补")
    assert 0.0 < share < 0.7  # 门禁卡 is named, 收费 (and 补办 as a word) are not
    # A word the tenant says cut apart (jieba: 开发票 in the FAQ, 发票 … 开 in the question) is named; a word two of
    # whose characters the question has, in other words, is not
    assert named(words("房租可以开发票吗"), texts, "房租发票怎么开") == 1.0
    assert named(words("房租可以开发票吗"), texts, "房租怎么交") < 0.7


def test_a_question_the_faq_asks_in_other_cuts_is_answered_by_that_faq(chat: ChatResponder) -> None:
    """A trainer's trial: 房租发票怎么开 got the invoice notes (不能把房租开成其他品目…), because the FAQ
    房租可以开发票吗？ read 开发票 as one word the question did not name."""
    answer, _ = chat.answer("房租发票怎么开")
    assert not answer.handoff and answer.sources[0].section == "房租可以开发票吗？", answer.sources


def test_a_long_list_of_cases_is_cut_to_the_case_asked_about(chat: ChatResponder) -> None:
    answer, _ = chat.answer("健身房几点开门")
    shown = answer.answer.split("\n\n（来源")[0]
    assert answer.sources[0].section == "公共空间开放规则" and "健身房：06:00–23:00" in shown
    assert "自习室" not in shown and answer.full_text is not None and "自习室" in answer.full_text
    lost, _ = chat.answer("门禁卡丢了怎么补")  # a case keeps the unlabelled step that continues it
    lost_shown = lost.answer.split("\n\n（来源")[0]
    assert "门禁卡丢失：" in lost_shown and "到门店前台补办" in lost_shown and "人脸识别录入" not in lost_shown
    steps, _ = chat.answer("在app上怎么报修")  # a plain sequence of steps answers a "how" question whole
    assert steps.full_text is None and "2." in steps.answer
    chat.excerpts = False
    try:
        whole, _ = chat.answer("健身房几点开门")
    finally:
        chat.excerpts = True
    assert whole.full_text is None and "自习室" in whole.answer


def test_the_case_whose_label_the_question_names_is_shown(chat: ChatResponder) -> None:
    """退租押金 asks about the deposit (the head of the noun phrase), not about the notice for moving out."""
    deposit, _ = chat.answer("退租押金多久能到账")
    assert "押金：交接单签字后7个工作日内原路退回" in deposit.answer.split("\n\n（来源")[0], deposit.answer
    taken, _ = chat.answer("车位让人停了")
    assert taken.answer.startswith("4. 车位被占："), taken.answer
    assert label_named("- 押金：签字后退回", "退租押金多久能到账") == 1.0
    assert label_named("- 退租申请：30天前提交", "退租押金多久能到账") == 0.5


def test_a_list_of_conditions_is_cut_to_the_condition_asked_about(chat: ChatResponder) -> None:
    """怎么突然停水了 was shown 停电停水时怎么办 whole, its two lines for a power cut first."""
    water, _ = chat.answer("怎么突然停水了")
    shown = water.answer.split("\n\n（来源")[0]
    assert "停水时请关闭家中所有水龙头" in shown and "停电时请用手电筒" not in shown, water.answer
    assert water.full_text is not None and "停电时请用手电筒" in water.full_text
    power, _ = chat.answer("停电了怎么办")  # both lines about a power cut, the labelled check first
    shown = power.answer.split("\n\n（来源")[0]
    assert "先看楼道灯和邻居家" in shown and "停电时请用手电筒" in shown and "停水时" not in shown, power.answer


def test_a_question_for_a_day_is_shown_the_deadline_and_each_part_its_case(chat: ChatResponder) -> None:
    """A trial: 每个月几号之前要交房租 was shown the payment period (月付、季付…), its 月 read as the answer; and
    房租可以用微信交吗？每个月几号之前要交？ got the FAQ on changing to monthly payment (「可以，…15天」), jieba
    having cut 微信 into 用微 / 信交."""
    day, _ = chat.answer("每个月几号之前要交房租")
    shown = day.answer.split("\n\n（来源")[0]
    assert "账单日" in shown and "付款周期" not in shown, day.answer
    both, _ = chat.answer("房租可以用微信交吗？每个月几号之前要交？")
    shown = both.answer.split("\n\n（来源")[0]
    assert "微信" in shown and "账单日" in shown and "15天" not in shown, both.answer
    assert "微信" in words("房租可以用微信交吗")
    assert answer_types.asks_day("房租最晚哪天交") and not answer_types.asks_day("房租怎么交")
    assert answer_types.holds_day("每期租金须在账单日（起租日前5天）前付清") and answer_types.holds_day("每月25日")
    assert not answer_types.holds_day("扣款前3天短信提醒") and not answer_types.holds_time("按合同约定半年付或年付")


def test_excerpt_rules() -> None:
    assert labelled("- 健身房：06:00–23:00") and labelled("4. 指纹识别不了：擦干净手指")
    assert not labelled("2. 挂失后到门店前台补办，携带本人身份证") and not labelled("这是一句很长很长的说明文字：后面")
    # A bulleted line opening with the condition it is for (停电时…, 退租的时候…) names its case too; a time (24小时内,
    # 同时, 临时) does not, nor a numbered step (a sequence answers whole)
    assert labelled("- 停电时请用手电筒照明") and labelled("- 退租的时候请带齐钥匙") and labelled("- 临时停水时请关阀")
    assert not labelled("2. 到场时先核对房号")
    assert label_named("- 停水时请关闭水龙头", "怎么突然停水了") == 0.0  # a condition ranks its line by its words
    for line in ("- 24小时内上门", "- 同时请通知管家", "- 临时密码当天有效", "- 平时请保持通风", "- 及时时间很重要"):
        assert not labelled(line), line


def test_a_danger_signal_holds_over_a_pause() -> None:
    """A recogniser's segments are joined with a comma, and tenants pause between the thing and what it does: 水管 ·
    爆了 and 厨房那个煤气 · 味道好大 said nothing dangerous. A pause inside a phrase is read like a filler; a sentence's
    end is not."""
    signals = DangerSignals.builtin()
    for said, kind in (("水管，爆了", "water"), ("厨房那个煤气，味道好大", "gas"), ("燃气、味道很大", "gas")):
        assert kind in [s.kind for s in signals.found(said)], said
    assert not signals.found("水管。爆了吗？我是问那个新闻")
    assert not signals.found("燃气费怎么交，味道")  # parts apart: no phrase spans them


def test_smoke_told_with_how_much_of_it_is_a_danger_and_a_smokers_smell_is_not() -> None:
    """A re-check's call: 楼下冒了好多烟 raised nothing (冒烟 with 了好多 inside). Smoke coming out, told with how
    much of it, is a fire signal; smoke someone smokes is no danger."""
    signals = DangerSignals.builtin()
    for said in ("楼下冒了好多烟", "厨房冒了烟", "插座那里冒出好多烟", "楼道里冒很多烟"):
        assert "fire" in [s.kind for s in signals.found(said)], said
    for calm in ("楼道好多烟头没人扫", "隔壁抽烟好大的烟味", "一做饭满屋子油烟"):
        assert not signals.found(calm), calm


def test_danger_signals_in_english_and_with_spaces() -> None:
    signals = DangerSignals.builtin()
    assert [s.kind for s in signals.found("I smell gas in my apartment")] == ["english"]
    assert signals.found("煤 气 味") and not signals.found("How do I pay the gas bill?")


def test_a_confident_document_answers_in_words_its_passages_do_not_share(use_kb: KnowledgeBase) -> None:
    chat = ChatResponder.from_settings(use_kb.searcher, get_settings())
    answer, _ = chat.answer("楼道好脏谁来打扫")  # the cleaning SOP says 公共区域 and 保洁, not 楼道 or 打扫
    assert not answer.handoff and answer.sources[0].sop_id == "cleaning-service"
    chat.confident_min_score = None  # one bar for every passage, as before: no passage names enough of it
    assert chat.answer("楼道好脏谁来打扫")[0].handoff
    # A document matched without that confidence still needs a passage that answers: out of scope is handed over.
    assert ChatResponder.from_settings(use_kb.searcher, get_settings()).answer("驾照到期了去哪换")[0].handoff


def test_a_weak_match_gives_no_answer(use_kb: KnowledgeBase) -> None:
    chat = ChatResponder.from_settings(use_kb.searcher, get_settings())
    # A passage shares a word, the document is a weak match (and 我的那个申请呢's leads its second by 1 %)
    for question in ("后天要降温吗", "高速公路收费标准", "我的那个申请呢"):
        assert chat.answer(question)[0].handoff, question
    # Without the floor it was told 晚交几天会怎样？ (an FAQ pair naming none of its objects): since session 55 that
    # pair is no answer to it either
    chat.weak_floor = False
    assert chat.answer("后天要降温吗")[0].handoff
    # The line is the calibrated confidence's (the console's 匹配较弱): this one's sentence cosine passed it
    said = "我之前打过电话了 你们说会处理的"
    answer, hits = ChatResponder.from_settings(use_kb.searcher, get_settings()).answer(said)
    assert answer.handoff and answer.confidence >= chat.confidence.threshold, answer
    assert hits[0].match_confidence is not None and hits[0].match_confidence < chat.confidence.threshold


def test_the_urgent_message_gives_the_first_step_for_the_kind_of_danger(chat: ChatResponder) -> None:
    water = chat.answer("水管爆了，水一直往外喷")[0]
    assert water.urgent and "总水阀" in water.answer and "燃气" not in water.answer.split("\n\n")[0]
    gas = chat.answer("厨房有股煤气味")[0]
    assert gas.urgent and "先到室外，再拨打电话" in gas.answer and "不要在屋里打电话" in gas.answer
    assert "120" in DangerSignals.builtin().advice("我妈突然晕倒了")[0]
    assert "离开危险区域" in water.answer  # leaving helps here; not someone trapped in a lift (a supervisor's trial)
    lift = chat.answer("电梯卡在两层中间了，我被困在里面")[0]
    assert lift.urgent and "紧急呼叫按钮" in lift.answer and "离开危险区域" not in lift.answer, lift.answer


def test_small_talk_gets_a_short_reply_and_no_hand_over(chat: ChatResponder) -> None:
    replies = (("你好", "请直接描述"), ("在吗？", "请直接描述"), ("好的谢谢", "不客气"), ("嗯嗯", "好的"))
    for message, expected in replies:
        answer, hits = chat.answer(message)
        assert not answer.handoff and not answer.sources and not hits and expected in answer.answer, message
    for question in ("你好，押金什么时候退", "对了押金呢", "可以转租吗"):  # anything more is a question
        assert smalltalk.reply(question) is None, question
    chat.smalltalk = False
    try:
        assert chat.answer("好的谢谢")[0].handoff  # before: a hand-over form for a thank-you
    finally:
        chat.smalltalk = True


def test_a_question_opened_with_a_courtesy_is_answered_as_without_it(chat: ChatResponder) -> None:
    """A supervisor's trial: 押金什么时候退 was answered, 你好，押金什么时候退 and 您好，请问押金… handed over."""
    plain = chat.answer("押金什么时候退")[0]
    assert not plain.handoff and plain.sources
    for said in (
        "你好，押金什么时候退",
        "您好，请问押金什么时候退？",
        "你好 押金什么时候退",
        "麻烦问一下押金什么时候退",
    ):
        got = chat.answer(said)[0]
        assert got.sources == plain.sources and got.answer == plain.answer, said
    assert smalltalk.question("你好") == "你好" and smalltalk.question("请问") == "请问"  # nothing else: kept whole


def test_asked_whether_a_machine_answers_the_chat_says_so_without_a_hand_over(chat: ChatResponder) -> None:
    for said in ("你是机器人吗", "请问你是真人吗？", "是人工吗"):
        got = chat.answer(said)[0]
        assert not got.handoff and "智能客服" in got.answer and "转人工" in got.answer, said
    assert smalltalk.reply("人工客服") is None and smalltalk.reply("真人") is None  # asking for a person is not


def test_a_hand_over_for_a_question_the_documents_place_does_not_list_what_the_chat_answers(
    chat: ChatResponder,
) -> None:
    """A trial: 空调坏了不制冷 was told 「我能解答报修…问题」 and handed over, read as "but not yours". A question
    matched to a procedure a person handles says only that; one outside the service keeps the scope line."""
    placed = chat.answer("空调坏了不制冷")[0]
    assert placed.handoff and placed.answer == HANDOFF_PLACED, placed.answer
    outside = chat.answer("今天天气怎么样")[0]
    assert outside.handoff and outside.answer == HANDOFF_MESSAGE, outside.answer


def test_an_alarm_with_no_fire_or_a_lifts_inspection_date_is_no_emergency(chat: ChatResponder) -> None:
    """A supervisor's trial: 烟感一直响 但是没着火 was told to call 119 and leave; 电梯年检是哪天 raised the alarm."""
    alarm = chat.answer("烟感一直响 但是没着火")[0]
    assert not alarm.urgent and "119" not in alarm.answer and alarm.sources, alarm.answer
    assert "通风" in alarm.answer  # its own FAQ: cooking smoke or steam, open the window
    assert not chat.answer("电梯年检是哪天")[0].urgent
    assert chat.answer("楼下着火了")[0].urgent  # a fire told is one
    fires = [s for s in DangerSignals.builtin().found("厨房冒烟了 还没着火") if s.kind == "fire"]
    assert fires  # "not yet" is no denial


def test_a_question_asking_for_a_sum_is_answered_only_by_a_passage_naming_one(chat: ChatResponder) -> None:
    # The price list ranks above the booking FAQ but misses the everyday bar; the FAQ passed it and was shown.
    cleaning = chat.answer("保洁多少钱一次")[0]
    assert not cleaning.handoff and cleaning.sources[0].section == "服务与价格" and "79元" in cleaning.answer
    # No passage of the parcel document names a sum: its steps are no answer to how much is paid for a lost parcel.
    lost = chat.answer("快递丢了赔多少钱")[0]
    assert lost.handoff and lost.sources == []
    chat.price_gate = False
    try:
        assert chat.answer("快递丢了赔多少钱")[0].sources[0].section == "处理步骤"  # what the gate prevents
    finally:
        chat.price_gate = True


def test_a_passage_naming_no_sum_never_answers_a_question_for_one_wherever_it_ranks(chat: ChatResponder) -> None:
    # The new-user trial: 停车月卡怎么办？ ranked above the price list and was the answer to how much the card costs;
    # 要交多少 was not read as a question for a sum.
    for question in ("停车月卡多少钱一个月", "小区能停车吗？月卡多少钱"):
        card = chat.answer(question)[0]
        assert not card.handoff and card.sources[0].section == "收费标准" and "500元" in card.answer, question
    pet = chat.answer("宠物押金要交多少")[0]
    assert not pet.handoff and "1,000元" in pet.answer
    # The wear-and-tear FAQ names no penalty: a person answers how much leaving early costs.
    assert chat.answer("我想提前退租，要赔多少钱")[0].handoff
    chat.price_strict = False
    try:
        assert chat.answer("停车月卡多少钱")[0].sources[0].section == "停车月卡怎么办？"  # what the rule prevents
    finally:
        chat.price_strict = True


def test_a_passage_of_a_document_far_behind_in_the_search_does_not_outrank_the_first_ones(
    chat: ChatResponder,
) -> None:
    """A tenant trial: 续租怎么办理 (search: renewal 2.84, moving out 1.75) was answered with the moving-out steps,
    whose 退租 and 合同到期 read closer than the renewal SOP's own sections."""
    renew = chat.answer("续租怎么办理")[0]
    assert renew.sources and renew.sources[0].sop_id == "lease-renewal", renew.answer


def test_a_price_is_answered_only_by_a_passage_about_what_is_priced(chat: ChatResponder) -> None:
    """A trainer's trial: 遛狗服务多少钱 was told the pet deposit's 每户1,000元 (the first passage naming a sum), and
    宠物押金要多少 got the registration steps (要多少 was no question for a sum)."""
    walk = chat.answer("遛狗服务多少钱")[0]
    assert not walk.handoff and "49元" in walk.answer and "1,000" not in walk.answer, walk.answer
    deposit = chat.answer("宠物押金要多少")[0]
    assert not deposit.handoff and "1,000元" in deposit.answer, deposit.answer
    assert answer_types.asks_price("宠物押金要多少") and answer_types.asks_price("电费一度多少")
    assert not answer_types.asks_price("押金多少天能退") and not answer_types.asks_price("要多少天")
    assert answer_types.priced_subject("遛狗服务多少钱").strip() == "遛狗服务"


FILTER = """---
id: ac-filter-cleaning
title: 空调滤网清洗预约
category: 报修
audience: public
tags: [空调滤网, 空调清洗]
---
# 空调滤网清洗预约

## 处理步骤
1. 核实租客房号、姓名和联系电话。
2. 在工单系统建立"空调滤网清洗"预约单，与租客约定上门时间段。

## 时限要求
- 工作日预约 48 小时内上门；周末及节假日 72 小时内上门。
- 每台空调滤网清洗约 20 分钟。

## 常见问题
### 空调滤网清洗要收费吗？
每半年一次滤网清洗免费；超过次数或需要整机深度清洗（拆机清洗）按公示价格收费，每台 80 元。

### 我自己可以清洗滤网吗？
可以。请先断电，打开面板取出滤网，用清水冲洗后阴干再装回。

### 清洗需要我在家吗？
建议您在家；如不在家，可授权管家陪同师傅入户。
"""


@contextmanager
def one_sop_chat(tmp_path: Path, sop_id: str, text: str, **more: str) -> Iterator[ChatResponder]:
    """The chat over a knowledge base of one SOP (a customer's document a trial met), and `more` (id: text)."""
    sops = tmp_path / "sops"
    sops.mkdir()
    for name, body in {sop_id: text, **more}.items():
        (sops / f"{name}.md").write_text(body, encoding="utf-8")
    kb = KnowledgeBase.from_settings(get_settings(data_dir=tmp_path / "data", sops_dir=sops))
    try:
        assert kb.ingest(sops).ok
        yield ChatResponder.from_settings(kb.searcher, get_settings())
    finally:
        kb.close()


def test_an_faq_question_asked_word_for_word_is_answered_by_its_answer(tmp_path: Path) -> None:
    """A trainer's trial: her FAQ question 空调滤网清洗要收费吗 got the steps (its answer's 价格收费 read as another
    object's 收费), and 空调清洗师傅多久能上门 got the steps too (清洗 written 滤网清洗 in the time limits: an action
    qualified, not another object)."""
    with one_sop_chat(tmp_path, "ac-filter-cleaning", FILTER) as chat:
        fee = chat.answer("空调滤网清洗要收费吗")[0]
        assert fee.sources and fee.sources[0].section == "空调滤网清洗要收费吗？", fee.answer
        visit = chat.answer("空调清洗师傅多久能上门")[0]
        assert visit.sources and visit.sources[0].section == "时限要求" and "48 小时" in visit.answer, visit.answer
        # A yes about another object reads as permission: 「可以。请先断电…」 is no answer to installing a dishwasher,
        # nor is the FAQ ranked below it.
        dishwasher = chat.answer("可以自己装洗碗机吗")[0]
        assert dishwasher.handoff and dishwasher.sources == [], dishwasher.answer
        own = chat.answer("我可以自己清洗滤网吗")[0]
        assert own.sources and own.sources[0].section == "我自己可以清洗滤网吗？", own.answer


def test_a_verb_with_another_complement_names_an_faq_question() -> None:
    """「退租押金几天能退到账」 names 「押金多久能退回来？」 (退 with 到账 for 回来): a new customer's FAQ lost to the
    steps because its question's 退回来 counted as not asked."""
    texts = ["押金多久能退回来？\n7个工作日内原路退回", "处理流程\n1. 提前30天提交退租申请"]
    asked = "退租押金几天能退到账"
    assert named(["押金", "退回来"], texts, asked) > 0.75
    assert named(["押金", "转租"], texts, asked) < 0.75  # another verb is not named


def test_words_are_read_as_the_question_means_them(use_kb: KnowledgeBase) -> None:
    """A second company's short questions were handed over on their own topic's passages: jieba's guesser glued a
    modal to a word (车能, 最多能, 会断), a glossary compound was never in the text whole (补开发票), and what is
    asked (几台) is never written in the answer."""
    assert words("朋友开车来看我，车能停进小区吗")[3] == "车" and "最多" in words("一个房间最多能连几台设备？")
    assert "功能" in words("这个功能怎么用")  # a word of jieba's dictionary keeps its 能
    text = "申请方式 2. 电子发票3个工作日内发送至预留邮箱 3. 可补开当年及上一年度已付款账单"
    assert 0.0 < passages._present("补开发票", text) < 1.0 and passages._present("开发票", "本月账单") == 0.0
    count = answer_types.asked("一个房间最多能连几台设备？")
    assert [t.name for t in count] == ["count"] and answer_types.holds(count, "每间房最多同时连接5台设备") == 1.0
    assert "count" not in [t.name for t in answer_types.asked("几个小时能修好")]
    embedder = use_kb.searcher.embedder
    question = "一个房间最多能连几台设备？"
    devices = passages.Passage("net", "宽带", "基本说明", "每间房最多同时连接5台设备。", "plain", 0)
    other = passages.Passage("net", "宽带", "报障", "APP提交报障，2小时内响应。", "steps", 0)
    keys = passages.KeyEmbeddings(embedder)
    first = passages.score_passages(question, use_kb.searcher.embed_queries([question])[0], [other, devices], keys)[0]
    # 最多 连 设备 named (not 一个 房间: 每间房); 几台 is what is asked, so it is not counted as missing
    assert first.passage is devices and first.coverage >= 0.5, first


def test_a_compound_the_text_names_only_in_part_is_another_thing() -> None:
    """宠物押金 is not the 押金 of a moving-out rule; 补开发票 is named by 可补开… 电子发票 as far as it goes."""
    assert passages.narrower_than(["宠物押金", "退"], "押金退还 无损坏的7个工作日内原路退回") == "宠物押金"
    assert passages.narrower_than(["宠物押金"], "宠物押金每户1000元，退租时无损退还") is None
    assert passages.narrower_than(["下水道臭味"], "卫生间反臭：检查地漏防臭芯") is None  # no noun of it named
    assert passages._present("宠物押金", "押金退还") == 0.0
    assert passages._present("燃气热水器", "燃气热水器打不着") == 1.0


def test_a_complaint_the_chat_cannot_answer_is_handed_over_with_an_apology(chat: ChatResponder) -> None:
    for said in ("我已经投诉三次了都没人管，我要打12345", "我想投诉维修师傅态度太差了，要给他差评"):
        answer = chat.answer(said)[0]
        assert answer.handoff and answer.answer.startswith("非常抱歉"), (said, answer.answer)
        assert "转接" not in answer.answer  # no case exists until the tenant leaves a contact: nothing is handed yet
    handed = chat.answer("附近有什么好吃的火锅店推荐吗")[0].answer
    assert handed == HANDOFF_MESSAGE and "转人工" not in handed  # no grievance, no apology, no transfer claimed
    for fault in ("空调坏了", "楼上邻居天天半夜吵", "门卡丢了怎么补办"):
        assert not tone.complains(fault), fault
    assert tone.complains("报修拖了一个星期还没人来") and tone.complains("你们这什么破服务")
    # the hotline's number inside a phone number is no threat (a trial: 我是王小明 13812345678… got an apology)
    assert tone.complains("再不修我就打12345") and not tone.complains("我是王小明 13812345678 5栋1203，热水器不热了")


def test_a_complaint_the_documents_answer_is_answered_after_an_apology(chat: ChatResponder) -> None:
    """A widget trial: 保洁太差了，多久打扫一次 got the cleaning time limits with no word for the grievance."""
    answer = chat.answer("你们的保洁太差了，多久打扫一次")[0]
    assert not answer.handoff and answer.complaint and answer.sources[0].sop_id == "cleaning-service"
    assert answer.answer.startswith("非常抱歉给您带来了不好的体验。\n") and "分钟" in answer.answer
    plain = chat.answer("保洁多久打扫一次")[0]
    assert not plain.complaint and not plain.answer.startswith("非常抱歉")


# A company's own style (converted from Word): numbered headings, a purpose section, steps without times for the
# tenant, a time-limit table. A new customer's trial: 多久能修好 was answered with the dispatch steps, and the six
# steps of moving out answered 押金多久能退回来.
WORD_STYLE = {
    "ac-repair.md": """---
id: ac-repair
title: 空调、暖气报修处理
category: 报修
audience: public
tags: [空调, 暖气, 不制冷]
---
# 空调、暖气报修处理

## 一、目的

规范空调、暖气故障报修的受理、派单、维修和回访，保证租客在最短时间内恢复正常使用。

## 二、处理流程

1、核实租客姓名、房号和联系电话，在工单系统创建报修工单。
2、工单创建后派给所在楼栋的工程维修人员。
3、维修人员与租客电话确认上门时间。
4、需要更换配件的，告知租客预计到货时间；当天修不好的，为租客提供电暖器或移动空调。

## 三、时限及责任人

| 环节 | 时限 | 责任人 |
|---|---|---|
| 接报建单 | 接报后10分钟内 | 客服专员 |
| 上门维修 | 4小时内 | 维修工 |
| 完工回访 | 完工后24小时内 | 楼栋管家 |
""",
    "checkout.md": """---
id: checkout
title: 退房结算及押金退还
category: 退租押金
audience: public
tags: [退房, 押金, 结算]
---
# 退房结算及押金退还

## 一、目的

明确租客退房的预约、查房、结算和押金退还流程，避免退房纠纷。

## 二、操作步骤

1. 租客须提前30天通过APP或前台提交退房申请。
2. 管家与租客预约查房时间，查房时租客本人须在场。
3. 查房内容：家具家电是否完好、墙面地面有无损坏、钥匙门卡是否齐全。
4. 查房结束后，管家当场出具《退房交接单》，双方签字确认。
5. 财务根据交接单计算应退金额。
6. 押金在退房交接完成后7个工作日内原路退回。
""",
}


@pytest.fixture(scope="module")
def word_style_chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatResponder]:
    root = tmp_path_factory.mktemp("word-style")
    sops = root / "sops"
    sops.mkdir()
    for name, text in WORD_STYLE.items():
        (sops / name).write_text(text, encoding="utf-8")
    kb = KnowledgeBase.from_settings(get_settings(data_dir=root / "data", sops_dir=sops))
    assert kb.ingest(sops).ok
    yield ChatResponder.from_settings(kb.searcher, get_settings())
    kb.close()


def test_how_long_is_answered_from_the_time_limits_and_a_purpose_is_never_an_answer(
    word_style_chat: ChatResponder,
) -> None:
    repair, _ = word_style_chat.answer("空调坏了多久能修好")
    assert repair.sources and repair.sources[0].section == "三、时限及责任人", repair.answer
    assert "4小时内" in repair.answer and "责任人：" not in repair.answer  # who answers for it inside is not told
    for question in ("谁上门维修", "上门维修"):  # no time asked: the time limits answer nothing (they did)
        answer, _ = word_style_chat.answer(question)
        assert all(s.section != "三、时限及责任人" for s in answer.sources), (question, answer.sources)
    for question in ("空调坏了多久能修好", "退房流程是什么", "押金怎么退"):
        answer, _ = word_style_chat.answer(question)
        assert all(s.section != "一、目的" for s in answer.sources), (question, answer.sources)
    sop = word_style_chat.searcher.get_sop("ac-repair", "public")
    assert sop is not None and sop.sections[0].kind == "scenario"  # 目的 is the document's introduction


def test_a_question_for_a_time_is_shown_the_step_that_gives_it(word_style_chat: ChatResponder) -> None:
    deposit, _ = word_style_chat.answer("退房以后押金多久能退回来")
    shown = deposit.answer.split("\n\n（来源")[0]
    assert shown == "押金在退房交接完成后7个工作日内原路退回。", deposit.answer  # its list number left out
    assert deposit.full_text is not None and "查房内容" in deposit.full_text
    how, _ = word_style_chat.answer("退房要怎么办理")  # a "how" question: the steps whole
    assert how.full_text is None and "查房内容" in how.answer


def test_steps_written_for_staff_name_the_tenant_as_you_in_the_tenant_answer(word_style_chat: ChatResponder) -> None:
    how, _ = word_style_chat.answer("退房要怎么办理")
    assert "管家与您预约查房时间，查房时您本人须在场" in how.answer, how.answer
    assert "租客" not in how.answer.split("\n\n（来源")[0]
    sop = word_style_chat.searcher.get_sop("checkout", "agent")
    assert sop is not None and "管家与租客预约查房时间" in sop.sections[1].text  # agents read the text as written


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("请租客提供缴费截图", "请您提供缴费截图"),
        ("不得与租客争执", "不得与您争执"),
        ("租客须提前30天提交退房申请", "您须提前30天提交退房申请"),
        ("在租客App里提交", "在租客App里提交"),  # a thing, not the person
        ("请阅读租客须知", "请阅读租客须知"),
        ("楼上住户漏水的，联系其他租客确认", "楼上住户漏水的，联系其他租客确认"),  # other people
        ("必须联系登记租客本人视频确认", "必须联系登记租客本人视频确认"),
        ("业主同意后方可转租", "业主同意后方可转租"),  # the landlord
        ("楼上漏水：联系楼上房间租客开门", "楼上漏水：联系楼上房间租客开门"),  # another person a few words after 楼上
        ("楼上漏水时请租客关闭总阀", "楼上漏水时请您关闭总阀"),  # ... but not past the clause
    ],
)
def test_the_tenant_is_you_only_where_the_word_means_the_tenant_asking(written: str, shown: str) -> None:
    assert addressed_to_tenant(written) == shown


def test_the_urgent_message_says_nothing_twice(chat: ChatResponder) -> None:
    """A tenant trial: 危及生命请立即拨打急救电话。危及生命请立即拨打 120, and 继续留言 twice in the gas message."""
    fainted = chat.answer("楼道里有人晕倒了")[0]
    assert fainted.urgent and fainted.answer.count("危及生命") == 1 and "120" in fainted.answer, fainted.answer
    gas = chat.answer("家里好大一股煤气味")[0]
    assert gas.urgent and gas.answer.count("继续留言") == 1, gas.answer


def test_an_faq_question_in_two_parts_answers_either_part(chat: ChatResponder) -> None:
    """A tenant trial: 宠物押金能退吗 got the registration steps, because the FAQ 宠物押金多少钱？能退吗？ also
    asks for a sum, which the tenant did not ask for. A part asking for a kind of answer not asked is not held
    against it."""
    refund = chat.answer("宠物押金能退吗")[0]
    assert refund.sources and refund.sources[0].section == "宠物押金多少钱？能退吗？", refund.answer
    assert passages.focus_words("宠物押金多少钱？能退吗？", "宠物押金能退吗") == ["退"]
    # One part, or a question asking for what each part asks: every word counts.
    assert "钱" in passages.focus_words("宠物押金多少钱？能退吗？", "宠物押金多少钱，能退吗")
    assert passages.focus_words("补办门禁卡要收费吗", "门禁卡丢了怎么补") == passages.words("补办门禁卡要收费吗")


def test_a_duration_is_answered_from_the_time_limits_of_a_document_the_search_scores_as_high_as_the_first(
    chat: ChatResponder,
) -> None:
    """A tenant trial: 退房押金多久能退回来 found the pet policy (2.50) a hair above the moving-out procedure (2.44), so
    only the pet policy's time limits were read with its title; the answer was the moving-out cautions."""
    ans = chat.answer("退房押金多久能退回来")[0]
    assert ans.sources and ans.sources[0].section == "时限要求", ans.answer
    assert "7个工作日" in ans.answer and "宠物" not in ans.answer, ans.answer


INVOICE = """---
id: bill-invoice
title: 发票开具
category: 账单
audience: public
tags: [开票, 补开]
---
# 发票开具

## 申请方式
1. APP—“我的账单”—选择已付账单—“申请开票”，填写抬头、税号。
2. 电子发票3个工作日内发送至预留邮箱。
3. 可补开当年及上一年度已付款账单。

## 常见问题
### 抬头写错了能重开吗？
可以，在 APP 申请红冲后重开。
"""


def test_a_question_about_the_tenants_own_business_that_names_nothing_is_handed_over(tmp_path: Path) -> None:
    """我的那个申请呢 was answered with the invoice steps (its only word, 申请, is the heading 申请方式): it asks after
    the tenant's own application, which a person looks up. A question that names what it is about is answered."""
    with one_sop_chat(tmp_path, "bill-invoice", INVOICE) as chat:
        for vague in ("我的那个申请呢", "我的申请到哪一步了", "帮我查一下", "这个费用是怎么回事", "为什么扣我钱"):
            answer = chat.answer(vague)[0]
            assert answer.handoff and not answer.sources, (vague, answer.answer)
        named = chat.answer("怎么申请开发票")[0]
        assert named.sources and named.sources[0].section == "申请方式", named.answer


def test_a_case_for_a_signalled_danger_is_filed_under_the_emergency_procedure_first(chat: ChatResponder) -> None:
    """A re-check of a trial: after the search put the flooding procedure first, the urgent case went out with no
    SOP (its text matched the words weakly)."""
    question = "哗哗的往下流 灯里面都在滴水 都流到卧室去了"
    match = chat.match(question, chat.searcher.embed_queries([question])[0])
    assert (match.sop_id, match.priority) == ("emergency-flooding", "urgent")


def test_what_a_yes_or_no_question_asks_about_and_the_nouns_that_qualify_another_thing() -> None:
    from kb_service.search.objects import focus, qualifiers

    assert qualifiers("货梯押金什么时候退", "押金退还：交割完成后7个工作日内原路退回") == ["货梯"]
    assert qualifiers("押金什么时候退", "押金退还") == []
    assert qualifiers("有帮忙遛狗的服务吗", "遛狗服务") == []  # verbs qualify no thing

    cases = {
        "搬家要交押金吗": "押金",
        "用货梯要押金吗？": "押金",
        "快递能不能送上楼，还是只能放楼下": "上楼",
        "可以带朋友去健身房吗": "健身房",
        "押金什么时候退": None,  # not answered by yes or no
    }
    for question, asked in cases.items():
        assert focus(question, words(question)) == asked, question


MOVING = """---
id: moving-booking
title: 搬家预约与大件物品进出
category: 入住
audience: public
tags: [搬家, 货梯预约, 放行条]
---
# 搬家预约与大件物品进出

## 处理步骤
1. 核实租客身份和房号，确认搬家日期、时段（9:00-18:00）和大件数量。
2. 在APP“搬家预约”中登记，货梯每户每次最长使用2小时。
3. 搬出物品的，管家核对房间配置清单，开具电子放行条并发给租客。

## 常见问题
### 晚上可以搬家吗？
为避免打扰邻居，搬家时段为每天9:00-18:00。

## 押金与赔偿标准 [内部]
- 货梯保护押金200元，由管家在系统中冻结。
"""
RENEWAL = """---
id: lease-renewal
title: 续租办理
category: 合同
audience: public
tags: [续租, 续约]
---
# 续租办理

## 办理步骤
1. 合同到期前30天在APP“续租”中提交申请。
2. 管家确认新租金后线上签约。

## 常见问题
### 续租还要再交押金吗？
不用。原押金结转到新合同，如新租金上涨，仅补足差额。
"""


MOVEOUT = """---
id: lease-moveout
title: 到期退租与押金退还
category: 合同
audience: public
tags: [退租, 押金]
---
# 到期退租与押金退还

## 押金退还
- 无损坏、无欠费：交割完成后7个工作日内原路退回。
- 有损坏：按《赔偿价目表》从押金中扣除。
"""


def test_a_yes_or_no_about_what_the_document_never_names_is_handed_over(tmp_path: Path) -> None:
    """A trial's new SOP (搬家预约, its deposit in an [内部] section): 搬家要交押金吗 was answered with its staff steps,
    which never name 押金 while the renewal document does. What the question asks about is named elsewhere only:
    a person answers. The steps still answer what they say (搬家怎么预约), the renewal FAQ still answers renewing."""
    more = {"lease-renewal": RENEWAL, "lease-moveout": MOVEOUT}
    with one_sop_chat(tmp_path, "moving-booking", MOVING, **more) as chat:
        for question in ("搬家要交押金吗", "用货梯要押金吗"):
            answer = chat.answer(question)[0]
            assert answer.handoff, (question, answer.answer)
            assert "200" not in answer.answer and "押金" not in answer.answer  # nor the staff-only sum
        booking = chat.answer("搬家怎么预约货梯")[0]
        assert not booking.handoff and booking.sources[0].sop_id == "moving-booking"
        renewing = chat.answer("续租还要交押金吗")[0]
        assert not renewing.handoff and renewing.sources[0].section == "续租还要再交押金吗？"
        # 货梯 qualifies the 押金 asked about: the moving-out rule's deposit is another one (the trial's next question)
        lift = chat.answer("货梯押金什么时候退")[0]
        assert lift.handoff, lift.answer
        room = chat.answer("押金什么时候退")[0]
        assert not room.handoff and room.sources[0].sop_id == "lease-moveout"


SUBLET = """---
id: visitor-sublet
title: 访客留宿登记与转租管控
category: 合同
audience: agent
tags: [二房东, 临时同住]
---
# 访客留宿登记与转租管控

## 处理步骤
1. 发现私自转租的，按合同解约，押金不予退还。
"""


def test_a_yes_or_no_about_a_staff_only_situation_is_handed_over(tmp_path: Path) -> None:
    """A trial's tenant asked 转租给朋友押金还退吗 and was told the moving-out refund (7个工作日内原路退回), which a
    sublet forfeits by the staff-only sublet rule: the question says 转租, the sublet document's title names it, the
    moving-out document never does. A person answers; the staff text never reaches the tenant."""
    with one_sop_chat(tmp_path, "lease-moveout", MOVEOUT, **{"visitor-sublet": SUBLET}) as chat:
        sublet = chat.answer("转租给朋友押金还退吗")[0]
        assert sublet.handoff and "不予退还" not in sublet.answer and "7个工作日" not in sublet.answer, sublet.answer
        plain = chat.answer("退租押金能退吗")[0]
        assert not plain.handoff and plain.sources[0].sop_id == "lease-moveout"


def test_a_short_yes_or_no_about_a_situation_no_document_names_is_not_told_another_situations_no(
    tmp_path: Path,
) -> None:
    """A trial asked 停车位要交押金吗, 访客留宿要交押金吗 and 装修要交押金吗 and was told 「不用。」 of the renewal FAQ
    续租还要再交押金吗？: no document names parking spaces, guests or renovation, so nothing said the renewal's no was
    about another situation. A short question's word the FAQ's document names neither itself nor by a synonym is its
    situation: a person answers. Renewing, said with the FAQ's words or a synonym (续签 of 续租), is still answered."""
    with one_sop_chat(tmp_path, "lease-renewal", RENEWAL, **{"lease-moveout": MOVEOUT}) as chat:
        for question in ("停车位要交押金吗", "访客留宿要交押金吗", "装修要交押金吗"):
            answer = chat.answer(question)[0]
            assert answer.handoff and "不用" not in answer.answer, (question, answer.answer)
        for question in ("续租还要交押金吗", "续签还要交押金吗"):
            renewing = chat.answer(question)[0]
            assert not renewing.handoff and renewing.sources[0].section == "续租还要再交押金吗？", question


def test_the_sum_of_another_fee_is_no_answer_to_what_the_deposit_is(tmp_path: Path) -> None:
    """A trial asked 押金是多少 and was shown the moving-out rules' 收取保洁费150元: the only sum there is another
    fee's. A question for what money held under the lease costs is answered by a sum of it, or handed over."""
    moveout = MOVEOUT + "- 房间未打扫的，收取保洁费150元。\n"
    with one_sop_chat(tmp_path, "lease-moveout", moveout, **{"lease-renewal": RENEWAL}) as chat:
        for question in ("押金是多少", "押金要交多少"):
            answer = chat.answer(question)[0]
            assert answer.handoff and "150" not in answer.answer, (question, answer.answer)
        cleaning = chat.answer("没打扫的话保洁费多少钱")[0]
        assert not cleaning.handoff and "150" in cleaning.answer, cleaning.answer


def test_a_member_of_the_qualifying_class_names_it(chat: ChatResponder) -> None:
    """A trial asked 导盲犬要交押金吗 and was told 「…补登记并补交押金」 of the unregistered-pet FAQ: the note that
    answers it (导盲犬等工作犬…免收宠物押金) was skipped because its only 押金 is 宠物押金, a deposit of another object.
    A guide dog is a pet's member (犬): the question names that object."""
    answer, _ = chat.answer("导盲犬要交押金吗")
    assert not answer.handoff and answer.sources[0].section == "注意事项", answer.answer
    assert "免收宠物押金" in answer.answer and "补交押金" not in answer.answer


def test_a_situation_the_document_passes_to_staff_is_handed_over(chat: ChatResponder) -> None:
    """房租重复扣款怎么办 was told where rent is paid (the FAQ 房租在哪里交？): the rent document speaks of a double
    charge only in its escalation rules (重复扣款…转财务结算部核查), which are for staff. A person answers; asked how
    rent is paid, the FAQ still answers. A question whose words an escalation line shares but the answer speaks of
    too (押金 in the moving-out steps; 「押金超过7个工作日未到账，按押金退还流程升级处理」) is still answered."""
    for question in ("房租重复扣款怎么办", "这个月房租被重复扣款了"):
        answer = chat.answer(question)[0]
        assert answer.handoff and not answer.sources, (question, answer.answer)
        assert "财务结算部" not in answer.answer
    paid = chat.answer("房租在哪里交")[0]
    assert not paid.handoff and paid.sources[0].section == "房租在哪里交？"
    refund = chat.answer("下个月就退租了，押金是当场退还是要等一段时间")[0]
    assert not refund.handoff and refund.sources[0].sop_id == "moveout-process"


def test_a_passage_that_speaks_to_the_tenant_is_preferred_to_steps_written_for_staff(chat: ChatResponder) -> None:
    """A widget trial: 快递被人拿走了 was answered with the parcel SOP's steps (「提醒租客下单时填写…」「在系统中关单」)
    while its FAQ answers the tenant; 电费怎么这么高 likewise got 「调取近3个月用电记录…」."""
    for question, faq in (
        ("门口的快递被人拿走了，显示签收但我没收到", "快递显示签收了但找不到怎么办？"),
        ("电费怎么这么高，这个月三百多", "这个月电费突然变高是怎么回事？"),
    ):
        answer = chat.answer(question)[0]
        assert not answer.handoff and answer.sources[0].section == faq, (question, answer.answer)
    assert speaks_to_staff("1. 核实租客身份，在系统中查看账单。\n2. 引导租客在App缴费。")
    assert speaks_to_staff("- 不得以任何理由让租客把房租转到员工个人账户。\n- 月付不涉及贷款。")
    assert not speaks_to_staff("- 消防通道、充电车位不得占用。\n- 月卡不得转借给非本户车辆使用。")  # rules for tenants
    assert not speaks_to_staff("请在App提交“快递异常”，我们会查签收记录和监控，24小时内给您答复。")


def test_a_value_asked_for_is_read_beside_what_the_question_is_about(chat: ChatResponder) -> None:
    """A widget trial: 电费在哪里充值 got the price section (the App named beside the price, 充值 beside the night-time
    rule) instead of the step that says where to top up."""
    answer = chat.answer("电费在哪里充值")[0]
    assert answer.sources[0].section == "处理步骤" and "生活缴费-电费充值" in answer.answer, answer.answer
    assert answer_types.holds(answer_types.asked("在哪里充值"), "App\n夜间充值", "夜间充值") == 0.0
    assert answer_types.holds(answer_types.asked("在哪里充值"), "App\n夜间充值", "App充值") == 1.0


def test_passage_keys_embedded_ahead_leave_a_first_question_nothing_to_embed(use_kb: KnowledgeBase) -> None:
    fresh = ChatResponder.from_settings(use_kb.searcher, get_settings())
    warmed = fresh.warm_up()
    assert warmed > 100  # every public passage's heading and key lines of the sample SOPs (~400)
    assert fresh.warm_up() == 0  # all cached already
    keys = fresh._key_embeddings()
    embedded: list[int] = []
    embed = keys.embedder.embed
    keys.embedder = type("Counting", (), {"embed": lambda _, texts: embedded.append(len(texts)) or embed(texts)})()
    answer, _ = fresh.answer("押金什么时候退")
    assert answer.sources and not embedded  # the question's passages were all compared from the cache

    def texts() -> Iterator[str]:  # a large catalogue is read only as far as the budget goes
        yield from ("一条新的关键句", "一条新的关键句", "另一条")
        raise AssertionError("read past the budget")

    assert fresh._key_embeddings().warm(texts(), budget=2) == 2


PET = """---
id: pet-keeping
title: 宠物饲养规定
category: 宠物
audience: public
tags: [宠物, 养猫, 养狗]
examples: [可以养猫吗, 能不能养狗]
---
# 宠物饲养规定

## 一、适用范围
租客咨询房间内能否养猫、养狗等宠物。

## 二、办理流程
1、 本公寓允许饲养 **10公斤以下** 的猫、狗（每户最多2只），需先在App「我的房间-宠物登记」提交登记。
2、 登记后需另交宠物押金 **1000元**，退租验房无损坏时全额退还。
"""
BROADBAND = """---
id: broadband-fault
title: 宽带网络故障
category: 网络
audience: public
tags: [宽带, 网络, WiFi]
---
# 宽带网络故障

## 一、适用范围
房间WiFi连不上、网速慢、经常掉线。

## 二、处理步骤
1. 请先把房间里的路由器断电，等30秒后再插上，等2分钟。
2. 看路由器上的“WAN”灯是否亮，不亮说明外网断了，请报修。
3. 手机连不上但电脑能连的，请在手机上“忘记网络”后重新输入密码。
4. 仍然不行，请在App报修选择“网络”，网络工程师4小时内回复。
"""


def test_a_company_s_listed_examples_and_a_wifi_that_will_not_connect_are_answered(tmp_path: Path) -> None:
    """A new customer's trial: 可以养猫吗, listed in the pet policy's examples, and WiFi连不上 (the broadband steps say
    手机连不上 once, read as another object's 连不上) were handed over though public search put the right SOP first."""
    with one_sop_chat(tmp_path, "pet", PET, broadband=BROADBAND) as chat:
        for question, sop_id in [
            ("可以养猫吗？", "pet-keeping"),
            ("能不能养狗", "pet-keeping"),
            ("WiFi连不上", "broadband-fault"),
        ]:
            answer, _ = chat.answer(question)
            assert not answer.handoff and answer.sources[0].sop_id == sop_id, (question, answer)


def test_a_verb_with_its_potential_complement_is_no_object_another_noun_qualifies() -> None:
    steps = "1. 路由器断电重启。\n2. 手机连不上但电脑能连的，请在手机上忘记网络。"
    assert qualified_everywhere(["wifi", "连不上"], "WiFi连不上", steps) is None
    assert qualified_everywhere(["押金"], "押金什么时候退", "宠物押金1000元，退租时退还宠物押金。") == "宠物"
    steps, asked = "到电网营业厅或者可以买电的银行网点充值。", "插卡电表怎么充值"
    assert qualified_everywhere(words(asked), asked, steps) == "网点"
    assert qualified_everywhere(words(asked), asked, steps, heading="插卡电表充值步骤") is None
    assert qualified_everywhere(["押金"], "押金什么时候退", "宠物押金1000元。", heading="宠物押金说明") == "宠物"


def test_money_a_tenant_asks_for_is_answered_only_by_a_passage_that_speaks_of_it() -> None:
    """A new customer's trial: 空调修了三天还没修好，能不能减点房租 got an apology and the repair steps."""
    sop = parse_bytes("ac.md", (HEAD.format(extra="") + "2. 工程师 24 小时内上门。\n").encode()).sop
    steps = "1. 请在App提交报修。\n2. 工程师 24 小时内上门。"
    assert handled_by_staff("空调修了三天还没修好，能不能减点房租", sop, steps)
    assert handled_by_staff("漏水弄坏了我的东西能赔吗", sop, steps)
    assert not handled_by_staff("停水有补偿吗", sop, "停水超过24小时，减免当月水费。")
    assert not handled_by_staff("可以免费停车吗", sop, "临时停车每小时5元。")  # whether a thing is free
    # ... of the kind asked: a deposit coming back is no compensation, and waiving is no refund (an integrator's trial)
    moving_out = "1. 验房。\n2. 押金在交接单签字后7个工作日内原路退回。"
    assert handled_by_staff("保洁没打扫干净能赔吗", sop, moving_out)
    assert handled_by_staff("滞纳金可以免吗我就晚了一天", sop, "1. 核实租客身份。\n2. 告知当期应缴金额。")
    assert not handled_by_staff("快递丢了你们赔吗", sop, "确认为前台签收后丢失的，按公司标准处理赔付。")
    assert not handled_by_staff("退租手续费多少", sop, "提前退租须支付一个月租金作为违约金。")


GAS = """---
id: gas-leak-emergency
title: 燃气泄漏应急处置
category: 紧急事件
audience: public
tags: [燃气泄漏, 煤气味]
---
# 燃气泄漏应急处置

## 处理步骤
1. 不要开关任何电器和灯，不要打电话，不要点火。
2. 立即关闭燃气表前的总阀门。
3. 打开门窗通风，走楼梯离开，不要乘电梯，远离明火。
"""


def test_another_dangers_procedure_is_no_safety_instruction(tmp_path: Path) -> None:
    """A re-check trial on a company with one emergency procedure (gas): 楼下着火了 and 电梯困住了出不来 were shown its
    steps (不要打电话, 打开门窗通风: wrong in a fire) as they mention 火 and 电梯; the gas question still gets them."""
    with one_sop_chat(tmp_path, "gas", GAS, broadband=BROADBAND) as chat:
        for question in ("楼下着火了", "电梯困住了出不来"):
            answer, _ = chat.answer(question)
            assert answer.urgent and answer.handoff and answer.sources == [], (question, answer)
            assert "燃气表" not in answer.answer and "打开门窗通风" not in answer.answer
        gas, _ = chat.answer("家里有煤气味")
        assert gas.urgent and gas.sources and gas.sources[0].sop_id == "gas-leak-emergency"


METER = """---
id: electric-card
title: 家里突然没电了：电卡余额与电费充值
category: 缴费
audience: public
tags: [电卡, 电费充值, 电表]
---
# 家里突然没电了：电卡余额与电费充值

房源的电表分两种：老式插卡电表（要拿电卡去充值再插回表里）和智能电表（手机上 App 直接交）。
电费由租客直接交给电网，电费交完了表就会自动断电。

## 插卡电表充值步骤
1. 找到电卡（入住交割时交给您，通常和钥匙放在一起）。
2. 到电网营业厅或者可以买电的银行网点充值。
3. 回家把电卡插进电表，屏幕显示金额增加后拔卡，几秒钟后就来电了。

## 智能电表充值步骤
1. 下载电网的 App，用户号绑定。
2. 在 App 里交电费，一般交完 30 分钟内自动恢复供电。
"""


def test_a_document_introduction_answers_only_when_nothing_else_of_it_does(tmp_path: Path) -> None:
    """A fourth company's documents: 交了电费多久来电 got the introduction, which names both kinds of meter, instead
    of the smart meter's steps (30 分钟内); 插卡电表怎么充值 was handed over."""
    with one_sop_chat(tmp_path, "electric-card", METER, notice=NOTICE) as chat:
        # the steps say 银行网点充值, but their heading names 充值 as the question does: no other object's top-up
        card = chat.answer("插卡电表怎么充值")[0]
        assert card.sources and card.sources[0].section == "插卡电表充值步骤", card.answer
        smart = chat.answer("交了电费多久来电")[0]
        assert smart.sources and smart.sources[0].section == "智能电表充值步骤", smart.answer
        # A notice written as one paragraph still answers from it
        notice = chat.answer("下周几号停水")[0]
        assert notice.sources and notice.sources[0].section == "简介", notice.answer


NOTICE = """---
id: notice
title: 小区停水通知
category: 通知
audience: public
tags: [停水]
---
# 小区停水通知

因市政管道维修，小区将于下周三 9:00—17:00 停水，请提前储水。
"""


def test_a_case_label_in_bold_is_named_by_the_question(chat: ChatResponder) -> None:
    # `- **电**：…` names the case 电: the asterisks counted against the label (a third of it), so 水电费在哪交 got
    # only the 公共区域 line, the one line with the word 水电费
    assert label_named("- **电**：每户独立智能电表", "水电费在哪交") == 1.0
    answer, _ = chat.answer("水电费在哪交")
    assert "生活缴费" in answer.answer and "次月5日前在App生成账单" in answer.answer
    gas, _ = chat.answer("燃气费在哪充")
    assert "燃气公司营业厅" in gas.answer and "公共区域" not in gas.answer


def test_question_words_glued_by_jieba_are_not_content_words() -> None:
    # jieba's guesser glues 哪 and 在 to a neighbour it does not know: 哪交, 哪充, 费在
    # (what else it cuts depends on the words a loaded glossary taught it: 燃气费)
    for question in ("燃气费在哪充", "水电费在哪交"):
        assert not any("哪" in w or w.endswith("在") for w in words(question)), words(question)


def test_a_question_for_a_place_is_not_answered_by_an_faq_pair_about_another_fee(chat: ChatResponder) -> None:
    answer, _ = chat.answer("电费在哪交")  # was 房租在哪里交？ of the rent document (a phone trial)
    assert answer.sources and answer.sources[0].sop_id == "payment-utilities"
    assert "生活缴费" in answer.answer
    rent, _ = chat.answer("房租在哪交")
    assert rent.sources and rent.sources[0].section == "房租在哪里交？"


def test_a_cut_asked_about_before_it_happens_is_no_emergency(chat: ChatResponder) -> None:
    for question in ("明天会停电吗", "小区要停水吗"):
        answer, _ = chat.answer(question)
        assert not answer.urgent and answer.priority == "normal", question
    now, _ = chat.answer("突然停电了，家里一片黑")
    assert now.urgent


def test_a_question_for_when_is_answered_only_by_a_passage_that_gives_a_time(chat: ChatResponder) -> None:
    assert answer_types.asks_when("门禁卡几点失效") and answer_types.asks_when("押金几天能到账")
    assert not answer_types.asks_when("房租晚交几天会怎么样？")  # a few days late: no question for a time
    assert not answer_types.holds_time("请马上联系管家补给", "单元门晚上几点锁")  # 马上 is no time of day
    assert answer_types.holds_time("投放时间07:00–09:00", "垃圾几点收")
    # 几号 asks for a date: a duration is no answer (房租几号交 got 房租可以开发票吗？'s 3个工作日内发送)
    assert not answer_types.holds_time("一般3个工作日内发送到您的邮箱。", "房租几号交")
    assert answer_types.holds_time("每期租金须在账单日（一般为每期起租日前5天）前付清", "房租几号交")
    rent, _ = chat.answer("房租几号交")
    assert [s.sop_id for s in rent.sources] == ["payment-rent"], rent.answer
    answer, _ = chat.answer("门禁卡几点失效")  # was the lost card's steps, which give no time
    assert answer.handoff and not answer.sources
    bins, _ = chat.answer("垃圾几点收")
    assert "07:00–09:00" in bins.answer


def test_a_how_question_answered_from_a_yes_no_faq_gets_no_bare_yes(chat: ChatResponder) -> None:
    """A trial: 怎么开发票 was answered 「可以。已支付的房租…」 from the FAQ 房租可以开发票吗？; a yes-or-no question
    keeps its 可以."""
    how, _ = chat.answer("怎么开发票")
    assert not how.handoff and how.answer.startswith("已支付的房租"), how.answer
    yes, _ = chat.answer("房租可以开发票吗")
    assert yes.answer.startswith("可以。已支付的房租"), yes.answer
    # an A-not-A question asks yes or no
    assert answer_types.unasked_yes("有没有停车位", "有，地下车库…") == "有，地下车库…"
    assert answer_types.unasked_yes("发票怎么开", "可以。") == "可以。"  # nothing would be left


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("押金什么时候退？退租的时候要扣哪些钱", ["押金什么时候退", "退租的时候要扣哪些钱"]),
        # a clause that asks nothing goes with the question after it
        ("合同快到期了，续租要提前多久说？续租房租会涨吗", ["合同快到期了，续租要提前多久说", "续租房租会涨吗"]),
        ("门禁卡丢了怎么补办？要多少钱", []),  # 要多少钱 names nothing of its own: one question
        ("房租可以用微信交吗？每个月几号之前要交？", []),  # nor does 每个 … 之前
        ("有停车位吗 月租多少", []),  # no question mark between: a sentence that runs on
        ("空调不制冷了？", []),
    ],
)
def test_the_questions_of_a_message(message: str, parts: list[str]) -> None:
    assert question_parts.split(message) == parts


def test_a_message_of_two_questions_gets_both_answers(chat: ChatResponder) -> None:
    """A tenant's trial: 押金什么时候退？退租的时候要扣哪些钱 got only the refund time, and asking the second half
    alone got the deduction FAQ."""
    answer, _ = chat.answer("押金什么时候退？退租的时候要扣哪些钱")
    assert not answer.handoff and len(answer.sources) == 2
    assert answer.answer.index("【押金什么时候退】") < answer.answer.index("7个工作日") < answer.answer.index("【退租")
    assert "退租时哪些情况会扣钱？" in [s.section for s in answer.sources] and "人为损坏" in answer.answer
    parts, chat.parts = chat.parts, False
    try:
        before, _ = chat.answer("押金什么时候退？退租的时候要扣哪些钱")
    finally:
        chat.parts = parts
    assert len(before.sources) == 1 and "人为损坏" not in before.answer


@pytest.mark.parametrize(
    ("question", "section"),
    [
        # 怎么样 asks, it is no word of the topic: the late-payment FAQ, not the staff steps (a tenant's trial)
        ("这个月房租晚交几天会怎么样 有滞纳金吗", "晚交几天会怎样？"),
        # 在房间过夜: where it happens, not a narrower kind of 过夜 (the check-in FAQ answered it: a tenant's trial)
        ("朋友来住几天需要登记吗？可以过夜吗", "朋友来住两三天也要登记吗？"),
        # cautions written for staff (不得…让租客把房租转到员工个人微信) are no answer for a tenant (a tenant's trial)
        ("房租能用信用卡或者花呗付吗？", "房租在哪里交？"),
        # ... while steps written for staff still hold what the tenant does (引导在App“生活缴费-电费充值”操作)
        ("电费在哪里充值", "处理步骤"),
    ],
)
def test_a_tenants_everyday_question_gets_the_faq_that_answers_it(
    chat: ChatResponder, question: str, section: str
) -> None:
    answer, _ = chat.answer(question)
    assert not answer.handoff and [s.section for s in answer.sources] == [section], answer.answer
