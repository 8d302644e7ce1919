"""What a document's own text passes on to another (kb_service/search/pointers.py), and the chat that reads it."""

from __future__ import annotations

import pytest

from ingest.knowledge_base import KnowledgeBase
from ingest.parser import parse_bytes
from kb_service.models import Sop
from kb_service.search.answers import ChatResponder
from kb_service.search.pointers import sent_elsewhere
from kb_service.settings import get_settings

DOC = """---
id: moving-out
title: 到期退租办理
category: 退租
audience: public
tags: [退租]
version: 1
owner: 租务部
updated: 2026-10-01
---
# 到期退租办理

## 适用场景
- 合同到期不再续租、搬离公寓时办理。
- 合同还没到期就要搬走，属于提前退租，请联系管家了解规定。
- 常见的问法有："退租要提前多久说""押金多久到账"

## 处理步骤
1. 合同到期前30天在App提交到期退租申请。
2. 约好验房时间，验房后交还钥匙，押金7个工作日内退回。

## 常见问题
### 合同还没到期但我想搬走怎么办？
这属于提前退租，涉及违约金，请联系管家了解具体费用。
### 退租要提前多久说？
至少提前30天在App提交申请。
"""


@pytest.fixture(scope="module")
def chat(use_kb: KnowledgeBase) -> ChatResponder:
    return ChatResponder.from_settings(use_kb.searcher, get_settings())


def _sop() -> Sop:
    parsed = parse_bytes("moving-out.md", DOC.encode())
    assert parsed.sop is not None, parsed.issues
    return parsed.sop


def test_a_situation_the_document_only_passes_on_is_found_in_the_question() -> None:
    sop = _sop()
    assert sent_elsewhere("我想提前退租押金能退吗", sop) == ["提前退租"]
    assert sent_elsewhere("合同没到期想搬走押金能退吗", sop) == ["没到期"]
    # The document's own situation, and words it writes elsewhere too (退租, 押金, 提前30天), pass nothing on
    for question in ("合同到期退租押金什么时候退", "退租要提前多久说", "押金多久到账"):
        assert sent_elsewhere(question, sop) == [], question
    # 常见的问法 is no pointer (见 of 常见), and how a question asks (怎么办) is no situation
    assert sent_elsewhere("退租要提前多久说怎么办", sop) == []


def test_the_chat_does_not_answer_leaving_early_with_the_end_of_lease_steps(chat: ChatResponder) -> None:
    # A trial: 我想提前退租押金能退吗 was told 「您在合同到期前至少30天…提交到期退租」, the end-of-lease steps; the
    # moving-out rules say leaving early is 提前退租 and a matter for the 管家 (a staff-only procedure).
    for question in ("我想提前退租押金能退吗", "我想提前退租，押金能退吗", "合同没到期想搬走押金退吗"):
        answer = chat.answer(question)[0]
        assert "提交到期退租" not in answer.answer, question
        assert answer.handoff or "属于提前退租" in answer.answer, question
    # The end-of-lease question keeps its answer
    kept = chat.answer("合同到期退租押金什么时候退")[0]
    assert not kept.handoff and "7个工作日" in kept.answer
