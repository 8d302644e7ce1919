"""How a document will be chunked and indexed, for trainers, before they publish it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ingest.checks import duplicate_issues, emergency_issues, reference_issues
from ingest.chunker import chunk_sop, expansion_entries
from ingest.documents import load_corpus
from ingest.headings import split_internal
from ingest.parser import parse_bytes
from ingest.staff_checks import left_public
from ingest.time_checks import stale_times
from kb_service.assist.guide import ask_next, deadlines, untimed
from kb_service.models import Audience, Section, Sop
from kb_service.search.config import SearchConfig
from kb_service.search.hits import to_hit
from kb_service.text import glossary as glossary_mod


class PreviewSection(BaseModel):
    """Who will see a section, and why: the document's audience or an `[内部]` heading (its own or above it)."""

    heading_path: list[str]
    level: int
    line_start: int
    line_end: int
    audience: Audience
    reason: str


class PreviewChunk(BaseModel):
    id: str
    kind: str
    heading_path: list[str]
    audience: Audience
    audience_reason: str
    line_start: int
    line_end: int
    text: str
    steps: list[str]
    scripts: list[str]
    glossary: list[str]


class CallView(BaseModel):
    """What call mode will show of the SOP once it is pinned (kb_service/assist/guide.py)."""

    deadlines: list[dict[str, Any]] = Field(description="Countdowns: label, minutes, starts (call | event | case)")
    untimed: list[str] = Field(description="Time-limit lines that give no countdown (days, over a day)")
    ask_next: list[str] = Field(description="接下来问租客")


class Preview(BaseModel):
    ok: bool
    sop_id: str | None
    title: str | None
    issues: list[str]
    sections: list[PreviewSection] = Field(default_factory=list)
    chunks: list[PreviewChunk]
    call: CallView | None = None


def audience_reason(
    sop: Sop,
    section: Section | None,
    headings: dict[int, str],
    line: int | None = None,
    source: list[str] | None = None,
) -> str:
    """Why a section (None: the document's own overview and example chunks) has its audience; `line`: where the
    text starts when it is a part of the section with its own heading (a FAQ question); `source`: the file's lines,
    to tell a heading's own `[内部]` from staff-only words read in it or in its text."""
    if sop.meta.audience == "agent":
        return "文件头 audience: agent，整份文档仅员工可见"
    if section is None:
        return "租客可见：文件头 audience: public"
    if section.internal_from is None:
        return "租客可见：文件头 audience: public，本节及上级标题都没有 [内部]"
    if section.internal_from == (line or section.line_start):
        # marked, or read as staff-only from its heading's words or a line of its text (a re-check: the reason
        # named a [内部] the heading did not have)
        written = source[section.internal_from - 1] if source and section.internal_from <= len(source) else None
        if written is None or split_internal(written.lstrip("#").strip())[1]:
            return "仅员工：本节标题带 [内部]"
        return "仅员工：本节标题或正文里有仅员工的标记或说明（见上面的警告），已按 [内部] 处理"
    above = headings.get(section.internal_from, "")
    return f"仅员工：上级标题“{above}”（第 {section.internal_from} 行）带 [内部]"


def _section_of(sop: Sop, line: int) -> Section | None:
    """The section a chunk starting at `line` came from (sections are in source order and do not overlap)."""
    found = None
    for s in sop.sections:
        if s.line_start <= line:
            found = s
    return found


def preview_bytes(
    path: str,
    raw: bytes,
    sops_dir: Path | None,
    today: date | None = None,
    published: Callable[[], Iterable[Sop]] | None = None,
    urgent_categories: Collection[str] = (),
) -> Preview:
    """`published`: the knowledge base the draft joins (a title, content or example question one of its other SOPs
    has too: ingest/checks.py `duplicate_issues`; for an emergency procedure without public text, whether any
    tenant-visible safety text backs it up: `emergency_issues`)."""
    result = parse_bytes(path, raw, today=today)
    issues = [str(i) for i in result.issues]
    sop = result.sop
    if sop is None:
        return Preview(ok=False, sop_id=None, title=None, issues=issues, chunks=[])
    if published is not None:
        every = list(published())
        issues += _against(sop, raw, [o for o in every if o.meta.id != sop.meta.id], urgent_categories)
        live = next((o for o in every if o.meta.id == sop.meta.id), None)  # a time taken out of its time limits
        text = raw.decode("utf-8-sig", errors="replace")
        issues += [str(i) for i in (*stale_times(live, sop, path, text), *left_public(live, sop, path, text))]
    gloss = glossary_mod.load(sops_dir)
    source = raw.decode("utf-8-sig", errors="replace").split("\n")
    sections = [
        PreviewSection(
            heading_path=s.heading_path,
            level=s.level,
            line_start=s.line_start,
            line_end=s.line_end,
            audience=s.audience,
            reason=audience_reason(sop, s, result.headings, source=source),
        )
        for s in sop.sections
    ]
    chunks = []
    for c in chunk_sop(sop, gloss):
        expansion = c.section_kind == "expansion"
        own = None if c.section_kind in ("overview", "examples", "expansion") else _section_of(sop, c.line_start)
        chunks.append(
            PreviewChunk(
                id=c.id,
                kind=c.section_kind,
                heading_path=c.heading_path,
                audience=c.audience,
                audience_reason=audience_reason(sop, own, result.headings, c.line_start, source),
                line_start=c.line_start,
                line_end=c.line_end,
                text=_expansion_text(expansion_entries(sop, gloss)) if expansion else c.text,
                steps=c.steps,
                scripts=c.scripts,
                glossary=[]
                if expansion
                else [f"{e.found} → {'、'.join(e.synonyms)}" for e in gloss.expansions(f"{c.heading}\n{c.text}")],
            )
        )
    return Preview(
        ok=True, sop_id=sop.meta.id, title=sop.title, issues=issues, sections=sections, chunks=chunks, call=_call(sop)
    )


def _against(sop: Sop, raw: bytes, others: list[Sop], urgent_categories: Collection[str]) -> list[str]:
    """What the draft repeats of the published SOPs, the ids it names that none has, and an emergency procedure
    that no tenant-visible safety text backs up."""
    text = raw.decode("utf-8-sig", errors="replace")
    issues = duplicate_issues([sop], {sop.path: text}, known=others)
    issues += reference_issues([sop], {o.meta.id for o in others} | {sop.meta.id}, {sop.path: text})
    if emergency_issues([sop], urgent_categories):
        issues += [i for i in emergency_issues([*others, sop], urgent_categories) if i.path == sop.path]
    return [str(i) for i in issues]


def _call(sop: Sop) -> CallView:
    hit = to_hit(sop, 0.0, [], "agent", SearchConfig())
    limits: list[dict[str, Any]] = [dict(d) for d in deadlines(hit.time_limits)]
    return CallView(deadlines=limits, untimed=untimed(hit.time_limits), ask_next=ask_next(hit.steps, hit.scripts))


SHOWN_PHRASINGS = 6
EXPANSION_HINT = (
    "以上每行是词表的一组租客说法，冒号前是它对应的标准说法。与本 SOP 无关的一组，在培训师工作台预览里点「排除」，"
    '或在文件头写 lexicon_exclude: [该组任一说法] 整组去掉（写 "*" 则不要这一片段）'
)


def _expansion_text(entries: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> str:
    """The 租客常见说法 chunk as a trainer reads it: one line per lexicon entry, named by its procedure words, so an
    entry that does not belong is seen and excluded by name (its text is thousands of phrasings in one run)."""
    lines = [
        f"{'·'.join(means)}：{'、'.join(says[:SHOWN_PHRASINGS])}{'…' if len(says) > SHOWN_PHRASINGS else ''}"
        for says, means in entries
    ]
    return "\n".join([*lines, EXPANSION_HINT])


def preview_file(path: Path, sops_dir: Path | None, urgent_categories: Collection[str] = ()) -> Preview:
    """`kb preview FILE`: the file as the knowledge base in `sops_dir` would take it (what it repeats of the others,
    the ids it names), as the workspace's preview does against the published SOPs."""

    def published() -> Iterable[Sop]:
        return load_corpus([sops_dir]).sops.values() if sops_dir is not None and sops_dir.is_dir() else ()

    return preview_bytes(
        str(path), path.read_bytes(), sops_dir, published=published, urgent_categories=urgent_categories
    )
