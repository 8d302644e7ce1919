"""Extractive answers for the tenant chat widget, from public content only, with a hand-over when unsure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from kb_service.search.searcher import Searcher, SopHit

HANDOFF_MESSAGE = "这个问题我暂时没法给您准确的答复，正在为您转接人工客服，请稍候。"
MAX_ANSWER_CHARS = 400


class ChatSource(BaseModel):
    sop_id: str
    title: str
    section: str


class ChatAnswer(BaseModel):
    answer: str
    sources: list[ChatSource]
    handoff: bool
    confidence: float


@dataclass
class ChatResponder:
    """Answers from the best public section; `min_confidence` was chosen by measurement (docs/benchmarks.md)."""

    searcher: Searcher
    min_confidence: float

    def answer(self, question: str, query_vector: np.ndarray | None = None) -> tuple[ChatAnswer, list[SopHit]]:
        """`query_vector`: the question's embedding when the caller computed it already (`Searcher.embed_queries`)."""
        resp = self.searcher.search(
            question, top_k=3, audience="public", with_confidence=True, query_vector=query_vector
        )
        hits = resp.results
        top = hits[0] if hits else None
        confidence = top.confidence if top and top.confidence is not None else 0.0
        # The public passage most similar to the question (sentence vectors), else the best-ranked section.
        section = (top.best_section or next((s for s in top.sections if s.audience == "public"), None)) if top else None
        if section is not None and section.audience != "public":
            section = None  # defence in depth: public searches only ever return public chunks
        if top is None or section is None or confidence < self.min_confidence:
            return ChatAnswer(answer=HANDOFF_MESSAGE, sources=[], handoff=True, confidence=round(confidence, 3)), hits
        if section.kind == "qa":
            body = section.text.split("\n", 1)[1] if "\n" in section.text else section.text
        else:
            body = section.text
        if len(body) > MAX_ANSWER_CHARS:
            body = body[:MAX_ANSWER_CHARS].rstrip() + "……"
        heading = section.heading_path[-1]
        text = f"{body}\n\n（来源：《{top.title}》· {heading}）"
        source = ChatSource(sop_id=top.sop_id, title=top.title, section=heading)
        return ChatAnswer(answer=text, sources=[source], handoff=False, confidence=round(confidence, 3)), hits
