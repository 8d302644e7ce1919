"""A small learned ranker over the first SOPs of a search: how each channel alone ranked a SOP, which kinds of its
sections matched, its content's best sentence cosine and its fused evidence, weighed by a logistic regression trained
on two knowledge bases written by different hands (eval/dev and the repository's tuning half without examples;
`benchmarks/train_ranker.py`). Fusion sums evidence with fixed weights for every query; the ranker learns, e.g., that
a SOP whose scenario and title both match a long tenant sentence beats one with a single lucky script line. Measured
on the held-out half and the blind corpus, which it never saw (docs/benchmarks.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from kb_service.search.config import CONTENT_KINDS, CONTENT_LIMIT
from kb_service.search.explain import sop_ranks
from kb_service.store.base import ChannelQuery, FilterSpec, StoreHit, VectorStore

CHANNELS = ("sent", "lex", "dense")
# Section kinds as the ranker groups them (what the chunker writes: kb_service.models.Chunk.section_kind)
KIND_GROUPS = {
    "overview": "title",
    "scenario": "scenario",
    "steps": "steps",
    "script": "script",
    "faq": "faq",
    "qa": "faq",
    "examples": "examples",
    "expansion": "expansion",
}
GROUPS = ("title", "scenario", "steps", "script", "faq", "examples", "expansion", "other")
LONG_QUERY = 40  # characters: a query's length counts up to this (tenants' sentences against agents' keywords)
DEPTH = 10  # the SOPs first on fused evidence that the ranker reorders
MODEL = Path(__file__).resolve().parent.parent / "data" / "ranker.json"


def model_for(dim: int) -> Path:
    """The coefficients for vectors of this width: shortened USE vectors (KB_EMBED_DIMENSIONS) score on a scale of
    their own; on them the full vectors' model found 2 of the held-out half's 150 queries fewer first, a model trained
    on them 1 (docs/benchmarks.md, session 51). Other widths (the hash embedder of tests) read MODEL."""
    own = MODEL.with_name(f"ranker-{dim}.json")
    return own if own.exists() else MODEL


class _SopOf(Protocol):
    def sop_of(self, point_id: str) -> str | None: ...


@dataclass(frozen=True)
class Candidate:
    """One SOP among the first of a search, as the ranker reads it."""

    sop_id: str
    score: float  # fused evidence (hits.evidence)
    channels: dict[str, tuple[int | None, float | None]]  # channel -> (rank of the SOP in it alone, best score)
    confidence: float  # best sentence cosine of its content sections
    kinds: dict[str, float]  # kind group -> best fused chunk score
    chunk_scores: tuple[float, ...]  # its chunks' fused scores, best first


def feature_names() -> list[str]:
    names = ["score_share", "score", "inverse_rank", "first"]
    for c in CHANNELS:
        names += [f"{c}_score", f"{c}_inverse_rank", f"{c}_share"]
    names += ["confidence", "confidence_gap", *(f"kind_{g}" for g in GROUPS), "chunks"]
    return [*names, "second_chunk", "third_chunk", "long_x_score_share", "long_x_sent_share", "long_x_lex_share"]


def features(query: str, cands: list[Candidate]) -> np.ndarray:
    """One row per candidate (in the search's order), the columns of `feature_names`."""
    if not cands:
        return np.zeros((0, len(feature_names())))
    top = cands[0].score or 1.0
    best = {c: max([x.channels.get(c, (None, None))[1] or 0.0 for x in cands] + [1e-9]) for c in CHANNELS}
    best_confidence = max(x.confidence for x in cands) or 1e-9
    long = min(len(query), LONG_QUERY) / LONG_QUERY
    rows = []
    for i, x in enumerate(cands):
        row = [x.score / top, x.score, 1 / (i + 1), float(i == 0)]
        for c in CHANNELS:
            rank, score = x.channels.get(c, (None, None))
            row += [score or 0.0, 1 / rank if rank else 0.0, (score or 0.0) / best[c]]
        row += [x.confidence, x.confidence - best_confidence, *(x.kinds.get(g, 0.0) / top for g in GROUPS)]
        chunks = [*x.chunk_scores, 0.0, 0.0, 0.0]
        row += [len(x.chunk_scores) / 8, chunks[1] / top, chunks[2] / top]
        row += [long * row[0], long * row[6], long * row[9]]  # the shares of score, sent, lex
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class Ranker:
    """A linear model over standardised features; `order` gives the candidates best first."""

    names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float = 0.0
    trained_on: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path = MODEL) -> Ranker:
        raw = json.loads(path.read_text(encoding="utf-8"))
        names = list(raw["features"])
        if names != feature_names():
            raise ValueError(f"{path}: trained on other features than this code computes; retrain it")
        return cls(
            names,
            np.asarray(raw["mean"]),
            np.asarray(raw["scale"]),
            np.asarray(raw["coef"]),
            float(raw["intercept"]),
            list(raw.get("trained_on", [])),
        )

    def save(self, path: Path) -> None:
        body = {
            "features": self.names,
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "coef": [round(float(v), 6) for v in self.coef],
            "intercept": round(self.intercept, 6),
            "trained_on": self.trained_on,
        }
        path.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def logits(self, query: str, cands: list[Candidate]) -> np.ndarray:
        x = features(query, cands)
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def order(self, query: str, cands: list[Candidate]) -> list[int]:
        """Candidate positions best first (ties keep the search's order)."""
        logits = self.logits(query, cands)
        return sorted(range(len(cands)), key=lambda i: (-logits[i], i))


def candidates(
    store: VectorStore,
    generation: str,
    channels: list[ChannelQuery],
    flt: FilterSpec,
    grouped: dict[str, list[StoreHit]],
    ranked: list[str],
    scores: dict[str, float],
    state: _SopOf,
    kinds_of: Callable[[list[str]], Mapping[str, str]],
    content_hits: list[StoreHit],
) -> list[Candidate]:
    """The ranker's view of the SOPs in `ranked`: each channel searched alone (as the hit test does), the content's
    best sentence cosine, the kinds of the matched chunks (`kinds_of`: chunk id -> section kind). The content
    sentences found go into `content_hits` (the search's confidence reads the same cosines: Searcher._confidence)."""
    sop_of = state.sop_of
    flt = replace(flt, sop_ids=tuple(ranked))  # each channel's scores of these SOPs' chunks only (a small exact search)
    per_channel: dict[str, dict[str, tuple[int, float]]] = {}
    for cq in channels:
        if cq.channel in CHANNELS:
            per_channel[cq.channel] = sop_ranks(store.search_channel(generation, cq, flt), sop_of)
    sent = next((cq for cq in channels if cq.channel == "sent"), None)
    content: dict[str, tuple[int, float]] = {}
    if sent is not None:
        query = ChannelQuery("sent", sent.vector, CONTENT_LIMIT)
        found = store.search_channel(generation, query, replace(flt, section_kinds=CONTENT_KINDS))
        content = sop_ranks(found, sop_of)
        content_hits.extend(found)
    kinds = kinds_of([h.id for k in ranked for h in grouped.get(k, [])])
    out = []
    for sop_id in ranked:
        best: dict[str, float] = {}
        for h in grouped.get(sop_id, []):
            g = KIND_GROUPS.get(kinds.get(h.id, ""), "other")
            best[g] = max(best.get(g, 0.0), h.score)
        chans = {c: per_channel.get(c, {}).get(sop_id, (None, None)) for c in CHANNELS}
        confidence = content.get(sop_id, (0, 0.0))[1]
        chunk_scores = tuple(h.score for h in grouped.get(sop_id, []))
        out.append(Candidate(sop_id, scores[sop_id], chans, confidence, best, chunk_scores))  # type: ignore[arg-type]
    return out


def reorder(
    ranker: Ranker,
    query: str,
    cands: list[Candidate],
    scores: dict[str, float],
    keep_first: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """The candidates' fused scores handed out again in the ranker's order (in place): the first keeps the first
    score, and so on, so what reads the scores (the gap to the second, the calibrated confidence) sees the same
    values as before, only on the SOPs the ranker puts there. Returns the 1-based evidence rank of each SOP the
    ranker moved."""
    values = sorted((c.score for c in cands), reverse=True)
    order = ranker.order(query, cands)
    if order[0] != 0 and keep_first():  # asked only when the first would move (it may read the catalogue)
        order = [0, *(i for i in order if i != 0)]
    moved = {}
    for position, i in enumerate(order):
        scores[cands[i].sop_id] = values[position]
        if position != i:
            moved[cands[i].sop_id] = i + 1
    return moved


def rerank(
    ranker: Ranker,
    store: VectorStore,
    generation: str,
    query: str,
    channels: list[ChannelQuery],
    flt: FilterSpec,
    moved: dict[str, int],
    content_hits: list[StoreHit],
    state: _SopOf,
    kinds_of: Callable[[list[str]], Mapping[str, str]],
    grouped: dict[str, list[StoreHit]],
    scores: dict[str, float],
    keep: Callable[[str], bool] = lambda _: False,
) -> None:
    """The first `DEPTH` SOPs on fused evidence reordered by the ranker, in place on `scores`; `moved` gets the
    evidence rank of each SOP it moved (the hit test shows it), `content_hits` the content sentences it scored. When
    `keep` says the first must stay first (an emergency procedure, for words with a danger signal:
    hits.emergency_first), the ranker orders the others only: 全屋断电了，电闸推上去又跳下来 kept the power-cut
    procedure first, not the lighting repair one point below it."""
    first = sorted(scores, key=lambda k: -scores[k])[:DEPTH]
    found = candidates(store, generation, channels, flt, grouped, first, scores, state, kinds_of, content_hits)
    moved.update(reorder(ranker, query, found, scores, lambda: keep(first[0])))
