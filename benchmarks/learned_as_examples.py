"""Learned phrasings as index content: replay half of each SOP's queries by adding them to the SOP's `examples`
(then re-indexing), and measure agent search on the other half, beside the unchanged SOPs. The strongest form of
"learning from what agents confirmed" that stays within the index; the learned channel itself is measured through
the HTTP API by learning_curve.py (same halves).

    python benchmarks/learned_as_examples.py eval/queries.jsonl sops
    python benchmarks/learned_as_examples.py eval/blind/queries.jsonl eval/blind/sops
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from _common import copy_with_meta, sample_kb
from learning_curve import halves

from kb_service.trainer.evaluation import load_queries


def augment(sops: Path, extra: dict[str, list[str]]) -> Path:
    """A copy of the SOP folder with `extra` phrasings appended to each SOP's `examples`."""

    def add(meta: dict[str, Any]) -> None:
        if extra.get(meta.get("id", "")):
            meta["examples"] = list(meta.get("examples") or []) + extra[meta["id"]]

    return copy_with_meta(sops, add, prefix="kb-aug-")


def run(sops: str, qpath: str) -> None:
    replay, held = halves(load_queries(Path(qpath)))
    extra: dict[str, list[str]] = {}
    for q in replay:
        extra.setdefault(q.expected[0], []).append(q.query)
    res: dict[str, float] = {}
    for label, folder in (("none", Path(sops)), ("as_examples", augment(Path(sops), extra))):
        kb = sample_kb(folder)
        kb.searcher.learned = None
        vecs = kb.searcher.embed_queries([q.query for q in held])
        hit = 0
        for q, v in zip(held, vecs, strict=True):
            r = kb.searcher.search(q.query, top_k=3, audience="agent", query_vector=v).results
            hit += bool(r) and r[0].sop_id in q.expected
        res[label] = hit / len(held)
        kb.close()
    print(f"held-out half n={len(held)}: R@1 " + "  ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queries")
    ap.add_argument("sops")
    args = ap.parse_args()
    run(args.sops, args.queries)
