"""A SOP body as markdown-it-py sees it: the tokens under each heading, and a block's plain text, list items and
script lines (blockquote lines), with 1-based source lines from markdown-it's line maps."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.headings import announces_staff_only, strip_comments
from kb_service.text.scripts import quoted_script

_MD = MarkdownIt("commonmark").enable("table")
# List items as Chinese documents number them (1、 / （1） / 1） / ①), read as the ordered list `1. ` they mean. Only
# the marker changes: every line keeps its place, so line numbers in messages stay right.
_CN_ITEM = re.compile(r"^( {0,3})(?:(\d{1,3})[、．]|[（(](\d{1,3})[）)]|(\d{1,3})）|([①-⑳]))[ \t\u3000]*(?=\S)", re.M)
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.M)
_TOP_ITEM = re.compile(r"^ {0,3}\d{1,3}[、．.]", re.M)
_SUB_ITEM = re.compile(r"^ {0,3}(?:[（(]\d{1,3}[）)]|\d{1,3}）|[①-⑳])", re.M)


@dataclass
class Block:
    """Tokens under one heading, with the heading's level, text and 1-based line. `setext`: written as a line of
    text underlined with --- or ===; `in_html`: inside an HTML element an earlier HTML block opened (<details>…)."""

    level: int
    heading: str
    line: int
    tokens: list[Token] = field(default_factory=list)
    setext: bool = False
    in_html: bool = False
    nested: list[tuple[int, str]] = field(default_factory=list)  # (line, text) of headings in its quotes and lists
    # Not a heading: a line saying the rest of its section is staff-only (以下内容仅员工可见) starts this block, which
    # is read as a `[内部]` sub-section of the block above it until that block ends
    announced: bool = False


@dataclass
class Content:
    text: str
    steps: list[str]
    bullets: list[str]
    quotes: list[str]
    quoted: list[str] = field(default_factory=list)  # lines that are a quotation “…” outside `>` quotes


def inline_text(token: Token, comments: bool = False) -> str:
    """Plain text of an inline token: emphasis markers dropped, soft breaks kept as newlines, comments dropped
    (kept with `comments`: a heading is checked for a marker written inside one)."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type in ("text", "code_inline", "html_inline") or child.type == "image":
            parts.append(child.content)
    # A comment inside a line is the author's note, not content (a comment on a line of its own is an html_block and
    # was never read): it is not shown, indexed or answered with.
    text = "".join(parts)
    return (text if comments else strip_comments(text)).strip()


def _item_number(m: re.Match[str]) -> str:
    circled = m.group(5)
    number = str(ord(circled) - ord("①") + 1) if circled else (m.group(2) or m.group(3) or m.group(4))
    return f"{m.group(1)}{number}. "


def chinese_lists(body: str) -> str:
    """`body` with Chinese list markers outside code fences written as Markdown ordered-list markers. Where a document
    numbers items both 1、 and （1） (or ①), the second form is the sub-item it is in Chinese documents: indented under
    the item before it, so that 2、被锁门外的：（1）…（2）… stays one step."""
    if not _CN_ITEM.search(body):
        return body
    nested = bool(_TOP_ITEM.search(body) and _SUB_ITEM.search(body))
    out, inside = [], False
    for i, piece in enumerate(_FENCE.split(body)):  # text, fence, text inside, fence, text…: outside fences only
        if i % 2:
            inside = not inside
        elif not inside:
            if nested:
                piece = _SUB_ITEM.sub(lambda m: "   " + m.group(0).lstrip(" "), piece)
            piece = _CN_ITEM.sub(_item_number, piece)
        out.append(piece)
    return "".join(out)


# HTML elements that hold no content, and tags in an HTML block: what is left open after one (<details> before a
# blank line) holds the Markdown that follows until a later block closes it.
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]
)
_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)\b[^>]*?(/?)>")


def _html_depth(depth: int, html: str) -> int:
    for m in _TAG.finditer(strip_comments(html)):
        closing, name, self_closing = m.group(1), m.group(2).lower(), m.group(3)
        if name in _VOID or self_closing:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
    return depth


def blocks(body: str, offset: int) -> tuple[list[Block], list[Token]]:
    """The body's headings with the tokens under each, and the tokens before the first heading. Only a heading of
    the document's own level starts a block: one inside a quote or a list item (`> ## …`, `- ## …`) is that block's
    content (a quoted heading ended a staff-only section, and what followed it was shown to tenants)."""
    tokens = _MD.parse(chinese_lists(body))
    found: list[Block] = []
    preamble: list[Token] = []
    html = 0  # HTML elements left open by the HTML blocks so far
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open" and tok.level == 0:
            level = int(tok.tag[1:])
            line = offset + (tok.map[0] if tok.map else 0) + 1
            heading = inline_text(tokens[i + 1], comments=True)
            setext = tok.markup in ("=", "-")
            found.append(Block(level=level, heading=heading, line=line, setext=setext, in_html=html > 0))
            i += 3
            continue
        said = _announcement(tokens, i) if found else None
        if said is not None:
            above = found[-1]
            line = offset + (tok.map[0] if tok.map else 0) + 1
            found.append(Block(level=above.level + 1, heading=said, line=line, in_html=html > 0, announced=True))
        if tok.type == "heading_open" and found:  # nested: the block's text, and its marker would count for nothing
            found[-1].nested.append((offset + (tok.map[0] if tok.map else 0) + 1, inline_text(tokens[i + 1], True)))
        if tok.type == "html_block" and tok.level == 0:
            html = _html_depth(html, tok.content)
        (found[-1].tokens if found else preamble).append(tok)
        i += 1
    return found, preamble


def _announcement(tokens: list[Token], i: int) -> str | None:
    """The text of a top-level paragraph (or comment) at `i` whose first line says the rest is staff-only."""
    tok = tokens[i]
    if tok.level != 0 or tok.type not in ("paragraph_open", "html_block"):
        return None
    if tok.type == "html_block":  # a comment over several lines (<!--⏎[内部]⏎-->) is read as one (a security review)
        first = " ".join(tok.content.split())
        return first if announces_staff_only(first) else None
    first = inline_text(tokens[i + 1], comments=True).split("\n", 1)[0].strip()
    return first if announces_staff_only(first) else None


def last_line(tokens: list[Token], offset: int, default: int) -> int:
    ends = [t.map[1] for t in tokens if t.map]
    return offset + max(ends) if ends else default


def trim_blank(lines: list[str], start: int, end: int) -> int:
    """Pull a 1-based inclusive end line back over trailing blank lines (markdown-it's list maps include them)."""
    end = min(end, len(lines))
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _join_item(parts: list[str]) -> str:
    """One list item's paragraphs and nested items as one line, without doubling punctuation."""
    out = ""
    for part in parts:
        out += part if not out or out[-1] in "：:；;，,。" else "；" + part
    return out


def content(tokens: list[Token], body_lines: list[str]) -> Content:
    """Plain text of a block plus its top-level list items and blockquote lines.

    Only lines that really start with `>` are script lines: Markdown's lazy continuation would otherwise pull a
    label written on the next line (e.g. `**安全提醒**：`) into the quote."""
    walk = _ContentWalk(body_lines)
    for tok in tokens:
        walk.token(tok)
    return Content(
        text="\n".join(walk.lines), steps=walk.steps, bullets=walk.bullets, quotes=walk.quotes, quoted=walk.quoted
    )


class _ContentWalk:
    """One pass over a block's tokens: table rows, top-level list items, blockquote lines and paragraphs."""

    def __init__(self, body_lines: list[str]) -> None:
        self.body_lines = body_lines
        self.lines: list[str] = []
        self.steps: list[str] = []
        self.bullets: list[str] = []
        self.quotes: list[str] = []
        self.quoted: list[str] = []
        self.list_stack: list[str] = []
        self.item_parts: list[str] | None = None
        self.quote_depth = 0
        self.number = 0
        self.row: list[str] | None = None

    def token(self, tok: Token) -> None:
        t = tok.type
        if t in ("tr_open", "tr_close") or (t == "inline" and self.row is not None):
            self._table(tok)
        elif t in ("ordered_list_open", "bullet_list_open", "ordered_list_close", "bullet_list_close"):
            self._list(tok)
        elif t in ("list_item_open", "list_item_close"):
            self._item(tok)
        elif t == "blockquote_open":
            self.quote_depth += 1
        elif t == "blockquote_close":
            self.quote_depth -= 1
        elif t == "inline":
            self._inline(tok)
        elif t in ("fence", "code_block") and tok.content.strip():
            code = tok.content.strip()
            (self.item_parts if self.item_parts is not None else self.lines).append(code)

    def _table(self, tok: Token) -> None:
        if tok.type == "tr_open":
            self.row = []
        elif tok.type == "tr_close" and self.row is not None:
            self.lines.append(" | ".join(self.row))
            self.row = None
        elif self.row is not None:
            self.row.append(inline_text(tok))

    def _list(self, tok: Token) -> None:
        if tok.type.endswith("_close"):
            self.list_stack.pop()
            return
        ordered = tok.type == "ordered_list_open"
        self.list_stack.append("ordered" if ordered else "bullet")
        if len(self.list_stack) == 1:
            self.number = int(tok.attrGet("start") or 1) - 1 if ordered else 0

    def _item(self, tok: Token) -> None:
        if len(self.list_stack) != 1:
            return
        if tok.type == "list_item_open":
            self.item_parts = []
            return
        if self.item_parts is None:
            return
        item = _join_item([p for p in self.item_parts if p])
        if self.list_stack[0] == "ordered":
            self.number += 1
            self.steps.append(item)
            self.lines.append(f"{self.number}. {item}")
        else:
            self.bullets.append(item)
            self.lines.append(f"- {item}")
        self.item_parts = None

    def _inline(self, tok: Token) -> None:
        text = inline_text(tok)
        if self.item_parts is not None:
            self.item_parts.append(text.replace("\n", " "))
        elif self.quote_depth:
            parts = [p.strip() for p in text.split("\n")]
            raw = self.body_lines[tok.map[0] : tok.map[1]] if tok.map else []
            exact = len(raw) == len(parts)
            for q, src in zip(parts, raw if exact else parts, strict=True):
                if q:
                    if not exact or src.lstrip().startswith(">"):
                        # `> “请您先关阀门…”`: the words to say, without the quotation marks around them
                        self.quotes.append(quoted_script(q) or q)
                    elif said := quoted_script(q):
                        # A quotation right under a `>` line (Markdown continues the quote): a script line too. A
                        # trainer's trial added `> …` above 「“麻烦您先把水槽下面…”」 and that line was lost.
                        self.quotes.append(said)
                    self.lines.append(q)
        elif text:
            self.lines.append(text)
            self.quoted += [said for line in text.split("\n") if (said := quoted_script(line))]
