"""Parser golden tests: a SOP file in, structured data out, compared with a checked-in expected result."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from kb_service.parser import parse_bytes, parse_file
from kb_service.sections import section_kind, split_internal
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
