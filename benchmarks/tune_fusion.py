"""Grid search of fusion settings on the TUNING half of the labeled queries only; prints the best few and how
they do on the held-out half, so a gain that does not hold is visible.

    python benchmarks/tune_fusion.py eval/queries.jsonl [--sops sops]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from _common import sample_kb

from kb_service.search.searcher import SearchConfig
from kb_service.trainer.evaluation import evaluate, load_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--sops", type=Path, default=Path("sops"))
    args = ap.parse_args()
    kb = sample_kb(args.sops)
    tune = load_queries(args.queries, "tune")
    held = load_queries(args.queries, "heldout")

    def score(cfg: SearchConfig, qs: list) -> tuple[float, float, float]:  # type: ignore[type-arg]
        r = evaluate(
            qs,
            lambda q: [
                h.sop_id for h in kb.searcher.search(q.query, top_k=10, audience=q.audience, config=cfg).results
            ],
        )
        return r["recall@1"], r["recall@3"], r["mrr@10"]

    rows = []
    for dense, sent, lex, py, k, expand in itertools.product(
        (0.0, 0.5, 1.0), (0.0, 0.5, 1.0), (0.5, 1.0), (0.0, 0.25, 0.5), (1, 2, 5, 20), (False, True)
    ):
        if dense == sent == 0:
            continue
        cfg = SearchConfig(
            weights={"dense": dense, "sent": sent, "lex": lex, "py": py}, rrf_k=k, expand=expand, fusion="rrf"
        )
        rows.append((score(cfg, tune), cfg))
    # Score fusion (DBSF) has no weights: only which channels take part.
    for channels in (("sent", "lex"), ("dense", "sent", "lex"), ("sent", "lex", "py"), ("dense", "lex")):
        weights = {c: (1.0 if c in channels else 0.0) for c in ("dense", "sent", "lex", "py")}
        for expand in (False, True):
            cfg = SearchConfig(weights=weights, expand=expand, fusion="dbsf")  # type: ignore[arg-type]
            rows.append((score(cfg, tune), cfg))
    rows.sort(key=lambda r: (r[0][2], r[0][0]), reverse=True)
    print("top settings by MRR@10 on the tuning half, with their held-out figures")
    for (r1, r3, mrr), cfg in rows[:12]:
        h1, h3, hm = score(cfg, held)
        print(
            f"{cfg.fusion} {cfg.weights} k={cfg.rrf_k} expand={cfg.expand}: "
            f"tune R@1 {r1:.3f} R@3 {r3:.3f} MRR {mrr:.3f} | "
            f"heldout R@1 {h1:.3f} R@3 {h3:.3f} MRR {hm:.3f}"
        )
    kb.close()


if __name__ == "__main__":
    main()
