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
        --set dev=eval/dev/queries.jsonl:eval/dev/sops [--lexical]

`--lexical` (session 55, not shipped): the similarity is 0.4 × the cosine plus 0.6 × the cosine of the lexical vectors
(the search's own, with the glossary's expansions), their terms weighted by IDF over the replayed phrasings.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, sample_kb
from learning_curve import halves

from kb_service.learning.matcher import LearnedConfig, char_pairs, dice
from kb_service.learning.store import phrasing_key
from kb_service.trainer.evaluation import load_queries

RULES = [(floor, weight) for floor in (0.3, 0.4, 0.5) for weight in (0.25, 0.5, 1.0, 2.0)]


def nearest_by_sop(
    cos: np.ndarray, pairs: frozenset[str], taught: list[tuple[str, frozenset[str]]], lexical: np.ndarray | None = None
) -> dict[str, float]:
    """The best similarity of the replayed phrasings of each SOP (the 32 nearest, as the learned channel)."""
    overlap = LearnedConfig().overlap
    if lexical is None:
        sims = [(1 - overlap) * float(cos[i]) + overlap * dice(pairs, taught[i][1]) for i in range(len(taught))]
    else:
        sims = [LEXICAL_COSINE * float(cos[i]) + (1 - LEXICAL_COSINE) * float(lexical[i]) for i in range(len(taught))]
    best: dict[str, float] = {}
    for i in np.argsort(-np.array(sims))[:32]:
        sop_id = taught[i][0]
        best[sop_id] = max(best.get(sop_id, 0.0), sims[i])
    return best


LEXICAL_COSINE = 0.4  # --lexical: the share of the cosine of the query vectors


def lexical_vectors(searcher: Any, replayed: list[str], held: list[str]) -> np.ndarray:
    """Cosines of the held-out queries' lexical vectors with the replayed ones' (IDF over the replayed)."""
    terms = [dict(zip(*_sparse(searcher, q), strict=True)) for q in [*replayed, *held]]
    df = Counter(t for d in terms[: len(replayed)] for t in d)
    idf = {t: math.log(1 + len(replayed) / c) for t, c in df.items()}
    rare = math.log(1 + len(replayed))
    vocab = {t: i for i, t in enumerate({t for d in terms for t in d})}
    matrix = np.zeros((len(terms), len(vocab)), dtype=np.float32)
    for row, d in enumerate(terms):
        for t, v in d.items():
            matrix[row, vocab[t]] = v * idf.get(t, rare)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)
    return matrix[len(replayed) :] @ matrix[: len(replayed)].T


def _sparse(searcher: Any, text: str) -> tuple[list[int], list[float]]:
    vec, _, _ = searcher.lexical.query_vectors(text, pinyin=False)
    return vec.indices, vec.values


def run_set(name: str, queries_path: Path, sops: Path, lexical: bool = False) -> None:
    replayed, held = halves(load_queries(queries_path))
    searcher = sample_kb(sops).searcher
    taught = [(q.expected[0], char_pairs(phrasing_key(q.query))) for q in replayed]
    vectors = searcher.embed_queries([q.query for q in replayed])
    lex = lexical_vectors(searcher, [q.query for q in replayed], [q.query for q in held]) if lexical else None
    rows = []
    for n, (q, vec) in enumerate(zip(held, searcher.embed_queries([q.query for q in held]), strict=True)):
        results = searcher.search(q.query, top_k=10, audience="agent").results
        near = nearest_by_sop(vectors @ vec, char_pairs(phrasing_key(q.query)), taught, None if lex is None else lex[n])
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
    ap.add_argument("--lexical", action="store_true", help="the lexical similarity of session 55 (not shipped)")
    args = ap.parse_args()
    for spec in args.set:
        name, rest = spec.split("=", 1)
        queries_path, sops = rest.split(":")
        run_set(name, ROOT / queries_path, ROOT / sops, args.lexical)


if __name__ == "__main__":
    main()
