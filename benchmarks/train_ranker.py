"""Train the learned ranker (kb_service/search/rerank.py) and write kb_service/data/ranker.json.

    python benchmarks/train_ranker.py                    # train on the default sets, write the model
    python benchmarks/train_ranker.py --check            # train, then print R@1 before/after on every other set
    python benchmarks/train_ranker.py --train dev fourth --check   # another choice of sets, checked on the rest
    KB_EMBED_DIMENSIONS=128 python benchmarks/train_ranker.py --check  # the model for shortened vectors

It is trained on two knowledge bases written by different hands, in the condition of a customer's documents: eval/dev
(a second company's SOPs, no example queries) and the repository's tuning half with the SOPs' `examples` left out.
It never sees the held-out half, the blind corpus or DIAC2019, which measure it (`retrieval_quality.py`). The
features are what the search computes for its first SOPs; a logistic regression (scikit-learn, a development
dependency: the service only reads the coefficients) learns which of them mark the right SOP.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
from _common import ROOT, sample_kb, without_examples

from ingest.knowledge_base import KnowledgeBase
from kb_service.embedding.embedders import USE_DIM
from kb_service.search.rerank import MODEL, Candidate, Ranker, feature_names, features
from kb_service.settings import get_settings
from kb_service.trainer.evaluation import LabeledQuery, load_queries

TRAIN = ["dev=eval/dev/queries.jsonl:eval/dev/sops", "tune-noex=eval/queries.jsonl:sops-noex:tune"]
CHECK = ["heldout=eval/queries.jsonl:sops:heldout", "heldout-noex=eval/queries.jsonl:sops-noex:heldout"]
# Tuning sets a model may be trained on instead (`--train`), each then checked where it was not trained on: how
# session 38 measured a fourth company's corpus as more training data (docs/benchmarks.md)
SETS = {s.split("=")[0]: s for s in [*TRAIN, "fourth=eval/fourth/queries.jsonl:eval/fourth/sops"]}
C = 0.1  # inverse regularisation: chosen on dev ↔ tune-noex transfer (docs/benchmarks.md, session 31)


class _Recorder:
    """Stands in for the ranker: keeps the search's candidates and leaves their order as it is."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[Candidate]]] = []

    def order(self, query: str, cands: list[Candidate]) -> list[int]:
        self.seen.append((query, cands))
        return list(range(len(cands)))


def candidates_of(kb: KnowledgeBase, queries: list[LabeledQuery]) -> list[tuple[LabeledQuery, list[Candidate]]]:
    """Each query's candidates as the shipped search computes them (fused evidence order)."""
    searcher = kb.searcher
    recorder = _Recorder()
    kept, searcher.ranker = searcher.ranker, recorder  # type: ignore[assignment]
    cfg = replace(searcher.config, rerank=True)
    out = []
    try:
        for q in queries:
            recorder.seen.clear()
            searcher.search(q.query, top_k=10, audience=q.audience, config=cfg)
            out.append((q, recorder.seen[0][1] if recorder.seen else []))
    finally:
        searcher.ranker = kept
    return out


def load_sets(specs: list[str], kbs: dict[str, KnowledgeBase]) -> dict[str, list[tuple[LabeledQuery, list[Candidate]]]]:
    sets = {}
    for spec in specs:
        name, rest = spec.split("=", 1)
        parts = rest.split(":")
        sops = parts[1]
        if sops not in kbs:
            folder = without_examples(ROOT / sops.removesuffix("-noex")) if sops.endswith("-noex") else ROOT / sops
            kbs[sops] = sample_kb(folder, search_rerank=False)  # the shipped model may be for other features
        queries = load_queries(ROOT / parts[0], parts[2] if len(parts) > 2 else "all")  # type: ignore[arg-type]
        sets[name] = candidates_of(kbs[sops], queries)
    return sets


def fit(rows: list[tuple[LabeledQuery, list[Candidate]]], trained_on: list[str]) -> Ranker:
    from sklearn.linear_model import LogisticRegression

    xs, ys = [], []
    for q, cands in rows:
        if cands:
            xs.append(features(q.query, cands))
            ys += [int(c.sop_id in q.expected) for c in cands]
    x = np.concatenate(xs)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=C, max_iter=5000).fit((x - mean) / scale, np.asarray(ys))
    return Ranker(feature_names(), mean, scale, model.coef_[0], float(model.intercept_[0]), trained_on)


def recall_at_1(rows: list[tuple[LabeledQuery, list[Candidate]]], ranker: Ranker | None) -> float:
    right = 0
    for q, cands in rows:
        if cands:
            first = cands[ranker.order(q.query, cands)[0]] if ranker is not None else cands[0]
            right += first.sop_id in q.expected
    return right / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="also print R@1 before/after on the held-out sets")
    ap.add_argument("--out", default=None, help=f"where to write the model (default {MODEL} for the default sets)")
    ap.add_argument("--train", nargs="+", choices=sorted(SETS), default=[s.split("=")[0] for s in TRAIN])
    args = ap.parse_args()
    kbs: dict[str, KnowledgeBase] = {}
    train = load_sets([SETS[name] for name in args.train], kbs)
    ranker = fit([r for rows in train.values() for r in rows], args.train)
    from pathlib import Path

    shipped_sets = args.train == [s.split("=")[0] for s in TRAIN]
    width = get_settings().embed_dimensions  # KB_EMBED_DIMENSIONS=128: the model for shortened vectors
    model = MODEL if width == USE_DIM else MODEL.with_name(f"ranker-{width}.json")
    out = args.out or (str(model) if shipped_sets else None)
    if out is not None:
        ranker.save(Path(out))
    print(f"wrote {out}" if out else "not written (other sets than the shipped model's: give --out to keep it)")
    others = [spec for name, spec in SETS.items() if name not in args.train]
    shown = {**train, **(load_sets([*others, *CHECK], kbs) if args.check else {})}
    for name, rows in shown.items():
        print(f"{name:<14} R@1 {recall_at_1(rows, None):.3f} -> {recall_at_1(rows, ranker):.3f} ({len(rows)})")
    for kb in kbs.values():
        kb.close()


if __name__ == "__main__":
    main()
