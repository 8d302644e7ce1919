"""How far learning from agents' 👍 can lift the *other* half of the queries, measured in process.

`learning_curve.py` replays half of each SOP's queries as 👍 and measures the held-out half through the HTTP API; the
held-out half barely moves. This asks why: for each held-out query, the replayed phrasing nearest to it (the learned
channel's similarity: cosine of the query vectors and character-pair overlap, `LearnedConfig.overlap`) names a SOP.
If that SOP were right where search is wrong, a better use of learned phrasings could lift the held-out half; if the
nearest phrasing is right only where search already is, no weighting of it can.

Reports per set: search R@1 on the held-out half, the nearest replayed phrasing's SOP right (kNN top-1), the ceiling
(search right or the nearest phrasing right: what a perfect chooser between them reaches), and R@1 when each
held-out query's SOP scores gain `weight · (similarity − floor) / (1 − floor)` from its best replayed phrasing for a
few floors and weights (the shipped learned channel is close to floor 0.5, weight 0.5; see docs/learning.md).

    python benchmarks/learning_ceiling.py --set tune=eval/queries.jsonl:sops \
        --set dev=eval/dev/queries.jsonl:eval/dev/sops
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import ROOT, sample_kb
from learning_curve import halves

from kb_service.learning.matcher import LearnedConfig, char_pairs, dice
from kb_service.learning.store import phrasing_key
from kb_service.trainer.evaluation import load_queries

RULES = [(floor, weight) for floor in (0.3, 0.4, 0.5) for weight in (0.25, 0.5, 1.0, 2.0)]


def nearest_by_sop(
    cos: np.ndarray, pairs: frozenset[str], taught: list[tuple[str, frozenset[str]]]
) -> dict[str, float]:
    """The best similarity of the replayed phrasings of each SOP (the 32 nearest by cosine, as the learned channel)."""
    overlap = LearnedConfig().overlap
    best: dict[str, float] = {}
    for i in np.argsort(-cos)[:32]:
        sop_id, their = taught[i]
        sim = (1 - overlap) * float(cos[i]) + overlap * dice(pairs, their)
        best[sop_id] = max(best.get(sop_id, 0.0), sim)
    return best


def run_set(name: str, queries_path: Path, sops: Path) -> None:
    replayed, held = halves(load_queries(queries_path))
    searcher = sample_kb(sops).searcher
    taught = [(q.expected[0], char_pairs(phrasing_key(q.query))) for q in replayed]
    vectors = searcher.embed_queries([q.query for q in replayed])
    rows = []
    for q, vec in zip(held, searcher.embed_queries([q.query for q in held]), strict=True):
        results = searcher.search(q.query, top_k=10, audience="agent").results
        near = nearest_by_sop(vectors @ vec, char_pairs(phrasing_key(q.query)), taught)
        rows.append((q.expected, {h.sop_id: h.score for h in results}, near))

    def right(scores: dict[str, float], expected: tuple[str, ...]) -> bool:
        return bool(scores) and max(scores, key=lambda k: scores[k]) in expected

    search = [right(s, e) for e, s, _ in rows]
    knn = [right(n, e) for e, _, n in rows]
    ceiling = np.mean([a or b for a, b in zip(search, knn, strict=True)])
    print(
        f"{name}: held out {len(rows)}, search R@1 {np.mean(search):.3f}, nearest replayed phrasing's SOP right "
        f"{np.mean(knn):.3f}, ceiling (either right) {ceiling:.3f}"
    )
    cells = []
    for floor, weight in RULES:
        ok = 0
        for expected, scores, near in rows:
            top = max(scores.values(), default=1.0) or 1.0
            lifted = {k: v / top for k, v in scores.items()}
            for sop_id, sim in near.items():
                if sim >= floor:
                    lifted[sop_id] = lifted.get(sop_id, 0.0) + weight * (sim - floor) / (1 - floor)
            ok += right(lifted, expected)
        cells.append(f"{floor}/{weight}: {ok / len(rows):.3f}")
    print("  R@1 with a boost (floor/weight): " + ", ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", required=True, help="name=queries.jsonl:sops_dir")
    for spec in ap.parse_args().set:
        name, rest = spec.split("=", 1)
        queries_path, sops = rest.split(":")
        run_set(name, ROOT / queries_path, ROOT / sops)


if __name__ == "__main__":
    main()
