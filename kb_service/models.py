"""Typed data of the knowledge base: SOP documents, their sections and the chunks that get indexed."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Audience = Literal["agent", "public"]
Severity = Literal["error", "warning"]
SectionKind = Literal["scenario", "steps", "script", "time_limit", "notes", "escalation", "faq", "plain"]
INTRODUCTION = "简介"  # the heading given to the text between a document's title and its first ##


class Issue(BaseModel):
    """One problem found in a document, reported as `path:line: message`."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        label = "错误" if self.severity == "error" else "警告"
        return f"{self.path}:{self.line}: {label}: {self.message}"


class SopMeta(BaseModel):
    """Front matter of a SOP."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    category: str
    audience: Audience
    tags: list[str] = Field(default_factory=list)
    version: int = Field(default=1, description="Publish count; 0 in a tenant's view (it would tell staff edits)")
    owner: str = ""
    updated: date | None = None
    review_by: date | None = None
    examples: list[str] = Field(default_factory=list)
    scope: list[str] = Field(default_factory=list)
    # The tenant chat's hand-over: `urgent` shows the emergency number and safety instruction first and queues the case
    # first; unset = urgent when the category is one of KB_URGENT_CATEGORIES. `handover_fields`: what the contact form
    # asks beyond name, room, phone and best time (shown to tenants, so never staff-only wording).
    priority: Literal["urgent", "normal"] | None = None
    handover_fields: list[str] = Field(default_factory=list)
    # Colloquial lexicon entries left out of this SOP's 租客常见说法 chunk: an entry goes when one of its phrasings or
    # procedure words is listed; "*" leaves the chunk out (ingest/chunker.py expansion_chunk).
    lexicon_exclude: list[str] = Field(default_factory=list)


class QAPair(BaseModel):
    question: str
    answer: str
    line_start: int
    line_end: int


class Section(BaseModel):
    """A section under a heading of any level (FAQ questions excepted) with its provenance.

    `audience` is the one fact every tenant-facing filter reads: `agent` when the document is, or when this heading or
    any heading above it carries `[内部]` (`internal`; `internal_from` is the line of that heading)."""

    heading: str
    heading_path: list[str]
    kind: SectionKind
    level: int
    internal: bool
    audience: Audience
    internal_from: int | None = None
    line_start: int
    line_end: int
    text: str
    steps: list[str] = Field(default_factory=list)
    scripts: list[str] = Field(default_factory=list)
    qa: list[QAPair] = Field(default_factory=list)

    def without_lines(self) -> Section:
        """As a tenant's view holds it: no source lines (they move when a staff-only section above them grows)."""
        qa = [pair.model_copy(update={"line_start": 0, "line_end": 0}) for pair in self.qa]
        return self.model_copy(update={"line_start": 0, "line_end": 0, "internal_from": None, "qa": qa})


class Sop(BaseModel):
    """A parsed SOP document."""

    meta: SopMeta
    path: str
    title: str
    sections: list[Section]
    content_hash: str

    def urgent(self, urgent_categories: Collection[str]) -> bool:
        """An emergency procedure: its front matter says `priority: urgent`, or says nothing and its category is one
        of the urgent ones (KB_URGENT_CATEGORIES)."""
        if self.meta.priority is not None:
            return self.meta.priority == "urgent"
        return self.meta.category in urgent_categories

    def public_view(self) -> Sop:
        """The document as a tenant may see it: without `[内部]` sections, and without what is about the staff who
        keep it (the owner's name, the file's path, review dates, the trainers' example queries, which may be an
        agent's learned phrasing promoted, the lexicon exclusions, and `scope`, the stores or buildings it applies
        to, which may name them by internal codes: a security test read a canary planted there)."""
        hidden: dict[str, object] = {"owner": "", "review_by": None, "examples": [], "lexicon_exclude": [], "scope": []}
        # Nor what tells a tenant that staff-only text changed (a security review): the version number and date of a
        # publish, and the source lines, which move when a staff-only section above grows. A tenant's view reads 0.
        hidden |= {"version": 0, "updated": None}
        meta = self.meta.model_copy(update=hidden)
        sections = [s.without_lines() for s in self.sections if s.audience == "public"]
        return self.model_copy(update={"meta": meta, "path": "", "sections": sections})


class Chunk(BaseModel):
    """One indexed unit: never spans two sections; steps, script lines and Q&A pairs stay whole."""

    id: str
    sop_id: str
    version: int
    title: str
    category: str
    tags: list[str]
    audience: Audience
    doc_audience: Audience
    section_kind: SectionKind | Literal["overview", "examples", "qa", "expansion"]
    heading: str
    heading_path: list[str]
    line_start: int
    line_end: int
    text: str
    steps: list[str] = Field(default_factory=list)
    scripts: list[str] = Field(default_factory=list)
    sentences: list[str] = Field(default_factory=list)
