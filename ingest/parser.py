"""Turn a SOP Markdown file into a typed `Sop`, collecting every problem as an `Issue`.

Pure functions: text in, structured data out. Built on markdown-it-py's token stream and its line maps.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ingest.checks import placeholder_issues
from ingest.frontmatter import clip, declared_audience, declared_id, parse_front_matter, split_front_matter
from ingest.headings import (
    announces_staff_only,
    effective_audience,
    has_staff_aside,
    kind_by_suffix,
    reads_staff_only,
    section_kind,
    split_internal,
    strip_comments,
    unrecognised,
)
from ingest.markdown_blocks import Block, Content, blocks, content, inline_text, last_line, trim_blank
from ingest.section_checks import check_section, near_misses, prune_empty_parents
from ingest.time_checks import time_issues
from kb_service.models import INTRODUCTION, Audience, Issue, QAPair, Section, SectionKind, Severity, Sop, SopMeta
from kb_service.text.tables import table_clauses


@dataclass
class ParseResult:
    """A parsed document (None when it has errors) and everything found wrong with it."""

    sop: Sop | None
    issues: list[Issue]
    headings: dict[int, str] = field(default_factory=dict)  # clean heading text by its 1-based line
    declared_id: str | None = None  # the id its front matter declares, read even when the document has errors

    @property
    def ok(self) -> bool:
        return self.sop is not None


# Part of every content hash: raise it when the same file parses differently, so that the next `kb ingest` re-indexes
# files whose bytes did not change. 2: `[内部]` reaches every heading level. 3: [內部] and markers with invisible
# characters count, inline comments are no content (an index built before still holds them), Chinese numbering and
# more heading names are read as steps, scripts and time limits. 4: a 目的 section is the document's introduction (a
# tenant is never answered with it). 9: a quotation right under a `>` line (a continued quote) is a script line.
# 10: a heading inside a quote or a list item is its section's text (`> ## …` under [内部] made what followed public);
# a setext heading or one inside an HTML block is an error. 11: a [内部] heading inside a quote or a list item is an
# error; every format character and invisible mark inside a marker is ignored (U+FE0F made a marker count for nothing).
# 12: a [内部] heading inside a code block (an unclosed fence, a 4-space indent) is an error. 13: a heading that
# reads as staff-only (内部说明, （仅员工）, 不要告诉租客) and the rest of a section after a line announcing it are
# staff-only. 14: the marker anywhere in a body line (- [内部] …, 2. 【内部】…, > （内部）…, a table cell,
# mid-sentence), a line opening with the bare word, lookalike writings of the marker (U+2800, a space inside,
# combining marks, compatibility ideographs), a comment over several lines and 员工价 make their section staff-only
# (a security review). 15: the heading's staff-only words on a line (（仅限内部）, [仅员工], (staff only), 不要告诉租客,
# 仅限员工知晓, a cell 内部价) do too (its re-check).
PARSER_REVISION = 15


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
    audience = meta.audience if meta else declared_audience(lines, start, end)  # errors: check the body as declared
    body = _Body(path, "\n".join(lines[body_offset:]), body_offset, meta, headings, audience)
    title, sections, body_issues = body.parse()
    issues += body_issues
    if meta is None or any(i.severity == "error" for i in issues):
        return ParseResult(None, issues, headings, meta.id if meta is not None else declared_id(lines, start, end))
    for section in sections:
        section.line_end = trim_blank(lines, section.line_start, section.line_end)
        for qa in section.qa:
            qa.line_end = trim_blank(lines, qa.line_start, qa.line_end)
    sop = Sop(meta=meta, path=path, title=title or meta.title, sections=sections, content_hash=content_hash(raw))
    return ParseResult(sop, issues + placeholder_issues(path, text) + time_issues(path, sop, text), headings, meta.id)


@dataclass
class _Open:
    """A heading whose section is still open while later, deeper headings are read."""

    level: int  # the Markdown level (1-6)
    heading: str
    kind: SectionKind
    internal_from: int | None  # line of the `[内部]` heading that makes it staff-only (its own or an ancestor's)
    faq: Section | None  # the FAQ section whose questions the headings below it are


_SETEXT = (
    "“{heading}”下一行的 --- 或 === 把它变成了标题（会结束上面的小节和它的 [内部] 标记）：标题请用 ## 书写；要分隔线，"
    "请在 --- 上方空一行 / a line underlined with --- or === is a heading: write headings with ##, or leave a blank "
    "line above a --- rule"
)
_NESTED_MARK = (
    "标题“{heading}”写在引用（>）或列表项里，它的 [内部] 标记不起作用，下面的内容会和上面的小节一样公开："
    "请把标题移到行首 / a [内部] heading inside a quote or a list item marks nothing: move it to the start of a line"
)
_CODE_HEADING = re.compile(r"^\s*#{1,6}[ \t]+(.+?)[ \t#]*$")
_CODE_MARK = (
    "“{heading}”在代码块里（上面的 ``` 没有闭合，或这一行缩进了 4 格）：它的 [内部] 标记不起作用，内容会公开："
    "请闭合代码块或去掉缩进 / a [内部] heading inside a code block (an unclosed fence, a 4-space indent) marks nothing"
)
_IN_HTML = (
    "标题“{heading}”写在 HTML 块（如 <details>）里：它会结束上面的小节和它的 [内部] 标记，请把标题移到 HTML 之外 / "
    "a heading inside an HTML block ends the section above and its staff-only mark: move it out of the HTML"
)


class _Body:
    """The heading state machine: reads the body's headings in order, keeping the headings still open above the
    current one (a heading closes every open heading of its level or deeper)."""

    def __init__(
        self, path: str, body: str, offset: int, meta: SopMeta | None, headings: dict[int, str], audience: Audience
    ) -> None:
        self.path, self.offset, self.meta, self.headings = path, offset, meta, headings
        self.doc_audience: Audience = meta.audience if meta else audience
        self.body_lines = body.split("\n")
        self.blocks, self.preamble = blocks(body, offset)
        self.issues: list[Issue] = []
        self.sections: list[Section] = []
        self.seen: dict[tuple[str, bool], int] = {}  # (heading, staff-only) → its first line
        self.stack: list[_Open] = []
        self.doc_title = ""
        self.numbered: dict[int, list[str]] = {}  # a plain section's numbered list, by its heading's line

    def _issue(self, line: int, severity: Severity, message: str) -> None:
        self.issues.append(Issue(path=self.path, line=line, severity=severity, message=message))

    def parse(self) -> tuple[str, list[Section], list[Issue]]:
        h1 = [b for b in self.blocks if b.level == 1]
        title, title_mark = self._title(h1)
        self.doc_title = title or (self.meta.title if self.meta else "")
        for index, block in enumerate(self.blocks):
            end_default = (self.blocks[index + 1].line - 1) if index + 1 < len(self.blocks) else block.line
            if h1 and block is h1[0]:
                self._introduction(block, title_mark)
            else:
                self._heading(block, end_default)
        # A section whose body lives entirely in sub-sections is still meaningful.
        self.sections = prune_empty_parents(self.sections, self.path, self.issues)
        self._numbered_as_steps()
        if not self.sections:
            self._issue(self.offset + 1, "error", "正文没有任何内容：请用 ## 小节写出适用场景、处理步骤、标准话术等")
        else:
            for s in self.sections:  # a heading that reads like steps or a script but is not one of the names
                if s.kind == "plain" and s.level == 2 and (why := unrecognised(s.heading, s.text, s.internal)):
                    self._issue(s.line_start, "warning", f"小节“{clip(s.heading)}”{why}")
        if h1 and any(t.type == "inline" and t.content.strip() for t in self.preamble):
            line = self.offset + 1 + next((t.map[0] for t in self.preamble if t.map), 0)
            self._issue(line, "warning", "# 标题之前的文字不会被索引")
        return self.doc_title, self.sections, self.issues

    def _numbered_as_steps(self) -> None:
        """A document with no steps section under any name: its plain sections' numbered lists are its steps, in
        order (一、接报 / 二、派援, 电话指导（逐条念给租客）, 先试试这几步: a new customer's gas and lift procedures
        showed agents no steps at all)."""
        if any(s.kind == "steps" for s in self.sections):
            return
        for s in self.sections:
            numbered = self.numbered.get(s.line_start, [])
            if s.kind == "plain" and len(numbered) >= 2:
                s.kind, s.steps = "steps", list(numbered)

    def _title(self, h1: list[Block]) -> tuple[str, bool]:
        if not h1:
            self._issue(self.offset + 1, "warning", "正文缺少 # 标题，将使用文件头的 title")
            return "", False
        title, title_mark = split_internal(h1[0].heading)
        if title_mark and self.doc_audience == "public":
            msg = (
                "[内部] 不能标在 # 文档标题上：整份文档仅员工可见请在文件头写 audience: agent，"
                "部分内容仅员工可见请把 [内部] 标在那些小节的标题上 / "
                "[内部] on the document title: set audience: agent, or mark the sections"
            )
            self._issue(h1[0].line, "error", msg)
        for extra in h1[1:]:
            self._issue(extra.line, "warning", "正文有多个 # 标题，只有第一个作为标题，其余按普通小节处理")
        return title, title_mark

    def _introduction(self, block: Block, title_mark: bool) -> None:
        """Text between the title and the first `##`."""
        self._unclear_heading(block)
        found = content(block.tokens, self.body_lines)
        if not title_mark:
            self.issues += near_misses(self.path, block, self.offset, None, self.doc_audience, title=True)
        if found.text:
            intro = [self.doc_title, INTRODUCTION]
            self.sections.append(
                _section(
                    self.doc_title, INTRODUCTION, intro, "plain", 2, None, self.doc_audience, block, self.offset, found
                )
            )

    def _heading(self, block: Block, end_default: int) -> None:
        self._unclear_heading(block)
        while self.stack and self.stack[-1].level >= block.level:
            self.stack.pop()
        parent = self.stack[-1] if self.stack else None
        heading, own_mark = self._marked(block, parent is not None and parent.internal_from is not None)
        self.headings[block.line] = heading
        internal_from = block.line if own_mark else (parent.internal_from if parent else None)
        in_faq = parent is not None and parent.faq is not None
        if internal_from is None and self.doc_audience == "public" and not in_faq and self._said_inside(block):
            internal_from = block.line  # fail-closed: where it starts cannot be marked, so the whole section
        self.issues += near_misses(self.path, block, self.offset, internal_from, self.doc_audience)
        if parent is not None and parent.faq is not None:
            self._question(block, heading, own_mark, parent.faq, end_default)
            return
        found = content(block.tokens, self.body_lines)
        own_kind = section_kind(heading)
        if own_kind == "plain":
            own_kind = kind_by_suffix(heading, bool(found.steps), bool(found.quotes or found.quoted))
        # staff notes announced under a script are no lines to say to a tenant (steps stay steps, marked staff-only)
        noted = block.announced and parent is not None and parent.kind == "script"
        inherit = own_kind == "plain" and block.level > 2 and parent is not None and not noted
        kind: SectionKind = parent.kind if inherit and parent is not None else own_kind
        if block.level <= 2:
            # A public section and a staff-only one of the same name is what the format suggests (常见问题 and
            # 常见问题 [内部]): only the same name with the same audience twice is a repeat (a trial was warned)
            seen = (heading, internal_from is not None)
            if seen in self.seen:
                msg = f"小节“{clip(heading)}”重复出现（第 {self.seen[seen]} 行已有）"
                self._issue(block.line, "warning", msg)
            self.seen.setdefault(seen, block.line)
        path_parts = [self.doc_title, *(o.heading for o in self.stack), heading]
        level = max(2, block.level)  # a second `#` heading counts as a `##` section
        section = _section(
            self.doc_title,
            heading,
            path_parts,
            kind,
            level,
            internal_from,
            self.doc_audience,
            block,
            self.offset,
            found,
        )
        section.line_end = last_line(block.tokens, self.offset, end_default)
        self.issues += check_section(self.path, block, section, found)
        if kind == "plain" and found.steps:
            self.numbered[section.line_start] = found.steps
        self.sections.append(section)
        # An announced block stays open until its section ends: a ### after 以下内容仅员工可见 is under it
        level = block.level - 1 if block.announced else block.level
        self.stack.append(_Open(level, heading, kind, internal_from, section if kind == "faq" else None))

    def _said_inside(self, block: Block) -> bool:
        """A line inside a paragraph or a quote saying that what follows is staff-only (a Word document's
        `**注意：以下内容仅员工可见**` right under the `>` script lines is part of the quote, and the notes under it
        were public): warned, and the caller makes the whole section staff-only."""
        for tok in block.tokens:
            if tok.type != "inline" or not tok.map:
                continue
            for n, line in enumerate(inline_text(tok, comments=True).split("\n")):
                if announces_staff_only(line) or has_staff_aside(line):
                    where = self.offset + tok.map[0] + n + 1
                    self._issue(
                        where, "warning", _SAID_INSIDE.format(line=clip(line.strip()), heading=clip(block.heading))
                    )
                    return True
        return False

    def _marked(self, block: Block, inherited: bool) -> tuple[str, bool]:
        """The heading as shown and whether it makes its section staff-only: the `[内部]` marker, a heading that
        reads as staff-only (内部说明, 补偿标准（仅员工）), or a line announcing that the rest is (以下内容仅员工可见).
        The last two are fail-closed readings of a company's own wording, warned so the author writes the marker."""
        heading, own_mark = split_internal(block.heading)
        staff = inherited or self.doc_audience == "agent"  # nothing to read: it is staff-only already
        if block.announced:
            if not staff:
                self._issue(block.line, "warning", _ANNOUNCED.format(line=clip(block.heading)))
            return heading.rstrip(":：") or "内部", True
        reading = None if staff or own_mark else reads_staff_only(block.heading)
        if reading is None:
            return heading, own_mark
        found, shown = reading
        message = _READS_STAFF_ONLY.format(
            heading=clip(heading), found=clip(found), level="#" * block.level, shown=clip(shown)
        )
        self._issue(block.line, "warning", message)
        return shown, True

    def _unclear_heading(self, block: Block) -> None:
        """A heading the author may not have meant as one ends the section above it, and with it a staff-only mark:
        refused, so that nothing staff-only becomes public by accident (a security test's findings)."""
        if block.setext:
            self._issue(block.line, "error", _SETEXT.format(heading=clip(block.heading)))
        elif block.in_html:
            self._issue(block.line, "error", _IN_HTML.format(heading=clip(block.heading)))
        for line, text in block.nested:  # `> ## 赔偿标准 [内部]`: the author means staff-only; it would be public text
            if split_internal(text)[1]:
                self._issue(line, "error", _NESTED_MARK.format(heading=clip(text)))
        for tok in block.tokens:  # an unclosed fence, a heading indented 4 spaces, or one right under an HTML line
            if tok.type in ("fence", "code_block", "html_block") and tok.map:
                first = self.offset + tok.map[0] + 1 + (tok.type == "fence")
                message = _IN_HTML if tok.type == "html_block" else _CODE_MARK
                # A closed comment is a section the author hid on purpose (its lines kept, to count them)
                code = strip_comments(tok.content, keep_lines=True)
                for n, text in enumerate(code.split("\n")):
                    m = _CODE_HEADING.match(text)
                    if m and split_internal(m.group(1))[1]:
                        self._issue(first + n, "error", message.format(heading=clip(m.group(1).strip())))

    def _question(self, block: Block, heading: str, own_mark: bool, owner: Section, end_default: int) -> None:
        """Under a FAQ section every heading is a question; it shares its section's audience."""
        found = content(block.tokens, self.body_lines)
        end = last_line(block.tokens, self.offset, end_default)
        if not found.text:
            self._issue(block.line, "error", f"常见问题“{clip(heading)}”没有答案")
        owner.qa.append(QAPair(question=heading, answer=found.text, line_start=block.line, line_end=end))
        staff = [ln for ln in found.text.split("\n") if announces_staff_only(ln) or has_staff_aside(ln)]
        if staff and owner.internal_from is None and self.doc_audience == "public":  # a question is public or not
            self._issue(block.line, "error", _STAFF_ANSWER.format(question=clip(heading), line=clip(staff[0])))
        owner.line_end = max(owner.line_end, end)
        if own_mark and owner.internal_from is None:
            msg = (
                "[内部] 不能标在单个问题上（问答跟随所在的常见问题小节公开）：请把内部问答移到单独的 "
                "“## 常见问题 [内部]”小节 / mark a whole FAQ section [内部], not one question"
            )
            self._issue(block.line, "error", msg)
        self.stack.append(_Open(block.level, heading, "faq", owner.internal_from, owner))


_READS_STAFF_ONLY = (
    "标题“{heading}”里的“{found}”说明本小节仅员工可见：已按 [内部] 处理，租客看不到它和它下面的内容。"
    "请写成“{level} {shown} [内部]”使其明确；如果应当对租客公开，请改写标题 / read as staff-only and treated as"
    " [内部]: end the heading with [内部] to say so, or reword it if tenants may read it"
)
_ANNOUNCED = (
    "“{line}”之后到本小节结束的内容已按 [内部] 处理，租客看不到。请把这些内容移到标题末尾带 [内部] 的小节里，"
    "例如“### 内部说明 [内部]” / the text after this line is treated as staff-only: move it under a [内部] heading"
)


_STAFF_ANSWER = (
    "常见问题“{question}”的答案里有仅员工可见的内容（“{line}”），而这个常见问题小节对租客公开：请把这条问答移到"
    "“## 常见问题 [内部]”小节，或删去内部内容 / a public FAQ answer holds staff-only text: move it to a [内部] FAQ"
)
_SAID_INSIDE = (
    "“{line}”写在段落或引用（>）中间，无法只把它后面的内容标为内部：整个小节“{heading}”已按 [内部] 处理，租客看不到。"
    "请在它上面空一行，或把内部内容移到标题末尾带 [内部] 的小节 / a staff-only line inside a paragraph or quote: the"
    " whole section is treated as staff-only; leave a blank line above it or move the notes under a [内部] heading"
)


def _section(
    doc_title: str,
    heading: str,
    path_parts: list[str],
    kind: SectionKind,
    level: int,
    internal_from: int | None,
    doc_audience: Audience,
    block: Block,
    offset: int,
    content: Content,
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
        line_end=last_line(block.tokens, offset, block.line),
        text=table_clauses(content.text) if kind == "time_limit" else content.text,
        steps=steps,
        scripts=(content.quotes or content.quoted) if kind == "script" else [],
    )
