"""Retrieval evaluation on a labeled query file: SOP-level recall@k, MRR@10 and per-query latency."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kb_service.errors import KbError

Split = Literal["all", "tune", "heldout"]


@dataclass(frozen=True)
class LabeledQuery:
    query: str
    expected: tuple[str, ...]
    audience: Literal["agent", "public"]
    kind: str | None


def split_of(query: str) -> Literal["tune", "heldout"]:
    """A fixed, content-derived half split: settings are chosen on `tune`, reported on `heldout`."""
    return "tune" if zlib.crc32(query.encode("utf-8")) % 2 == 0 else "heldout"


def load_queries(path: Path, split: Split = "all") -> list[LabeledQuery]:
    out: list[LabeledQuery] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            q = LabeledQuery(obj["query"], tuple(obj["expected"]), obj.get("audience", "agent"), obj.get("kind"))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise KbError(f"{path}:{n}: 查询行格式错误（需要 query 与 expected 字段）: {exc}") from exc
        if q.audience not in ("agent", "public"):
            raise KbError(f"{path}:{n}: audience 只能是 agent 或 public")
        if split == "all" or split_of(q.query) == split:
            out.append(q)
    return out


SearchFn = Callable[[LabeledQuery], list[str]]


def _metrics(ranks: list[int | None], latencies: list[float]) -> dict[str, Any]:
    n = len(ranks)

    def recall(k: int) -> float:
        return round(sum(1 for r in ranks if r is not None and r <= k) / n, 4) if n else 0.0

    mrr = round(sum(1 / r for r in ranks if r is not None and r <= 10) / n, 4) if n else 0.0
    lat = np.array(latencies) if latencies else np.zeros(1)
    return {
        "n": n,
        "recall@1": recall(1),
        "recall@3": recall(3),
        "recall@5": recall(5),
        "mrr@10": mrr,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 3), "p95": round(float(np.percentile(lat, 95)), 3)},
    }


def evaluate(queries: list[LabeledQuery], search: SearchFn) -> dict[str, Any]:
    """Run every query; the rank is that of the first result whose sop_id is expected."""
    ranks: list[int | None] = []
    latencies: list[float] = []
    kinds: dict[str, tuple[list[int | None], list[float]]] = {}
    misses: list[dict[str, Any]] = []
    for q in queries:
        t = time.perf_counter()
        ids = search(q)
        ms = (time.perf_counter() - t) * 1000
        rank = next((i for i, sid in enumerate(ids, start=1) if sid in q.expected), None)
        ranks.append(rank)
        latencies.append(ms)
        if q.kind:
            kr, kl = kinds.setdefault(q.kind, ([], []))
            kr.append(rank)
            kl.append(ms)
        if rank != 1:
            misses.append({"query": q.query, "expected": list(q.expected), "got": ids[:3], "rank": rank})
    result = _metrics(ranks, latencies)
    result["by_kind"] = {k: _metrics(r, lat) for k, (r, lat) in sorted(kinds.items())}
    result["misses"] = misses
    return result
