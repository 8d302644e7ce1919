"""The external DIAC2019 paraphrase benchmark through the service's own retrieval components (USE embedder,
lexical encoder with the glossary, Qdrant's in-process engine, weighted RRF with the shipped settings), beside
the reference BM25 baseline and dense-only, on the whole set and on the property slice.

    python benchmarks/diac2019.py ../shared/bench/diac2019 [--limit N] [--no-distractors]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import qdrant_edge as qe
from _common import CONFIGS, ROOT

from ingest.knowledge_base import index_layout
from kb_service.embedding.embedders import UseEmbedder
from kb_service.search.rerank import CHANNELS, Candidate, Ranker, model_for
from kb_service.search.searcher import SearchConfig, Searcher
from kb_service.settings import get_settings
from kb_service.store.base import ChannelQuery, FilterSpec, IndexPoint, StoreHit
from kb_service.store.edge import _QE, EdgeStore
from kb_service.store.translate import hits as to_hits
from kb_service.text import glossary
from kb_service.text.lexical import LexicalEncoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder", type=Path)
    ap.add_argument(
        "--limit", type=int, default=0, help="evaluate only the first N queries plus every property query (0 = all)"
    )
    ap.add_argument("--configs", nargs="+", default=["shipped", "bm25_only", "dense_only", "untuned_rrf60"])
    ap.add_argument("--no-distractors", action="store_true")
    ap.add_argument("--no-words", action="store_true", help="lexical channel without jieba words (characters only)")
    ap.add_argument(
        "--ref-length",
        default="auto",
        help="BM25 reference length in terms: 'auto' = this corpus' average, what a full ingest measures (default), "
        "or a number",
    )
    args = ap.parse_args()
    corpus = [json.loads(x) for x in (args.folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    if args.no_distractors:
        corpus = [d for d in corpus if d["type"] == "standard"]
    queries = [json.loads(x) for x in (args.folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    if args.limit:
        queries = queries[: args.limit] + [q for q in queries[args.limit :] if q["property"]]

    settings = get_settings()
    embedder = UseEmbedder(threads=settings.cpu_threads, dimensions=settings.embed_dimensions)  # as `kb serve` embeds
    lexical = LexicalEncoder(glossary.load(ROOT / "sops"), use_words=not args.no_words)
    if args.ref_length == "auto":
        lexical.ref_length = float(np.mean([len(lexical.terms(d["text"])) for d in corpus]))
    else:
        lexical.ref_length = float(args.ref_length)
    print(f"BM25 reference length: {lexical.ref_length:.1f} terms")
    embedder.warm_up()
    lexical.warm_up()
    store = EdgeStore(Path(tempfile.mkdtemp(prefix="diac-")), layout=index_layout(settings))
    t0 = time.perf_counter()
    store.create("g", embedder.dim, None)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, d["id"])) for d in corpus]
    by_point = {pid: d["id"] for pid, d in zip(ids, corpus, strict=True)}
    for start in range(0, len(corpus), 512):
        batch = corpus[start : start + 512]
        vecs = embedder.embed([d["text"] for d in batch])
        points = []
        for d, pid, vec in zip(batch, ids[start : start + 512], vecs, strict=True):
            lex, py = lexical.doc_vectors(d["text"])
            points.append(IndexPoint(id=pid, dense=vec, sentences=vec[None, :], lex=lex, py=py, payload={}))
        store.upsert("g", points)
    store.seal("g")
    print(f"indexed {len(corpus)} documents in {time.perf_counter() - t0:.1f} s")

    searcher = Searcher(store, embedder, lexical)
    ranker = Ranker.load(model_for(embedder.dim)) if model_for(embedder.dim).exists() else None  # as the searcher
    configs: dict[str, SearchConfig] = {k: CONFIGS[k] for k in args.configs}
    for name, cfg in configs.items():
        stats = {"all": [0, 0, 0.0, 0], "property": [0, 0, 0.0, 0]}
        lat: list[float] = []
        for q in queries:
            t = time.perf_counter()
            _, every, _ = searcher.encode_query(q["query"], cfg)
            channels = [c for c in every if cfg.weights[c.channel] > 0]
            hits = store.search("g", Searcher.spec(channels, cfg, 10, FilterSpec())) if channels else []
            if cfg.rerank and ranker is not None and len(hits) > 1:
                hits = _reranked(ranker, store, q["query"], every, hits)
            lat.append((time.perf_counter() - t) * 1000)
            ranked = [by_point[h.id] for h in hits]
            rank = next((i for i, d in enumerate(ranked, 1) if d in q["gold"]), None)
            for key in ("all", "property") if q["property"] else ("all",):
                s = stats[key]
                s[0] += rank == 1
                s[1] += rank is not None
                s[2] += 1 / rank if rank else 0.0
                s[3] += 1
        for key, (r1, r10, mrr, n) in stats.items():
            if n:
                print(
                    f"{name:<14} {key:<9} n={n:<6} R@1={r1 / n:.3f} R@10={r10 / n:.3f} MRR@10={mrr / n:.3f}  "
                    f"p50={np.percentile(lat, 50):.1f}ms p95={np.percentile(lat, 95):.1f}ms"
                )
    store.close()


def _reranked(
    ranker: Ranker, store: EdgeStore, query: str, channels: list[ChannelQuery], hits: list[StoreHit]
) -> list[StoreHit]:
    """The learned ranker over the fused first ten, its features as the service computes them: each channel searched
    alone over these documents only (the service filters by their SOPs; here by point id). A document is one chunk
    of one kind, its content cosine its sentence score."""
    only = qe.Filter(must=[qe.HasIdCondition({h.id for h in hits})])
    ranks: dict[str, dict[str, tuple[int, float]]] = {}
    for cq in channels:
        if cq.channel in CHANNELS:
            request = qe.QueryRequest(
                limit=len(hits),
                query=qe.Query.Nearest(_QE.query_vector(cq), using=cq.channel),
                filter=only,
                with_payload=False,
            )
            found = to_hits(store._shard("g").query(request))
            ranks[cq.channel] = {h.id: (i, h.score) for i, h in enumerate(found, 1)}
    cands = [
        Candidate(
            h.id,
            h.score,
            {c: ranks.get(c, {}).get(h.id, (None, None)) for c in CHANNELS},
            ranks.get("sent", {}).get(h.id, (0, 0.0))[1],
            {"other": h.score},
            (h.score,),
        )
        for h in hits
    ]
    return [hits[i] for i in ranker.order(query, cands)]


if __name__ == "__main__":
    main()
