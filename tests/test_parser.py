"""Parser golden tests: a SOP file in, structured data out, compared with a checked-in expected result."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

import pytest

from ingest.chunker import chunk_sop
from ingest.headings import (
    announces_staff_only,
    body_marker_near_miss,
    heading_near_miss,
    reads_staff_only,
    section_kind,
    split_internal,
)
from ingest.parser import parse_bytes, parse_file
from kb_service.search.hits import time_limits
from tests.helpers import FIXTURES, SOPS

GOLDEN = sorted(FIXTURES.glob("*.md"))
TODAY = date(2026, 11, 28)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    result = parse_file(path, today=TODAY, display_path=path.name)
    assert result.sop is not None, result.issues
    got = result.sop.model_dump(mode="json")
    expected_file = path.with_suffix(".expected.json")
    if os.environ.get("KB_UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert got == json.loads(expected_file.read_text(encoding="utf-8"))


def test_meaningful_sections_and_synonyms() -> None:
    sop = parse_file(FIXTURES / "synonyms.md", today=TODAY).sop
    assert sop is not None
    kinds = {s.heading: s.kind for s in sop.sections}
    assert kinds["适用范围"] == "scenario" and kinds["操作步骤"] == "steps" and kinds["话术"] == "script"
    assert kinds["时效要求"] == "time_limit" and kinds["FAQ"] == "faq" and kinds["其他说明"] == "plain"
    steps = next(s for s in sop.sections if s.kind == "steps")
    assert steps.steps == ["第一步，核实身份。", "第二步：子项甲；子项乙", "第三步。"]
    script = next(s for s in sop.sections if s.kind == "script")
    assert script.scripts == ["您好，这里是客服中心。", "请问有什么可以帮您？", "还有一句。"]
    faq = next(s for s in sop.sections if s.kind == "faq")
    assert [(q.question, q.answer) for q in faq.qa] == [
        ("第一个问题？", "第一个答案。"),
        ("第二个问题？", "第二个答案，\n有两行。"),
    ]


def test_internal_marker_applies_to_subsections_and_public_view_drops_them() -> None:
    sop = parse_file(FIXTURES / "synonyms.md", today=TODAY).sop
    assert sop is not None
    internal = [s for s in sop.sections if s.internal]
    assert [s.heading for s in internal] == ["内部联系方式", "子节"]
    assert all(s.audience == "agent" for s in internal)
    assert all(s.audience == "public" for s in sop.sections if not s.internal)
    assert "8800" not in json.dumps(sop.public_view().model_dump(mode="json"), ensure_ascii=False)


def test_line_spans_point_at_the_source() -> None:
    path = FIXTURES / "synonyms.md"
    lines = path.read_text(encoding="utf-8").split("\n")
    sop = parse_file(path, today=TODAY).sop
    assert sop is not None
    for s in sop.sections:
        if s.heading != "简介":
            assert s.heading in lines[s.line_start - 1], (s.heading, s.line_start)
        assert lines[s.line_end - 1].strip(), f"{s.heading} ends on a blank line"


def test_agent_document_makes_every_section_staff_only() -> None:
    raw = "---\nid: a\ntitle: T\ncategory: C\naudience: agent\n---\n# T\n\n## 适用场景\n文字\n".encode()
    sop = parse_bytes("a.md", raw).sop
    assert sop is not None and all(s.audience == "agent" for s in sop.sections)


@pytest.mark.parametrize(
    ("heading", "kind"),
    [
        ("处理流程", "steps"),
        ("参考话术", "script"),
        ("升级路径", "escalation"),
        ("注意事项", "notes"),
        ("常见问答", "faq"),
        ("门店地址", "plain"),
        ("【时效】", "time_limit"),  # a house style of bracketed names (a third company's documents)
        ("〔处理步骤〕：", "steps"),
        ("[话术]", "script"),
        ("【门店地址】", "plain"),
        # a terse company's own names (a trainer's trial: read as plain sections, the chat answered with 上报)
        ("上报", "escalation"),
        ("情形", "scenario"),
        ("禁忌", "notes"),
    ],
)
def test_heading_synonyms(heading: str, kind: str) -> None:
    assert section_kind(heading) == kind


def test_internal_marker_variants() -> None:
    assert split_internal("补偿标准 [内部]") == ("补偿标准", True)
    assert split_internal("补偿标准【内部】") == ("补偿标准", True)
    assert split_internal("内部流程") == ("内部流程", False)


def test_every_sample_sop_parses_with_steps_and_scripts() -> None:
    files = sorted(SOPS.rglob("*.md"))
    assert len(files) >= 40
    for f in files:
        sop = parse_file(f, today=TODAY).sop
        assert sop is not None, f
        assert any(s.steps for s in sop.sections), f"{f} has no steps"
        assert any(s.scripts for s in sop.sections), f"{f} has no script lines"


# -- [内部] at any depth --------------------------------------------------------------------------------------------

NESTED_SECRETS = (
    *("8800-1234", "500 元以内", "额外补偿一个月", "稍等"),
    *("加倍赔偿", "值班主管 8801", "审批热线", "特殊情况"),
)


def test_internal_marker_reaches_every_heading_below_it() -> None:
    result = parse_file(FIXTURES / "nested-internal.md", today=TODAY)
    sop = result.sop
    assert sop is not None and result.issues == []
    by_path = {" › ".join(s.heading_path[1:]): s for s in sop.sections}
    staff = ["补偿细则", "补偿细则 › 审批热线", "补偿细则 › 审批热线 › 特殊情况", "补偿细则 › 升级话术"]
    for p in staff:
        s = by_path[f"处理步骤 › {p}"]
        assert (s.audience, s.internal, s.internal_from) == ("agent", True, 16), p
    assert [s.level for s in sop.sections[1:5]] == [3, 4, 5, 4]
    faq = by_path["常见问题解答"]
    assert faq.audience == "agent"
    assert [q.question for q in faq.qa] == ["租客要求加倍赔偿怎么办？", "追问：店长不在呢？"]
    public = [p for p, s in by_path.items() if s.audience == "public"]
    assert public == ["处理步骤", "处理步骤 › 办理时间", "常见问题", "注意事项", "注意事项 › 办理提醒"]
    view = json.dumps(sop.public_view().model_dump(mode="json"), ensure_ascii=False)
    assert "办理时间" in view and not [s for s in NESTED_SECRETS if s in view]


def test_every_chunk_of_a_staff_only_heading_is_staff_only() -> None:
    sop = parse_file(FIXTURES / "nested-internal.md", today=TODAY).sop
    assert sop is not None
    chunks = chunk_sop(sop)
    public_text = json.dumps([c.model_dump() for c in chunks if c.audience == "public"], ensure_ascii=False)
    staff_text = json.dumps([c.model_dump() for c in chunks if c.audience == "agent"], ensure_ascii=False)
    assert all(s in staff_text for s in NESTED_SECRETS)
    assert not [s for s in NESTED_SECRETS if s in public_text]


def _doc(body: str, audience: str = "public") -> bytes:
    head = f"---\nid: n\ntitle: T\ncategory: C\naudience: {audience}\n---\n"
    return f"{head}# T\n\n## 适用场景\n文字\n\n{body}\n".encode()


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("## 补偿标准 (内部)\n500 元", "(内部)"),
        ("## 补偿标准（内部）\n500 元", "（内部）"),
        ("## 补偿标准 <!-- [内部] -->\n500 元", "<!-- [内部] -->"),
        ("## [内部] 补偿标准\n500 元", "[内部]"),
        ("## 补偿标准 [内部] 说明\n500 元", "[内部]"),
        ("## 补偿标准 [内部资料]\n500 元", "[内部资料]"),
        ("## 补偿标准 [仅员工]\n500 元", "[仅员工]"),
        ("## 补偿标准 - 内部\n500 元", "内部"),
        ("## 内部备注\n500 元", "内部备注"),
        ("## 补偿标准\n[内部]\n500 元", "“[内部]”"),
        ("## 补偿标准\n<!-- [内部] -->\n\n500 元", "<!-- [内部] -->"),
        ("## 补偿标准\n**内部**：\n- 500 元", "“内部：”"),
        ("## 处理步骤\n1. 一\n\n### 补偿\n#### 标准（内部）\n500 元", "（内部）"),
        # A new customer's Word documents (session 37): each of these reached tenants with no warning at all
        ("## 内部说明\n- 500 元", "内部"),
        ("## 六、内部处理口径（不要告诉租客）\n- 500 元", "内部"),
        ("## 补偿（不要告诉租客）\n- 500 元", "不要告诉"),
        ("## 标准话术\n> 您好。\n\n**注意：以下内容仅员工可见**\n- 500 元", "以下内容仅员工可见"),
        ("## 处理步骤\n1. 一\n\n以下为内部处理口径：\n\n### 补偿\n500 元", "以下为内部处理口径"),
    ],
)
def test_what_reads_as_staff_only_is_staff_only_and_warned(body: str, found: str) -> None:
    """Fail-closed: a heading or a line that says its text is for staff makes it staff-only even without the exact
    `[内部]` marker (a new customer's documents leaked compensation limits and a key-safe code), and the warning says
    how to write the marker."""
    result = parse_bytes("n.md", _doc(body))
    assert result.sop is not None
    warnings = [i for i in result.issues if i.severity == "warning"]
    assert len(warnings) == 1, result.issues
    w = warnings[0]
    assert w.line >= 12 and found in w.message and "已按 [内部] 处理" in w.message and "[内部]" in w.message, str(w)
    assert str(w).startswith(f"n.md:{w.line}: 警告:")
    staff = [s for s in result.sop.sections if "500 元" in s.text]
    assert staff and all(s.audience == "agent" for s in staff), result.sop.sections
    # (the file's hash left out: hex digits, it held "500" by chance after a parser revision)
    view = json.dumps(result.sop.public_view().model_dump(mode="json", exclude={"content_hash"}), ensure_ascii=False)
    assert "500" not in view and "文字" in view  # the rest stays public


def test_a_heading_read_as_staff_only_keeps_its_kind_and_an_announcement_ends_with_its_section() -> None:
    body = "## 处理步骤（仅员工）\n1. 建工单\n2. 派单\n\n## 标准话术\n> 您好。\n\n以下内容仅员工可见：\n- 密码 0517\n\n"
    body += "## 注意事项\n- 公开"
    sop = parse_bytes("n.md", _doc(body)).sop
    assert sop is not None
    by_heading = {s.heading: s for s in sop.sections}
    assert by_heading["处理步骤"].kind == "steps" and by_heading["处理步骤"].audience == "agent"
    assert by_heading["标准话术"].audience == "public" and by_heading["标准话术"].scripts == ["您好。"]
    assert by_heading["以下内容仅员工可见"].audience == "agent"
    assert by_heading["以下内容仅员工可见"].kind == "plain"  # notes, not lines to say to a tenant
    assert by_heading["注意事项"].audience == "public"  # the next ## ends what the line announced


def test_a_question_read_as_staff_only_in_a_public_faq_is_refused() -> None:
    result = parse_bytes("n.md", _doc("## 常见问题\n### 能赔多少（内部）\n500 元"))
    assert result.sop is None and any("不能标在单个问题上" in i.message for i in result.issues)


@pytest.mark.parametrize(
    "heading",
    [f"补偿标准 {m}" for m in ("[内部]", "【内部】", "［内部］", "[ 内部 ]", "**[内部]**", "*[内部]*")],
)
def test_marker_spellings_that_count(heading: str) -> None:
    result = parse_bytes("n.md", _doc(f"## {heading}\n500 元"))
    assert result.sop is not None and result.issues == []
    staff = [s for s in result.sop.sections if s.heading == "补偿标准"]
    assert [s.audience for s in staff] == ["agent"]


def test_no_near_miss_warning_where_nothing_can_leak() -> None:
    assert parse_bytes("n.md", _doc("## 补偿标准（内部）\n500 元", audience="agent")).issues == []
    assert parse_bytes("n.md", _doc("## 补偿 [内部]\n### 标准（内部）\n500 元")).issues == []
    assert parse_bytes("n.md", _doc("## 投诉员工\n文字\n\n## 房屋内部检查\n以下情况请联系管家")).issues == []


def test_marker_on_a_question_is_an_error_only_where_it_cannot_be_honoured() -> None:
    public_faq = parse_bytes("n.md", _doc("## 常见问题\n### 能赔多少？ [内部]\n500 元"))
    assert public_faq.sop is None
    assert [(i.line, i.severity) for i in public_faq.issues] == [(13, "error")]
    assert "不能标在单个问题上" in public_faq.issues[0].message
    staff_faq = parse_bytes("n.md", _doc("## 常见问题 [内部]\n### 能赔多少？ [内部]\n500 元"))
    assert staff_faq.sop is not None and staff_faq.issues == []
    assert staff_faq.sop.sections[-1].qa[0].question == "能赔多少？"


def test_marker_on_the_document_title_is_an_error_in_a_public_document() -> None:
    raw = b"---\nid: n\ntitle: T\ncategory: C\naudience: public\n---\n# T [\xe5\x86\x85\xe9\x83\xa8]\n\n## a\nb\n"
    result = parse_bytes("n.md", raw)
    assert result.sop is None and [(i.line, i.severity) for i in result.issues] == [(7, "error")]
    assert "audience: agent" in result.issues[0].message
    agent = parse_bytes("n.md", raw.replace(b"audience: public", b"audience: agent"))
    assert agent.sop is not None and agent.sop.title == "T"


def test_messages_never_echo_a_long_heading() -> None:
    heading = "## " + "长" * 100_000 + "（内部）\n文字\n\n"
    result = parse_bytes("n.md", _doc(heading * 2))
    assert result.issues and all(len(i.message) < 300 for i in result.issues)


@pytest.mark.parametrize(
    "text",
    [
        "a" + " " * 100_000 + "x",  # a leading `\s*` in a pattern made this quadratic
        "内部" + " " * 100_000 + "x",
        "(仅" + " " * 100_000 + "x",
        "a" + "： " * 50_000 + "x",
        "<!--" * 25_000 + "内部",
        "[内部 " * 30_000,
    ],
    ids=["spaces", "label-spaces", "bracket-spaces", "colons", "comments", "markers"],
)
def test_marker_checks_stay_fast_on_hostile_headings(text: str) -> None:
    started = time.perf_counter()
    split_internal(text)
    section_kind(text)
    heading_near_miss(text, 2)
    body_marker_near_miss(text, text, 2)
    reads_staff_only(text)
    announces_staff_only(text[:40])
    assert time.perf_counter() - started < 1.0


CHINESE_STYLE = """---
id: repair-water-heater
title: 热水器故障报修
category: 报修
audience: public
tags: 热水器, 电热水器、燃气热水器
---
# 热水器故障报修

## 一、适用范围
租客反映热水器不出热水。

## 二、处理流程
1、确认房间号和热水器类型。
2、引导租客自查：<!-- 店长可免单 OTTER002 -->
（1）漏保插座的指示灯；
（2）是否开启加热。
3、自查无果，建报修单。
4、24小时内上门。

## 三、服务话术
开场：“您好，请问是热水器没有热水了吗？”
租客：“能不能今天就来？”
“已经帮您登记报修了，师傅24小时内联系您。”

## 四、时限及责任人
| 事项 | 时限 | 责任人 |
|---|---|---|
| 电话联系租客 | 接单后30分钟内 | 客服 |

## 费用说明 [內部]
- 更换整机超过800元需区域经理审批

## 结算 [内\u200b部]
- 店长可减免清洗费
"""


def test_a_sop_in_a_chinese_company_style_keeps_its_steps_scripts_and_staff_only_parts() -> None:
    """Numbered headings (二、处理流程), 1、/（3）/④ list items and quoted script lines are read as what they mean;
    a Traditional 內部 marker and one with a zero-width space inside keep their sections staff-only; a comment inside
    a line is not content; a comma-separated tags string is split with a warning."""
    result = parse_bytes("repair/repair-water-heater.md", CHINESE_STYLE.encode(), today=TODAY)
    assert result.sop is not None, result.issues
    by = {s.heading: s for s in result.sop.sections}
    assert by["四、时限及责任人"].text == "电话联系租客：接单后30分钟内（责任人：客服）"  # a table read as its clauses
    assert [by[h].kind for h in ("一、适用范围", "二、处理流程", "三、服务话术", "四、时限及责任人")] == [
        "scenario",
        "steps",
        "script",
        "time_limit",
    ]
    steps = by["二、处理流程"].steps
    assert len(steps) == 4 and steps[0] == "确认房间号和热水器类型。" and steps[3] == "24小时内上门。"
    assert "漏保插座" in steps[1] and "开启加热" in steps[1]  # （1）（2） are sub-items of 2、, not steps of their own
    only_sub = CHINESE_STYLE.replace("（1）漏保", "- 漏保").replace("（2）是否", "- 是否")  # one numbering alone
    for before, after in (("1、确认", "（1）确认"), ("2、引导", "（2）引导"), ("3、自查", "③ 自查"), ("4、24", "④ 24")):
        only_sub = only_sub.replace(before, after)
    alone = parse_bytes("repair/repair-water-heater.md", only_sub.encode(), today=TODAY).sop
    assert alone is not None and len(next(s for s in alone.sections if s.kind == "steps").steps) == 4
    scripts = ["您好，请问是热水器没有热水了吗？", "已经帮您登记报修了，师傅24小时内联系您。"]  # not the tenant's line
    assert by["三、服务话术"].scripts == scripts
    # The card lists the words to say (numbered and copyable in the console), the tenant's line as a label
    from kb_service.search.hits import _said

    listed = [_said(line, scripts) for line in by["三、服务话术"].text.splitlines()]
    assert listed == [scripts[0], "租客：“能不能今天就来？”", scripts[1]]
    assert by["费用说明"].audience == by["结算"].audience == "agent"
    public = json.dumps(result.sop.public_view().model_dump(mode="json"), ensure_ascii=False)
    assert "800元" not in public and "减免" not in public and "OTTER002" not in public
    assert result.sop.meta.tags == ["热水器", "电热水器", "燃气热水器"]
    assert [i.severity for i in result.issues] == ["warning"] and "tags 应写成列表" in result.issues[0].message


def test_a_front_matter_key_written_twice_is_an_error_and_an_unrecognised_steps_heading_is_warned() -> None:
    twice = CHINESE_STYLE.replace("audience: public\n", "audience: agent\naudience: public\n")
    result = parse_bytes("repair/repair-water-heater.md", twice.encode(), today=TODAY)
    assert result.sop is None and any("写了两次" in i.message for i in result.issues)
    # Every front-matter error in one round: the key written twice and a bad id (a trainer fixed them one per preview)
    both = twice.replace("id: repair-water-heater", "id: Water_Heater!")
    result = parse_bytes("repair/repair-water-heater.md", both.encode(), today=TODAY)
    messages = [i.message for i in result.issues if i.severity == "error"]
    assert result.sop is None and any("写了两次" in m for m in messages) and any("Water_Heater" in m for m in messages)
    head = "---\nid: x\ntitle: 说明\ncategory: 其他\naudience: public\n---\n# 说明\n\n"
    # A heading no list names is read by its last words when the section holds what they say (a new customer's
    # 预约流程, 登记步骤 and 对客用语 were plain sections: no steps or scripts on the agent's card)
    listed = parse_bytes("x.md", (head + "## 三、预约流程\n1. 先登记\n\n## 对客用语\n> 您好，请稍等。\n").encode())
    handled = parse_bytes("x.md", (head + "## 流程\n1. 受理\n\n## 单房间处理\n1. 查空开\n2. 报修\n").encode()).sop
    assert handled is not None and [s.kind for s in handled.sections] == ["steps", "steps"]
    assert listed.sop is not None and not listed.issues, listed.issues
    kinds = {s.heading: (s.kind, s.steps, s.scripts) for s in listed.sop.sections}
    assert kinds == {"三、预约流程": ("steps", ["先登记"], []), "对客用语": ("script", [], ["您好，请稍等。"])}
    # ... and stays a plain section, warned, when it does not
    result = parse_bytes("x.md", (head + "## 处置办法\n- 先登记\n- 再上报\n").encode(), today=TODAY)
    assert result.sop is not None
    [issue] = result.issues
    assert issue.line == 9 and "处置办法" in issue.message and "不是可识别的小节名" in issue.message
    assert result.sop.sections[0].kind == "plain"
    # ... as an escalation or a caution written in a company's own words is (a trainer's trial: 上报 and 情形 were
    # plain sections without a word, and the chat answered a tenant with the escalation lines)
    for heading in ("上报渠道", "服务红线", "情形说明"):
        result = parse_bytes("x.md", (head + f"## {heading}\n- 管家 45 分钟未到场，报店长。\n").encode(), today=TODAY)
        [issue] = result.issues
        assert heading in issue.message and "租客提问时还可能直接用这一节回答" in issue.message, heading


def test_the_format_document_lists_every_accepted_heading() -> None:
    """docs/sop-format.md's table and the parser's synonyms are the same list (a new customer found them apart)."""
    from ingest.headings import SECTION_SYNONYMS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "sop-format.md").read_text(encoding="utf-8")
    table = doc[doc.index("| 小节 / section |") :].split("\n\n")[0].lower()
    for kind, names in SECTION_SYNONYMS.items():
        for name in names:
            assert name in table, (kind, name)


def test_a_document_without_a_steps_section_reads_its_numbered_lists_as_steps() -> None:
    """A new customer's gas and lift procedures (电话指导（逐条念给租客）; 一、接报 / 二、派援) showed agents no
    steps."""
    head = "---\nid: x\ntitle: 电梯困人\ncategory: 紧急事件\naudience: agent\n---\n# 电梯困人\n\n"
    body = (
        "## 一、适用\n电梯停运且有人被困。\n\n## 二、接报\n1、安抚被困人员\n2、问清楼栋\n\n"
        "## 三、派援\n1. 通知维保\n2. 15分钟内到场\n"
    )
    sop = parse_bytes("x.md", (head + body).encode()).sop
    assert sop is not None
    assert [(s.heading, s.kind) for s in sop.sections] == [
        ("一、适用", "scenario"),
        ("二、接报", "steps"),
        ("三、派援", "steps"),
    ]
    assert [step for s in sop.sections for step in s.steps] == ["安抚被困人员", "问清楼栋", "通知维保", "15分钟内到场"]
    # ... and with no time-limit section, the steps that set a deadline are its time limits (the call mode's countdown)
    assert time_limits(sop) == ["15分钟内到场"]
    # With a steps section, other numbered lists stay what their headings say
    named = parse_bytes("x.md", (head + body.replace("## 三、派援", "## 三、处理流程")).encode()).sop
    assert named is not None
    assert [s.kind for s in named.sections] == ["scenario", "plain", "steps"]
    timed = parse_bytes("x.md", (head + body + "\n## 时限\n- 到场：30分钟\n").encode()).sop
    assert timed is not None and time_limits(timed) == ["- 到场：30分钟"]


def test_a_quoted_script_line_is_the_words_to_say_without_the_quotation_marks() -> None:
    """A new customer wrote `> “…”`: the card showed and copied the quotation marks with the words."""
    head = "---\nid: x\ntitle: 燃气\ncategory: 紧急事件\naudience: agent\n---\n# 燃气\n\n"
    head += "## 处理步骤\n1. 关阀\n2. 通风\n\n"
    text = head + "## 对客用语\n> “请您先关掉燃气表旁边的阀门。”\n> 我这边马上通知燃气公司。\n"
    sop = parse_bytes("x.md", text.encode()).sop
    assert sop is not None
    assert sop.sections[1].scripts == ["请您先关掉燃气表旁边的阀门。", "我这边马上通知燃气公司。"]


SCRIPT_DOC = (
    "---\nid: t-doc\ntitle: 测试\ncategory: 报修\naudience: public\n---\n# 测试\n\n## 处理步骤\n1. 第一步。\n\n"
    "## 对客用语\n> 您好，请先关闭水阀。\n{gap}“麻烦您先把水槽下面的阀门关上。”\n"
)


def test_a_quoted_line_beside_a_quote_line_is_kept_or_lint_says_why() -> None:
    """A trainer's trial: one `>` line added above 「“麻烦您先把水槽下面…”」, and that line silently stopped being a
    script line (lint said nothing)."""
    under = parse_bytes("t.md", SCRIPT_DOC.format(gap="").encode())  # Markdown continues the quote: both are said
    assert [s.scripts for s in under.sop.sections if s.kind == "script"] == [
        ["您好，请先关闭水阀。", "麻烦您先把水槽下面的阀门关上。"]
    ]
    assert not under.issues
    apart = parse_bytes("t.md", SCRIPT_DOC.format(gap="\n").encode())  # a paragraph of its own: lint warns
    assert [s.scripts for s in apart.sop.sections if s.kind == "script"] == [["您好，请先关闭水阀。"]]
    assert [i.severity for i in apart.issues] == ["warning"] and "请统一改成 > 开头" in apart.issues[0].message


def test_an_html_block_is_named_as_neither_shown_nor_searched() -> None:
    """A security test's raw <div> vanished for every audience, staff included, and lint only said the section was
    empty. A comment on a line of its own is the author's note and says nothing."""
    head = "---\nid: t1\ntitle: 测试\ncategory: 测试\naudience: public\n---\n# 测试\n\n## 说明\n"
    found = parse_bytes("t.md", (head + "<div>只在HTML里的文字</div>\n\n- 正文\n").encode())
    assert [(i.line, i.severity) for i in found.issues if "HTML" in i.message] == [(9, "warning")]
    note = parse_bytes("t.md", (head + "<!-- 作者备注 -->\n- 正文\n").encode())
    assert not [i for i in note.issues if "HTML" in i.message]


@pytest.mark.parametrize("invisible", ["\ufe0f", "\u2066", "\u206a", "\u034f", "\u3164", "\U000e0001", "\U000e0100"])
def test_a_marker_with_any_invisible_character_inside_still_counts(invisible: str) -> None:
    """A second security round: a variation selector or a bidi isolate inside [内部] made the section public."""
    assert split_internal(f"快递丢失赔付 [内{invisible}部]") == ("快递丢失赔付", True)


def test_a_control_character_in_the_front_matter_is_an_error_not_a_crash() -> None:
    """A second security round: `title: t\\x01` made preview and publishing answer 500."""
    text = "---\nid: t1\ntitle: 测试\x01\ncategory: 测试\naudience: public\n---\n# 测试\n\n## 说明\n文字\n"
    found = parse_bytes("t.md", text.encode())
    assert [(i.line, i.severity) for i in found.issues] == [(3, "error")] and "控制字符" in found.issues[0].message


def test_a_body_line_that_ends_with_a_marker_makes_its_section_staff_only() -> None:
    """A second security round: `####### 补偿标准 [内部]` (seven #s are no heading) or a heading whose ## was forgotten
    read as public text with no warning; it was warned as public, and since session 37 the section is staff-only."""
    head = "---\nid: t1\ntitle: 测试\ncategory: 测试\naudience: public\n---\n# 测试\n\n## 说明\n可以报修。\n"
    for line in ("####### 补偿标准 [内部]", "补偿标准 [内部]"):
        found = parse_bytes("t.md", (head + line + "\n赔三百元。\n").encode())
        assert [(i.line, i.severity) for i in found.issues] == [(11, "warning")]
        assert "已按 [内部] 处理" in found.issues[0].message and found.sop is not None
        assert [s.audience for s in found.sop.sections if "赔三百元" in s.text] == ["agent"]


def test_a_staff_only_line_inside_a_quote_makes_the_whole_section_staff_only() -> None:
    """A new customer's Word document: the note right under the `>` script lines, with no blank line, is part of the
    quote, and the compensation limits and the key-safe code under it were public with no warning."""
    body = "## 标准话术\n> 您好，请先关总阀。\n**注意：以下内容仅员工可见**\n- 保险柜密码 0517\n\n## 注意事项\n- 公开"
    result = parse_bytes("n.md", _doc(body))
    assert result.sop is not None
    audiences = {s.heading: s.audience for s in result.sop.sections}
    assert audiences["标准话术"] == "agent" and audiences["注意事项"] == "public"
    assert [i.line for i in result.issues] == [14] and "整个小节“标准话术”已按 [内部] 处理" in result.issues[0].message
    view = json.dumps(result.sop.public_view().model_dump(mode="json"), ensure_ascii=False)
    assert "0517" not in view and "公开" in view


@pytest.mark.parametrize("extra", ["? [a, b]\n: c\n", 'tags: ["\\ud800"]\n', 'owner: "\\ud800"\n'])
def test_front_matter_that_yaml_reads_but_no_file_can_hold_is_an_error(extra: str) -> None:
    """A third security round: a list as a key, or a lone surrogate escape, made preview or publishing answer 500."""
    text = f"---\nid: t1\ntitle: 测试\ncategory: 测试\naudience: public\n{extra}---\n# 测试\n\n## 说明\n文字\n"
    found = parse_bytes("t.md", text.encode())
    assert found.sop is None and [i.severity for i in found.issues] == ["error"], found.issues


@pytest.mark.parametrize("bracket", ["〚内部〛", "⁅内部⁆", "﹝内部﹞"])
def test_lookalike_brackets_around_the_marker_are_warned_as_public(bracket: str) -> None:
    """A third security round: these brackets made a section public with no near-miss warning."""
    warning = heading_near_miss(f"补偿标准 {bracket}", 2)
    assert warning is not None and "不是内部标记" in warning and split_internal(f"补偿标准 {bracket}")[1] is False


def test_a_marked_heading_right_under_an_html_line_is_refused_unless_commented_out() -> None:
    """A third security round: `<div>` with `## 补偿标准 [内部]` on the next line swallowed the section for everyone
    with only the generic HTML warning. A section the author put inside a closed comment is hidden on purpose."""
    head = "---\nid: t1\ntitle: 测试\ncategory: 测试\naudience: public\n---\n# 测试\n\n## 说明\n文字\n\n"
    found = parse_bytes("t.md", (head + "<div>\n## 补偿标准 [内部]\n赔三百元。\n").encode())
    assert [(i.line, i.severity) for i in found.issues if "HTML 块" in i.message] == [(13, "error")]
    hidden = parse_bytes("t.md", (head + "<!--\n## 补偿标准 [内部]\n-->\n").encode())
    assert not [i for i in hidden.issues if i.severity == "error"]


STAFF_HEADINGS = ["五、丢件赔付（内部掌握）", "宠物押金减免（员工版）", "六、客服专用", "仅供客服", "后台操作", "保密"]
STAFF_HEADINGS += [
    "机密资料",
    "客服内部",
    "内控要求",
    "坐席须知",
    "管家须知",
    "店长权限",
    "员工注意",
    "减免政策（不公开）",
]
STAFF_LINES = ["以下不对租客公开：", "内部提示：", "员工须知：", "注：以下勿告知租客", "（以下仅限员工）", "⚠️ 内部"]
STAFF_LINES += [
    "以下内容请勿向租客透露",
    "**员工注意**",
    "以下仅供客服参考",
    "员工可见：",
    "以下内容保密",
    "客服注意（勿念）：",
]


@pytest.mark.parametrize("heading", STAFF_HEADINGS)
def test_more_ways_of_writing_a_staff_only_heading_are_staff_only(heading: str) -> None:
    """A re-check trial (session 37) found these headings public and unwarned after the first round of wordings."""
    result = parse_bytes("n.md", _doc(f"## {heading}\n- 赔付上限 300 元"))
    assert result.sop is not None and [i.severity for i in result.issues] == ["warning"], result.issues
    assert [s.audience for s in result.sop.sections if "300" in s.text] == ["agent"]


@pytest.mark.parametrize("line", STAFF_LINES)
def test_more_ways_of_writing_a_staff_only_line_are_staff_only(line: str) -> None:
    for body in (
        f"## 注意事项\n- 公开的提醒\n\n{line}\n- 密码 998877",
        f"## 注意事项\n- 公开的提醒\n{line}\n- 密码 998877",
    ):
        result = parse_bytes("n.md", _doc(body))
        assert result.sop is not None
        view = json.dumps(result.sop.public_view().model_dump(mode="json"), ensure_ascii=False)
        assert "998877" not in view and any("已按 [内部] 处理" in i.message for i in result.issues), (body, view)


@pytest.mark.parametrize(
    "text",
    ["## 客服电话\n400-800-1234", "## 个人信息保密承诺\n我们会对您的信息保密。", "## 办理\n以下是办理流程：\n1. 提交",
     "## 门店营业时间\n门店营业时间：9:00-21:00", "## 提示\n提示：请勿在室内吸烟", "## 员工培训\n员工会在30分钟内到达"],
)  # fmt: skip
def test_ordinary_wording_that_names_staff_stays_public(text: str) -> None:
    result = parse_bytes("n.md", _doc(text))
    assert result.sop is not None and result.issues == [] and all(s.audience == "public" for s in result.sop.sections)


def test_a_staff_aside_in_a_line_makes_its_section_staff_only_and_in_a_public_faq_answer_is_an_error() -> None:
    aside = "电费余额可以退（内部：退余额收手续费 8.8 元，租客不问不说）"
    section = parse_bytes("n.md", _doc(f"## 退租结算\n{aside}"))
    assert section.sop is not None and [s.audience for s in section.sop.sections if "8.8" in s.text] == ["agent"]
    faq = parse_bytes("n.md", _doc(f"## 常见问题\n### 电费余额能退吗？\n{aside}"))
    assert faq.sop is None and any("常见问题 [内部]" in i.message for i in faq.issues), faq.issues
    staff_faq = parse_bytes("n.md", _doc(f"## 常见问题 [内部]\n### 电费余额能退吗？\n{aside}"))
    assert staff_faq.sop is not None
