"""What a parsed SOP body is checked for, section by section: staff-only markers that do not count, step and FAQ
sections written in a way that loses their structure, and sections with nothing in them."""

from __future__ import annotations

from ingest.frontmatter import clip
from ingest.headings import body_marker_near_miss, heading_near_miss, strip_comments
from ingest.markdown_blocks import Block, Content, inline_text
from kb_service.models import Audience, Issue, Section


def near_misses(
    path: str, block: Block, offset: int, internal_from: int | None, doc_audience: Audience, *, title: bool = False
) -> list[Issue]:
    """Warnings for staff-only markers written in a way that does not count, where the text will be public."""
    if internal_from is not None or doc_audience == "agent":
        return []  # already staff-only: nothing can leak through a misspelt marker here
    issues: list[Issue] = []
    msg = heading_near_miss(block.heading, block.level, title=title)
    if msg is not None:
        issues.append(Issue(path=path, line=block.line, severity="warning", message=msg))
    for tok in block.tokens:
        if tok.type not in ("inline", "html_block") or not tok.map:
            continue
        lines = inline_text(tok, comments=True).split("\n") if tok.type == "inline" else [tok.content.strip()]
        for i, line in enumerate(lines):
            msg = body_marker_near_miss(line, block.heading, block.level, title=title)
            if msg is not None:
                issues.append(Issue(path=path, line=offset + tok.map[0] + i + 1, severity="warning", message=msg))
    return issues


def check_section(path: str, block: Block, section: Section, content: Content) -> list[Issue]:
    issues: list[Issue] = []
    if section.kind == "steps" and block.level == 2 and not content.steps and content.bullets:
        msg = "处理步骤建议写成有序列表（1. 2. 3.），目前是无序列表"
        issues.append(Issue(path=path, line=block.line, severity="warning", message=msg))
    if section.kind == "script" and content.quotes and content.quoted:
        # A trainer's trial: one `>` line added above 「“麻烦您先把水槽下面…”」 and that line stopped being a script
        msg = (
            f"这一节有 > 开头的话术行，另外 {len(content.quoted)} 行用引号“…”写的话术不会作为话术显示"
            f"（如「{content.quoted[0][:20]}」），请统一改成 > 开头"
        )
        issues.append(Issue(path=path, line=block.line, severity="warning", message=msg))
    if section.kind == "faq" and block.level == 2 and content.text:
        msg = "常见问题小节中 ### 问题之前的文字不属于任何问题"
        issues.append(Issue(path=path, line=block.line, severity="warning", message=msg))
    for tok in block.tokens:  # an HTML block (<div>…) is neither shown nor searched: a security test saw text vanish
        if tok.type == "html_block" and strip_comments(tok.content).strip():
            issues.append(Issue(path=path, line=block.line, severity="warning", message=_HTML_DROPPED))
            break
    return issues


_HTML_DROPPED = (
    "这一节里的 HTML（如 <div>…</div>）不会显示给任何人，也不会被检索：请改用 Markdown 书写 / HTML blocks are neither "
    "shown nor searched: write Markdown"
)


def prune_empty_parents(sections: list[Section], path: str, issues: list[Issue]) -> list[Section]:
    kept: list[Section] = []
    for i, s in enumerate(sections):
        end = next((j for j in range(i + 1, len(sections)) if sections[j].level <= s.level), len(sections))
        children = sections[i + 1 : end]  # every section below this heading, at any depth
        has_children = bool(children)
        if s.level == 2:
            if s.kind == "steps" and not s.steps and not any(c.steps for c in children if has_children):
                issues.append(
                    Issue(
                        path=path,
                        line=s.line_start,
                        severity="error",
                        message=f"“{clip(s.heading)}”小节没有步骤列表：请用 1. 2. 3. 有序列表逐条写出步骤",
                    )
                )
            if s.kind == "script" and not s.scripts and not any(c.scripts for c in children if has_children):
                issues.append(
                    Issue(
                        path=path,
                        line=s.line_start,
                        severity="error",
                        message=f"“{clip(s.heading)}”小节没有话术：每句话术单独一行，以 > 开头",
                    )
                )
            if s.kind == "faq" and not s.qa:
                issues.append(
                    Issue(
                        path=path,
                        line=s.line_start,
                        severity="error",
                        message=f"“{clip(s.heading)}”小节没有问题：每个问题写成 ### 标题，答案写在下面",
                    )
                )
        empty = not s.text and not s.qa and not s.steps and not s.scripts
        if empty and has_children:
            continue
        if empty:
            msg = f"小节“{clip(s.heading)}”是空的"
            issues.append(Issue(path=path, line=s.line_start, severity="warning", message=msg))
            continue
        kept.append(s)
    return kept
