"""`kb lint`: every problem as `file:line: message` in Chinese; one bad file never stops the others. And any `kb`
command given a bad KB_ setting names it in one message."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from ingest.parser import parse_bytes
from kb_service.errors import KbError
from tests.helpers import FIXTURES, ROOT, SOPS, free_port

runner = CliRunner()
BAD = FIXTURES / "bad"


def lint(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["lint", *args])
    return result.exit_code, result.output


def test_sample_corpus_is_clean_apart_from_one_overdue_review() -> None:
    code, out = lint(str(SOPS))
    assert code == 0, out
    assert "0 个错误" in out
    code, out = lint(str(SOPS), "--strict")
    assert code == 1 and "复核日期" in out


def test_each_bad_file_reported_with_file_line_and_reason() -> None:
    code, out = lint(str(BAD))
    assert code == 1
    expected = [
        ("missing-fields.md:1:", "缺少必填字段 category"),
        ("missing-fields.md:2:", "id “Bad_ID” 无效"),
        ("missing-fields.md:4:", "audience “everyone” 无效"),
        ("missing-fields.md:5:", "version “-1” 无效"),
        ("missing-fields.md:6:", "不是有效日期"),
        ("missing-fields.md:11:", "没有步骤列表"),
        ("missing-fields.md:14:", "没有话术"),
        ("bad-yaml.md:4:", "YAML 格式错误"),
        ("empty.md:1:", "文件为空"),
        ("gbk.md:3:", "不是 UTF-8 编码"),
        ("no-frontmatter.md:1:", "缺少文件头"),
        ("dup-b.md:2:", "重复"),
        ("review-passed.md:6:", "警告: 复核日期 2020-01-01 已过"),
        ("near-miss.md:12:", "警告: 标题“补偿标准（内部）”里的“（内部）”说明本小节仅员工可见：已按 [内部] 处理"),
        ("near-miss.md:15:", "“<!-- [内部] -->”说明本小节仅员工可见：已按 [内部] 处理"),
        ("near-miss.md:18:", "“【内部资料】”说明本小节仅员工可见"),
        ("near-miss.md:21:", "标题“员工备注”里的“员工备注”说明本小节仅员工可见：已按 [内部] 处理"),
    ]
    for where, what in expected:
        assert any(where in line and what in line for line in out.splitlines()), (where, what, out)
    assert "gbk.md" in out and "另存为" in out


def test_warnings_fail_only_with_strict() -> None:
    assert lint(str(BAD / "review-passed.md"))[0] == 0
    assert lint(str(BAD / "review-passed.md"), "--strict")[0] == 1


def test_good_files_are_checked_even_next_to_bad_ones(tmp_path: Path) -> None:
    shutil.copy(BAD / "empty.md", tmp_path / "a.md")
    shutil.copy(FIXTURES / "synonyms.md", tmp_path / "b.md")
    code, out = lint(str(tmp_path))
    assert code == 1 and "检查了 2 个文档" in out and "1 个错误" in out


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    code, out = lint(str(tmp_path / "nope"))
    assert code == 1 and "不存在" in out


def test_corpus_glossary_is_checked(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "synonyms.md", tmp_path / "b.md")
    (tmp_path / "glossary.yaml").write_text("groups:\n  - [只有一个词]\n", encoding="utf-8")
    code, out = lint(str(tmp_path))
    assert code == 1 and "glossary.yaml" in out and "至少两个词" in out


def test_near_miss_markers_are_warnings_that_say_the_text_is_read_as_staff_only() -> None:
    code, out = lint(str(BAD / "near-miss.md"))
    assert code == 0, out  # warnings only: the document is valid, and fail-closed where the marker was misspelt
    warned = [ln for ln in out.splitlines() if ln.startswith("near-miss.md:") or "near-miss.md:" in ln]
    assert [ln.split(": ")[0].rsplit(":", 1)[1] for ln in warned] == ["12", "15", "18", "21"], out
    assert all("已按 [内部] 处理" in ln and "staff-only" in ln for ln in warned)
    assert "审批流程" not in out and "金额上限" not in out  # marked right: staff-only at every depth, no warning
    assert lint(str(BAD / "near-miss.md"), "--strict")[0] == 1


def test_without_a_path_lint_checks_kb_sops_dir(tmp_path: Path) -> None:
    shutil.copy(BAD / "empty.md", tmp_path / "a.md")
    result = runner.invoke(app, ["lint"], env={"KB_SOPS_DIR": str(tmp_path)})
    assert result.exit_code == 1 and "a.md:1:" in result.output and "检查了 1 个文档" in result.output


def test_a_title_that_differs_from_the_heading_is_a_warning(tmp_path: Path) -> None:
    text = (FIXTURES / "synonyms.md").read_text(encoding="utf-8")
    heading = next(line for line in text.splitlines() if line.startswith("# "))
    (tmp_path / "b.md").write_text(text.replace(heading, "# 另一个标题", 1), encoding="utf-8")
    title_line = next(n for n, line in enumerate(text.splitlines(), start=1) if line.startswith("title:"))
    code, out = lint(str(tmp_path))
    assert code == 0 and f"b.md:{title_line}: 警告:" in out and "另一个标题" in out and "1 个警告" in out
    assert lint(str(tmp_path), "--strict")[0] == 1
    (tmp_path / "b.md").write_text(text, encoding="utf-8")
    assert lint(str(tmp_path), "--strict")[0] == 0


def test_emergency_procedures_without_any_tenant_visible_safety_text_are_a_warning(tmp_path: Path) -> None:
    """A fourth company's documents: every emergency procedure staff-only and no public safety guide, so the chat
    answered 39 of 40 emergencies with the number alone; lint says so for each emergency procedure."""
    emergency = SOPS / "emergency"
    for name in ("emergency-gas-leak.md", "emergency-fire-alarm.md", "emergency-water-outage.md"):
        shutil.copy(emergency / name, tmp_path / name)
    code, out = lint(str(tmp_path))
    warned = sorted(re.findall(r"(\S+\.md):1: 警告: 紧急类文档，但知识库里没有租客可见的安全提示", out))
    assert code == 0 and [Path(p).name for p in warned] == ["emergency-fire-alarm.md", "emergency-gas-leak.md"], out
    shutil.copy(emergency / "safety-guide-public.md", tmp_path)  # a public guide in the category backs them up
    assert "租客可见的安全提示" not in lint(str(tmp_path))[1]


@pytest.mark.parametrize(
    ("variable", "value", "args"),
    [
        ("KB_INDEX_QUANTIZATION", "bogus", ["ingest"]),
        ("KB_PORT", "abc", ["search", "漏水"]),
        ("KB_PORT", "0", ["lint"]),
        ("KB_HANDOVER_WEBHOOK_URL", "127.0.0.1:18160/hook", ["lint"]),  # no scheme: every delivery would fail
        ("KB_DATABASE_URL", "postgresql+psycopg2://kb:S3cretPW@127.0.0.1/kb", ["lint"]),
        ("KB_API_KEYS", "admin:adm1n-key-0001", ["lint"]),  # administrators are named accounts
    ],
)
def test_a_bad_setting_is_named_in_one_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, args: list[str]
) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert re.search(f"{variable}:|KB_\\*: {variable} ", result.output) and "配置无效" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, KbError)
    assert "S3cretPW" not in result.output  # a password inside a URL is never printed
    if value.startswith("admin:"):  # a trial tried it: the message says what to do instead
        assert "kb users add" in result.output and "adm1n-key" not in result.output


def test_serve_with_an_unreachable_database_says_so_in_one_message(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {
        **os.environ,
        "KB_DATA_DIR": str(tmp_path / "data"),
        "KB_DATABASE_URL": f"postgresql://kb:S3cretPW@127.0.0.1:{port}/kb",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = "".join((done.stdout + done.stderr).split())
    assert done.returncode == 2 and "服务数据库无法连接" in said and "kb:***@" in said, said
    assert "Traceback" not in said and "S3cretPW" not in said


def test_the_workspace_templates_stand_in_text_is_flagged_and_real_text_is_not() -> None:
    js = (Path(__file__).parent.parent / "api" / "static" / "trainer" / "docs.js").read_text(encoding="utf-8")
    template = js.split("function newTemplate()", 1)[1].split("return `", 1)[1].split("`;", 1)[0]
    template = re.sub(r"\$\{isoDate\((?:d|review)\)\}", "2026-12-01", template)
    template = re.sub(r"\$\{state\.company \|\| '([^']*)'\}", r"\1", template)  # no company name set
    result = parse_bytes("new.md", template.encode())
    flagged = {i.line: i.message for i in result.issues if "模板占位" in i.message}
    lines = template.split("\n")
    expected = {"id: new-sop-id", "title: 新的 SOP 标题", "# 新的 SOP 标题", "tags: [关键词1, 关键词2]", "1. 第一步"}
    assert expected <= {lines[n - 1] for n in flagged}, flagged
    assert any("什么情况下升级给谁" in lines[n - 1] for n in flagged)
    assert any("您好，这里是（公司名）客服，……" in lines[n - 1] for n in flagged)
    second = next(n for n in flagged if lines[n - 1] == "2. 第二步")
    assert "“第二步”" in flagged[second]  # the line's own words (a trial read 「第一步」 for it)
    real = template.replace("……", "热水器不出热水").replace("关键词1", "热水器").replace("关键词2", "热水")
    real = real.replace("new-sop-id", "repair-water-heater").replace("新的 SOP 标题", "热水器维修")
    real = real.replace("第一步", "问清楼栋房号").replace("第二步", "派单").replace("什么情况下", "超时未到场时")
    assert [i for i in parse_bytes("real.md", real.encode()).issues if "模板占位" in i.message] == []


def test_a_public_and_a_staff_only_section_of_the_same_name_are_no_repeat(tmp_path: Path) -> None:
    """sop-format.md suggests 常见问题 for tenants and 常见问题 [内部] for staff: a trial following it was warned."""
    doc = (
        "---\nid: moving-booking\ntitle: 搬家预约\ncategory: 社区\naudience: public\n---\n# 搬家预约\n\n"
        "## 处理步骤\n1. 在 APP 登记搬家日期。\n\n"
        "## 常见问题\n### 搬家要预约吗？\n要，提前一天在 APP 登记。\n\n"
        "## 常见问题 [内部]\n### 货梯押金多少？\n200 元，搬完验梯无损退还。\n\n"
        "## 常见问题\n### 能用客梯搬吗？\n不能。\n"
    )
    (tmp_path / "moving-booking.md").write_text(doc, encoding="utf-8")
    code, out = lint(str(tmp_path), "--strict")
    repeats = [ln for ln in out.splitlines() if "重复出现" in ln]
    assert len(repeats) == 1 and "第 12 行已有" in repeats[0], out  # only the second public 常见问题
    assert code == 1


def test_a_file_with_errors_is_told_it_repeats_an_id_at_once_and_the_good_file_keeps_it(tmp_path: Path) -> None:
    """A new customer's trial: lint reported the repeated id only after the other errors of the file were fixed."""
    good = (SOPS / "access" / "access-smart-lock.md").read_text(encoding="utf-8")
    (tmp_path / "a-copy.md").write_text(good.replace("audience: public", "audience: everyone"), encoding="utf-8")
    (tmp_path / "b-original.md").write_text(good, encoding="utf-8")
    code, out = lint(str(tmp_path))
    assert code == 1
    lines = [ln for ln in out.splitlines() if "a-copy.md" in ln]
    assert any("audience “everyone” 无效" in ln for ln in lines), out
    assert any(re.search(r"id “access-smart-lock” 与 \S*b-original.md 重复", ln) for ln in lines), out
    assert not any("b-original.md:" in ln and "错误" in ln for ln in out.splitlines()), out  # the good file is fine


def test_body_warnings_come_in_the_same_round_as_front_matter_errors(tmp_path: Path) -> None:
    """A new customer fixed an uppercase id and slashed dates before lint said anything about a staff-only heading."""
    doc = "---\nid: Bad_ID\ntitle: 停车\ncategory: 停车\naudience: public\nupdated: 2025/09/01\n---\n# 停车\n\n"
    doc += "## 适用场景\n文字\n\n## 补偿（仅员工）\n- 500 元\n"
    (tmp_path / "a.md").write_text(doc, encoding="utf-8")
    code, out = lint(str(tmp_path))
    assert code == 1 and "Bad_ID" in out and "2025/09/01" in out
    assert "a.md:13: 警告" in out and "（仅员工）" in out, out
    (tmp_path / "a.md").write_text(doc.replace("audience: public", "audience: agent"), encoding="utf-8")
    assert "仅员工" not in lint(str(tmp_path))[1]  # a staff-only document: nothing there can reach tenants


def test_a_copied_sop_under_a_new_id_is_told_what_it_repeats(tmp_path: Path) -> None:
    """A trainer's trial: a copy of a SOP published under another id, with its title, content and examples, drew no
    word; two SOPs that give the same example question split the search between them."""
    good = (SOPS / "access" / "access-smart-lock.md").read_text(encoding="utf-8")
    (tmp_path / "b.md").write_text(good, encoding="utf-8")  # the original sorts after its copy
    (tmp_path / "a.md").write_text(good.replace("id: access-smart-lock", "id: lock-copy"), encoding="utf-8")
    os.utime(tmp_path / "b.md", (1_700_000_000, 1_700_000_000))  # and was written long before it
    code, out = lint(str(tmp_path))
    # the copy (the file changed last) is told, not the original (a trial's copy sorted first and blamed it)
    said = [ln for ln in out.splitlines() if "a.md:" in ln]
    blamed = [ln for ln in out.splitlines() if "b.md:" in ln and "警告" in ln and "引用的 SOP id" not in ln]
    assert code == 0 and not blamed, out
    assert any("标题与" in ln and "access-smart-lock" in ln for ln in said), out
    assert any("内容与" in ln and "完全相同" in ln for ln in said), out
    example = parse_bytes("a.md", good.encode()).sop.meta.examples[0]  # type: ignore[union-attr]
    line = next(n for n, text in enumerate(good.splitlines(), start=1) if example in text)
    assert any(f"a.md:{line}: 警告: 示例问法“{example}”也写在" in ln for ln in said), out
    # Its own title and steps, one example still shared: only that is said
    own = good.replace("id: access-smart-lock", "id: lock-two").replace("# 智能门锁", "# 公寓智能门锁", 1)
    own = own.replace("## 处理步骤\n", "## 处理步骤\n0. 先安抚租客。\n", 1)
    (tmp_path / "a.md").write_text(own, encoding="utf-8")
    out = lint(str(tmp_path))[1]
    assert "标题与" not in out and "内容与" not in out and "示例问法" in out, out


def test_a_reference_to_a_sop_id_that_does_not_exist_is_a_warning_with_the_near_one(tmp_path: Path) -> None:
    """A trial published 「见 access-smartlock」 (for access-smart-lock): agents saw the bare letters, lint said
    nothing. Words shaped like another family of ids (wi-fi) are no reference."""
    shutil.copytree(SOPS / "access", tmp_path / "access")
    lost = tmp_path / "access" / "access-lost-key.md"
    text = lost.read_text(encoding="utf-8").replace("见 access-smart-lock", "见 access-smartlock", 1)
    lost.write_text(text.replace("## 处理步骤\n", "## 处理步骤\n0. 连上 wi-fi 后再试。\n", 1), encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), start=1) if "access-smartlock" in t)
    code, out = lint(str(tmp_path))
    assert code == 0 and f"access-lost-key.md:{line}: 警告: 引用的 SOP id “access-smartlock” 不存在，是不是" in out, out
    assert "access-smart-lock？" in out and "wi-fi" not in out, out
    lost.write_text(text.replace("access-smartlock", "access-smart-lock"), encoding="utf-8")
    assert "引用的 SOP id" not in lint(str(tmp_path))[1]


def test_a_file_checked_on_its_own_is_compared_with_the_knowledge_base_it_joins(tmp_path: Path) -> None:
    """A trial: `kb lint access-lost-key.md` warned that the ids it names (access-smart-lock, access-door-card) do not
    exist, and a copy saved under a new id was not said to repeat the original. A file is checked beside KB_SOPS_DIR;
    a folder named stays a knowledge base of its own."""
    sops = tmp_path / "kb"
    shutil.copytree(SOPS / "access", sops)
    env = {"KB_SOPS_DIR": str(sops)}
    result = runner.invoke(app, ["lint", str(sops / "access-lost-key.md")], env=env)
    assert result.exit_code == 0 and "引用的 SOP id" not in result.output, result.output
    assert f"已与 {sops} 中其余 " in result.output, result.output
    copy = tmp_path / "draft.md"
    copy.write_text(
        (sops / "access-lost-key.md").read_text(encoding="utf-8").replace("id: access-lost-key", "id: access-key-copy")
    )
    out = runner.invoke(app, ["lint", str(copy)], env=env).output
    assert "draft.md:1: 警告: 内容与" in out and "access-lost-key" in out, out
    assert out.count("引用的 SOP id") == 0, out
    shown = runner.invoke(app, ["preview", str(copy)], env=env).output  # `kb preview` says so too
    assert "draft.md:1: 警告: 内容与" in shown and "引用的 SOP id" not in shown, shown
    alone = runner.invoke(app, ["lint", str(copy)], env={"KB_SOPS_DIR": str(tmp_path / "none")}).output
    # without the knowledge base each unknown id is told once, at its first line
    assert alone.count("“access-smart-lock” 不存在") == 1 and "内容与" not in alone, alone
    assert "已与" not in runner.invoke(app, ["lint", str(sops)], env=env).output  # a folder: on its own


def test_a_script_that_promises_a_time_the_time_limits_no_longer_set_is_a_warning() -> None:
    """A trainer's trial changed 持续滴水：30 分钟内到场 to 20 in the time limits; the script went on telling tenants
    「维修师傅 30 分钟内到」 and nothing said so."""
    path = SOPS / "repair" / "repair-leak-ceiling.md"
    text = path.read_text(encoding="utf-8")
    assert not [i for i in parse_bytes("leak.md", text.encode()).issues if "话术说" in i.message]
    changed = text.replace("持续滴水：30 分钟内到场", "持续滴水：20 分钟内到场", 1)
    [issue] = [i for i in parse_bytes("leak.md", changed.encode()).issues if "话术说" in i.message]
    lines = changed.split("\n")
    assert issue.severity == "warning" and "30 分钟内到" in lines[issue.line - 1]
    assert "「30 分钟内」" in issue.message and "「20 分钟内" in issue.message
    # the same time in other words is no contradiction: 两天内上门 is 48小时内上门, 三十分钟 is 30 分钟
    same = changed.replace("维修师傅 30 分钟内到", "维修师傅二十分钟内到", 1)
    assert not [i for i in parse_bytes("leak.md", same.encode()).issues if "话术说" in i.message]
    days = text.replace("维修师傅 30 分钟内到", "维修师傅两天内上门", 1).replace("30 分钟内到场", "48 小时内到场", 1)
    assert not [i for i in parse_bytes("leak.md", days.encode()).issues if "话术说" in i.message]
