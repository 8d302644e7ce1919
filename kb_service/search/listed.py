"""A tenant's question that a SOP lists among its `examples`: the trainer's own word that this SOP answers it.

The chat answers such a question from the SOP when public search puts it first, even where no passage repeats the
question's words (a new customer's 可以养猫吗, listed by the pet policy whose steps say 允许饲养…猫、狗, was handed
over while the publish reported that both examples find the SOP).
"""

from __future__ import annotations

import re

from kb_service.models import Sop
from kb_service.text.normalize import normalize

_NOT_WORDS = re.compile(r"[\W_]+")
_PARTICLES = "吗呢呀啊吧嘛么"


def _said(text: str) -> str:
    return _NOT_WORDS.sub("", normalize(text)).rstrip(_PARTICLES)


def listed_as_example(question: str, sop: Sop | None) -> bool:
    """Whether the question is one of the SOP's examples, punctuation, case and final particles aside."""
    if sop is None or not sop.meta.examples:
        return False
    said = _said(question)
    return bool(said) and any(_said(e) == said for e in sop.meta.examples)
