"""Structure-aware chunking: a chunk never spans two sections, and steps, script lines and Q&A pairs stay whole."""

from __future__ import annotations

import json
from collections.abc import Iterator

from kb_service.ids import chunk_id
from kb_service.models import Chunk, Section, Sop
from kb_service.text.glossary import Glossary
from kb_service.text.normalize import normalize, sentences

MAX_CHARS = 500
MAX_SENTENCES = 24
# What tenants say for the things a title names, from the colloquial lexicon: one sentence vector per lexicon entry.
EXPANSION_HEADING = "租客常见说法"
MAX_EXPANSION_ENTRIES = 64


def _pack(items: list[str], max_chars: int) -> Iterator[list[str]]:
    """Group whole items into runs of at most `max_chars` (an oversized item stays alone and whole)."""
    run: list[str] = []
    size = 0
    for item in items:
        if run and size + len(item) > max_chars:
            yield run
            run, size = [], 0
        run.append(item)
        size += len(item)
    if run:
        yield run


def _make(
    sop: Sop,
    section_kind: str,
    heading_path: list[str],
    audience: str,
    lines: tuple[int, int],
    text: str,
    steps: list[str] | None = None,
    scripts: list[str] | None = None,
    extra: list[str] | None = None,
    limit: int = MAX_SENTENCES,
) -> Chunk:
    heading = heading_path[-1]
    sents = [f"{sop.title} {heading}", *(extra or []), *(steps or []), *(scripts or [])]
    if section_kind == "expansion":
        sents = list(extra or [])  # only what tenants say: the title has its own chunk
    elif not steps and not scripts:
        sents += sentences(text)
    fields = {
        "sop_id": sop.meta.id,
        "version": sop.meta.version,
        "title": sop.title,
        "category": sop.meta.category,
        "tags": sop.meta.tags,
        "audience": audience,
        "doc_audience": sop.meta.audience,
        "section_kind": section_kind,
        "heading": heading,
        "heading_path": heading_path,
        "line_start": lines[0],
        "line_end": lines[1],
        "text": text,
        "steps": steps or [],
        "scripts": scripts or [],
        "sentences": list(dict.fromkeys(s for s in sents if s.strip()))[:limit],
    }
    digest = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    return Chunk(id=chunk_id(sop.meta.id, digest), **fields)  # type: ignore[arg-type]


def _section_chunks(sop: Sop, s: Section) -> Iterator[Chunk]:
    span = (s.line_start, s.line_end)
    if s.kind == "faq":
        for qa in s.qa:
            yield _make(
                sop,
                "qa",
                [*s.heading_path, qa.question],
                s.audience,
                (qa.line_start, qa.line_end),
                f"{qa.question}\n{qa.answer}",
                extra=[qa.question, *sentences(qa.answer)],
            )
        return
    if s.steps:
        for group in _pack(s.steps, MAX_CHARS):
            first = s.steps.index(group[0]) + 1
            text = "\n".join(f"{first + i}. {step}" for i, step in enumerate(group))
            yield _make(sop, s.kind, s.heading_path, s.audience, span, text, steps=group)
        return
    if s.scripts:
        for group in _pack(s.scripts, MAX_CHARS):
            yield _make(sop, s.kind, s.heading_path, s.audience, span, "\n".join(group), scripts=group)
        return
    for group in _pack(s.text.split("\n"), MAX_CHARS):
        yield _make(sop, s.kind, s.heading_path, s.audience, span, "\n".join(group))


def _front(sop: Sop) -> tuple[int, int]:
    """The front matter's lines (what the overview, example and expansion chunks point to)."""
    first_line = min((s.line_start for s in sop.sections), default=1)
    return (1, max(1, first_line - 1))


def expansion_entries(sop: Sop, lexicon: Glossary) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The lexicon entries (what tenants say, the procedure words) the title and tags name, less those the front
    matter's `lexicon_exclude` names by one of their phrasings or procedure words."""
    excluded = {normalize(w) for w in sop.meta.lexicon_exclude}
    if "*" in excluded:
        return []
    named = lexicon.named_by(" ".join([sop.title, *sop.meta.tags]))
    return [e for e in named if not excluded & {normalize(w) for w in (*e[0], *e[1])}][:MAX_EXPANSION_ENTRIES]


def expansion_chunk(sop: Sop, lexicon: Glossary) -> Chunk | None:
    """What tenants say for what the title and tags name (document expansion from the colloquial lexicon): its
    phrasings as lexical text, one sentence per lexicon entry. Ranked at `SearchConfig.expansion_weight`."""
    front = _front(sop)
    entries = expansion_entries(sop, lexicon)
    if not entries:
        return None
    phrasings = list(dict.fromkeys(p for says, _ in entries for p in says))
    path = [sop.title, EXPANSION_HEADING]
    lines = ["、".join(says) for says, _ in entries]
    text = "；".join(phrasings)
    return _make(sop, "expansion", path, sop.meta.audience, front, text, extra=lines, limit=MAX_EXPANSION_ENTRIES + 1)


def chunk_sop(sop: Sop, lexicon: Glossary | None = None) -> list[Chunk]:
    """All chunks of a document: an overview (title, category, tags), the trainer's example queries as their own
    chunk (so that publishing can test the content without them), what tenants say for what the title names (with
    a `lexicon`), and the sections' chunks."""
    overview_lines = [sop.title, f"分类：{sop.meta.category}"]
    if sop.meta.tags:
        overview_lines.append("关键词：" + "、".join(sop.meta.tags))
    front = _front(sop)
    chunks = [
        _make(
            sop,
            "overview",
            [sop.title],
            sop.meta.audience,
            front,
            "\n".join(overview_lines),
            extra=["、".join(sop.meta.tags)],
        )
    ]
    if sop.meta.examples:
        chunks.append(
            _make(
                sop,
                "examples",
                [sop.title, "示例问法"],
                sop.meta.audience,
                front,
                "\n".join(sop.meta.examples),
                extra=sop.meta.examples,
            )
        )
    expansion = expansion_chunk(sop, lexicon) if lexicon is not None else None
    if expansion is not None:
        chunks.append(expansion)
    for section in sop.sections:
        chunks.extend(_section_chunks(sop, section))
    return chunks


def embedding_text(chunk: Chunk) -> str:
    """The passage text given to the dense model: title and heading give the chunk its context."""
    return f"{chunk.title}｜{chunk.heading}：{chunk.text}"[:400]


def lexical_text(chunk: Chunk) -> str:
    if chunk.section_kind == "expansion":
        return chunk.text  # tenants' phrasings only: the title's words count in the overview chunk
    return f"{chunk.title}\n{chunk.heading}\n{chunk.text}"
