"""Shared helpers for benchmark scripts (not part of the service)."""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.knowledge_base import KnowledgeBase  # noqa: E402
from kb_service.search.searcher import SearchConfig  # noqa: E402
from kb_service.settings import get_settings  # noqa: E402


def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def sample_kb(sops: Path, data_dir: Path | None = None, **settings: object) -> KnowledgeBase:
    """An index of the given SOP folder in a temporary (or given) data directory."""
    target = data_dir or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    kb = KnowledgeBase.from_settings(get_settings(data_dir=target, sops_dir=sops, **settings))
    kb.ingest(sops)
    kb.warm_up()
    return kb


def copy_with_meta(sops: Path, edit: Callable[[dict[str, Any]], None], prefix: str = "kb-copy-") -> Path:
    """A copy of a SOP folder in a temporary directory with `edit` applied to every front matter (in place)."""
    import yaml

    target = Path(tempfile.mkdtemp(prefix=prefix))
    for path in sops.rglob("*"):
        rel = target / path.relative_to(sops)
        if path.is_dir():
            rel.mkdir(parents=True, exist_ok=True)
            continue
        rel.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".md" and text.startswith("---"):
            _, head, body = text.split("---", 2)
            meta = yaml.safe_load(head)
            edit(meta)
            text = "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---" + body
        rel.write_text(text, encoding="utf-8")
    return target


def without_examples(sops: Path) -> Path:
    """A copy of a SOP folder with the `examples` of every front matter left out."""
    return copy_with_meta(sops, lambda meta: meta.pop("examples", None), prefix="kb-noex-")


def index_everything() -> None:
    """Build HNSW graphs and quantised vectors even for a small corpus (as a 100k-chunk index has them)."""
    from kb_service.store import edge

    edge.HNSW_MIN_POINTS = 0
    edge.INDEXING_THRESHOLD_KB = 1


# Baselines rank a SOP by its single best chunk and use no lexicon, as the simplest hybrids do.
_PLAIN: dict[str, Any] = {
    "evidence_chunks": 1,
    "colloquial": False,
    "drop_dismissed": False,
    "off_object": False,
    "rerank": False,
}

CONFIGS: dict[str, SearchConfig] = {
    "shipped": SearchConfig(),
    "no_cases": SearchConfig(cases=False),  # before session 54: a schedule's document first as the channels put it
    "fused_only": SearchConfig(rerank=False),  # before session 31: fused evidence without the learned ranker
    "best_chunk": SearchConfig(evidence_chunks=1),
    "keep_dismissed": SearchConfig(drop_dismissed=False),  # before session 25: 不是门锁坏了，是… searched whole
    "no_lexicon": SearchConfig(colloquial=False),
    "with_off_object_faqs": SearchConfig(off_object=False),  # before session 29: FAQ pairs about another object count
    "previous": SearchConfig(evidence_chunks=1, colloquial=False, rerank=False),
    "bm25_only": SearchConfig(
        weights={"dense": 0, "sent": 0, "lex": 1.0, "py": 0}, expand=False, fusion="rrf", **_PLAIN
    ),
    "dense_only": SearchConfig(weights={"dense": 1.0, "sent": 0, "lex": 0, "py": 0}, fusion="rrf", **_PLAIN),
    "shipped+pinyin": SearchConfig(weights={"dense": 0.0, "sent": 1.0, "lex": 1.0, "py": 1.0}),
    "tuned_rrf": SearchConfig(weights={"dense": 0.0, "sent": 1.0, "lex": 0.5, "py": 0.0}, rrf_k=5, fusion="rrf"),
    "shipped-glossary": SearchConfig(expand=False),
    "dbsf+dense": SearchConfig(weights={"dense": 1.0, "sent": 1.0, "lex": 1.0, "py": 0.0}, fusion="dbsf"),
    "untuned_rrf60": SearchConfig(
        weights={"dense": 1.0, "sent": 0, "lex": 1.0, "py": 0}, rrf_k=60, expand=False, fusion="rrf", **_PLAIN
    ),
}
