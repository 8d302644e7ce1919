"""A hit test of a draft before it is published: the draft is indexed into a new generation exactly as a publish
would index it (same incremental build, under the writer lock), the tenant phrasings are searched on that generation,
and the generation is dropped without ever being published. A trainer's trial had to publish a new SOP to learn
whether agents' words find it."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from pydantic import BaseModel, Field

from ingest.knowledge_base import KnowledgeBase
from ingest.parser import parse_bytes
from kb_service.errors import KbError

TOP_K = 5


class DraftHit(BaseModel):
    sop_id: str
    title: str


class DraftQuery(BaseModel):
    query: str
    rank: int | None = Field(description="草稿在这个问法的检索结果中的名次（1 = 第一；null：前 5 名里没有）")
    top: list[DraftHit] = Field(description="前 5 个结果")


class DraftHits(BaseModel):
    sop_id: str
    title: str
    results: list[DraftQuery]


class DraftInvalidError(KbError):
    """The draft does not parse: its issues, as lint gives them."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("草稿有错误，无法测试：" + "；".join(issues) + " / the draft has errors")
        self.issues = issues


class _Tried(Exception):
    """Raised after the searches so that the trial generation is dropped, never published."""


def draft_hits(kb: KnowledgeBase, raw: bytes, queries: Sequence[str]) -> DraftHits:
    """Where the draft ranks for each query in agent search, as if it were published (nothing is)."""
    parsed = parse_bytes("draft.md", raw)
    sop = parsed.sop
    if sop is None:
        raise DraftInvalidError([str(i) for i in parsed.issues if i.severity == "error"])
    results: list[DraftQuery] = []
    titles = {sop.meta.id: sop.title}

    def search(generation: str) -> None:
        for query in queries:
            hits = kb.searcher.search(query, top_k=TOP_K, audience="agent", generation=generation).results
            ids = [h.sop_id for h in hits]
            rank = ids.index(sop.meta.id) + 1 if sop.meta.id in ids else None
            top = [DraftHit(sop_id=h.sop_id, title=titles.get(h.sop_id, h.title)) for h in hits]
            results.append(DraftQuery(query=query, rank=rank, top=top))
        raise _Tried

    with contextlib.suppress(_Tried):
        kb.indexer.apply([sop], [], verify=search)
    return DraftHits(sop_id=sop.meta.id, title=sop.title, results=results)
