"""The gap report: unanswered questions grouped by meaning, never-found SOPs, overdue reviews, feedback, CSV."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.knowledge_base import KnowledgeBase
from kb_service.db.logbook import Logbook
from kb_service.embedding.embedders import Embedder, HashEmbedder
from kb_service.learning.store import LearnedStore
from kb_service.settings import get_settings
from kb_service.text.privacy import mask, redact
from kb_service.trainer.gap_csv import to_csv
from kb_service.trainer.gap_store import GapReports, window_key
from kb_service.trainer.gaps import HEAVY_ROWS, MAX_QUESTIONS, PER_CLIENT, GapReporter
from tests.helpers import KEYS, NEW, SOPS, TRAINER, api_client, auth, put


def test_masking_of_personal_data() -> None:
    text = "我是3栋1502的张女士，电话13812345678，身份证110101199003071234，住12-3-402"
    masked = mask(text)
    for secret in ("1502", "13812345678", "110101199003071234", "12-3-402"):
        assert secret not in masked
    assert "[手机号]" in masked and "[身份证号]" in masked and "[房号]" in masked and "[姓名]" in masked
    assert "张女士" not in masked
    assert mask("我叫王小明，我姓王") == "我叫[姓名]，我姓[姓]"
    assert mask("欧阳先生说楼上漏水") == "[姓名]说楼上漏水"
    assert mask("热水器坏了，先生请稍等") == "热水器坏了，先生请稍等"  # no surname: not a name
    assert mask("我电话是幺三八一二三四五六七八") == "我电话是[手机号]"  # read out, transcribed in words
    assert mask("三楼一零二") == "三楼一零二"
    # the training trial's lines: a two-character given name, a room without a unit, a name after who speaks
    assert mask("李建国先生的空调漏水") == "[姓名]的空调漏水"
    assert mask("我叫李雷，住5栋803") == "我叫[姓名]，住[房号]"
    assert mask("租客张晓明电话13812345678") == "租客[姓名]电话[手机号]"
    assert mask("我是王小红，3栋2单元1502") == "我是[姓名]，[房号]"
    assert mask("我是马桶堵了") == "我是马桶堵了"
    # What a security review found unmasked in the gap report (session 22)
    assert mask("1502房的租客赵敏说水管爆了") == "[房号]的租客[姓名]说水管爆了"
    assert mask("我住15楼02室漏水") == "我住[房号]漏水"
    assert mask("Room 1502, my name is Wang Wei") == "[房号], my name is [姓名]"
    assert mask("电话:021-6123 4567") == "电话:[电话]"
    assert mask("我的邮箱 zhangsan@example.com 收不到") == "我的邮箱 [邮箱] 收不到"
    assert mask("银行卡6222021234567890123退押金") == "银行卡[银行卡号]退押金"
    assert mask("卡号 6222 0212 3456 7890 123") == "卡号 [银行卡号]"
    assert mask("微信号 wxid_abcd1234 加我") == "微信号 [微信号] 加我"
    assert mask("加我微信：zhang_san88") == "加我微信：[微信号]"
    assert mask("我交了3000房租，押金2000元，18号的账单") == "我交了3000房租，押金2000元，18号的账单"
    # A live call's words (session 23's integrator trial): a bare room number after who lives where, in words too
    assert mask("我是1203的 我家漏水") == "我是[房号]的 我家漏水"
    assert mask("房间号是一二零三") == "房间号是[房号]"
    assert mask("我住1502，水管漏了") == "我住[房号]，水管漏了"
    assert mask("我们是三四个人住，住在三楼") == "我们是三四个人住，住在三楼"
    # What an operator's trial found in the query log (session 34): a name after a label or before 说, a room with
    # its block letter after 房间; words of the dictionary before 说 stay (方便说, 周末说)
    assert mask("联系人赵敏 13912345678 热水器不热") == "联系人[姓名] [手机号] 热水器不热"
    assert mask("刘德明说楼上漏水，电话13912345678") == "[姓名]说楼上漏水，电话[手机号]"
    assert mask("报修人：刘德明，房号是B-803") == "报修人：[姓名]，房号是[房号]"
    assert mask("房间A1502漏水") == "房间[房号]漏水"
    assert mask("我家马桶坏了，李明说要换") == "我家马桶坏了，[姓名]说要换"
    for kept in ("方便说一下吗", "周末说好的来修", "房间号是2023年装修的", "客户反映楼上漏水", "联系人：物业前台"):
        assert mask(kept) == kept
    # A security test's forms (session 34): full-width digits, a passport, a room with its block, a room in words
    assert mask("王小明１３９１２３４５６７８房间5-1203快递丢了") == "[姓名][手机号]房间[房号]快递丢了"
    assert mask("护照E12345678，外籍租客") == "护照[证件号]，外籍租客"
    assert mask("住在七栋十五零二") == "住在[房号]" and mask("3栋一二零三漏水") == "[房号]漏水"
    # ... and a block in words with the room in digits (an integrator's call transcript kept 我是三栋1502的)
    assert mask("我是三栋1502的") == "我是[房号]的" and mask("十二栋1203漏水") == "[房号]漏水"
    # ... and a neighbour's flat beside it (a call trial: 「[房号]楼上是703」); not a time or a floor
    assert mask("八栋603，楼上是703") == "[房号]，楼上是[房号]" and mask("楼下1203家漏水了") == "楼下[房号]家漏水了"
    assert mask("楼上是3点开始吵的") == "楼上是3点开始吵的" and mask("楼下2楼") == "楼下2楼"
    assert mask("第三栋楼下有车") == "第三栋楼下有车"
    assert mask("我是五号楼二单元601的") == "我是[房号]的" and mask("第二单元门口") == "第二单元门口"
    assert mask("空调型号KFR-35GW，型号E123456789") == "空调型号KFR-35GW，型号E123456789"
    # A security review's forms (session 39): an ID card in its groups (as speech recognition writes it), a room
    # after its block as floor-room, a mobile read out digit by digit; ordinary numbers stay
    assert mask("身份证 110105 19900307 1256 续租") == "身份证 [身份证号] 续租"
    assert mask("证件号110105-1990-0307-125X") == "证件号[身份证号]"
    assert mask("B座12-02的下水道堵了") == "[房号]的下水道堵了"
    assert mask("1 3 5 9 8 7 6 5 4 3 2 打这个电话") == "[手机号] 打这个电话"
    for kept in ("5栋12-3楼", "排第1 2 3 4名", "押金 2000 元 3000 元"):
        assert mask(kept) == kept
    # ... and what its re-check still found: floor-room after who lives where, a car's plate
    assert mask("我住B12-02 漏水") == "我住[房号] 漏水" and mask("住在3-1202") == "住在[房号]"
    assert mask("车牌京A12345被刮了") == "车牌[车牌]被刮了" and mask("粤B·D12345停错位") == "[车牌]停错位"
    # A name written alone beside a phone or room number (session 35), or a dictionary's name before 说 (王小明 and
    # 李娜 are in jieba's dictionary, tagged as names); words of the dictionary beside a number stay
    assert mask("王小明 13812345678 热水器不热") == "[姓名] [手机号] 热水器不热"
    assert mask("5栋1203 刘德明，空调坏了") == "[房号][姓名]，空调坏了"
    assert mask("电话13812345678 王芳") == "电话[手机号] [姓名]"
    assert mask("王小明说楼上漏水") == "[姓名]说楼上漏水" and mask("李娜，5栋1203") == "[姓名]，[房号]"
    assert redact("王小明 13812345678 热水器不热") == "  热水器不热"
    for kept in ("马上13812345678", "钱包 13812345678 掉了", "空调坏了 13812345678", "请按13812345678联系"):
        assert "[姓名]" not in mask(kept)
    # A trainer's trial (session 36): whose name it is, after a family member or 的, and a name opening the message
    # with a bare room number; words of the dictionary there stay, also as a name's first two characters (马上到)
    assert mask("我是3栋1502的张秀英，电话13812345678") == "我是[房号]的[姓名]，电话[手机号]"
    assert mask("我老公陈大明的电话是13911112222") == "我老公[姓名]的电话是[手机号]"
    assert mask("张秀英，1502，想办居住证") == "[姓名]，[房号]，想办居住证"
    assert mask("我妈王秀兰来住几天") == "我妈[姓名]来住几天" and mask("室友张三的东西") == "室友[姓名]的东西"
    # A security review (session 54): a phone typed in a Chinese keyboard's full-width mode or with its groups apart
    # in other ways reached the gap report, the learned phrasings and a SOP's examples; an ID card in fours
    for typed in ("138－1234－5678", "138\u30001234\u30005678", "138.1234.5678", "138/1234/5678", "138—1234—5678"):
        assert mask(f"空调不制冷 手机{typed}") == "空调不制冷 手机[手机号]", typed
    for typed in ("138_1234_5678", "(138)12345678", "138\u00a01234\u00a05678", "1381 234 5678", "（+86）138 1234 5678"):
        assert mask(f"联系我{typed}") == "联系我[手机号]", typed
    assert mask("电话(0755)8612-3456") == "电话[电话]" and mask("电话021.6123.4567") == "电话[电话]"
    assert mask("身份证号：1101 0519 9003 0712 5X") == "身份证号：[身份证号]"
    # ... and its re-check: any separators up to three characters at a time, as voice input, a full-width keyboard or
    # speech recognition writes them, in digits, in words or both
    typed_apart = (
        "138，1234，5678", "138、1234、5678", "138 - 1234 - 5678", "138  1234  5678", "138\t1234\t5678",
        "１３８．１２３４．５６７８", "１３８／１２３４／５６７８", "138(1234)5678", "一三八，一二三四，五六七八",
        "幺三八-一二三四-五六七八", "一三八1234五六七八", "壹叁捌壹贰叁肆伍陆柒捌",
    )  # fmt: skip
    for typed in typed_apart:
        assert mask(f"我手机{typed} 空调坏了") == "我手机[手机号] 空调坏了", typed
    assert mask("座机 010 - 6123 4567") == "座机 [电话]" and mask("座机 +86 10 6123 4567") == "座机 [电话]"
    assert mask("邮箱 wangfang＠qq．com") == "邮箱 [邮箱]" and mask("卡号 6222.0212.3456.7890") == "卡号 [银行卡号]"
    assert mask("身份证 110105.19900307.125X") == "身份证 [身份证号]" == mask("身份证 11010 51990 03071 25X")
    assert mask("房租1500。13812345678") == "房租1500。[手机号]"  # a number beside it stays itself
    assert mask("空调不制冷了 我手机138，1234，5678 陈大文") == "空调不制冷了 我手机[手机号] [姓名]"
    for kept in ("18:30-20:00 来修", "2026-12-07 10:30 预约", "三四个人住一二楼", "快递单号SF1234567890123"):
        assert mask(kept) == kept
    for kept in ("押金2000元，2026.12.07交", "价格 150 200 300", "第1 2 3 4 5 6 7 8 9 10 11名"):
        assert mask(kept) == kept
    # ... and after the ways tenants name their family (a session-45 trial found 孩子他爸刘德华 in the gap report)
    assert mask("孩子他爸刘德华的电话打不通") == "孩子他爸[姓名]的电话打不通"
    assert mask("我对象李建国下午来拿钥匙") == "我对象[姓名]下午来拿钥匙"
    assert mask("邻居赵大海说楼上漏水") == "邻居[姓名]说楼上漏水"
    for kept in (
        "我朋友马上到，帮他开下门",
        "我朋友周一来拿钥匙",
        "我男朋友高兴坏了",
        "老公周末回来",
        "孩子他爸周末来",
        "邻居家狗一直叫",
        "我对象高兴坏了",
        "押金3000，什么时候退",
    ):
        assert mask(kept) == kept


def test_report_groups_unanswered_by_meaning(use_kb: KnowledgeBase, tmp_path: Path) -> None:
    log = Logbook(tmp_path / "db.sqlite3")
    for q in ("附近有什么好吃的火锅店", "附近哪家火锅店好吃", "周边有好吃的火锅吗"):
        log.log_query(source="chat", audience="public", query=q, result_ids=[], top_score=None, handoff=True)
    log.log_query(
        source="chat",
        audience="public",
        query="明天天气怎么样",
        result_ids=["x"],
        top_score=0.1,
        confidence=0.2,
        handoff=True,
    )
    for _ in range(3):
        qid = log.log_query(
            source="search", audience="agent", query="天花板漏水", result_ids=["repair-leak-ceiling"], top_score=0.9
        )
    log.add_feedback(sop_id="repair-leak-ceiling", vote=-1, source="console", query_id=qid)
    log.add_feedback(sop_id="repair-leak-ceiling", vote=1, source="console")
    report = GapReporter(log, use_kb.embedder, 0.6).report(time.time() - 60, time.time() + 1, use_kb.searcher.catalog)
    assert report.total_queries == 7
    assert report.queries_by_source == {"chat": 4, "search": 3}  # 服务指标 counts the 4 chat questions
    assert report.top_queries[0].query == "天花板漏水" and report.top_queries[0].count == 3
    hotpot = next(g for g in report.unanswered if "火锅" in g.representative)
    assert hotpot.count == 3 and len(hotpot.examples) == 3  # three phrasings, one need
    assert any(g.representative == "明天天气怎么样" for g in report.unanswered)
    assert any("点踩" in g.reasons for g in report.unanswered if g.representative == "天花板漏水")
    assert "repair-leak-ceiling" not in report.never_found and "parking" in report.never_found
    assert [r.sop_id for r in report.review_overdue] == ["repair-appliance"]
    fb = next(f for f in report.feedback if f.sop_id == "repair-leak-ceiling")
    assert (fb.up, fb.down) == (1, 1)
    csv_text = to_csv(report)
    assert "未解决问题" in csv_text and "复核过期" in csv_text and "repair-appliance" in csv_text
    never = next(r for r in csv.reader(io.StringIO(csv_text)) if r[:2] == ["从未被检索到的SOP", "parking"])
    assert never[3] == report.never_found_titles["parking"] and never[3]  # its title beside the id (a trial)
    log.close()


def test_a_weak_search_voted_down_counts_once_with_both_reasons(tmp_path: Path) -> None:
    log = Logbook(tmp_path / "db.sqlite3")
    ask = {
        "source": "search",
        "audience": "agent",
        "query": "我想把房间刷成粉色",
        "result_ids": ["x"],
        "top_score": 0.5,
    }
    first = log.log_query(**ask, confidence=0.1)  # type: ignore[arg-type]
    log.log_query(**ask, confidence=0.1)  # type: ignore[arg-type]
    log.add_feedback(sop_id="x", vote=-1, source="console", query_id=first)
    answered = log.log_query(**{**ask, "query": "墙面能刷漆吗"}, confidence=0.9)  # type: ignore[arg-type]
    log.add_feedback(sop_id="x", vote=-1, source="console", query_id=answered)
    log.flush()
    report = GapReporter(log, HashEmbedder(), 0.6).report(time.time() - 60, time.time() + 1, {})
    groups = {g.representative: g for g in report.unanswered}
    pink = groups["我想把房间刷成粉色"]
    assert (pink.count, pink.reasons) == (2, {"低置信度": 2, "点踩": 1})  # two searches; one of them also voted down
    if "墙面能刷漆吗" in groups:  # a well-answered search voted down is one unanswered search
        assert groups["墙面能刷漆吗"].count == 1
    else:  # or grouped with the pink walls by meaning
        assert pink.count == 3
    log.close()


def test_an_emergency_nobody_could_answer_is_marked_and_listed_first(tmp_path: Path) -> None:
    """A trial: an unanswered 闻到煤气味 sat among wall-paint questions, below them when asked less often."""
    log = Logbook(tmp_path / "db.sqlite3")
    ask = {"source": "search", "audience": "agent", "result_ids": ["x"], "top_score": 0.5, "confidence": 0.1}
    for _ in range(3):
        log.log_query(**{**ask, "query": "我想把房间刷成粉色"})  # type: ignore[arg-type]
    log.log_query(**{**ask, "query": "楼道里一股煤气味"})  # type: ignore[arg-type]
    log.flush()
    report = GapReporter(log, HashEmbedder(), 0.6).report(time.time() - 60, time.time() + 1, {})
    assert [(g.representative, g.count, g.urgent) for g in report.unanswered] == [
        ("楼道里一股煤气味", 1, True),
        ("我想把房间刷成粉色", 3, False),
    ]
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[0] == ["section", "item", "count", "detail", "urgent"]
    assert [r[4] for r in rows if r[0] == "未解决问题"] == ["紧急", ""]
    log.close()


def test_a_chat_question_answered_on_a_weak_match_is_told_apart_from_unanswered_ones(tmp_path: Path) -> None:
    """A trial: 宠物押金多少钱, answered, was listed 低置信度 beside questions nobody answered. An answered one is
    listed as 已答·置信度低 (the answers to check first); a weak staff search stays 低置信度 unless the agent opened
    or copied its first result (then it found what it needed)."""
    log = Logbook(tmp_path / "db.sqlite3")
    chat = {"source": "chat", "audience": "public", "result_ids": ["pet-policy"], "top_score": 0.5}
    log.log_query(**chat, query="宠物押金多少钱", confidence=0.3, handoff=False)  # type: ignore[arg-type]
    log.log_query(**chat, query="猫能养几只", confidence=0.3, handoff=True)  # type: ignore[arg-type]
    log.log_query(**chat, query="能养狗吗", confidence=0.9, handoff=False)  # type: ignore[arg-type]
    weak = {"source": "search", "audience": "agent", "result_ids": ["x", "y"], "top_score": 0.5, "confidence": 0.1}
    log.log_query(**weak, query="我想把房间刷成粉色")  # type: ignore[arg-type]
    resolved = log.log_query(**weak, query="我要投诉保洁阿姨拿了我的东西")  # type: ignore[arg-type]
    lower = log.log_query(**weak, query="楼道的灯坏了好几天了")  # type: ignore[arg-type]
    log.log_query(**weak, query="楼上半夜还在蹦迪")  # type: ignore[arg-type]  # searched twice: copied the second time
    again = log.log_query(**weak, query="楼上半夜还在蹦迪")  # type: ignore[arg-type]
    log.log_query(**weak, query="楼下烧烤的烟飘进来了")  # type: ignore[arg-type]  # 👍 on its first result
    liked = log.log_query(**weak, query="楼下烧烤的烟飘进来了")  # type: ignore[arg-type]
    log.log_query(**weak, query="阳台的推拉门关不严")  # type: ignore[arg-type]  # 👍 on another result only
    other = log.log_query(**weak, query="阳台的推拉门关不严")  # type: ignore[arg-type]
    log.flush()
    log.add_feedback(query_id=liked, sop_id="x", vote=1, source="console")
    log.add_feedback(query_id=other, sop_id="y", vote=1, source="console")
    LearnedStore(log.db).add_event(query_id=again, sop_id="x", kind="copy", who="agent-a")
    # The agent opened the first result of one weak search (found what it needed), copied from the second of another
    LearnedStore(log.db).add_event(query_id=resolved, sop_id="x", kind="open", who="agent-a")
    LearnedStore(log.db).add_event(query_id=lower, sop_id="y", kind="copy", who="agent-a")
    report = GapReporter(log, HashEmbedder(), 0.6).report(time.time() - 60, time.time() + 1, {})
    reasons = {e: g.reasons for g in report.unanswered for e in g.examples}
    assert reasons["宠物押金多少钱"] == {"已答·置信度低": 1}
    assert reasons["猫能养几只"] == {"转人工": 1}
    assert reasons["我想把房间刷成粉色"] == {"低置信度": 1}
    assert reasons["楼道的灯坏了好几天了"] == {"低置信度": 1}
    assert "我要投诉保洁阿姨拿了我的东西" not in reasons
    assert "楼上半夜还在蹦迪" not in reasons and "楼下烧烤的烟飘进来了" not in reasons
    assert reasons["阳台的推拉门关不严"] == {"低置信度": 2}
    assert "能养狗吗" not in reasons
    log.close()


def test_what_an_agent_typed_on_the_way_to_a_search_is_not_a_question(tmp_path: Path) -> None:
    """The console searches as the agent types: 门, 门锁, 门锁没 were logged before 门锁没电了 and topped the report."""
    log = Logbook(tmp_path / "db.sqlite3")
    staff = {"source": "search", "audience": "agent", "result_ids": ["x"], "top_score": 0.2, "confidence": 0.1}
    for typed in ("门", "门锁", "门锁没", "门锁没电了", "热水器忽冷忽热"):
        log.log_query(**staff, query=typed)  # type: ignore[arg-type]
    tenant = {"source": "chat", "audience": "public", "result_ids": [], "top_score": None, "handoff": True}
    log.log_query(**tenant, query="门", client="1.2.3.4")  # type: ignore[arg-type]  # a tenant sent 门 on its own
    # A greeting the widget answered as small talk is no question (a new customer's trial saw 你好 listed as 无结果)
    small = {**tenant, "handoff": False, "client": "1.2.3.5"}
    for said in ("你好", "谢谢！"):
        log.log_query(**small, query=said)  # type: ignore[arg-type]
    log.flush()
    report = GapReporter(log, HashEmbedder(), 0.6).report(time.time() - 60, time.time() + 1, {})
    asked = {q for g in report.unanswered for q in g.examples} | {g.representative for g in report.unanswered}
    assert {"门锁没电了", "热水器忽冷忽热"} <= asked and not {"门锁", "门锁没"} & asked
    assert "门" in asked and not {"你好", "谢谢！"} & asked  # the tenant's message, whole; small talk is none
    top = {t.query: t.count for t in report.top_queries}
    assert "门锁没" not in top and top["门锁没电了"] == 1 and top["门"] == 1  # the tenant's only
    log.close()


@pytest.fixture
def trainer_client(use_data: Path) -> Iterator[TestClient]:
    settings = get_settings(data_dir=use_data, sops_dir=SOPS, api_keys=f"trainer:{TRAINER},agent:agent-key-123456")
    with TestClient(create_app(settings, load_in_background=False)) as c:
        yield c


def test_gap_report_api_and_csv_need_a_trainer_key(trainer_client: TestClient) -> None:
    trainer_client.post("/v1/chat", json={"question": "你们公司招聘管家吗"})
    r = trainer_client.get("/v1/reports/gaps", headers={"Authorization": f"Bearer {TRAINER}"})
    assert r.status_code == 200 and r.json()["total_queries"] >= 1
    csv_resp = trainer_client.get("/v1/reports/gaps.csv", headers={"Authorization": f"Bearer {TRAINER}"})
    assert csv_resp.status_code == 200 and csv_resp.headers["content-type"].startswith("text/csv")
    assert csv_resp.content.startswith("\ufeff".encode())
    assert trainer_client.get("/v1/reports/gaps").status_code == 401  # no key: 401; an agent's key: 403
    bad = trainer_client.get(
        "/v1/reports/gaps", params={"since": 10, "until": 5}, headers={"Authorization": f"Bearer {TRAINER}"}
    )
    assert bad.status_code == 422


def test_an_emergency_answered_with_a_safety_instruction_is_no_gap(trainer_client: TestClient) -> None:
    """An emergency is handed over by policy; with the public safety instruction shown, the knowledge base had what
    the tenant needed, so the report does not list it as 转人工 (a new customer read every gas smell as a gap)."""
    trainer = {"Authorization": f"Bearer {TRAINER}"}
    started = time.time()
    urgent = trainer_client.post("/v1/chat", json={"question": "厨房有股煤气味"}).json()
    assert urgent["urgent"] and urgent["handoff"] and urgent["sources"]
    unknown = trainer_client.post("/v1/chat", json={"question": "你们公司招聘保安吗"}).json()
    assert unknown["handoff"] and not unknown["urgent"]
    window = {"since": started, "until": time.time() + 1}  # a fixed window: not the stored "recent" report
    report = trainer_client.get("/v1/reports/gaps", params=window, headers=trainer).json()
    assert report["total_queries"] == 2 and report["queries_by_source"] == {"chat": 2}
    listed = [(g["representative"], g["examples"]) for g in report["unanswered"]]
    assert "你们公司招聘保安吗" in str(listed) and "煤气味" not in str(listed)


def test_a_group_marked_dealt_with_leaves_the_open_list_until_someone_asks_it_again(trainer_client: TestClient) -> None:
    """A training manager's trial fixed a gap by publishing a SOP and the report kept listing its questions, with no
    way to say they were dealt with. A trainer marks the group 已处理; asked again later, it is open again."""
    trainer, agent = {"Authorization": f"Bearer {TRAINER}"}, {"Authorization": "Bearer agent-key-123456"}
    started = time.time()
    for question in ("你们公司招聘保安吗", "附近哪家火锅店好吃"):
        assert trainer_client.post("/v1/chat", json={"question": question}).json()["handoff"] is True

    def report() -> dict[str, Any]:
        window = {"since": started, "until": time.time() + 1}  # a fixed window each time: computed afresh
        return trainer_client.get("/v1/reports/gaps", params=window, headers=trainer).json()  # type: ignore[no-any-return]

    group = next(g for g in report()["unanswered"] if g["representative"] == "附近哪家火锅店好吃")
    questions = [group["representative"], *group["examples"]]
    body = {"questions": questions, "note": "已新增 FAQ"}
    assert trainer_client.post("/v1/reports/gaps/resolved", json=body, headers=agent).status_code == 403
    assert trainer_client.post("/v1/reports/gaps/resolved", json={"questions": []}, headers=trainer).status_code == 422
    marked = trainer_client.post("/v1/reports/gaps/resolved", json=body, headers=trainer)
    assert marked.status_code == 200 and marked.json()["questions"] >= 1
    now = report()
    assert [g["representative"] for g in now["resolved"]] == ["附近哪家火锅店好吃"]
    assert (
        now["resolved"][0]["resolved"]["who"].startswith("trainer")
        and now["resolved"][0]["resolved"]["note"] == "已新增 FAQ"
    )
    assert "附近哪家火锅店好吃" not in [g["representative"] for g in now["unanswered"]]
    assert "你们公司招聘保安吗" in [g["representative"] for g in now["unanswered"]]  # the other group stays
    time.sleep(0.05)
    trainer_client.post("/v1/chat", json={"question": "附近哪家火锅店好吃"})  # asked again after the mark
    again = report()
    reopened = next(g for g in again["unanswered"] if g["representative"] == "附近哪家火锅店好吃")
    assert reopened["resolved"]["note"] == "已新增 FAQ" and not again["resolved"]  # open again, its mark shown
    # a mark undone: open, no mark
    assert trainer_client.post("/v1/reports/gaps/reopened", json=body, headers=trainer).json()["questions"] >= 1
    back = next(g for g in report()["unanswered"] if g["representative"] == "附近哪家火锅店好吃")
    assert back["resolved"] is None


def test_a_tenants_question_only_a_staff_sop_answers_says_so(trainer_client: TestClient) -> None:
    """马桶堵了怎么办 is handed over (the blocked-drain procedure is staff-only): the knowledge base has the answer,
    tenants cannot see it. The report names that SOP, so the trainer adds a public FAQ instead of a new document."""
    trainer = {"Authorization": f"Bearer {TRAINER}"}
    started = time.time()
    for question in ("马桶堵了怎么办", "你们公司招聘保安吗"):
        assert trainer_client.post("/v1/chat", json={"question": question}).json()["handoff"] is True
    window = {"since": started, "until": time.time() + 1}
    report = trainer_client.get("/v1/reports/gaps", params=window, headers=trainer).json()
    groups = {g["representative"]: g for g in report["unanswered"]}
    assert "repair-drain-blocked" not in report["never_found"]  # found for the tenants' question (a trial: both)
    assert len(report["never_found"]) > 20  # two questions in the window find few SOPs
    assert groups["马桶堵了怎么办"]["tenants"] == 1
    assert groups["马桶堵了怎么办"]["staff_answer"]["sop_id"] == "repair-drain-blocked"
    assert groups["你们公司招聘保安吗"]["staff_answer"] is None  # nothing answers it: a real gap
    csv_text = trainer_client.get("/v1/reports/gaps.csv", params=window, headers=trainer).text
    assert "仅员工文档有答案" in csv_text and "repair-drain-blocked" in csv_text


def test_a_tenants_question_only_a_staff_section_of_a_public_sop_answers_says_which(
    trainer_client: TestClient,
) -> None:
    """快递丢了赔多少钱 is answered by 丢件赔付标准 [内部] of the public parcel SOP: a trial's report said nothing of
    where the answer was."""
    trainer = {"Authorization": f"Bearer {TRAINER}"}
    started = time.time()
    assert trainer_client.post("/v1/chat", json={"question": "快递丢了赔多少钱"}).json()["handoff"] is True
    window = {"since": started, "until": time.time() + 1}
    report = trainer_client.get("/v1/reports/gaps", params=window, headers=trainer).json()
    (group,) = report["unanswered"]
    assert group["staff_answer"] == {
        "sop_id": "parcel-service",
        "title": "快递代收、快递柜、丢件处理与外卖送上楼",
        "section": "丢件赔付标准",
    }
    csv_text = trainer_client.get("/v1/reports/gaps.csv", params=window, headers=trainer).text
    assert "小节“丢件赔付标准”" in csv_text


def test_a_trainers_hit_test_is_not_a_question_in_the_gap_report(trainer_client: TestClient) -> None:
    trainer = {"Authorization": f"Bearer {TRAINER}"}
    started = time.time()  # the data directory is shared with the module's other tests: count from here
    asked = {"query": "阳台上长了一棵树怎么办", "explain": True}
    for _ in range(3):
        hit = trainer_client.post("/v1/search", json=asked, headers=trainer).json()
        assert hit["results"][0]["explain"] is not None and hit["query_id"] is None
    drill = {"query": "阳台上长了一棵树要找谁", "practice": True}  # a search answering a practice drill
    practised = trainer_client.post("/v1/search", json=drill, headers=trainer).json()
    assert practised["results"] and practised["query_id"] is None
    searched = trainer_client.post("/v1/search", json={"query": "阳台上长了一棵树"}, headers=trainer).json()
    assert searched["query_id"] is not None  # the same trainer's ordinary search is logged
    # ... and a tenant's always is: `practice` from no key kept searches out of the gap report (a security review)
    tenant = trainer_client.post("/v1/search", json={"query": "阳台上长了一棵树吗", "practice": True}).json()
    assert tenant["query_id"] is not None
    report = trainer_client.get("/v1/reports/gaps", params={"since": started}, headers=trainer).json()
    assert report["total_queries"] == 2
    assert sorted(q["query"] for q in report["top_queries"]) == ["阳台上长了一棵树", "阳台上长了一棵树吗"]


class Counting:
    """An embedder that remembers what it was asked to embed (around a real one)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)


def insert(db: Path, rows: list[tuple[float, str, str, str, str, float | None, int, str | None]]) -> None:
    """Rows written straight into the query log: (ts, source, audience, query, result_ids, confidence, handoff,
    client)."""
    with sqlite3.connect(db) as raw:
        raw.executemany(
            "INSERT INTO queries (ts, source, audience, query, result_ids, confidence, handoff, client)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def test_the_report_is_capped_and_a_flood_from_one_client_does_not_dominate(
    use_kb: KnowledgeBase, tmp_path: Path
) -> None:
    db = tmp_path / "db.sqlite3"
    log = Logbook(db)
    now = time.time()
    flood = [(now - 600 + i / 50, "chat", "public", f"洪水测试问题{i}号", "[]", None, 1, "x") for i in range(30_000)]
    tenants = [
        (now - 7200 + c, "search", "public", f"第{c}号楼第{k}层的电梯什么时候检修", "[]", None, 0, f"tenant-{c}")
        for c in range(300)
        for k in range(3)
    ]
    pets = [(now - 9000 + c, "chat", "public", "宠物可以寄养吗", "[]", None, 1, f"pet-owner-{c}") for c in range(6)]
    staff = [(now - 8000 + k, "search", "agent", "空调外机漏水怎么报修", '["x"]', 0.2, 0, None) for k in range(4)]
    insert(db, flood + tenants + pets + staff)
    embedder = Counting(use_kb.embedder)
    reporter = GapReporter(log, embedder, 0.6)

    started = time.perf_counter()
    snapshot = reporter.compute(now - 86400, now + 1)
    first = time.perf_counter() - started
    assert len(embedder.texts) == MAX_QUESTIONS  # 300 x 3 + 20 + 2 distinct questions count; the 500 most asked
    assert sum(t.startswith("洪水测试问题") for t in embedder.texts) == PER_CLIENT  # one client: its 20 latest
    # ... and the report says how many it left out (a trial read 19 groups as all 42 unanswered questions)
    assert snapshot.left_out_questions == HEAVY_ROWS - PER_CLIENT
    assert snapshot.total_queries == len(flood + tenants + pets + staff)
    groups = {g.representative: g for g in snapshot.unanswered}
    assert (groups["宠物可以寄养吗"].count, groups["空调外机漏水怎么报修"].count) == (6, 4)  # clients, staff rows
    order = [g.representative for g in snapshot.unanswered]
    flooded = [g for g in snapshot.unanswered if g.representative.startswith("洪水测试问题")]
    assert flooded and all(g.count == 1 for g in flooded)  # one client, however many phrasings
    assert order.index("空调外机漏水怎么报修") < min(order.index(g.representative) for g in flooded)
    assert [q.query for q in snapshot.top_queries[:2]] == ["宠物可以寄养吗", "空调外机漏水怎么报修"]

    # Grouping is incremental: a second report embeds nothing, a later one only what is new.
    embedder.texts.clear()
    started = time.perf_counter()
    again = reporter.compute(now - 86400, now + 1)
    second = time.perf_counter() - started
    assert embedder.texts == [] and again.unanswered == snapshot.unanswered
    insert(db, [(now + 1 + c, "chat", "public", f"能不能帮忙收快递{c}", "[]", None, 1, f"new-{c}") for c in range(3)])
    reporter.compute(now - 86400, now + 10)
    assert sorted(embedder.texts) == [f"能不能帮忙收快递{c}" for c in range(3)]
    assert first < 20 and second < 5, (first, second)  # measured about 2 s and 0.4 s on two shared cores
    log.close()


def test_a_stored_report_is_served_at_once_and_refreshed_in_the_background(tmp_path: Path) -> None:
    # (no timing asserted: the stored report's own time says it was not recomputed; it failed once on a busy machine,
    # beside a CI run, with a 0.1 s bound and a 1 s lifetime)
    ttl = 3.0
    db = tmp_path / "db.sqlite3"
    log = Logbook(db)
    ask = {"source": "chat", "audience": "public", "query": "能寄存行李吗", "result_ids": [], "top_score": None}
    log.log_query(**ask, client="1.2.3.4")  # type: ignore[arg-type]
    reports = GapReports(GapReporter(log, HashEmbedder(), 0.6), ttl=ttl)
    first = reports.report(None, None, {})
    assert first.total_queries == 1 and first.unanswered[0].representative == "能寄存行李吗"
    log.log_query(**ask, client="5.6.7.8")  # type: ignore[arg-type]
    stored = reports.report(None, None, {})
    assert stored.computed_at == first.computed_at and stored.total_queries == 1  # not recomputed within the TTL
    other_process = GapReports(GapReporter(log, HashEmbedder(), 0.6), ttl=ttl)
    assert other_process.report(None, None, {}).computed_at == first.computed_at  # shared through the database
    time.sleep(ttl + 0.1)
    stale = reports.report(None, None, {})  # answered at once from the stored report; a refresh starts
    assert stale.computed_at == first.computed_at
    fresh = None
    deadline = time.time() + 10
    while time.time() < deadline:
        fresh = other_process.report(None, None, {})
        if fresh.computed_at > first.computed_at:
            break
        time.sleep(0.05)
    assert fresh is not None and fresh.total_queries == 2 and fresh.unanswered[0].count == 2  # two clients
    log.close()


def test_one_process_at_a_time_refreshes_a_report(tmp_path: Path) -> None:
    log = Logbook(tmp_path / "db.sqlite3")
    a, b = (GapReports(GapReporter(log, HashEmbedder(), 0.6)) for _ in range(2))
    a.report(None, None, {})
    key = window_key(None, None, time.time())[0]
    assert a._claim(key) and not b._claim(key)
    log.close()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path: Path) -> None:
    log = Logbook(tmp_path / "db.sqlite3")
    hostile = ['=HYPERLINK("http://evil.example","点我")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    for q in [*hostile, "正常的问题"]:
        log.log_query(source="chat", audience="public", query=q, result_ids=[], top_score=None, handoff=True)
    report = GapReporter(log, HashEmbedder(), 0.6).report(time.time() - 60, time.time() + 1, {})
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    cells = [cell for row in rows for cell in row]
    for q in hostile:
        assert "'" + q in cells and q not in cells
    assert "正常的问题" in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    log.close()


def test_the_csv_download_neutralises_a_tenant_question(trainer_client: TestClient) -> None:
    trainer_client.post("/v1/chat", json={"question": "=1+1 你们招聘管家吗"})
    window = {"since": time.time() - 60, "until": time.time() + 60}  # a window of its own: no stored report yet
    r = trainer_client.get("/v1/reports/gaps.csv", params=window, headers={"Authorization": f"Bearer {TRAINER}"})
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert any(row[1] == "'=1+1 你们招聘管家吗" for row in rows), rows


def test_a_live_call_keeps_no_personal_data_in_what_it_searches() -> None:
    """A security review: the shared call store kept the raw transcript (phone, room) for hours. What is searched
    and kept leaves them out; what a watching console shows is masked."""
    from kb_service.assist.context import CallContext
    from kb_service.text.privacy import redact

    assert redact("我是王小红，电话13812345678，住5栋803，家里漏水") == "我是，电话，住，家里漏水"
    ctx = CallContext(call_id="c-privacy")
    ctx.add("tenant", "我是王小红，电话13812345678，住5栋803，家里漏水", True)
    kept = ctx.finals[0]
    assert "13812345678" not in kept.text and "803" not in kept.text and "漏水" in kept.text
    assert "13812345678" not in kept.said and "[手机号]" in kept.said


def test_a_sop_published_this_week_is_not_listed_as_never_found(tmp_path: Path, sops_copy: Path) -> None:
    """A trial saw a SOP listed under 从未被检索到 a minute after publishing it; an edited older one is still listed."""
    with api_client(tmp_path, sops_copy, api_keys=KEYS) as c:
        fresh = NEW.replace("wifi-router-reset", "router-restart-new").replace("路由器重启指引", "路由器重启（新）")
        assert put(c, "router-restart-new", fresh).status_code == 200  # type: ignore[attr-defined]
        src = c.get("/v1/sops/parking/source", headers=auth(TRAINER)).json()
        edited = src["content"].replace("## 适用场景", "## 适用场景\n- 补充说明。", 1)
        assert put(c, "parking", edited, base_version=src["version"], force=True).status_code == 200  # type: ignore[attr-defined]
        never = c.get("/v1/reports/gaps", headers=auth(TRAINER)).json()["never_found"]
        assert "router-restart-new" not in never and "parking" in never
