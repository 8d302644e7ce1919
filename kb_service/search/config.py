"""How a search ranks: the fusion settings, one frozen object (the shipped defaults and the measured reasons)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kb_service.store.base import Channel
from kb_service.text.dismissed import without_dismissed

# The sections that answer a question (not the title, tags, example queries or lexicon expansion): what the search's
# confidence and the ranker read a SOP's best sentence cosine from
CONTENT_KINDS = ("scenario", "steps", "script", "time_limit", "notes", "escalation", "qa", "plain")
CONTENT_LIMIT = 50  # the content chunks a search reads for those cosines


@dataclass(frozen=True)
class SearchConfig:
    """Fusion settings, chosen with `benchmarks/tune_fusion.py` on the tuning half of eval/queries.jsonl and
    checked on the external DIAC2019 paraphrase set (docs/benchmarks.md): distribution-based score fusion
    (DBSF) of the per-sentence vectors (max-sim) and the lexical channel ranked within 1 query of the best weighted
    RRF on the tuning half and +2 points R@1 above it on DIAC2019. The passage vector and the pinyin channel stay
    indexed (hit testing shows them) but measured no gain, so they are not fused."""

    weights: dict[Channel, float] = field(default_factory=lambda: {"dense": 0.0, "sent": 1.0, "lex": 1.0, "py": 0.0})
    rrf_k: int = 5
    fusion: Literal["rrf", "dbsf"] = "dbsf"
    prefetch: int = 40
    chunks_per_result: int = 8
    # The fused chunks a search's first SOPs are ranked from, however many results are asked for: the console's five,
    # the chat's three and a benchmark's ten rank the same first SOPs (a search asking for more lists the SOPs of
    # deeper chunks after them).
    ranked_chunks: int = 40
    sections_per_result: int = 3
    expand: bool = True
    colloquial: bool = True  # the colloquial lexicon: what tenants say → the words procedures use
    # A SOP's score sums its best chunks' fused scores, each `evidence_decay` times the one before: a procedure whose
    # title, scenario and script all match outranks one with a single lucky sentence. Measured on the tuning half
    # with the example-query chunks left out (the condition of a knowledge base nobody here wrote): R@1 0.849 → 0.885;
    # see docs/benchmarks.md.
    evidence_chunks: int = 3
    evidence_decay: float = 0.5
    # A SOP's lexicon expansion chunk (what tenants say for what its title names, ingest/chunker.py) counts at this
    # share of its fused score: measured in benchmarks/quality_lab.py on the tuning set (docs/benchmarks.md).
    expansion_weight: float = 0.5
    # A clause saying what the problem is not (不是门锁坏了，是…) is left out of the query (text/dismissed.py):
    # eval/dev's near-miss pairs R@1 0.528 -> 0.679; the repository's sets and the blind set unchanged
    # (docs/benchmarks.md)
    drop_dismissed: bool = True
    cases: bool = True  # a case's procedure before a schedule's that the question does not ask for (schedules.py)
    off_object: bool = True  # FAQ pairs about another object than the query's are no evidence (hits.off_object)
    # The learned ranker (search/rerank.py) reorders the first SOPs on fused evidence: blind corpus R@1 0.859 -> see
    # docs/benchmarks.md (False: fused evidence alone, before session 31)
    rerank: bool = True
    learned: bool = True  # agent searches: the learned phrasings channel (learned_index.py)
    # Categories of emergency procedures (KB_URGENT_CATEGORIES): a learned lift never takes another SOP above one of
    # these that the channels put first (hits.learned_boosts)
    urgent_categories: frozenset[str] = frozenset({"紧急事件"})

    def searched(self, query: str) -> str:
        """What is searched for: the query without the clauses that say what the problem is not."""
        return without_dismissed(query) if self.drop_dismissed else query
