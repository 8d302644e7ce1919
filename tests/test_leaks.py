"""Leak test: for every staff-only section and agent document of the sample corpus, questions aimed at it are
sent to the chat endpoint and to public search, and none of its text may appear in any response."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from kb_service.models import Sop
from kb_service.settings import get_settings
from kb_service.store import files
from tests.helpers import KEYS, SOPS


@pytest.fixture(scope="module")
def public_client(use_data: Path) -> Iterator[TestClient]:
    settings = get_settings(
        data_dir=use_data,
        sops_dir=SOPS,
        api_keys=KEYS,
        chat_rate_limit=100_000,
        public_search_rate_limit=100_000,
        case_rate_limit=100_000,
    )
    with TestClient(create_app(settings, load_in_background=False)) as c:
        yield c


def _fragments(text: str) -> list[str]:
    """Distinctive pieces of a text: each clause of 8+ characters."""
    parts = (re.sub(r"^(?:[-*]|\d+\.)\s*", "", p.strip()) for p in re.split(r"[\n。；;！？!?]", text))
    return [p for p in parts if len(p) >= 8]


def _secrets(catalog: dict[str, Sop]) -> tuple[list[tuple[str, list[str]]], set[str]]:
    """(questions, fragments) per staff-only target, and every fragment also found in public content."""
    public_text = "\n".join(
        s.text + "\n".join(f"{q.question}\n{q.answer}" for q in s.qa)
        for sop in catalog.values()
        if sop.meta.audience == "public"
        for s in sop.sections
        if s.audience == "public"
    ) + "\n".join(f"{s.title}\n{'、'.join(s.meta.tags)}" for s in catalog.values() if s.meta.audience == "public")
    targets = []
    for sop in catalog.values():
        for s in sop.sections:
            if s.audience != "agent":
                continue
            body = s.text + "\n" + "\n".join(f"{q.question}\n{q.answer}" for q in s.qa)
            questions = [s.heading, f"{sop.title} {s.heading}", *(_fragments(body)[:2])]
            if sop.meta.audience == "agent":
                questions += [sop.title, *sop.meta.examples[:2]]
            targets.append((f"{sop.meta.id}#{s.heading}", questions, _fragments(body)))
    shared = {f for _, _, frags in targets for f in frags if f in public_text}
    return [(name, qs) for name, qs, _ in targets], shared | {"__never__"}


def test_no_staff_text_in_chat_or_public_search(public_client: TestClient) -> None:
    catalog: dict[str, Sop] = public_client.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    staff_fragments = {
        f
        for sop in catalog.values()
        for s in sop.sections
        if s.audience == "agent"
        for f in _fragments(s.text + "\n" + "\n".join(f"{q.question}\n{q.answer}" for q in s.qa))
    }
    targets, shared = _secrets(catalog)
    secret = sorted(staff_fragments - shared)
    assert len(secret) > 200 and len(targets) > 100
    asked = 0
    # Agent SOPs repeat their title and examples for every section: each distinct question is asked once.
    for q in dict.fromkeys(q[:280] for _name, questions in targets for q in questions):
        responses = [
            public_client.post("/v1/chat", json={"question": q}).json(),
            public_client.post("/v1/search", json={"query": q, "top_k": 10}).json(),
        ]
        if asked % 4 == 0:  # an agent asking for the public view: the same filter, checked on every 4th question
            responses.append(
                public_client.post(
                    "/v1/search",
                    json={"query": q, "top_k": 10, "audience": "public"},
                    headers={"Authorization": "Bearer agent-key-123456"},
                ).json()
            )
        for r in responses:
            r.pop("query", None)  # the echo of our own question is not a leak
        blob = json.dumps(responses, ensure_ascii=False)
        leaked = [f for f in secret if f in blob]
        assert not leaked, (q, leaked[:3])
        asked += 1
    assert asked > 300


def test_no_staff_text_in_what_a_tenant_gets_from_a_hand_over(public_client: TestClient) -> None:
    """The hand-over paths a tenant reaches: opening a case (the server matches staff-only SOPs to set the priority
    and suggest a SOP to the agent) and reading its conversation with the token."""
    catalog: dict[str, Sop] = public_client.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    targets, shared = _secrets(catalog)
    secret = sorted(
        {
            f
            for sop in catalog.values()
            for s in sop.sections
            if s.audience == "agent"
            for f in _fragments(s.text + "\n" + "\n".join(f"{q.question}\n{q.answer}" for q in s.qa))
        }
        - shared
    )
    staff_titles = [s.title for s in catalog.values() if s.meta.audience == "agent"]
    contact = {"name": "王五", "room": "1-101", "phone": "13700137000"}
    for _name, questions in targets:
        q = questions[-1][:280]
        r = public_client.post("/v1/cases", json={"session_id": "leak", "question": q, "contact": contact})
        assert r.status_code == 201, r.text
        created = r.json()
        read = public_client.get(
            f"/v1/cases/{created['case_id']}/messages", headers={"X-Case-Token": created["token"]}
        ).json()
        for m in read["messages"]:
            m.pop("text")  # the tenant's own question echoed back is not a leak
        blob = json.dumps([{k: v for k, v in created.items() if k != "token"}, read], ensure_ascii=False)
        leaked = [f for f in [*secret, *staff_titles] if f in blob]
        assert not leaked, (q, leaked[:3])


def test_agent_documents_are_invisible_to_tenants(public_client: TestClient) -> None:
    catalog: dict[str, Sop] = public_client.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    for sop_id, sop in catalog.items():
        status = public_client.get(f"/v1/sops/{sop_id}").status_code
        assert status == (200 if sop.meta.audience == "public" else 404)
    listed = {s["sop_id"] for s in public_client.get("/v1/sops").json()}
    assert listed == {i for i, s in catalog.items() if s.meta.audience == "public"}


def test_a_public_document_says_nothing_about_the_staff_who_keep_it(public_client: TestClient) -> None:
    """A security review: tenants saw the owner's name, the file path and the example queries (a promoted learned
    phrasing is one: an agent's words)."""
    catalog: dict[str, Sop] = public_client.app.state.kb_state.services.kb.searcher.catalog  # type: ignore[attr-defined]
    sop_id = next(i for i, s in catalog.items() if s.meta.audience == "public" and s.meta.owner and s.meta.examples)
    doc = public_client.get(f"/v1/sops/{sop_id}").json()
    assert (doc["meta"]["owner"], doc["meta"]["examples"], doc["meta"]["review_by"], doc["path"]) == ("", [], None, "")
    found = public_client.post("/v1/search", json={"query": catalog[sop_id].meta.examples[0]}).json()["results"]
    seen = json.dumps(found, ensure_ascii=False)
    assert catalog[sop_id].meta.owner not in seen and catalog[sop_id].path not in seen


def test_chat_answers_a_public_question_with_its_source(public_client: TestClient) -> None:
    r = public_client.post("/v1/chat", json={"question": "房租可以开发票吗"}).json()
    assert not r["handoff"] and r["sources"][0]["sop_id"] == "invoice-request" and "来源" in r["answer"]


def test_chat_hands_over_when_unsure(public_client: TestClient) -> None:
    r = public_client.post("/v1/chat", json={"question": "附近有什么好吃的火锅店推荐吗"}).json()
    assert r["handoff"] and r["sources"] == [] and "人工" in r["answer"]


def test_a_hand_over_says_nothing_of_how_well_staff_documents_matched(public_client: TestClient) -> None:
    """A security review: 提前退租违约金多少 was handed over with confidence 0.72, higher than a question nothing
    matches, which told a tenant that a staff-only procedure for it exists."""
    staff_only = public_client.post("/v1/chat", json={"question": "提前退租违约金多少"}).json()
    nothing = public_client.post("/v1/chat", json={"question": "附近有什么好吃的火锅店推荐吗"}).json()
    assert staff_only["handoff"] and nothing["handoff"]
    assert staff_only["confidence"] == nothing["confidence"] == 0.0


# -- [内部] under nested headings, published through the API and asked for through every tenant route ------------

NESTED = """---
id: laundry-room
title: 公共洗衣房与烘干机使用
category: 入住服务
audience: public
tags: [洗衣房, 洗衣机, 烘干机]
examples: [洗衣房在哪里]
---
# 公共洗衣房与烘干机使用

## 适用场景
租客咨询公共洗衣房的位置、开放时间、收费，或反映洗衣机、烘干机故障。

## 处理步骤
1. 告知洗衣房位于一楼大堂东侧，每天 7:00-23:00 开放。
2. 机器故障的，请租客在 App 报修并拍下机器编号。

### 故障退款规则 [内部]
洗衣机吞币或中途停机的，管家可直接在后台退款，每单上限十五元。

#### 退款审批热线
超过上限的退款打设备供应商热线 400-820-7788 转三号键，报门店编号。

##### 供应商结算口径
供应商按每台每月三十五元保底分成结算，不向租客透露。

#### 补偿话术
> 给您添麻烦了，这次的洗衣费用全额退给您，另外送您一张免费烘干券。

### 收费标准
洗衣每次 4 元，烘干每次 3 元，可用 App 扫码支付。

## 标准话术
> 您好，洗衣房在一楼大堂东侧，每天早上 7 点到晚上 11 点开放。

## 常见问题
### 洗衣房几点开门？
每天早上 7 点到晚上 11 点开放，节假日照常。

## 常见问答 [内部]
### 租客要求赔偿洗坏的衣服怎么办？
按衣物原价三成赔付，单件不超过二百元，超过的报店长。

#### 租客不接受三成赔付呢？
最多提高到原价五成，需店长在工单里签字确认。
"""
# Text of every staff-only heading and passage above, at each depth (### to #####, FAQ questions and answers).
NESTED_SECRETS = [
    "故障退款规则",
    "每单上限十五元",
    "退款审批热线",
    "400-820-7788",
    "供应商结算口径",
    "三十五元保底分成",
    "补偿话术",
    "免费烘干券",
    "常见问答",
    "洗坏的衣服",
    "原价三成",
    "原价五成",
]
NESTED_QUESTIONS = [
    "洗衣机吞币了能退款吗",
    "洗衣机中途停机退款上限多少",
    "洗衣房退款审批热线是多少",
    "设备供应商热线",
    "洗衣机供应商怎么结算分成",
    "洗衣房能送免费烘干券吗",
    "洗衣房把我衣服洗坏了怎么赔",
    "洗坏衣服不接受三成赔付怎么办",
    *NESTED_SECRETS,
]
STAFF = {"Authorization": "Bearer agent-key-123456"}
TRAINER = {"Authorization": "Bearer trainer-key-123456"}


@pytest.fixture(scope="module")
def nested_client(use_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real model and engine over a copy of the sample index, with the nested document published by PUT."""
    tmp = tmp_path_factory.mktemp("nested-leak")
    files.copy_tree(use_data, tmp / "data")
    shutil.copytree(SOPS, tmp / "sops")
    settings = get_settings(data_dir=tmp / "data", sops_dir=tmp / "sops", api_keys=KEYS, chat_rate_limit=100_000)
    with TestClient(create_app(settings, load_in_background=False)) as c:
        r = c.put(
            "/v1/sops/laundry-room", content=NESTED.encode(), headers={**TRAINER, "content-type": "text/markdown"}
        )
        assert r.status_code == 200, r.text
        yield c


def test_nested_staff_text_is_indexed_and_reached_by_the_questions(nested_client: TestClient) -> None:
    """The control: staff see every secret, so the tenant test below would catch a leak."""
    seen = json.dumps(nested_client.get("/v1/sops/laundry-room", headers=STAFF).json(), ensure_ascii=False)
    assert all(s in seen for s in NESTED_SECRETS)
    hits = 0
    for q in NESTED_QUESTIONS:
        r = nested_client.post("/v1/search", json={"query": q, "top_k": 5}, headers=STAFF).json()
        hits += any(h["sop_id"] == "laundry-room" for h in r["results"])
    assert hits >= len(NESTED_QUESTIONS) - 2, hits
    public = nested_client.post("/v1/chat", json={"question": "洗衣房几点开门"}).json()
    assert not public["handoff"] and public["sources"][0]["sop_id"] == "laundry-room", public


def test_no_nested_staff_text_reaches_tenants(nested_client: TestClient) -> None:
    doc = nested_client.get("/v1/sops/laundry-room")
    assert doc.status_code == 200
    body = json.dumps(doc.json(), ensure_ascii=False)
    assert "收费标准" in body and "洗衣房几点开门" in body  # the public sections are there...
    assert not [s for s in NESTED_SECRETS if s in body]  # ...and nothing under a [内部] heading, at any depth
    for q in NESTED_QUESTIONS:
        responses = [
            nested_client.post("/v1/chat", json={"question": q}).json(),
            nested_client.post("/v1/search", json={"query": q, "top_k": 10}).json(),
            nested_client.post(
                "/v1/search", json={"query": q, "top_k": 10, "audience": "public"}, headers=STAFF
            ).json(),
        ]
        for r in responses:
            r.pop("query", None)
        blob = json.dumps(responses, ensure_ascii=False)
        assert not [s for s in NESTED_SECRETS if s in blob], (q, [s for s in NESTED_SECRETS if s in blob])


def test_preview_shows_the_effective_audience_of_every_section(nested_client: TestClient) -> None:
    r = nested_client.post("/v1/preview", content=NESTED.encode(), headers={**TRAINER, "content-type": "text/markdown"})
    assert r.status_code == 200 and r.json()["ok"]
    sections = {" › ".join(s["heading_path"][1:]): s for s in r.json()["sections"]}
    staff = {p: s["reason"] for p, s in sections.items() if s["audience"] == "agent"}
    inherited = "仅员工：上级标题“故障退款规则”（第 18 行）带 [内部]"
    assert staff == {
        "处理步骤 › 故障退款规则": "仅员工：本节标题带 [内部]",
        "处理步骤 › 故障退款规则 › 退款审批热线": inherited,
        "处理步骤 › 故障退款规则 › 退款审批热线 › 供应商结算口径": inherited,
        "处理步骤 › 故障退款规则 › 补偿话术": inherited,
        "常见问答": "仅员工：本节标题带 [内部]",
    }
    assert {s["reason"] for s in sections.values() if s["audience"] == "public"} == {
        "租客可见：文件头 audience: public，本节及上级标题都没有 [内部]"
    }
    for c in r.json()["chunks"]:
        shown = json.dumps(c, ensure_ascii=False)
        assert c["audience"] == "agent" or not [s for s in NESTED_SECRETS if s in shown], c
        assert c["audience_reason"].startswith("仅员工" if c["audience"] == "agent" else "租客可见")


QUOTED = """---
id: storage-room
title: 储物间租用与行李寄存
category: 入住服务
audience: public
tags: [储物间, 行李寄存]
scope: [门店编码SZ-07]
---
# 储物间租用与行李寄存

## 适用场景
租客咨询储物间租用和行李寄存。

## 收费说明
储物间每月 80 元，行李寄存每件每天 5 元。

## 仓储结算 [内部]
> ## 引用里的标题
- 引用之后仍属内部：仓储供应商每月返点百分之十二。

## 私教分成 [内部]
- ## 列表里的标题
- 列表之后仍属内部：储物间空置超过三个月可以五折租给员工亲属。

## 常见问题
### 行李能寄存几天？
最多寄存 30 天。
"""
# (and the stores it applies to, by their internal codes: `scope` is staff-only metadata)
QUOTED_SECRETS = ["返点百分之十二", "五折租给员工亲属", "引用里的标题", "列表里的标题", "SZ-07"]


def test_a_heading_inside_a_quote_or_a_list_item_does_not_end_a_staff_only_section(nested_client: TestClient) -> None:
    """A security test: `> ## …` under a [内部] heading made a public section of what followed (shown by the chat and
    public search); `- ## …` made publishing fail with a 500. A heading nested in a quote or a list item is content of
    the section it is in."""
    put = nested_client.put(
        "/v1/sops/storage-room", content=QUOTED.encode(), headers={**TRAINER, "content-type": "text/markdown"}
    )
    assert put.status_code == 200, put.text
    staff = json.dumps(nested_client.get("/v1/sops/storage-room", headers=STAFF).json(), ensure_ascii=False)
    assert all(s in staff for s in QUOTED_SECRETS)  # staff still see it all
    responses = [nested_client.get("/v1/sops/storage-room").json()]
    for q in ("仓储供应商返点多少", "储物间空置可以五折租给员工亲属吗", "引用之后仍属内部的是什么", "储物间多少钱"):
        responses += [
            nested_client.post("/v1/chat", json={"question": q}).json(),
            nested_client.post("/v1/search", json={"query": q, "top_k": 10}).json(),
        ]
    for r in responses:
        r.pop("query", None)
    blob = json.dumps(responses, ensure_ascii=False)
    assert "80 元" in blob and not [s for s in QUOTED_SECRETS if s in blob]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("underlined", "## 会员折扣 [内部]\n店长可给会员卡打八折\n---\n- 分隔线之后：私教课提成三成。\n"),
        ("html", "## 仓储 [内部]\n<details>\n\n## 折叠标题\n</details>\n\n- 私教课提成三成。\n"),
        # A second round: a [内部] heading inside a quote or a list item marks nothing, and its text was public
        ("quoted", "> ## 会员折扣 [内部]\n> 私教课提成三成。\n"),
        ("listed", "1. 先登记。\n\n   ## 会员折扣 [内部]\n\n   私教课提成三成。\n"),
        # A third round: an unclosed code fence, or a heading indented 4 spaces, made the marked heading code
        ("fenced", "```\nApp > 报修\n\n## 会员折扣 [内部]\n私教课提成三成。\n"),
        ("indented", "会员卡在前台办理。\n\n    ## 会员折扣 [内部]\n私教课提成三成。\n"),
    ],
)
def test_a_heading_the_author_may_not_have_meant_is_refused(nested_client: TestClient, name: str, body: str) -> None:
    """A line underlined with --- (a separator to the author, a heading to Markdown) or a heading inside an HTML block
    ends the staff-only section above it, and the security test saw the staff text after it reach tenants: such
    a document is refused with what to change, and nothing of it is published."""
    doc = QUOTED.split("## 仓储结算 [内部]")[0].replace("storage-room", f"gym-{name}") + body
    r = nested_client.put(
        f"/v1/sops/gym-{name}", content=doc.encode(), headers={**TRAINER, "content-type": "text/markdown"}
    )
    assert r.status_code == 422, r.text
    expected = {"underlined": "## 书写", "html": "HTML", "quoted": "引用", "listed": "列表项"}
    assert expected.get(name, "代码块") in r.text
    assert nested_client.get(f"/v1/sops/gym-{name}", headers=STAFF).status_code == 404


WORD_STYLE = """---
id: water-leak-word
title: 房间漏水处理
category: 报修
audience: public
tags: [漏水, 渗水]
---
# 房间漏水处理

## 一、适用范围
房间内水管漏水，天花板滴水。

## 二、标准话术
> 您好，请您先把房间的总水阀关掉。

**注意：以下内容仅员工可见**
- 漏水赔偿五百元以内门店直接赔付，保单号 PICC-2025-HZ-7781。
- 备用钥匙在门店保险柜，保险柜密码 0517。

## 内部说明
- 维修主管钱总内线 8001，财务内线 8066。

## 六、内部处理口径（不要告诉租客）
- 店长可以把维修费减免到半个月房租。
"""
WORD_SECRETS = ["PICC-2025", "0517", "8001", "8066", "半个月", "钱总"]


def test_staff_notes_written_the_way_word_documents_do_never_reach_tenants(nested_client: TestClient) -> None:
    """A new customer's trial (session 37): headings and a line that say "staff only" in the company's own words, with
    no `[内部]` marker, reached public search and the public document while lint was silent."""
    questions = ("漏水赔偿多少钱", "备用钥匙在哪里", "天花板漏水", "维修费能减免吗", "隔壁太吵")
    _published_hides(nested_client, "water-leak-word", WORD_STYLE, WORD_SECRETS, "总水阀", questions)


def _published_hides(
    c: TestClient, sop_id: str, text: str, secrets: list[str], public: str, questions: tuple[str, ...]
) -> None:
    """Publish `text`; agents see every secret, tenants none (the document, chat, public search), and `public`."""
    put = c.put(f"/v1/sops/{sop_id}", content=text.encode(), headers={**TRAINER, "content-type": "text/markdown"})
    assert put.status_code == 200, put.text
    staff = json.dumps(c.get(f"/v1/sops/{sop_id}", headers=STAFF).json(), ensure_ascii=False)
    assert all(s in staff for s in secrets)  # the control: agents see every note
    doc = json.dumps(c.get(f"/v1/sops/{sop_id}").json(), ensure_ascii=False)
    assert public in doc and not [s for s in secrets if s in doc]
    for q in questions:
        responses = [
            c.post("/v1/chat", json={"question": q}).json(),
            c.post("/v1/search", json={"query": q, "top_k": 10}).json(),
        ]
        blob = json.dumps(responses, ensure_ascii=False)
        assert not [s for s in secrets if s in blob], (q, [s for s in secrets if s in blob])


# A security review's document (session 39): the marker at the start of a bullet, a numbered step, a script line, a
# table row, mid-sentence; lookalike writings of it in headings; a comment over several lines. All were public.
MARKED_INLINE = """---
id: gym-card
title: 健身房会员卡办理与收费
category: 入住服务
audience: public
tags: [健身房, 会员卡, 月卡]
---
# 健身房会员卡办理与收费
## 适用场景
租客咨询健身房会员卡怎么办、多少钱、有没有优惠。
## 收费标准
- 月卡100元，季卡270元。
- [内部] 员工内部价：月卡成本价 SECRETLIST1 元，店长可以给老租客免单。
## 优惠
- 【内部】优惠码 SECRETLIST2，只发给投诉过的租客。
## 办理流程
1. 在App里选择“健身房月卡”并付款。
2. [内部] 后台改价路径：运营后台→会员→改价，管理员密码 SECRETSTEP1。
3. 到前台领取手环。
## 标准话术
> 您好，健身房月卡100元，季卡270元，可以在App里办理。
> [内部] 如果租客投诉贵，可以说给他打八折，最低 SECRETSCRIPT1 元。
## 优惠对照表
| 类型 | 价格 |
|---|---|
| 月卡 | 100 |
| [内部] 员工折扣 | SECRETTABLE1 |
## 会员权益
会员可以免费使用淋浴间。 [内部] 淋浴间储物柜万能钥匙在前台抽屉，编号 SECRETMID1。
## 退卡规定 [内\u2800部]
退卡违约金 SECRETBRAILLE1 元。
## 补卡 [内 部]
补卡工本费 SECRETSPACE1 元。
## 转卡 [内\u0301部]
转卡手续费 SECRETACCENT1 元。
## 停卡 [\U0002f814部]
停卡押金 SECRETCOMPAT1 元。
## 员工价
员工办卡 SECRETSTAFFPRICE1 元。
## 营业时间
<!--
[内部]
-->
夜间值班门禁码 SECRETCOMMENT1。
"""
MARKED_SECRETS = [
    "SECRETLIST1", "SECRETLIST2", "SECRETSTEP1", "SECRETSCRIPT1", "SECRETTABLE1", "SECRETMID1", "SECRETBRAILLE1",
    "SECRETSPACE1", "SECRETACCENT1", "SECRETCOMPAT1", "SECRETSTAFFPRICE1", "SECRETCOMMENT1",
]  # fmt: skip


def test_a_marker_anywhere_in_a_line_or_written_like_the_marker_keeps_the_text_from_tenants(
    nested_client: TestClient,
) -> None:
    md = {**TRAINER, "content-type": "text/markdown"}
    questions = ("健身房月卡多少钱", "健身房月卡怎么办理", "淋浴间储物柜", "健身房有没有优惠码", "健身房退卡违约金")
    _published_hides(nested_client, "gym-card", MARKED_INLINE, MARKED_SECRETS, "租客咨询健身房会员卡", questions)
    # each such section is warned about in the preview (the author learns it was read as staff-only)
    issues = nested_client.post("/v1/preview", content=MARKED_INLINE.encode(), headers=md).json()["issues"]
    assert len([i for i in issues if "警告" in i]) >= 8, issues
    # ... and an agent is offered none of it as a line to say (a case reply pasted a staff-only script line)
    hit = nested_client.post("/v1/search", json={"query": "健身房月卡", "top_k": 3}, headers=STAFF).json()["results"][0]
    assert hit["sop_id"] == "gym-card" and not [s for s in MARKED_SECRETS if s in json.dumps(hit["scripts"])]


def test_the_tenants_view_of_a_document_does_not_change_with_its_staff_only_text(nested_client: TestClient) -> None:
    """A security review: the tenant's view carried the file's hash, which changed when only a [内部] section did."""
    md = {**TRAINER, "content-type": "text/markdown"}
    doc = NESTED.replace("laundry-room", "laundry-two")
    assert nested_client.put("/v1/sops/laundry-two", content=doc.encode(), headers=md).status_code == 200
    tenant, staff = (
        nested_client.get("/v1/sops/laundry-two").json(),
        nested_client.get("/v1/sops/laundry-two", headers=STAFF).json(),
    )
    assert tenant["content_hash"] != staff["content_hash"]
    changed = doc.replace(NESTED_SECRETS[0], NESTED_SECRETS[0] + "9")  # staff-only text alone
    assert changed != doc
    base = {"base_version": staff["meta"]["version"]}
    assert (
        nested_client.put("/v1/sops/laundry-two", content=changed.encode(), headers=md, params=base).status_code == 200
    )
    again = nested_client.get("/v1/sops/laundry-two").json()
    assert again["sections"] == tenant["sections"] and again["content_hash"] == tenant["content_hash"]
    assert nested_client.get("/v1/sops/laundry-two", headers=STAFF).json()["content_hash"] != staff["content_hash"]
    # A staff-only section that grows moves the source lines of the public ones below it, and the publish bumps the
    # version and its date: none of it is in the tenant's view, listing or search (the review's leftover)
    longer = changed.replace(NESTED_SECRETS[1], NESTED_SECRETS[1] + "\n节假日退款由值班店长审批。\n")
    now = nested_client.get("/v1/sops/laundry-two", headers=STAFF).json()["meta"]["version"]
    put = nested_client.put("/v1/sops/laundry-two", content=longer.encode(), headers=md, params={"base_version": now})
    assert put.status_code == 200
    assert nested_client.get("/v1/sops/laundry-two").json() == again
    staff_now = nested_client.get("/v1/sops/laundry-two", headers=STAFF).json()
    assert staff_now["meta"]["version"] > staff["meta"]["version"]
    assert [s["line_start"] for s in staff_now["sections"]] != [s["line_start"] for s in staff["sections"]]
    listed = next(s for s in nested_client.get("/v1/sops").json() if s["sop_id"] == "laundry-two")
    assert listed["version"] == 0 and listed["updated"] is None
    found = nested_client.post("/v1/search", json={"query": "洗衣房收费标准", "top_k": 3}).json()["results"]
    hit = next(h for h in found if h["sop_id"] == "laundry-two")
    assert hit["version"] == 0 and {(s["line_start"], s["line_end"]) for s in hit["sections"]} == {(0, 0)}
    assert hit["best_section"] is None or hit["best_section"]["line_start"] == 0


# The re-check of that review: the heading vocabulary written on a line was still public
ON_A_LINE = """---
id: pool-card
title: 游泳池使用与收费
category: 入住服务
audience: public
tags: [游泳池, 月票]
---
# 游泳池使用与收费
## 适用场景
租客咨询游泳池开放时间、收费和储物柜。
## 收费标准
- 单次票30元，月票200元。
- 员工价 SECRETA1 元，可以给老租客用（不要告诉租客）
## 储物柜
- 储物柜扫码开柜，押金10元。
- （仅限内部）忘记密码时用管理卡开柜，管理卡密码 SECRETB2。
## 优惠活动
- [仅员工] 投诉过的租客可以送一张月票，审批码 SECRETC3。
## 夜场
- 夜场 SECRETD4 元，仅限员工知晓
## 清洁
- 每周一闭馆清洁，成本价 SECRETE5 ——内部
## 价目表
| 项目 | 价格 |
|---|---|
| 内部价 | SECRETF6 |
## 设备
- [internal] 水泵房钥匙编号 SECRETG7
## 常见问题
### 游泳池几点开放？
每天 07:00–22:00 开放。
"""
ON_A_LINE_SECRETS = ["SECRETA1", "SECRETB2", "SECRETC3", "SECRETD4", "SECRETE5", "SECRETF6", "SECRETG7"]


def test_the_staff_only_words_of_a_heading_keep_a_line_from_tenants_too(nested_client: TestClient) -> None:
    questions = ("游泳池储物柜忘记密码怎么办", "游泳池月票多少钱", "游泳池夜场", "游泳池优惠")
    _published_hides(nested_client, "pool-card", ON_A_LINE, ON_A_LINE_SECRETS, "游泳池开放时间", questions)
    # a staff-only word in a public FAQ answer is refused (a question is public or not)
    faq = ON_A_LINE.replace("每天 07:00–22:00 开放。", "每天 07:00–22:00 开放。[内部使用] 值班电话 13900001111。")
    md = {**TRAINER, "content-type": "text/markdown"}
    assert nested_client.post("/v1/preview", content=faq.encode(), headers=md).json()["ok"] is False
    # the preview says why: not a [内部] the heading does not have (the re-check read 「本节标题带 [内部]」)
    sections = nested_client.post("/v1/preview", content=ON_A_LINE.encode(), headers=md).json()["sections"]
    locker = next(x for x in sections if x["heading_path"][-1] == "储物柜")
    assert locker["audience"] == "agent" and "正文里有仅员工的标记" in locker["reason"], locker
