"""CPU per query embedding with the bundled USE model, alone and in batches of concurrent queries (what
`kb_service/coalesce.py` forms under load), one BLAS thread as in serving, beside the same queries embedded one by
one. Queries are the labeled ones in turn, each batch of distinct queries.

    python benchmarks/embed_batch.py [--sizes 1 2 4 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import ROOT

from kb_service.embedders import UseEmbedder
from kb_service.evaluation import load_queries


def per_query_ms(embedder: UseEmbedder, queries: list[str], size: int) -> float:
    started, n = time.process_time(), 0
    for i in range(0, len(queries) - size + 1, size):
        embedder.embed(queries[i : i + size])
        n += size
    return (time.process_time() - started) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--repeats", type=int, default=3, help="best of this many passes (noise only adds time)")
    args = ap.parse_args()
    queries = [q.query for q in load_queries(ROOT / "eval" / "queries.jsonl")]
    embedder = UseEmbedder(threads=1)
    embedder.warm_up()
    single = np.stack([embedder.embed([q])[0] for q in queries[:16]])
    batched = embedder.embed(queries[:16])
    print(f"{len(queries)} queries; batched vs single vectors: min cosine {float((single * batched).sum(1).min()):.6f}")
    print(f"{'batch':>5} {'CPU ms/query':>12} {'vs one by one':>13}")
    base = min(per_query_ms(embedder, queries, 1) for _ in range(args.repeats))
    for size in args.sizes:
        ms = base if size == 1 else min(per_query_ms(embedder, queries, size) for _ in range(args.repeats))
        print(f"{size:>5} {ms:>12.3f} {ms / base:>13.2f}")


if __name__ == "__main__":
    main()
