"""What a document's own text sends elsewhere. The moving-out rules' 适用场景 says
「合同还没到期就要搬走，属于提前退租，请联系管家了解提前退租的规定」, so their steps are no answer to
我想提前退租押金能退吗 (a trial: the tenant was told the end-of-lease steps, 合同到期前至少30天提交到期退租).
A passage that says so itself (the FAQ 「这属于提前退租…」) still is."""

from __future__ import annotations

import re
from collections.abc import Callable

from kb_service.models import Sop
from kb_service.text.normalize import normalize

# A sentence that passes a situation on: 属于提前退租, 见押金退还流程, 按投诉流程处理, 不在本流程 (not 请联系客服开门:
# that is what to do, not another document)
_POINTS = re.compile(
    r"属于|(?<![意看常罕少多])见|按[^，。；]{0,12}(?:流程|规定|办法)|转(?:给|交|到|入)?[^，。；]{0,8}(?:流程|处理)|不在本|不适用"
)
# An FAQ answer that is a pointer from its first words: 「这属于提前退租…」 「请见…」
_POINTER_ANSWER = re.compile(r"^(?:这|此|这种情况|这类情况)?(?:属于|不属于|请见|见|请按)")
_SENTENCE = re.compile(r"[。；;！!\n]+")
# Characters of how a question asks, not what it is about: a phrase holding one is no situation (怎么办 of
# 合同还没到期但我想提前搬走怎么办？ is no situation of 门卡丢了怎么办)
_ASKING = frozenset("怎么么什哪吗呢吧啊嘛多少几谁我您你他她的了想要能会可以是不还也都就请问吗")
MIN_PHRASE = 3  # characters: 没到期, 提前退租 (two-character words recur everywhere)
_BREAKS = re.compile(f"[{''.join(sorted(_ASKING))}\\W]+")


def _texts(sop: Sop) -> tuple[list[str], str]:
    """The document's public sentences that pass a situation on, and the rest of its public text (its title too)."""
    pointing: list[str] = []
    own = [sop.title]
    for section in sop.sections:
        if section.audience != "public":
            continue
        if section.kind == "faq":
            for pair in section.qa:
                pair_text = f"{pair.question}\n{pair.answer}"
                (pointing if _POINTER_ANSWER.match(pair.answer.strip()) else own).append(pair_text)
            continue
        for sentence in _SENTENCE.split(section.text):
            (pointing if section.kind == "scenario" and _POINTS.search(sentence) else own).append(sentence)
    return [normalize(s) for s in pointing], normalize("\n".join(own))


def _phrases(question: str, sentence: str) -> set[str]:
    """The longest runs of the question's characters, of `MIN_PHRASE` or more, that the sentence writes too (no
    asking characters in them)."""
    found = set()
    runs = [r for r in _BREAKS.split(question) if len(r) >= MIN_PHRASE]
    for run in runs:
        i = 0
        while i <= len(run) - MIN_PHRASE:
            j = i + MIN_PHRASE
            if run[i:j] not in sentence:
                i += 1
                continue
            while j < len(run) and run[i : j + 1] in sentence:
                j += 1
            found.add(run[i:j])
            i = j
    return found


def sent_elsewhere(question: str, sop: Sop) -> list[str]:
    """The question's phrases that the document writes only where it passes a situation on: the question is about
    that situation, so only a passage naming them answers it."""
    pointing, own = _texts(sop)
    q = normalize(question)
    found = {p for sentence in pointing for p in _phrases(q, sentence)}
    return sorted(p for p in found if p not in own)


def reader(question: str, get_sop: Callable[[str], Sop | None]) -> Callable[[str], list[str]]:
    """`sent_elsewhere` of each document by id, each read once."""
    cache: dict[str, list[str]] = {}

    def read(sop_id: str) -> list[str]:
        if sop_id not in cache:
            sop = get_sop(sop_id)
            cache[sop_id] = sent_elsewhere(question, sop) if sop is not None else []
        return cache[sop_id]

    return read
