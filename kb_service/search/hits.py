"""From the store's chunk hits to one result per SOP: a SOP's evidence from its best chunks, the sections shown, and
which SOPs a learned phrasing may lift."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kb_service.learning.matcher import LearnedIndex, LearnedMatch
from kb_service.models import Audience, Section, Sop
from kb_service.search.answer_types import asks_fee, holds_price, priced_subject
from kb_service.search.catalog import Catalog
from kb_service.search.config import SearchConfig
from kb_service.search.objects import meant_words, mismatch
from kb_service.search.passages import words
from kb_service.search.results import LearnedExplain, MatchedSection, SopHit
from kb_service.store.base import StoreHit
from kb_service.text.danger import DangerSignals
from kb_service.text.glossary import Glossary
from kb_service.text.scripts import quoted_script


@dataclass(frozen=True)
class Allowed:
    """SOPs a learned phrasing may lift in this search: published, and within the search's filters."""

    catalog: Catalog
    categories: Sequence[str]
    tags: Sequence[str]

    def __contains__(self, sop_id: object) -> bool:
        if not isinstance(sop_id, str) or sop_id not in self.catalog:
            return False
        if not self.categories and not self.tags:
            return True
        meta = self.catalog[sop_id].meta
        return (not self.categories or meta.category in self.categories) and (
            not self.tags or bool(set(meta.tags) & set(self.tags))
        )


def by_sop(
    hits: Sequence[StoreHit], sop_of: Callable[[str], str | None], expansions: Container[str], weight: float
) -> dict[str, list[StoreHit]]:
    """The chunk hits of each SOP, best first; a lexicon expansion chunk counts at `weight` of its fused score."""
    grouped: dict[str, list[StoreHit]] = {}
    for hit in hits:
        sop_id = sop_of(hit.id)
        if sop_id is not None:
            score = hit.score * weight if hit.id in expansions else hit.score
            grouped.setdefault(sop_id, []).append(StoreHit(hit.id, score, hit.payload))
    for chunk_hits in grouped.values():
        chunk_hits.sort(key=lambda h: -h.score)
    return grouped


def evidence(chunk_hits: list[StoreHit], cfg: SearchConfig) -> float:
    """A SOP's score from its chunks' fused scores (best first)."""
    return sum(h.score * cfg.evidence_decay**i for i, h in enumerate(chunk_hits[: cfg.evidence_chunks]))


def deeper(
    hits: list[StoreHit],
    sop_of: Callable[[str], str | None],
    expansions: Container[str],
    cfg: SearchConfig,
    grouped: dict[str, list[StoreHit]],
    scores: dict[str, float],
    ranked: list[str],
) -> None:
    """The SOPs only deeper chunks found, after the ranked ones in their own order (in place): asking for more
    results adds SOPs after the ranked ones and changes none of them."""
    more = by_sop(hits, sop_of, expansions, cfg.expansion_weight)
    floor = min((scores[k] for k in ranked), default=0.0)
    found = sorted((k for k in more if k not in grouped), key=lambda k: -evidence(more[k], cfg))
    for i, sop_id in enumerate(found, 1):
        grouped[sop_id] = more[sop_id]
        scores[sop_id] = min(evidence(more[sop_id], cfg), floor) - 1e-9 * i
        ranked.append(sop_id)


def _said(line: str, scripts: list[str]) -> str:
    """A script section's line as the card lists it: a quoted script line (`客服：“…”`) as the words to say, so the
    console numbers it for Alt+N and its copy button copies the words alone."""
    inner = quoted_script(line)
    return inner if inner is not None and inner in scripts else line


def _texts(sop: Sop, kind: str) -> list[str]:
    return [s.text for s in sop.sections if s.kind == kind and s.text]


# A deadline within a step: 管家15分钟内到场, 2个工作日内回复.
_DEADLINE = re.compile(r"(?:\d+|[一二两三四五六七八九十半]+)\s*个?(?:分钟|小时|工作日|天|日)\s*(?:之内|以内|内)")


def time_limits(sop: Sop) -> list[str]:
    """The time-limit sections; without one, the steps that set a deadline (a new customer's lift procedure says
    15分钟内到场 in its steps only, and the call mode showed no countdown)."""
    return _texts(sop, "time_limit") or [
        step for s in sop.sections if s.kind == "steps" for step in s.steps if _DEADLINE.search(step)
    ]


def matched_section(p: dict[str, Any], score: float, public: bool = False) -> MatchedSection:
    """A matched chunk's section; for a tenant without its source lines (they move with staff-only text above)."""
    return MatchedSection(
        heading=p["heading"],
        heading_path=p["heading_path"],
        kind=p["section_kind"],
        text=p["text"],
        line_start=0 if public else p["line_start"],
        line_end=0 if public else p["line_end"],
        audience=p["audience"],
        score=round(score, 4),
    )


def _valued(sop: Sop, query: str, sections: list[MatchedSection], public: bool) -> list[MatchedSection]:
    """For a question for a sum (or whether a fee applies), the section whose priced line names most of what is
    priced goes first on the card, that line first in it (停车费一个月多少钱 showed how to apply for the card and
    no price; 退租保洁多少钱 showed the deep-cleaning 299元 with 退租保洁 150元 cut off; 上门喂猫多少钱 led with the
    pet deposit: a training lead's trial and its re-check). A section the search did not match comes from the SOP
    (for a tenant, its public view)."""
    if not query or not asks_fee(query):
        return sections
    subject = _priced_words(query)
    seen = {tuple(s.heading_path) for s in sections}
    pool: list[MatchedSection | Section] = [*sections, *(s for s in sop.sections if _unmatched_priced(s, seen, query))]
    fits = [_fit(s.text, subject, query) for s in pool]
    best = max(range(len(pool)), key=lambda i: (fits[i][0], -i), default=None)
    if best is None or fits[best][0] < 0 or (fits[best][0] == 0 and any(f[0] >= 0 for f in fits[: len(sections)])):
        return sections  # no section names a sum, or none of what is priced while a matched one names some
    found, line = pool[best], fits[best][1]
    chosen = found if isinstance(found, MatchedSection) else _shown(found, public)  # made for the one shown only
    lines = [x for x in chosen.text.split("\n") if x.strip()]
    if chosen.kind != "qa":  # an FAQ pair keeps its question first
        chosen = chosen.model_copy(update={"text": "\n".join([line, *(x for x in lines if x != line)])})
    return [chosen, *(s for s in sections if s is not found)]


@functools.lru_cache(maxsize=1024)
def _priced_words(query: str) -> tuple[str, ...]:
    """What a question for a sum prices, in words (read once for the ten results of a search)."""
    return tuple(w for w in words(priced_subject(query)) if len(w) >= 2)


def _unmatched_priced(s: Section, seen: set[tuple[str, ...]], query: str) -> bool:
    return bool(s.text) and s.kind != "script" and tuple(s.heading_path) not in seen and holds_price(s.text, query)


def _fit(text: str, subject: Sequence[str], query: str) -> tuple[int, str]:
    """How many of the priced subject's words the best line naming a sum names (-1: no line names one), and it."""
    priced = [x for x in text.split("\n") if x.strip() and holds_price(x, query)]
    scored = [(sum(w in x for w in subject), x) for x in priced]
    return max(scored, key=lambda t: t[0], default=(-1, ""))


def _shown(s: Section, public: bool) -> MatchedSection:
    return MatchedSection(
        heading=s.heading,
        heading_path=s.heading_path,
        kind=s.kind,
        text=s.text,
        line_start=0 if public else s.line_start,
        line_end=0 if public else s.line_end,
        audience=s.audience,
        score=0.0,
    )


def to_hit(
    sop: Sop, score: float, chunk_hits: list[StoreHit], audience: Audience, cfg: SearchConfig, query: str = ""
) -> SopHit:
    """`query`: the words searched for, to show the section that holds the sum they ask for (`_valued`)."""
    sections: list[MatchedSection] = []
    for h in chunk_hits:
        p = h.payload
        if p["section_kind"] in ("overview", "examples", "expansion") or (
            audience == "public" and p["audience"] != "public"
        ):
            continue
        sections.append(matched_section(p, h.score, audience == "public"))
        if len(sections) == cfg.sections_per_result:
            break
    return SopHit(
        sop_id=sop.meta.id,
        title=sop.title,
        category=sop.meta.category,
        audience=sop.meta.audience,
        version=sop.meta.version,
        score=round(score, 4),
        path=sop.path,
        tags=sop.meta.tags,
        sections=_valued(sop, query, sections, audience == "public")[: cfg.sections_per_result],
        steps=[step for s in sop.sections if s.kind == "steps" for step in s.steps],
        # The lines to say to a tenant: a script section marked staff-only ([内部]: what to offer a tenant who
        # insists, an authorisation code) is guidance, read in the SOP, never one click from a tenant's chat (a
        # security review pasted one into a case reply)
        scripts=[line for s in sop.sections if s.kind == "script" and not s.internal for line in s.scripts],
        script_lines=[
            _said(line, s.scripts)
            for s in sop.sections
            if s.kind == "script" and not s.internal
            for line in s.text.splitlines()
            if line.strip()
        ],
        time_limits=time_limits(sop),
        escalation=_texts(sop, "escalation"),
        staff_only_sections=[s.heading for s in sop.sections if s.internal],
        urgent=sop.urgent(cfg.urgent_categories),
    )


@functools.cache
def _danger() -> DangerSignals:
    return DangerSignals.builtin()


def emergency_first(query: str, catalog: Mapping[str, Sop], categories: Collection[str]) -> Callable[[str], bool]:
    """Which SOP must stay first whatever was learned: an emergency procedure, for words with a danger signal (the
    tenant says it is happening now). The words are read only when a lift would pass such a procedure."""

    def keep(sop_id: str) -> bool:
        return sop_id in catalog and catalog[sop_id].urgent(categories) and bool(_danger().found(query))

    return keep


def behind_emergency(query: str, sop: Sop, categories: Collection[str]) -> bool:
    """Whether an emergency procedure stays above `sop` for these words whatever agents taught (`emergency_first`):
    the words carry a danger signal and the SOP is no emergency procedure."""
    return not sop.urgent(categories) and bool(_danger().found(query))


DANGER_DEPTH = 5  # how far down the channels' ranking an emergency procedure is brought first from


OFF_OBJECT_DEPTH = 2  # the SOPs first on evidence whose FAQ chunks are read for another object


def off_object(
    query: str,
    grouped: dict[str, list[StoreHit]],
    scores: dict[str, float],
    ranked: list[str],
    payloads: Callable[[list[str]], Mapping[str, Mapping[str, Any]]],
    cfg: SearchConfig,
    glossary: Glossary | None = None,
) -> list[str]:
    """The ranking without the evidence of FAQ pairs about another object than the query's (in place on `grouped`
    and `scores`), as the chat reads passages (objects.mismatch): `临时寄养朋友的宠物也要登记吗` is about the pet, no
    evidence for `我朋友来住几天需要登记吗` (a trial: the pet registration first at 84 %, the visitor procedure second);
    `宠物押金多少钱` none for `押金什么时候退`. Only the first SOPs' evidence chunks are read."""
    top = ranked[:OFF_OBJECT_DEPTH]
    read = payloads([h.id for k in top for h in grouped[k][: cfg.evidence_chunks]])
    qwords: list[str] | None = None
    meant = ""
    for sop_id in top:
        kept = []
        for i, hit in enumerate(grouped[sop_id]):
            p = read.get(hit.id) if i < cfg.evidence_chunks else None
            if p is not None and p.get("section_kind") == "qa":
                if qwords is None:  # once, for the first FAQ pair (what the query's colloquial phrases mean too)
                    qwords, meant = list(dict.fromkeys(words(query))), meant_words(glossary, query) if glossary else ""
                if mismatch(qwords, query, str(p.get("heading", "")), meant) is not None:
                    continue
            kept.append(hit)
        if len(kept) < len(grouped[sop_id]):
            grouped[sop_id] = kept
            scores[sop_id] = evidence(kept, cfg)
    return sorted(grouped, key=lambda k: -scores[k]) if qwords is not None else ranked


def danger_first(
    query: str,
    ranked: Sequence[str],
    catalog: Mapping[str, Sop],
    categories: Collection[str],
    over_other_emergencies: bool = False,
) -> str | None:
    """For words with a danger signal (煤气味, 哗哗往下流, 困在电梯): the emergency procedure about that danger among
    the first `DANGER_DEPTH`, when another SOP is first. A trial's call went from a water heater that would not light
    to 臭鸡蛋味…头晕, and the water-heater repair stayed first with the gas-leak steps third. None otherwise, and None
    when an emergency procedure is first already (`over_other_emergencies`: unless it is about another danger)."""
    signals = _danger().found(query) if query and ranked else []
    if not signals:  # the words first: reading a SOP from the catalogue costs a parse
        return None
    kinds = list(dict.fromkeys(s.kind for s in signals))
    first = catalog.get(ranked[0])
    if first is not None and first.urgent(categories) and (not over_other_emergencies or _about(first, kinds)):
        return None
    for sop_id in ranked[1:DANGER_DEPTH]:
        sop = catalog.get(sop_id)
        if sop is not None and sop.urgent(categories) and _about(sop, kinds):
            return sop_id
    return None


def to_front(ranked: list[str], scores: dict[str, float], sop_id: str | None) -> None:
    """Put `sop_id` (when given) first, its score just above the first's."""
    if sop_id is not None and ranked and sop_id != ranked[0]:
        scores[sop_id] = scores[ranked[0]] * (1 + 1e-6)
        ranked.remove(sop_id)
        ranked.insert(0, sop_id)


def _about(sop: Sop, kinds: list[str]) -> bool:
    """The emergency procedure's title or tags name the procedure for one of these kinds of danger."""
    return _danger().names_procedure(" ".join([sop.title, *sop.meta.tags]), kinds)


def learned_boosts(
    index: LearnedIndex,
    scores: dict[str, float],
    learned: dict[str, LearnedMatch],
    keep_first: Callable[[str], bool] = lambda _: False,
) -> dict[str, LearnedExplain]:
    """Lift the SOPs learned phrasings point to (in place) and say what each lift was. When `keep_first` says the
    first SOP on the channels' own evidence must stay first (an emergency procedure, for words with a danger
    signal), a lift takes another SOP up to just below it: one agent's 👍 never moves the gas-leak steps off the
    top of 闻到煤气味怎么办."""
    top = max(scores.values(), default=0.0) or 1.0
    before = max(scores, key=lambda k: scores[k], default=None)
    added = {sop_id: index.boost(m, scores.get(sop_id, 0.0), top) for sop_id, m in learned.items()}
    if before is not None and any(k != before for k in added) and keep_first(before):
        ceiling = scores[before] + added.get(before, 0.0) - 1e-6
        for sop_id in added:
            if sop_id != before:
                added[sop_id] = max(0.0, min(added[sop_id], ceiling - scores.get(sop_id, 0.0)))
    for sop_id, boost in added.items():
        scores[sop_id] = scores.get(sop_id, 0.0) + boost
    after = max(scores, key=lambda k: scores[k], default=None)
    return {
        sop_id: LearnedExplain(
            learned_id=m.learned_id,
            phrasing=m.phrasing,
            similarity=round(m.similarity, 4),
            cosine=round(m.cosine, 4),
            overlap=round(m.overlap, 4),
            confirmations=m.confirmations,
            exact=m.exact,
            boost=round(added[sop_id], 4),
            decided_top=sop_id == after and after != before,
        )
        for sop_id, m in learned.items()
    }
