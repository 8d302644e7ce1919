"""Hybrid search: the per-sentence multivector and lexical channels fused (DBSF), grouped to one hit per SOP with its
best matching sections. Explaining a ranking runs the same search and adds each channel alone; it never ranks
differently."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from kb_service.embedding.embedders import Embedder
from kb_service.errors import IndexCorruptError, IndexNotReadyError, KbError, first_line, with_repair
from kb_service.ids import sop_prefix
from kb_service.learning.matcher import LearnedIndex, LearnedMatch
from kb_service.models import Audience, Sop
from kb_service.search.catalog import Catalog, indexed_docs
from kb_service.search.config import SearchConfig
from kb_service.search.content_cosine import best_content
from kb_service.search.explain import explain_hits
from kb_service.search.hits import (
    Allowed,
    by_sop,
    danger_first,
    deeper,
    emergency_first,
    evidence,
    learned_boosts,
    matched_section,
    off_object,
    to_front,
    to_hit,
)
from kb_service.search.index_status import DAMAGED, NO_INDEX, IndexStatus
from kb_service.search.payloads import PayloadCache
from kb_service.search.rerank import Ranker, model_for, rerank
from kb_service.search.results import Expansion, LearnedExplain, SearchResponse, SopHit
from kb_service.search.schedules import case_first
from kb_service.store.base import ChannelQuery, FilterSpec, SearchSpec, StoreHit, VectorStore
from kb_service.text.lexical import LexicalEncoder
from kb_service.text.normalize import normalize, strip_fillers

log = logging.getLogger("kb.search")


@dataclass
class _State:
    generation: str | None = None
    catalog: Catalog = field(default_factory=lambda: Catalog(None, "", {}))
    checked_at: float = 0.0
    by_prefix: dict[str, str] = field(default_factory=dict)
    built_with: set[str] = field(default_factory=set)  # embedder names the documents were indexed with
    expansions: frozenset[str] = frozenset()  # ids of the SOPs' lexicon expansion chunks (weighted in grouping)

    def sop_of(self, point_id: str) -> str | None:
        return self.by_prefix.get(point_id.replace("-", "")[:12])


class Searcher:
    """Holds the published generation and its SOP catalog; follows the published pointer, so it recovers on its own
    when a good generation is published after a missing or damaged one.

    Every `REFRESH_SECONDS` it checks the generation in use (its files, cheaply) and the pointer. A new generation is
    opened (verified in full by the store) and checked by `validate` before it replaces the one in use; one that
    fails is not used (the previous one keeps serving if it is intact) and is tried again after `RETRY_SECONDS`."""

    REFRESH_SECONDS = 1.0
    RETRY_SECONDS = 30.0

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        lexical: LexicalEncoder,
        config: SearchConfig | None = None,
        validate: Callable[[str, set[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        self.config = config or SearchConfig()
        self.validate = validate  # (generation, embedders that built it): raises if this process cannot use it
        self._state = _State()
        self._previous: str | None = None
        self._fault: KbError | None = None  # why the published generation is not the one in use
        self._failed: tuple[str, float] = ("", 0.0)  # the generation that last failed to open, and when
        self._switch = threading.Lock()  # one thread follows the pointer; the others keep the open generation
        self._payload_cache = PayloadCache(store)
        self.learned: LearnedIndex | None = None  # set by the service that keeps learned phrasings
        # KB_SEARCH_RERANK=false leaves the model unread (benchmarks/train_ranker.py trains one for changed features)
        model = model_for(embedder.dim)
        self.ranker: Ranker | None = Ranker.load(model) if self.config.rerank and model.exists() else None

    def refresh(self, force: bool = False) -> str | None:
        """The generation searches use now. `force`: check now and wait for a switch another thread is making."""
        now = time.monotonic()
        if not force and now - self._state.checked_at < self.REFRESH_SECONDS:
            return self._state.generation
        if not self._switch.acquire(blocking=force):
            return self._state.generation  # a new generation is being opened: searches keep the current one
        try:
            self._follow(now)
        finally:
            self._switch.release()
        return self._state.generation

    def _follow(self, now: float) -> None:
        current = self._state.generation
        if current is not None:
            try:
                self.store.check(current)
            except KbError as exc:
                log.error("index generation %s can no longer be used: %s", current, first_line(exc))
                self._failed = (current, now)
                self._use(_State(), with_repair(exc))
                current = None
        try:
            published = self.store.published()
        except Exception as exc:  # an unreadable pointer (permissions, a server down): keep what is open, say why
            self._fault = IndexNotReadyError(f"无法读取已发布的索引指针 / cannot read the published pointer: {exc}")
            self._state.checked_at = now
            return
        if published is None:
            if current is not None or self._fault is None:
                self._use(_State(), IndexNotReadyError(NO_INDEX))
        elif published == current:
            self._fault = None
        elif self._failed[0] != published or now - self._failed[1] >= self.RETRY_SECONDS:
            try:
                state = self._load_state(published)
                if self.validate is not None:
                    self.validate(published, state.built_with)
            except Exception as exc:  # any failure to open it (the engine's own errors too) is reported, not raised
                log.error("index generation %s cannot be used: %s", published, first_line(exc))
                if published != self._previous:  # (requests may still hold the previous one)
                    self.store.forget(published)  # opening it again verifies it again
                self._failed = (published, now)
                self._fault = with_repair(exc if isinstance(exc, KbError) else IndexCorruptError(f"{published}: {exc}"))
            else:
                self._use(state, None)
                log.info("serving index generation %s (%d SOPs)", published, len(state.catalog))
        self._state.checked_at = now

    def _use(self, state: _State, fault: KbError | None) -> None:
        # Requests may still be running on the old generation: release only the one before it.
        if self._previous is not None and self._previous != state.generation:
            self.store.forget(self._previous)
        self._previous = self._state.generation
        self._state = state
        self._fault = fault

    @property
    def fault(self) -> KbError | None:
        """Why the published generation is not the one searches use (None when it is, or before the first check)."""
        return self._fault

    def status(self) -> IndexStatus:
        """Whether searches work now: a generation is open, its files are intact and it answers a cheap read."""
        generation = self.refresh()
        if generation is not None and not self._intact(generation):
            generation = self.refresh(force=True)  # stop using it now, not at the next check
        fault = self._fault
        if generation is None:
            return IndexStatus(None, str(fault or NO_INDEX))
        try:
            chunks = self.store.info(generation).points
        except Exception as exc:  # a health check reports any failure of the engine or server, never raises
            return IndexStatus(None, f"索引版本 {generation} 无法读取 / generation {generation} cannot be read: {exc}")
        kept = f"{fault}；继续使用上一版本 {generation} / still serving {generation}" if fault else None
        return IndexStatus(generation, kept, chunks)

    def _intact(self, generation: str) -> bool:
        """The cheap file check, just before the probe reads from the generation (a file cut short must not be
        touched: reading a mapped page past its end kills the process)."""
        try:
            self.store.check(generation)
        except KbError:
            return False
        return True

    def _load_state(self, generation: str | None) -> _State:
        docs = indexed_docs(self.store, generation) if generation else {}
        catalog = Catalog(
            self.store, generation or "", {k: d.path for k, d in docs.items()}, {k: d.audience for k, d in docs.items()}
        )
        return _State(
            generation,
            catalog,
            time.monotonic(),
            {sop_prefix(k): k for k in docs},
            {d.embedder for d in docs.values()},
            frozenset(d.expansion for d in docs.values() if d.expansion),
        )

    @property
    def built_with(self) -> set[str]:
        """Embedders that built the published generation (read with its catalogue, no extra store call)."""
        self.refresh()
        return self._state.built_with

    @property
    def catalog(self) -> Catalog:
        self.refresh()
        return self._state.catalog

    def get_sop(self, sop_id: str, audience: Audience) -> Sop | None:
        sop = self.catalog.get(sop_id)
        if sop is None:
            return None
        if audience == "public":
            return sop.public_view() if sop.meta.audience == "public" else None
        return sop

    # -- search ------------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        top_k: int = 5,
        audience: Audience = "agent",
        categories: Sequence[str] = (),
        tags: Sequence[str] = (),
        explain: bool = False,
        with_confidence: bool = False,
        config: SearchConfig | None = None,
        generation: str | None = None,
        without_examples_of: str | None = None,
        query_vector: np.ndarray | None = None,
    ) -> SearchResponse:
        """Search the published index (or, for checks before publishing, an unpublished `generation`).
        `query_vector`: the query's embedding when the caller computed it already (`embed_queries`, in a batch)."""
        cfg = config or self.config
        started = time.perf_counter()
        generation, state, published = self._generation(generation)
        timings: dict[str, float] = {}

        qvec, every_channel, expansions = self.encode_query(query, cfg, timings, query_vector, every=explain)
        channels = [c for c in every_channel if cfg.weights[c.channel] > 0]
        flt = FilterSpec(
            public_only=audience == "public",
            categories=tuple(categories),
            tags=tuple(tags),
            without_examples_of=without_examples_of,
        )
        spec = self.spec(channels, cfg, max(top_k * cfg.chunks_per_result, cfg.ranked_chunks), flt)
        t = time.perf_counter()
        hits = self.store.search(generation, spec) if channels else []
        timings["qdrant"] = (time.perf_counter() - t) * 1000

        learned: dict[str, LearnedMatch] = {}
        if cfg.learned and audience == "agent" and published and not without_examples_of:
            # Agent searches of the published index only: tenants' search and chat never see what staff taught (nor
            # staff-only SOPs), and a publish's check of its own examples measures the content alone.
            learned = self._learned_matches(qvec, query, Allowed(state.catalog, categories, tags), timings)
        t = time.perf_counter()
        ranker = self.ranker if cfg.rerank else None
        moved: dict[str, int] = {}  # SOPs the learned ranker moved, by their rank on fused evidence
        content: list[StoreHit] = []  # the content sentences the ranker scored (the confidence reads them again)
        reread = (
            None
            if ranker is None
            else partial(rerank, ranker, self.store, generation, query, every_channel, flt, moved, content)
        )
        results, boosts = self._group(generation, hits, state, audience, top_k, cfg, learned, query, reread)
        timings["group"] = (time.perf_counter() - t) * 1000
        if with_confidence and results:
            t = time.perf_counter()
            self._confidence(generation, qvec, flt, results, state, content, audience == "public")
            timings["confidence"] = (time.perf_counter() - t) * 1000
        if explain:
            t = time.perf_counter()
            explain_hits(self.store, generation, every_channel, flt, results, state.sop_of, boosts, moved)
            timings["explain"] = (time.perf_counter() - t) * 1000
        return self._response(query, results, boosts, generation, expansions, timings, started)

    def _response(
        self,
        query: str,
        results: list[SopHit],
        boosts: dict[str, LearnedExplain],
        generation: str,
        expansions: list[Expansion],
        timings: dict[str, float],
        started: float,
    ) -> SearchResponse:
        first = boosts.get(results[0].sop_id) if results else None
        near = self.learned is not None and first is not None and first.similarity >= self.learned.config.near
        return SearchResponse(
            query=query,
            results=results,
            learned_first=near,  # words agents confirmed put the first result there: no weak match
            took_ms=round((time.perf_counter() - started) * 1000, 3),
            generation=generation,
            expansions=expansions,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
        )

    def _generation(self, wanted: str | None) -> tuple[str, _State, bool]:
        """The generation a search reads (the published one unless `wanted` names another), its state, and whether
        it is the published one."""
        published = wanted is None or wanted == self.refresh()
        if not published and wanted is not None:
            return wanted, self._load_state(wanted), False
        generation, state = self.refresh(), self._state
        if generation is None:
            raise IndexNotReadyError(
                DAMAGED if isinstance(self._fault, IndexCorruptError) else NO_INDEX
            )  # why: /healthz
        return generation, state, True

    def _learned_matches(
        self, qvec: np.ndarray, query: str, allowed: Allowed, timings: dict[str, float]
    ) -> dict[str, LearnedMatch]:
        if self.learned is None:
            return {}
        t = time.perf_counter()
        found = self.learned.match(qvec, query, allowed)
        timings["learned"] = (time.perf_counter() - t) * 1000
        return found

    def embed_queries(self, queries: Sequence[str], config: SearchConfig | None = None) -> np.ndarray:
        """The dense vectors of several queries in one model call: what `search` computes for one."""
        cfg = config or self.config
        return self.embedder.embed([strip_fillers(normalize(cfg.searched(q))) for q in queries])

    def encode_query(
        self,
        query: str,
        cfg: SearchConfig,
        timings: dict[str, float] | None = None,
        query_vector: np.ndarray | None = None,
        every: bool = True,
    ) -> tuple[np.ndarray, list[ChannelQuery], list[Expansion]]:
        """The query as one vector per channel (dense model, lexical terms with glossary synonyms, pinyin); channels
        the query has nothing for (an empty sparse vector) are left out, and so is pinyin when it is not fused unless
        `every` channel is asked for (the hit test shows them all)."""
        t = time.perf_counter()
        qvec = self.embed_queries([query], cfg)[0] if query_vector is None else query_vector
        t2 = time.perf_counter()
        pinyin = every or cfg.weights["py"] > 0
        lex, py, expansions = self.lexical.query_vectors(cfg.searched(query), cfg.expand, cfg.colloquial, pinyin)
        if timings is not None:
            timings["embed"] = (t2 - t) * 1000
            timings["lexical"] = (time.perf_counter() - t2) * 1000
        found = [Expansion(found=e.found, synonyms=list(e.synonyms)) for e in expansions]
        return qvec, self._channels(cfg, qvec, lex, py), found

    @staticmethod
    def spec(channels: list[ChannelQuery], cfg: SearchConfig, limit: int, flt: FilterSpec) -> SearchSpec:
        return SearchSpec(
            channels=tuple(channels),
            weights=tuple(cfg.weights[c.channel] for c in channels),
            rrf_k=cfg.rrf_k,
            limit=limit,
            filter=flt,
            fusion=cfg.fusion,
        )

    def _channels(self, cfg: SearchConfig, qvec: np.ndarray, lex: object, py: object) -> list[ChannelQuery]:
        out: list[ChannelQuery] = []
        for name, vector in (("dense", qvec), ("sent", qvec), ("lex", lex), ("py", py)):
            if not isinstance(vector, np.ndarray) and not vector:
                continue  # an empty sparse vector (e.g. a query of only punctuation) has nothing to match
            out.append(ChannelQuery(channel=name, vector=vector, limit=cfg.prefetch))  # type: ignore[arg-type]
        return out

    def _group(
        self,
        generation: str,
        hits: list[StoreHit],
        state: _State,
        audience: Audience,
        top_k: int,
        cfg: SearchConfig,
        learned: dict[str, LearnedMatch] | None = None,
        query: str = "",
        rerank: Callable[..., None] | None = None,
    ) -> tuple[list[SopHit], dict[str, LearnedExplain]]:
        grouped = by_sop(hits[: cfg.ranked_chunks], state.sop_of, state.expansions, cfg.expansion_weight)
        scores = {sop_id: evidence(chunk_hits, cfg) for sop_id, chunk_hits in grouped.items()}
        keep = emergency_first(query, state.catalog, cfg.urgent_categories)
        if rerank is not None and len(scores) > 1:  # the learned ranker reorders the first SOPs (search/rerank.py)
            emergency = lambda k: k in state.catalog and state.catalog[k].urgent(cfg.urgent_categories)  # noqa: E731
            rerank(state, partial(self._payload_cache.kinds, generation), grouped, scores, emergency)
        boosts = learned_boosts(self.learned, scores, learned, keep) if self.learned and learned else {}
        for sop_id in boosts:
            grouped.setdefault(sop_id, [])  # a learned SOP the channels did not find at all
        ranked = sorted(grouped, key=lambda k: -scores[k])
        if cfg.off_object and query:
            read = partial(self._payload_cache.get, generation)
            ranked = off_object(query, grouped, scores, ranked, read, cfg, self.lexical.glossary)
        if cfg.cases and ranked and ranked[0] not in boosts:  # a case's procedure, not a schedule (search/schedules.py)
            to_front(ranked, scores, case_first(query, ranked, lambda k: state.catalog[k].title))
        to_front(ranked, scores, danger_first(query, ranked, state.catalog, cfg.urgent_categories))  # danger words
        if len(ranked) < top_k:
            deeper(hits[cfg.ranked_chunks :], state.sop_of, state.expansions, cfg, grouped, scores, ranked)
        if audience == "public":
            # defence in depth: the filter already excluded staff-only chunks
            ranked = [k for k in ranked if state.catalog.audience_of(k) == "public"]
        ranked = ranked[:top_k]  # only the top_k documents are read from the catalogue (parsing is the costly part)
        state.catalog.prefetch(ranked)
        shown = [h.id for k in ranked for h in grouped[k][: cfg.sections_per_result + 1]]
        payloads = self._payload_cache.get(generation, shown)
        results: list[SopHit] = []
        for sop_id in ranked:
            sop = state.catalog[sop_id]
            view = sop.public_view() if audience == "public" else sop
            with_payload = [StoreHit(h.id, h.score, payloads[h.id]) for h in grouped[sop_id] if h.id in payloads]
            results.append(to_hit(view, scores[sop_id], with_payload, audience, cfg, query))
        return results, boosts

    def _confidence(
        self,
        generation: str,
        qvec: np.ndarray,
        flt: FilterSpec,
        results: list[SopHit],
        state: _State,
        scored: Sequence[StoreHit] = (),
        public: bool = False,
    ) -> None:
        """The results' calibrated inputs: each one's best content cosine (content_cosine.py, reusing the sentences
        the ranker scored) and that passage as its `best_section`."""
        ids = [r.sop_id for r in results]
        best = best_content(self.store, generation, qvec, flt, ids, state.sop_of, scored)
        wanted = [best[r.sop_id].id for r in results if r.sop_id in best]
        payloads = self._payload_cache.get(generation, wanted) if wanted else {}
        for r in results:
            top = best.get(r.sop_id)
            r.confidence = round(top.score, 4) if top else 0.0
            if top is not None and top.id in payloads:
                r.best_section = matched_section(payloads[top.id], top.score, public)
