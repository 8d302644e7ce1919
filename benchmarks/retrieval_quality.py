"""Retrieval quality side by side on several labeled sets: the shipped configuration beside its baselines.

    python benchmarks/retrieval_quality.py                     # the sets below, shipped + baselines
    python benchmarks/retrieval_quality.py --set tune=eval/queries.jsonl:sops:tune --configs shipped bm25_only

Default sets: `tune` (the half of eval/queries.jsonl settings are chosen on), `heldout` (the other half),
`tune-noex` (the tuning half with the SOPs' `examples` left out of the index: how the engine does on documents whose
authors wrote no example queries), `dev` (eval/dev: a second company's 42 SOPs and 295 queries, written by a helper
who never saw the engine, the samples or the blind corpus; open for tuning, unlike the blind set) and `blind`
(eval/blind: a corpus and queries written by someone who never saw the engine; never read it while tuning). DIAC2019
is measured by `benchmarks/diac2019.py`.
"""

from __future__ import annotations

import argparse
import json

from _common import CONFIGS, ROOT, index_everything, sample_kb, without_examples

from ingest.knowledge_base import KnowledgeBase
from kb_service.trainer.evaluation import evaluate, load_queries

DEFAULT_SETS = [
    "tune=eval/queries.jsonl:sops:tune",
    "heldout=eval/queries.jsonl:sops:heldout",
    "tune-noex=eval/queries.jsonl:sops-noex:tune",
    "dev=eval/dev/queries.jsonl:eval/dev/sops",
    "blind=eval/blind/queries.jsonl:eval/blind/sops",
    "third=eval/third/queries.jsonl:eval/third/sops",  # session 32: a third hand, never seen by the ranker either
    "fourth=eval/fourth/queries.jsonl:eval/fourth/sops",  # session 38: a fourth hand, blind once, then tuned on
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--set",
        action="append",
        help="name=queries.jsonl:sops_dir[:tune|heldout] ('-noex' dir suffix: the folder with its examples left out)",
    )
    ap.add_argument(
        "--configs", nargs="+", default=["shipped", "best_chunk", "bm25_only", "dense_only", "untuned_rrf60"]
    )
    ap.add_argument("--kinds", action="store_true", help="also print each query kind")
    ap.add_argument(
        "--layout",
        choices=["int8", "binary", "none"],
        default=None,
        help="index layout: none = Float16 all in memory (before int8), int8 = int8 codes for every channel (before "
        "session 13), binary = the shipped default; default: the settings'",
    )
    ap.add_argument("--no-rescore", action="store_true", help="KB_INDEX_RESCORE=false: rank by the codes alone")
    ap.add_argument(
        "--lexical-datatype",
        choices=["float32", "float16", "uint8"],
        default=None,
        help="KB_INDEX_LEXICAL_DATATYPE: how the lexical channel stores its weights; default: the settings'",
    )
    ap.add_argument(
        "--index-everything",
        action="store_true",
        help="build HNSW graphs and int8 codes even for these small corpora, as a large index has them",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.index_everything:
        index_everything()
    layout = (
        {}
        if args.layout is None
        else {
            "index_quantization": args.layout,
            "index_vectors_on_disk": args.layout != "none",
            "index_aux_on_disk": args.layout == "binary",
        }
    )
    if args.no_rescore:
        layout["index_rescore"] = False
    if args.lexical_datatype:
        layout["index_lexical_datatype"] = args.lexical_datatype
    sets = args.set or [s for s in DEFAULT_SETS if (ROOT / s.split("=")[1].split(":")[0]).exists()]
    table: dict[str, dict[str, dict[str, object]]] = {}
    kbs: dict[str, KnowledgeBase] = {}
    for spec in sets:
        name, rest = spec.split("=", 1)
        parts = rest.split(":")
        queries_path, sops = ROOT / parts[0], parts[1]
        split = parts[2] if len(parts) > 2 else "all"
        if sops not in kbs:  # sets over the same folder share one index
            folder = without_examples(ROOT / sops.removesuffix("-noex")) if sops.endswith("-noex") else ROOT / sops
            kbs[sops] = sample_kb(folder, **layout)
        kb = kbs[sops]
        queries = load_queries(queries_path, split)  # type: ignore[arg-type]
        for cfg_name in args.configs:
            cfg = CONFIGS[cfg_name]
            res = evaluate(
                queries,
                lambda q, cfg=cfg, kb=kb: [
                    h.sop_id for h in kb.searcher.search(q.query, top_k=10, audience=q.audience, config=cfg).results
                ],
            )
            res.pop("misses")
            table.setdefault(cfg_name, {})[name] = res
    for kb in kbs.values():
        kb.close()
    if args.json:
        print(json.dumps(table, ensure_ascii=False, indent=1))
        return
    names = [s.split("=", 1)[0] for s in sets]
    print("R@1 / R@3 / MRR@10 per set (n queries in brackets); p95 ms of the search call")
    print(f"{'config':<16}" + "".join(f"{n:>24}" for n in names))
    for cfg_name, per_set in table.items():
        cells = []
        for n in names:
            m = per_set[n]
            cells.append(f"{m['recall@1']:.3f}/{m['recall@3']:.3f}/{m['mrr@10']:.3f} ({m['n']})")
        print(f"{cfg_name:<16}" + "".join(f"{c:>24}" for c in cells))
        if args.kinds:
            kinds = sorted({k for n in names for k in per_set[n]["by_kind"]})  # type: ignore[union-attr]
            for kind in kinds:
                row = []
                for n in names:
                    m = per_set[n]["by_kind"].get(kind)  # type: ignore[union-attr]
                    row.append(f"{m['recall@1']:.3f}/{m['recall@3']:.3f} ({m['n']})" if m else "-")
                print(f"  {kind:<14}" + "".join(f"{c:>24}" for c in row))
    print("p95 ms: " + ", ".join(f"{c}: {max(v[n]['latency_ms']['p95'] for n in names):.1f}" for c, v in table.items()))


if __name__ == "__main__":
    main()
