"""Turn a SOP Markdown file into a typed `Sop`, collecting every problem as an `Issue`.

Pure functions: text in, structured data out. Built on markdown-it-py's token stream and its line maps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.frontmatter import clip, parse_front_matter, split_front_matter
from ingest.headings import (
    body_marker_near_miss,
    effective_audience,
    heading_near_miss,
    section_kind,
    split_internal,
)
from kb_service.models import Audience, Issue, QAPair, Section, SectionKind, Sop, SopMeta

_MD = MarkdownIt("commonmark").enable("table")


@dataclass
class ParseResult:
    """A parsed document (None when it has errors) and everything found wrong with it."""

    sop: Sop | None
    issues: list[Issue]
    headings: dict[int, str] = field(default_factory=dict)  # clean heading text by its 1-based line

    @property
    def ok(self) -> bool:
        return self.sop is not None


@dataclass
class _Block:
    """Tokens under one heading, with the heading's level, text and 1-based line."""

    level: int
    heading: str
    line: int
    tokens: list[Token] = field(default_factory=list)


# Part of every content hash: raise it when the same file parses differently (here: `[内部]` now reaches every
# heading level), so that the next `kb ingest` re-indexes files whose bytes did not change.
PARSER_REVISION = 2


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(b"kb-parser-%d\n" % PARSER_REVISION + raw).hexdigest()


def decode(path: str, raw: bytes) -> tuple[str | None, list[Issue]]:
    """Decode file bytes as UTF-8 (a BOM is allowed) or explain how to fix the encoding."""
    if not raw.strip():
        return None, [Issue(path=path, line=1, severity="error", message="文件为空，请写入文件头和正文")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = "（看起来是 GBK/GB2312 编码）" if _looks_gbk(raw) else ""
        msg = f"文件不是 UTF-8 编码{hint}，请在编辑器中“另存为”并选择 UTF-8 编码后再保存"
        return None, [Issue(path=path, line=line, severity="error", message=msg)]
    return text.replace("\r\n", "\n").replace("\r", "\n"), []


def _looks_gbk(raw: bytes) -> bool:
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def parse_file(path: Path, *, today: date | None = None, display_path: str | None = None) -> ParseResult:
    """Read and parse one SOP file."""
    shown = display_path or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return ParseResult(None, [Issue(path=shown, line=1, severity="error", message=f"无法读取文件：{exc.strerror}")])
    return parse_bytes(shown, raw, today=today)


def parse_bytes(path: str, raw: bytes, *, today: date | None = None) -> ParseResult:
    """Parse SOP file content; `path` is only used in messages and provenance."""
    try:
        return _parse_bytes(path, raw, today)
    except RecursionError:  # limits stop every known case; this keeps an unknown one a file error, not a crash
        msg = "文档嵌套过深，无法解析：请减少列表、引用或标题的嵌套层数 / document nested too deeply to parse"
        return ParseResult(None, [Issue(path=path, line=1, severity="error", message=msg)])


def _parse_bytes(path: str, raw: bytes, today: date | None) -> ParseResult:
    text, issues = decode(path, raw)
    if text is None:
        return ParseResult(None, issues)
    lines = text.split("\n")
    fence = split_front_matter(lines)
    if fence is None:
        msg = "缺少文件头：第一行应为 ---，随后写 id、title、category、audience，再用 --- 结束"
        return ParseResult(None, [Issue(path=path, line=1, severity="error", message=msg)])
    start, end = fence
    if end < 0:
        msg = "文件头没有结束：请在字段之后加一行 ---"
        return ParseResult(None, [Issue(path=path, line=1, severity="error", message=msg)])
    meta, fm_issues = parse_front_matter(path, lines, start, end, today or date.today())
    issues += fm_issues
    body_offset = end + 1  # 0-based index of the first body line
    headings: dict[int, str] = {}
    title, sections, body_issues = _parse_body(path, "\n".join(lines[body_offset:]), body_offset, meta, headings)
    issues += body_issues
    if meta is None or any(i.severity == "error" for i in issues):
        return ParseResult(None, issues, headings)
    for section in sections:
        section.line_end = _trim_blank(lines, section.line_start, section.line_end)
        for qa in section.qa:
            qa.line_end = _trim_blank(lines, qa.line_start, qa.line_end)
    sop = Sop(meta=meta, path=path, title=title or meta.title, sections=sections, content_hash=content_hash(raw))
    return ParseResult(sop, issues, headings)


def _join_item(parts: list[str]) -> str:
    """One list item's paragraphs and nested items as one line, without doubling punctuation."""
    out = ""
    for part in parts:
        out += part if not out or out[-1] in "：:；;，,。" else "；" + part
    return out


def _trim_blank(lines: list[str], start: int, end: int) -> int:
    """Pull a 1-based inclusive end line back over trailing blank lines (markdown-it's list maps include them)."""
    end = min(end, len(lines))
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: emphasis markers dropped, soft breaks kept as newlines."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type in ("text", "code_inline", "html_inline") or child.type == "image":
            parts.append(child.content)
    return "".join(parts).strip()


def _blocks(body: str, offset: int) -> tuple[list[_Block], list[Token]]:
    tokens = _MD.parse(body)
    blocks: list[_Block] = []
    preamble: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            level = int(tok.tag[1:])
            line = offset + (tok.map[0] if tok.map else 0) + 1
            blocks.append(_Block(level=level, heading=_inline_text(tokens[i + 1]), line=line))
            i += 3
            continue
        (blocks[-1].tokens if blocks else preamble).append(tok)
        i += 1
    return blocks, preamble


def _last_line(tokens: list[Token], offset: int, default: int) -> int:
    ends = [t.map[1] for t in tokens if t.map]
    return offset + max(ends) if ends else default


@dataclass
class _Content:
    text: str
    steps: list[str]
    bullets: list[str]
    quotes: list[str]


def _content(tokens: list[Token], body_lines: list[str]) -> _Content:
    """Plain text of a block plus its top-level list items and blockquote lines.

    Only lines that really start with `>` are script lines: Markdown's lazy continuation would otherwise pull a
    label written on the next line (e.g. `**安全提醒**：`) into the quote."""
    lines: list[str] = []
    steps: list[str] = []
    bullets: list[str] = []
    quotes: list[str] = []
    list_stack: list[str] = []
    item_parts: list[str] | None = None
    quote_depth = 0
    number = 0
    row: list[str] | None = None
    for tok in tokens:
        t = tok.type
        if t == "tr_open":
            row = []
        elif t == "tr_close" and row is not None:
            lines.append(" | ".join(row))
            row = None
        elif t == "inline" and row is not None:
            row.append(_inline_text(tok))
        elif t in ("ordered_list_open", "bullet_list_open"):
            list_stack.append("ordered" if t == "ordered_list_open" else "bullet")
            if len(list_stack) == 1:
                number = int(tok.attrGet("start") or 1) - 1 if t == "ordered_list_open" else 0
        elif t in ("ordered_list_close", "bullet_list_close"):
            list_stack.pop()
        elif t == "list_item_open" and len(list_stack) == 1:
            item_parts = []
        elif t == "list_item_close" and len(list_stack) == 1 and item_parts is not None:
            item = _join_item([p for p in item_parts if p])
            if list_stack[0] == "ordered":
                number += 1
                steps.append(item)
                lines.append(f"{number}. {item}")
            else:
                bullets.append(item)
                lines.append(f"- {item}")
            item_parts = None
        elif t == "blockquote_open":
            quote_depth += 1
        elif t == "blockquote_close":
            quote_depth -= 1
        elif t == "inline":
            text = _inline_text(tok)
            if item_parts is not None:
                item_parts.append(text.replace("\n", " "))
            elif quote_depth:
                parts = [p.strip() for p in text.split("\n")]
                raw = body_lines[tok.map[0] : tok.map[1]] if tok.map else []
                exact = len(raw) == len(parts)
                for q, src in zip(parts, raw if exact else parts, strict=True):
                    if q:
                        if not exact or src.lstrip().startswith(">"):
                            quotes.append(q)
                        lines.append(q)
            elif text:
                lines.append(text)
        elif t in ("fence", "code_block") and tok.content.strip():
            (item_parts.append(tok.content.strip()) if item_parts is not None else lines.append(tok.content.strip()))
    return _Content(text="\n".join(lines), steps=steps, bullets=bullets, quotes=quotes)


@dataclass
class _Open:
    """A heading whose section is still open while later, deeper headings are read."""

    level: int  # the Markdown level (1-6)
    heading: str
    kind: SectionKind
    internal_from: int | None  # line of the `[内部]` heading that makes it staff-only (its own or an ancestor's)
    faq: Section | None  # the FAQ section whose questions the headings below it are


def _parse_body(
    path: str, body: str, offset: int, meta: SopMeta | None, headings: dict[int, str]
) -> tuple[str, list[Section], list[Issue]]:
    issues: list[Issue] = []
    doc_audience: Audience = meta.audience if meta else "agent"
    body_lines = body.split("\n")
    blocks, preamble = _blocks(body, offset)
    title, title_mark = "", False
    h1 = [b for b in blocks if b.level == 1]
    if not h1:
        issues.append(
            Issue(path=path, line=offset + 1, severity="warning", message="正文缺少 # 标题，将使用文件头的 title")
        )
    else:
        title, title_mark = split_internal(h1[0].heading)
        if title_mark and doc_audience == "public":
            msg = (
                "[内部] 不能标在 # 文档标题上：整份文档仅员工可见请在文件头写 audience: agent，"
                "部分内容仅员工可见请把 [内部] 标在那些小节的标题上 / "
                "[内部] on the document title: set audience: agent, or mark the sections"
            )
            issues.append(Issue(path=path, line=h1[0].line, severity="error", message=msg))
        for extra in h1[1:]:
            issues.append(
                Issue(
                    path=path,
                    line=extra.line,
                    severity="warning",
                    message="正文有多个 # 标题，只有第一个作为标题，其余按普通小节处理",
                )
            )
    doc_title = title or (meta.title if meta else "")
    sections: list[Section] = []
    seen: dict[str, int] = {}
    # Headings still open above the current one: a heading closes every open heading of its level or deeper.
    stack: list[_Open] = []
    for index, block in enumerate(blocks):
        if block.level == 1 and block is h1[0]:
            # Text between the title and the first `##` is an introduction.
            content = _content(block.tokens, body_lines)
            if not title_mark:
                issues += _near_misses(path, block, offset, None, doc_audience, title=True)
            if content.text:
                intro = [doc_title, "简介"]
                sections.append(
                    _section(doc_title, "简介", intro, "plain", 2, None, doc_audience, block, offset, content)
                )
            continue
        while stack and stack[-1].level >= block.level:
            stack.pop()
        parent = stack[-1] if stack else None
        heading, own_mark = split_internal(block.heading)
        headings[block.line] = heading
        internal_from = block.line if own_mark else (parent.internal_from if parent else None)
        issues += _near_misses(path, block, offset, internal_from, doc_audience)
        end_default = (blocks[index + 1].line - 1) if index + 1 < len(blocks) else block.line
        owner = parent.faq if parent else None
        if owner is not None:
            # Under a FAQ section every heading is a question; it shares its section's audience.
            content = _content(block.tokens, body_lines)
            end = _last_line(block.tokens, offset, end_default)
            if not content.text:
                issues.append(
                    Issue(path=path, line=block.line, severity="error", message=f"常见问题“{clip(heading)}”没有答案")
                )
            owner.qa.append(QAPair(question=heading, answer=content.text, line_start=block.line, line_end=end))
            owner.line_end = max(owner.line_end, end)
            if own_mark and owner.internal_from is None:
                msg = (
                    "[内部] 不能标在单个问题上（问答跟随所在的常见问题小节公开）：请把内部问答移到单独的 "
                    "“## 常见问题 [内部]”小节 / mark a whole FAQ section [内部], not one question"
                )
                issues.append(Issue(path=path, line=block.line, severity="error", message=msg))
            stack.append(_Open(block.level, heading, "faq", owner.internal_from, owner))
            continue
        own_kind = section_kind(heading)
        inherit = own_kind == "plain" and block.level > 2 and parent is not None
        kind: SectionKind = parent.kind if inherit and parent is not None else own_kind
        if block.level <= 2:
            if heading in seen:
                issues.append(
                    Issue(
                        path=path,
                        line=block.line,
                        severity="warning",
                        message=f"小节“{clip(heading)}”重复出现（第 {seen[heading]} 行已有）",
                    )
                )
            seen.setdefault(heading, block.line)
        path_parts = [doc_title, *(o.heading for o in stack), heading]
        content = _content(block.tokens, body_lines)
        level = max(2, block.level)  # a second `#` heading counts as a `##` section
        section = _section(
            doc_title, heading, path_parts, kind, level, internal_from, doc_audience, block, offset, content
        )
        section.line_end = _last_line(block.tokens, offset, end_default)
        issues += _check_section(path, block, section, content)
        sections.append(section)
        stack.append(_Open(block.level, heading, kind, internal_from, section if kind == "faq" else None))
    # A section whose body lives entirely in sub-sections is still meaningful.
    sections = _prune_empty_parents(sections, path, issues)
    if not sections:
        issues.append(
            Issue(
                path=path,
                line=offset + 1,
                severity="error",
                message="正文没有任何内容：请用 ## 小节写出适用场景、处理步骤、标准话术等",
            )
        )
    if preamble and any(t.type == "inline" and t.content.strip() for t in preamble) and h1:
        line = offset + 1 + next((t.map[0] for t in preamble if t.map), 0)
        issues.append(Issue(path=path, line=line, severity="warning", message="# 标题之前的文字不会被索引"))
    return doc_title, sections, issues


def _near_misses(
    path: str, block: _Block, offset: int, internal_from: int | None, doc_audience: Audience, *, title: bool = False
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
        lines = _inline_text(tok).split("\n") if tok.type == "inline" else [tok.content.strip()]
        for i, line in enumerate(lines):
            msg = body_marker_near_miss(line, block.heading, block.level, title=title)
            if msg is not None:
                issues.append(Issue(path=path, line=offset + tok.map[0] + i + 1, severity="warning", message=msg))
    return issues


def _section(
    doc_title: str,
    heading: str,
    path_parts: list[str],
    kind: SectionKind,
    level: int,
    internal_from: int | None,
    doc_audience: Audience,
    block: _Block,
    offset: int,
    content: _Content,
) -> Section:
    steps = content.steps if kind == "steps" else []
    if kind == "steps" and not steps:
        steps = content.bullets
    return Section(
        heading=heading,
        heading_path=[p for p in path_parts if p],
        kind=kind,
        level=level,
        internal=internal_from is not None,
        audience=effective_audience(doc_audience, internal_from),
        internal_from=internal_from,
        line_start=block.line,
        line_end=_last_line(block.tokens, offset, block.line),
        text=content.text,
        steps=steps,
        scripts=content.quotes if kind == "script" else [],
    )


def _check_section(path: str, block: _Block, section: Section, content: _Content) -> list[Issue]:
    issues: list[Issue] = []
    if section.kind == "steps" and block.level == 2 and not content.steps and content.bullets:
        msg = "处理步骤建议写成有序列表（1. 2. 3.），目前是无序列表"
        issues.append(Issue(path=path, line=block.line, severity="warning", message=msg))
    if section.kind == "faq" and block.level == 2 and content.text:
        msg = "常见问题小节中 ### 问题之前的文字不属于任何问题"
        issues.append(Issue(path=path, line=block.line, severity="warning", message=msg))
    return issues


def _prune_empty_parents(sections: list[Section], path: str, issues: list[Issue]) -> list[Section]:
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
