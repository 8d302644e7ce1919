"""Every line of the published SOPs' files that holds a text: a trainer changing a rule finds each document that
states it (a trial's rule change touched five SOPs; the document filter reads titles, ids and tags only, and found two
of them). Spaces and full- or half-width forms are ignored (30 分钟 finds 30分钟)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kb_service.search.catalog import Catalog
from kb_service.text.normalize import normalize

MAX_DOCUMENTS = 100
MAX_LINES = 10  # per document; the rest are counted


@dataclass(frozen=True)
class LineHit:
    line: int  # 1-based, in the file
    text: str


@dataclass(frozen=True)
class DocumentHits:
    sop_id: str
    title: str
    path: str
    lines: list[LineHit] = field(default_factory=list)
    more: int = 0  # matching lines beyond MAX_LINES


def squashed(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text))


def find_text(catalog: Catalog, sops_dir: Path, query: str) -> tuple[list[DocumentHits], int]:
    """The documents whose file holds `query` (most matching lines first) and how many documents hold it in all."""
    needle = squashed(query)
    if not needle:
        return [], 0
    found: list[DocumentHits] = []
    for sop in catalog.every():
        try:
            lines = (sops_dir / sop.path).read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):  # a file removed or broken since: its last good version still serves
            continue
        hits = [LineHit(n, line.strip()) for n, line in enumerate(lines, start=1) if needle in squashed(line)]
        if hits:
            found.append(
                DocumentHits(sop.meta.id, sop.title, sop.path, hits[:MAX_LINES], max(0, len(hits) - MAX_LINES))
            )
    found.sort(key=lambda d: (-(len(d.lines) + d.more), d.sop_id))
    return found[:MAX_DOCUMENTS], len(found)
