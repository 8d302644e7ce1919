"""Retrieval quality on the labeled query file: the shipped configuration beside its baselines, per query kind,
on the tuning half and on the held-out half (settings were chosen on `tune` only).

    python benchmarks/retrieval_quality.py eval/queries.jsonl [--sops sops] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import CONFIGS, sample_kb

from kb_service.evaluation import evaluate, load_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--sops", type=Path, default=Path("sops"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    kb = sample_kb(args.sops)
    table: dict[str, dict[str, object]] = {}
    for split in ("tune", "heldout"):
        queries = load_queries(args.queries, split)  # type: ignore[arg-type]
        for name, cfg in CONFIGS.items():
            res = evaluate(
                queries,
                lambda q, cfg=cfg: [
                    h.sop_id for h in kb.searcher.search(q.query, top_k=10, audience=q.audience, config=cfg).results
                ],
            )
            res.pop("misses")
            table[f"{split}/{name}"] = res
    if args.json:
        print(json.dumps(table, ensure_ascii=False, indent=1))
        return
    print(
        f"{'split/config':<24}{'kind':<17}{'n':>4} {'R@1':>6} {'R@3':>6} {'R@5':>6} "
        f"{'MRR@10':>7} {'p50ms':>6} {'p95ms':>6}"
    )
    for key, res in table.items():
        rows = [("all", res), *res["by_kind"].items()]  # type: ignore[union-attr]
        for kind, m in rows:
            lat = m["latency_ms"]
            print(
                f"{key:<24}{kind:<17}{m['n']:>4} {m['recall@1']:>6.3f} {m['recall@3']:>6.3f} {m['recall@5']:>6.3f} "
                f"{m['mrr@10']:>7.3f} {lat['p50']:>6.1f} {lat['p95']:>6.1f}"
            )
    kb.close()


if __name__ == "__main__":
    main()
