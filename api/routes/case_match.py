"""Which SOP and priority a hand-over case is filed under: the tenant's question, the earlier words a follow-up is
about, and an emergency reported once the case is open."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from api.deps import Services
from kb_service.search.chat_models import ChatAnswer, Match, Priority
from kb_service.search.vague import names_an_object


def case_match(state: Services, question: str, qvec: np.ndarray, earlier: list[str]) -> tuple[Match, str]:
    """The case's SOP and priority, and the question it is filed under. A follow-up that names no object (没用，还是
    很臭; 试过了还是不行) is about the tenant's latest earlier words that match a SOP (a trial's case reached the queue
    and the webhook as 没用，还是很臭 with no SOP)."""
    match = state.chat.match(question, qvec)
    # An emergency is filed under its own words (a trial's 家里闻到煤气味 after 「WiFi连不上」 reached the queue under
    # the WiFi procedure, with router lines to read to the tenant)
    if not earlier or match.priority == "urgent" or (match.sop_id and names_an_object(question)):
        return match, question
    for text, vec in reversed(list(zip(earlier, state.kb.searcher.embed_queries(earlier), strict=True))):
        found = state.chat.match(text, vec)
        if found.sop_id:
            priority: Priority = "urgent" if "urgent" in (match.priority, found.priority) else "normal"
            return replace(found, priority=priority), f"{text} / {question}"
    return match, question


def emergency(state: Services, text: str, qvec: np.ndarray | None) -> tuple[ChatAnswer, Match]:
    """What a tenant who reports an emergency in a case is told, and the procedure it is about."""
    vec = state.kb.searcher.embed_queries([text])[0] if qvec is None else qvec
    return state.chat.answer(text, vec)[0], state.chat.match(text, vec)
