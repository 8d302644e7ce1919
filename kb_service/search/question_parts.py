"""A tenant's message that asks two or three things (押金什么时候退？退租的时候要扣哪些钱): its questions, each to be
answered on its own, and their answers put together. Asked as one, such a message got the passage of one half,
sometimes the less useful one, and 合同快到期了，续租要提前多久说？续租房租会涨吗 got the moving-out notice of a tenant
who does not renew (a tenant's trial, session 50)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from jieba import posseg

from kb_service.search import answer_types
from kb_service.search.chat_models import ChatAnswer
from kb_service.search.passages import words

MAX_PARTS = 3
# A clause that asks something: a question particle or word (吗, 怎么, 多少, 哪, 能不能 …). A clause that asks nothing
# (合同快到期了) is the context of the question after it.
_ASKS = re.compile(r"吗|呢|怎|什么|几|多少|多久|多长|哪|谁|能不能|可不可以|是不是|要不要|有没有|会不会|行不行")
_CLAUSES = re.compile(r"[？?！!。；;，,\s]+")
_ASKED_BETWEEN = re.compile(r"[？?]")
_CONTENT = "nvat"  # jieba's tags of nouns, verbs, adjectives and times (an unknown word counts as a noun)


def split(question: str) -> list[str]:
    """The message's questions, each with the clauses before it that ask nothing; [] for one question. Two questions
    are told apart only when each names something of its own (要多少钱 after 门卡丢了怎么补办 names nothing: the
    message is one question), and only in a message with a question mark between them: 有停车位吗 月租多少 runs on
    as one question, and 月租多少 alone was answered with where to pay the rent."""
    clauses = [c for c in _CLAUSES.split(question) if c]
    parts: list[str] = []
    context: list[str] = []
    for clause in clauses:
        context.append(clause)
        if _ASKS.search(clause):
            parts.append("，".join(context))
            context = []
    if context and parts:
        parts[-1] = "，".join([parts[-1], *context])
    if not 2 <= len(parts) <= MAX_PARTS or not _ASKED_BETWEEN.search(question.rstrip("？? ")):
        return []
    return parts if all(_own_object(p, [q for q in parts if q is not p]) for p in parts) else []


def _own_object(part: str, others: Sequence[str]) -> bool:
    """Whether the part names a word of two characters or more that the other parts do not, beside what it asks: a
    thing, an action or a quality (房租, 续租, 过夜, 保洁), not 每个 or 之前 (每个月几号之前要交 after
    房租可以用微信交吗 asks about the rent: alone, it got the moving-out steps)."""
    theirs = {w for other in others for w in words(other)}
    tags = posseg.dt.word_tag_tab
    return any(
        len(w) >= 2 and w not in theirs and not answer_types.asked(w) and (tags.get(w) or "n")[0] in _CONTENT
        for w in words(part)
    )


def combine(parts: Sequence[str], answers: Sequence[ChatAnswer]) -> ChatAnswer | None:
    """One answer of the parts' answers, each under its question, when every part is answered (no hand-over, no
    emergency) and at least two passages answer them; None otherwise (the message is then answered as a whole)."""
    if any(a.handoff or a.urgent or not a.sources for a in answers):
        return None
    seen: set[tuple[str, str]] = set()
    said: list[str] = []
    sources = []
    for part, answer in zip(parts, answers, strict=True):
        key = (answer.sources[0].sop_id, answer.sources[0].section)
        if key in seen:
            continue
        seen.add(key)
        said.append(f"【{part}】\n{answer.answer}")
        sources.append(answer.sources[0])
    if len(sources) < 2:
        return None
    return ChatAnswer(
        answer="\n\n".join(said),
        sources=sources,
        handoff=False,
        confidence=min(a.confidence for a in answers),
        complaint=any(a.complaint for a in answers),
    )
