"""Tenant phrasings to suggest to a trainer for a SOP that has few practice utterances (a terse knowledge base without
`examples` gives practice and exams nothing to ask): what tenants say for what the SOP's title or tags name, from the
colloquial lexicon. Only suggestions: the lexicon's procedure words are coarse (「就我家没电」 means 停电, which also
names a planned building outage), so a trainer confirms each before it becomes an example and so a drill.

An entry is suggested for a SOP when its first procedure word is in the SOP's title or tags and in no other SOP's;
per entry, its first phrasing that is long enough, names none of the entry's procedure words (the tenant's words, not
the trade's) and gives away neither the SOP's title nor its id."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from kb_service.models import Sop
from kb_service.text.glossary import Glossary, normalize
from kb_service.training import drills

LIMIT = 8  # suggestions shown at once
MIN_CHARS = 5  # shorter phrasings are keywords more than sentences


def _named(sop: Sop) -> str:
    return normalize(" ".join([sop.title, *sop.meta.tags]))


def _first_means(means: Sequence[str]) -> str:
    return next((n for n in (normalize(m) for m in means) if len(n) >= 2), "")


def suggestions(sop: Sop, everything: Sequence[Sop], glossary: Glossary, taken: Collection[str]) -> list[str]:
    """Up to LIMIT phrasings for `sop`, none already in `taken` (its practice utterances, compared without
    punctuation)."""
    mine = _named(sop)
    named = [(says, means, first) for says, means in glossary.phrases if (first := _first_means(means)) in mine]
    others = [_named(s) for s in everything if s.meta.id != sop.meta.id]
    shared = {first for _, _, first in named if any(first in text for text in others)}
    seen = {drills.key(t) for t in taken}
    out: list[str] = []
    for says, means, first in named:
        if not first or first in shared:
            continue
        words = [n for n in (normalize(m) for m in means) if n]
        for phrase in says:
            n = normalize(phrase)
            if len(n) < MIN_CHARS or any(c.isascii() and c.isalpha() for c in phrase) or any(w in n for w in words):
                continue
            if drills.key(phrase) in seen or not drills.usable(phrase, sop):
                continue
            seen.add(drills.key(phrase))
            out.append(phrase)
            break
        if len(out) >= LIMIT:
            break
    return out
