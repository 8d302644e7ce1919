"""Suggestions that follow a call: the SOPs its transcript so far needs, weighted toward the tenant's latest words.

Each segment runs at most three searches through the unchanged Searcher (one model call embeds their queries), and
the rankings are combined:
- the tenant's words since the current topic started (the context; its latest part if long);
- the tenant's latest segment alone, which tells whether the tenant has moved to another topic;
- the tenant's current turn (their words since the agent last spoke), when the call has earlier turns, weighted by its
  own calibrated confidence (an uninformative "对，就是楼上" adds little; a clear new request adds much). Within one
  turn the tenant goes on describing one thing, and leaning toward its last clause ("我都不敢再按了") only moved
  single-need calls away from the SOP their whole description matched (benchmarks/assist_offline.py);
- the agent's latest words, searched when the agent speaks, as weak context (AssistConfig.agent_weight).
A topic change (see `_new_topic`: the tenant's latest final segment matches another SOP than the one first before it,
and not that one confidently; announced, or the first words of a new turn, or long and very sure) starts a new context
at that segment, so the new topic's SOP is first after that one segment. On partial segments a new first suggestion
must beat the one shown by `switch_margin`, and a weak one is not sent, so suggestions do not flicker while the
tenant is still speaking.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kb_service.assist.context import CallContext, Speaker
from kb_service.assist.guide import card
from kb_service.search.confidence import Confidence
from kb_service.search.hits import danger_first, emergency_first
from kb_service.search.results import SearchResponse, SopHit
from kb_service.search.searcher import Searcher

# Words a tenant uses to bring up something else; measured on eval/queries.jsonl's calls, a topic change without them
# mostly cut a single need in two (a short follow-up such as "钱是当天交吗" matched another SOP on its own).
# "另外" announces something else only where a clause starts ("另外，我家钥匙…"); inside a clause it means "extra"
# ("要另外交钱吗"), and before a verb of paying it does too. "换个" changes the subject only as 换个话题/问题/事:
# a tenant who says 想换个一居室 or 换个软管 is still on the same need (every 换个 of the labelled calls and queries).
TOPIC_MARKER = re.compile(
    r"(?:^|[，,。.！!？?；;\s])(?:那|嗯|哦|呃|啊)?另外(?![交付收算加给花掏出])"
    r"|还有(?:个|件|一个|一件)?(?:事|问题|就是)|对了|顺便|再问|还想问|还要问|换个(?:话题|问题|事)|别的事|其他问题"
    # "还有我家洗衣机也坏了": a turn that opens with 还有 and who it is about adds another matter
    r"|(?:^|[，,。.！!？?；;\s])(?:那|嗯|哦|呃|啊)?还有(?:我|咱|俺)"
)
UNANNOUNCED_CHARS = 8


@dataclass(frozen=True)
class AssistConfig:
    top_k: int = 3  # suggestions sent
    search_k: int = 5  # results of each search combined (as many as the console's search: the prefetch depends on it)
    latest_weight: float = 0.15  # times the latest turn's calibrated confidence (0.25 before session 16)
    agent_weight: float = 0.15
    switch_margin: float = 0.15  # partial segments: a new first suggestion must be this much (relative) ahead
    topic_depth: int = 3  # the context's first SOP outside the latest segment's first `topic_depth`: a new topic
    unannounced_confidence: float = 0.9  # a topic change without "另外/还有/对了…" needs this confidence
    announced_confidence: float = 0.0  # an announced one: its words' confidence (weak allowed: the tenant said so)
    turn_confidence: float = 0.8  # a new tenant turn after the agent spoke: this confidence (eval/calls_multi.jsonl)


@dataclass
class Suggestions:
    """One answer to a segment. `changed`: the first suggestion differs from the one sent before."""

    call_id: str
    segment: int  # segments the call has received, this one included
    items: list[dict[str, Any]]
    changed: bool
    topic_changed: bool
    weak: bool
    took_ms: float
    repeated: bool = False  # a retry of a final segment the call had taken: nothing added, the latest suggestions

    def message(self) -> dict[str, Any]:
        return {
            "type": "suggestions",
            "call_id": self.call_id,
            "segment": self.segment,
            "items": self.items,
            "weak": self.weak,
            "topic_changed": self.topic_changed,
            "took_ms": self.took_ms,
            "repeated": self.repeated,
        }


def _normalised(resp: SearchResponse) -> dict[str, float]:
    top = resp.results[0].score if resp.results and resp.results[0].score > 0 else 1.0
    return {h.sop_id: h.score / top for h in resp.results}


class Follower:
    """Turns a call's context into suggestions (thread-safe: it keeps no per-call state of its own)."""

    def __init__(self, searcher: Searcher, confidence: Confidence, config: AssistConfig | None = None) -> None:
        self.searcher = searcher
        self.confidence = confidence
        self.config = config or AssistConfig()

    def _search(self, query: str, vector: np.ndarray | None = None) -> SearchResponse:
        resp = self.searcher.search(
            query, top_k=self.config.search_k, audience="agent", with_confidence=True, query_vector=vector
        )
        self.confidence.annotate(resp, self.searcher.catalog)
        return resp

    def step(
        self, ctx: CallContext, speaker: Speaker, text: str, final: bool, quiet: bool = True
    ) -> Suggestions | None:
        """Add one segment to the call and rank; None (when `quiet`) for a partial that changes nothing shown."""
        started = time.perf_counter()
        ctx.add(speaker, text, final)
        if quiet and speaker == "agent" and not final:
            return None  # the agent's partial words change nothing: agent context is read from final segments
        if speaker == "agent" and final:
            agent = ctx.agent_context()
            ctx.agent_scores = _normalised(self._search(agent)) if agent else {}
        context, latest, turn = ctx.tenant_context(), ctx.tenant_latest(), ctx.tenant_turn()
        if not context:
            return self._answer(ctx, [], False, started) if final or not quiet else None
        queries = list(dict.fromkeys(q for q in (context, latest, turn) if q))  # each distinct text searched once
        vectors = self.searcher.embed_queries(queries)  # one model call
        searched = {q: self._search(q, v) for q, v in zip(queries, vectors, strict=True)}
        main = searched[context]
        hits = {h.sop_id: h for h in main.results}
        scores = _normalised(main)
        topic_changed = False
        if latest and latest != context:
            last = searched[latest]
            new_turn = turn == latest  # the tenant's first words since the agent last spoke
            if final and speaker == "tenant" and self._new_topic(main, last, text, ctx.settled, new_turn):
                ctx.start_topic_at_latest_tenant()
                main, scores, hits, topic_changed = last, _normalised(last), {}, True
            elif turn and turn != context:  # the lean toward the tenant's latest turn
                lean = searched[turn]
                weight = self.config.latest_weight * (lean.confidence or 0.0)
                for sop_id, s in _normalised(lean).items():
                    scores[sop_id] = scores.get(sop_id, 0.0) + weight * s
                for h in lean.results:
                    hits.setdefault(h.sop_id, h)
            for h in last.results:
                hits.setdefault(h.sop_id, h)
        for sop_id, s in ctx.agent_scores.items():
            if sop_id in scores:  # weak context reorders what the tenant's words found; it adds nothing new
                scores[sop_id] += self.config.agent_weight * s
        ranked = sorted(scores, key=lambda k: -scores[k])
        if not topic_changed:
            self._hold_emergency(ctx, context, ranked, scores, hits)
        emergency = self._emergency_first(turn or latest or context, ranked, scores)
        if emergency and final and speaker == "tenant" and ctx.shown and ctx.shown[0] != ranked[0]:
            if not topic_changed:  # an emergency arising mid-call: what follows is about it, from its first words
                self._start_at_danger(ctx, ranked[0])
            topic_changed = True
        elif not emergency and not final and self._holds(ctx.shown[0] if ctx.shown else None, ranked, scores):
            ranked.remove(ctx.shown[0])
            ranked.insert(0, ctx.shown[0])
        top = max(scores.values(), default=0.0) or 1.0  # the highest is 1.0 (the lean and agent context add to it)
        items = [card(hits[k], scores[k] / top) for k in ranked[: self.config.top_k]]
        if final and items:
            hit = hits[items[0]["sop_id"]]  # only an emergency procedure's is kept: nothing else is ever held
            ctx.settled, ctx.settled_hit = hit.sop_id, hit.model_dump(mode="json") if hit.urgent else None
        if quiet and not final and items and ctx.shown and items[0]["sop_id"] == ctx.shown[0]:
            return None  # a partial that leaves the first suggestion as it was: nothing new to show
        if quiet and not final and items and (items[0].get("match_confidence") or 0.0) < self.confidence.threshold:
            return None  # a weak match on words still being spoken: no card to repaint until it is sure or final
        return self._answer(ctx, items, topic_changed, started)

    def _start_at_danger(self, ctx: CallContext, emergency: str) -> None:
        """A new topic for the emergency first now, from the latest tenant segment whose words still signal it."""
        catalog, urgent_categories = self.searcher.catalog, self.searcher.config.urgent_categories
        ctx.start_topic_at_latest_tenant(lambda words: emergency_first(words, catalog, urgent_categories)(emergency))

    def _emergency_first(self, words: str, ranked: list[str], scores: dict[str, float]) -> bool:
        """Put the emergency procedure for a danger the tenant's latest words signal first (in place), when it is
        among the candidates; whether an emergency procedure is first for those words."""
        catalog, urgent_categories = self.searcher.catalog, self.searcher.config.urgent_categories
        alarm = danger_first(words, ranked, catalog, urgent_categories)
        if alarm is not None:
            scores[alarm] = max(scores.values()) * (1 + 1e-6)
            ranked.remove(alarm)
            ranked.insert(0, alarm)
        return bool(ranked) and emergency_first(words, catalog, urgent_categories)(ranked[0])

    def _hold_emergency(
        self, ctx: CallContext, words: str, ranked: list[str], scores: dict[str, float], hits: dict[str, SopHit]
    ) -> None:
        """The emergency procedure first for the topic's danger stays among the candidates while the topic's words
        carry the danger (in place): a flooding call went on 「楼上没人开门」 and the flood's words no longer found it,
        so the leak repair came back first (assist below plain search on the whole call)."""
        if ctx.settled_hit is None or not ranked or ctx.settled_hit.get("sop_id") in ranked[:1]:
            return
        held = SopHit.model_validate(ctx.settled_hit)
        catalog, urgent_categories = self.searcher.catalog, self.searcher.config.urgent_categories
        # nor does another danger's procedure take its place for words about this one (楼上没人开门，他家电话也打不通
        # put the gas-leak procedure first in a flooding call)
        if danger_first(words, [ranked[0], held.sop_id], catalog, urgent_categories, True) == held.sop_id:
            hits.setdefault(held.sop_id, held)
            scores[held.sop_id] = max(scores.values()) * (1 + 1e-6)
            if held.sop_id in ranked:
                ranked.remove(held.sop_id)
            ranked.insert(0, held.sop_id)

    def _holds(self, shown: str | None, ranked: list[str], scores: dict[str, float]) -> bool:
        """Hysteresis: the SOP shown first stays first unless another is `switch_margin` ahead of it."""
        if shown is None or not ranked or ranked[0] == shown or shown not in scores:
            return False
        return scores[ranked[0]] < scores[shown] * (1 + self.config.switch_margin)

    def _new_topic(
        self,
        context: SearchResponse,
        last: SearchResponse,
        said: str,
        settled: str | None = None,
        new_turn: bool = False,
    ) -> bool:
        """The tenant's latest words point somewhere else. Three ways:
        - announced ("另外…", "还有个事…", "对了…"): they match another SOP than the one first before them (even
          weakly: the tenant said it is something else), and do not confidently match that one;
        - at a new turn (the agent has spoken since the tenant's words before): they confidently match another SOP,
          and not the one first before them; a tenant answering the agent's question ("对，就是楼上的") matches the
          topic, or matches nothing confidently;
        - anywhere else: a long and very confident segment that the context does not rank near the top. A short
          follow-up inside a turn ("门也打不开", "怎么收费") leans on what was said before and never starts a topic."""
        if not context.results or not last.results:
            return False
        head = context.results[0].sop_id
        before = settled or head  # the context already holds these words, and their partials may have moved it
        old = next((h for h in last.results if h.sop_id == before), None)
        still_old = old is not None and (old.match_confidence or 0.0) >= self.confidence.threshold
        if last.results[0].sop_id == before or still_old:
            return False
        if TOPIC_MARKER.search(said) is not None:  # as spoken (cleaning drops "就是")
            return (last.confidence or 0.0) >= self.config.announced_confidence
        if last.weak:
            return False
        if new_turn and (last.confidence or 0.0) >= self.config.turn_confidence:
            return True
        latest_first = [h.sop_id for h in last.results[: self.config.topic_depth]]
        sure = (last.confidence or 0.0) >= self.config.unannounced_confidence and len(said) >= UNANNOUNCED_CHARS
        return sure and head not in latest_first and last.results[0].sop_id != head

    def _answer(
        self,
        ctx: CallContext,
        items: list[dict[str, Any]],
        topic_changed: bool,
        started: float,
    ) -> Suggestions:
        threshold = self.confidence.threshold
        signalled = bool(items) and emergency_first(
            ctx.tenant_context(),  # the current topic's words: an emergency stays one after its first segment
            self.searcher.catalog,
            self.searcher.config.urgent_categories,
        )(items[0]["sop_id"])
        for n, item in enumerate(items):
            # an emergency procedure first for words with a danger signal is never called weak (as in search)
            item["weak"] = (item.get("match_confidence") or 0.0) < threshold and not (n == 0 and signalled)
        ids = [i["sop_id"] for i in items]
        changed = ids[:1] != ctx.shown[:1]
        ctx.shown = ids
        took = round((time.perf_counter() - started) * 1000, 3)
        weak = not items or bool(items[0]["weak"])  # the message says what its first card says
        return Suggestions(ctx.call_id, ctx.segments, items, changed, topic_changed, weak, took)
