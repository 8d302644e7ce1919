"""The tenant chat's answer selection and urgency with the real model on the sample corpus (the issue's examples),
and the front-matter fields they read (`priority`, `handover_fields`) with their lint messages."""

from __future__ import annotations

import pytest

from ingest.knowledge_base import KnowledgeBase
from ingest.parser import parse_bytes
from kb_service.search.answers import ChatResponder
from kb_service.search.passages import mismatch, qualified_everywhere, words
from kb_service.settings import get_settings

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


def test_a_rental_deposit_question_is_not_answered_with_the_pet_deposit(chat: ChatResponder) -> None:
    for question in ("押金什么时候退", "退房后押金多久能退"):
        answer, _ = chat.answer(question)
        assert not answer.sources or answer.sources[0].sop_id != "pet-policy", (question, answer.sources)


def test_a_lost_card_is_answered_from_the_door_card_procedure(chat: ChatResponder) -> None:
    answer, _ = chat.answer("门卡丢了怎么办")
    assert not answer.handoff and answer.sources[0].sop_id == "access-door-card"


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
    q2 = "外卖能送到门口吗"
    assert mismatch(words(q2), q2, "外卖能送到房间门口吗？") is None  # 门口 is a place, not the same object
    q3 = "退房后押金多久能退"
    assert qualified_everywhere(words(q3), q3, "1. 交宠物押金。\n2. 退房时宠物押金退还。") == "宠物"
    assert qualified_everywhere(words(q3), q3, "验房后押金 7 天内退还。") is None


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
