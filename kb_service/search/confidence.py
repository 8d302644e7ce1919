"""A calibrated confidence for search results: how likely it is that a result is the procedure the query needs.

Fusion scores rank well but mean nothing on their own (they are rescaled per query), so a nonsense query such as
"asdfgh" or an off-topic one such as "今天天气怎么样" still gets a first result with a full-looking score. The
confidence here is a logistic model over four signals of a result:

- `cosine`: the best sentence-level cosine similarity between the query and the SOP's own text (absolute, from the
  model; what the chat's hand-over uses);
- `coverage`: the share of the query's character pairs (fillers removed) that occur anywhere in the SOP, title, tags
  and trainer-written examples included (an off-topic query shares almost none); a pair inside a glossary or
  colloquial phrase of the query counts when a word the phrase stands for is in the SOP (网断了 → 断网);
- `ratio`: the result's fused score over the first result's (1 for the first);
- `margin`: how far the result is ahead of the next one, relative to its own score.

The weights and the threshold were fitted by `benchmarks/confidence_calibration.py` on the repository's labelled
queries (eval/queries.jsonl, all kinds) and out-of-scope queries (eval/search_out_of_scope.jsonl and
eval/chat_out_of_scope.jsonl's off-topic lines), never on eval/blind; see docs/assist.md for the figures.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from kb_service.models import Audience, Sop
from kb_service.search.catalog import Catalog
from kb_service.search.hits import emergency_first
from kb_service.search.results import SearchResponse, SopHit
from kb_service.text.normalize import normalize, strip_fillers


@dataclass(frozen=True)
class Calibration:
    """Logistic weights over (cosine, coverage, ratio, margin) and the threshold below which a match is weak."""

    intercept: float
    cosine: float
    coverage: float
    ratio: float
    margin: float
    threshold: float


# Fitted by benchmarks/confidence_calibration.py on the tuning half (top 3 results of each query), the threshold keeping
# 99 % of its right first results; refitted when coverage began to count the query's lexicon phrases (session 20).
# Held-out half: 95.6 % of right first results stay above it, 84 % of out-of-scope queries and 38 % of wrong first
# results fall below (docs/assist.md).
CALIBRATION = Calibration(intercept=-21.305, cosine=8.979, coverage=2.021, ratio=16.042, margin=2.406, threshold=0.422)
SOP_TERMS_CACHE = 512
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


def query_pairs(query: str) -> set[str]:
    """Adjacent CJK character pairs (single characters for one-character runs) and ASCII words of a query."""
    text = strip_fillers(normalize(query))
    pairs: set[str] = set()
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            pairs.add(run)
        pairs.update(run[i : i + 2] for i in range(len(run) - 1))
    pairs.update(w for w in text.split() if w.isascii() and w.isalnum())
    return pairs


class Confidence:
    """Computes calibrated confidences; keeps each SOP's character pairs (by id and content hash) in a small LRU."""

    def __init__(
        self, calibration: Calibration = CALIBRATION, urgent_categories: Collection[str] = ("紧急事件",)
    ) -> None:
        self.calibration = calibration
        self.urgent_categories = urgent_categories
        self._lock = threading.Lock()
        self._terms: OrderedDict[tuple[str, str], str] = OrderedDict()

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def _text(self, sop: Sop) -> str:
        key = (sop.meta.id, f"{sop.content_hash}:{len(sop.sections)}")  # a public view has fewer sections
        with self._lock:
            text = self._terms.get(key)
            if text is not None:
                self._terms.move_to_end(key)
                return text
        parts = [sop.title, *sop.meta.tags, *sop.meta.examples, *(s.text for s in sop.sections)]
        text = normalize(" ".join(parts))
        with self._lock:
            self._terms[key] = text
            while len(self._terms) > SOP_TERMS_CACHE:
                self._terms.popitem(last=False)
        return text

    def coverage(self, query: str, sop: Sop | None, expansions: Sequence[tuple[str, Sequence[str]]] = ()) -> float:
        """Share of the query's character pairs found in the SOP's text. A pair inside a glossary or colloquial phrase
        of the query (网断了, 小强) also counts when one of the words that phrase stands for is there (断网, 蟑螂): the
        search itself reads the query that way."""
        pairs = query_pairs(query)
        if not pairs or sop is None:
            return 0.0
        text = self._text(sop)
        stood_for = [normalize(found) for found, means in expansions if any(normalize(m) in text for m in means)]
        return sum(p in text or any(p in f for f in stood_for) for p in pairs) / len(pairs)

    def features(
        self,
        query: str,
        hits: list[SopHit],
        sops: dict[str, Sop],
        expansions: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> list[tuple[float, float, float, float]]:
        """(cosine, coverage, ratio, margin) of each hit; `hits` were searched `with_confidence`."""
        if not hits:
            return []
        top = hits[0].score or 1.0
        out = []
        for i, hit in enumerate(hits):
            nxt = hits[i + 1].score if i + 1 < len(hits) else 0.0
            margin = (hit.score - nxt) / hit.score if hit.score > 0 else 0.0
            out.append(
                (
                    hit.confidence or 0.0,
                    self.coverage(query, sops.get(hit.sop_id), expansions),
                    hit.score / top if top > 0 else 0.0,
                    max(0.0, margin),
                )
            )
        return out

    def probability(self, feats: tuple[float, float, float, float]) -> float:
        c = self.calibration
        cosine, coverage, ratio, margin = feats
        z = c.intercept + c.cosine * cosine + c.coverage * coverage + c.ratio * ratio + c.margin * margin
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def score(
        self, query: str, hits: list[SopHit], sops: dict[str, Sop], expansions: Sequence[tuple[str, Sequence[str]]] = ()
    ) -> list[float]:
        """The calibrated confidence of each hit, rounded for display."""
        return [round(self.probability(f), 4) for f in self.features(query, hits, sops, expansions)]

    def annotate(self, resp: SearchResponse, catalog: Catalog, audience: Audience = "agent") -> None:
        """Set each result's `match_confidence` and the response's `confidence` and `weak` (in place). A public
        search is judged on public text only."""
        sops = {h.sop_id: sop for h in resp.results if (sop := catalog.get(h.sop_id)) is not None}
        if audience == "public":
            sops = {k: v.public_view() for k, v in sops.items()}
        found = [(e.found, e.synonyms) for e in resp.expansions]
        for hit, p in zip(resp.results, self.score(resp.query, resp.results, sops, found), strict=True):
            hit.match_confidence = p
        top = resp.results[0].match_confidence if resp.results else 0.0
        resp.confidence = top
        first = sops.get(resp.results[0].sop_id) if resp.results else None
        # An emergency procedure first for words with a danger signal is never called weak: a trial's 一进门就闻到一股
        # 臭鸡蛋味，好像是煤气 (0.21) got the gas-leak card under 「可能知识库里没有这类情况」 on an emergency call.
        emergency = first is not None and emergency_first(resp.query, sops, self.urgent_categories)(first.meta.id)
        # Nor is a SOP first for words an agent confirmed (a trial's 👍 put it first, still marked 匹配较弱)
        resp.weak = (top or 0.0) < self.threshold and not emergency and not resp.learned_first
        resp.emergency = emergency
