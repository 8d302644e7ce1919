"""How a document will be chunked and indexed, for trainers, before they publish it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel

from kb_service import glossary as glossary_mod
from kb_service.chunker import chunk_sop
from kb_service.models import Audience
from kb_service.parser import parse_bytes


class PreviewChunk(BaseModel):
    id: str
    kind: str
    heading_path: list[str]
    audience: Audience
    line_start: int
    line_end: int
    text: str
    steps: list[str]
    scripts: list[str]
    glossary: list[str]


class Preview(BaseModel):
    ok: bool
    sop_id: str | None
    title: str | None
    issues: list[str]
    chunks: list[PreviewChunk]


def preview_bytes(path: str, raw: bytes, sops_dir: Path | None, today: date | None = None) -> Preview:
    result = parse_bytes(path, raw, today=today)
    issues = [str(i) for i in result.issues]
    if result.sop is None:
        return Preview(ok=False, sop_id=None, title=None, issues=issues, chunks=[])
    gloss = glossary_mod.load(sops_dir)
    chunks = [
        PreviewChunk(
            id=c.id,
            kind=c.section_kind,
            heading_path=c.heading_path,
            audience=c.audience,
            line_start=c.line_start,
            line_end=c.line_end,
            text=c.text,
            steps=c.steps,
            scripts=c.scripts,
            glossary=[f"{e.found} → {'、'.join(e.synonyms)}" for e in gloss.expansions(f"{c.heading}\n{c.text}")],
        )
        for c in chunk_sop(result.sop)
    ]
    return Preview(ok=True, sop_id=result.sop.meta.id, title=result.sop.title, issues=issues, chunks=chunks)


def preview_file(path: Path, sops_dir: Path | None) -> Preview:
    return preview_bytes(str(path), path.read_bytes(), sops_dir)
