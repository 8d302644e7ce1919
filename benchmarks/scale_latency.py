"""Search latency and ingest throughput at 1k, 10k and 100k chunks, in process, beside the floor of a numpy
brute-force scan plus one query embedding measured in the same run.

Scale comes from synthetic copies of the sample corpus: every copy of a SOP gets its own id and slightly jittered
vectors, so the index holds N distinct chunks with realistic Chinese text statistics. The real USE model embeds
every query; the full search path (query embedding, lexical encoding, fused Qdrant query, grouping per SOP,
payload fetch) is timed.

    python benchmarks/scale_latency.py [--sizes 1000 10000 100000] [--queries 300]
"""

from __future__ import annotations

import argparse
import copy
import gc
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, rss_mb

from ingest.documents import load_corpus
from ingest.indexer import Indexer
from kb_service.embedding.embedders import UseEmbedder
from kb_service.ids import chunk_id
from kb_service.search.searcher import Searcher
from kb_service.settings import get_settings
from kb_service.store.base import IndexPoint
from kb_service.store.edge import EdgeStore
from kb_service.text import glossary
from kb_service.text.lexical import LexicalEncoder
from kb_service.trainer.evaluation import load_queries


def jitter(v: np.ndarray, rng: np.random.Generator, scale: float = 0.03) -> np.ndarray:
    out = v + rng.normal(scale=scale, size=v.shape).astype(np.float32)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def synthetic(base: list[tuple[str, list[IndexPoint]]], n_chunks: int, seed: int = 7) -> list[list[IndexPoint]]:
    """Copies of the real SOPs' points until there are n_chunks points; one list of points per synthetic SOP."""
    rng = np.random.default_rng(seed)
    docs: list[list[IndexPoint]] = []
    total, k = 0, 0
    while total < n_chunks:
        for sop_id, points in base:
            new_id = f"{sop_id}-x{k}"
            copies = []
            for p in points:
                payload = copy.deepcopy(p.payload)
                payload["sop_id"] = new_id
                if "sop" in payload:
                    payload["sop"]["meta"]["id"] = new_id
                copies.append(
                    IndexPoint(
                        id=chunk_id(new_id, p.id),
                        dense=jitter(p.dense, rng),
                        sentences=jitter(p.sentences, rng),
                        lex=p.lex,
                        py=p.py,
                        payload=payload,
                    )
                )
            docs.append(copies)
            total += len(copies)
            if total >= n_chunks:
                break
        k += 1
    return docs


def serve_and_measure(root: str, queries: list[str]) -> tuple[list[float], float]:
    """In a new process: open the published index, warm up, time every query through the full search path."""
    settings = get_settings()
    embedder = UseEmbedder(threads=settings.cpu_threads)
    lexical = LexicalEncoder(glossary.load(ROOT / "sops"))
    embedder.warm_up()
    lexical.warm_up()
    store = EdgeStore(Path(root))
    searcher = Searcher(store, embedder, lexical)
    searcher.refresh(force=True)
    for q in queries[:20]:
        searcher.search(q, top_k=5)
    lat = []
    for q in queries:
        t = time.perf_counter()
        searcher.search(q, top_k=5)
        lat.append((time.perf_counter() - t) * 1000)
    rss = rss_mb()
    store.close()
    return lat, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the largest index here as a data directory (for benchmarks/load_http.py)",
    )
    args = ap.parse_args()
    settings = get_settings()
    embedder = UseEmbedder(threads=settings.cpu_threads)
    lexical = LexicalEncoder(glossary.load(ROOT / "sops"))
    embedder.warm_up()
    lexical.warm_up()
    corpus = load_corpus([ROOT / "sops"], root=ROOT / "sops")
    indexer = Indexer(Path(tempfile.mkdtemp()), EdgeStore(Path(tempfile.mkdtemp())), embedder, lexical)
    t = time.perf_counter()
    base = [(sop_id, indexer.points_for(sop)) for sop_id, sop in corpus.sops.items()]
    embed_s = time.perf_counter() - t
    n_base = sum(len(p) for _, p in base)
    n_vecs = sum(1 + len(p.sentences) for _, ps in base for p in ps)
    print(
        f"embedding (real model): {n_base} chunks ({n_vecs} vectors) in {embed_s:.1f} s = "
        f"{n_base / embed_s:.0f} chunks/s, {n_vecs / embed_s:.0f} texts/s"
    )
    queries = [q.query for q in load_queries(ROOT / "eval" / "queries.jsonl")][: args.queries]
    print(
        f"{'chunks':>8} {'index s':>8} {'pts/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'floor p50':>9} {'floor p95':>9} "
        f"{'RSS MB':>7}"
    )
    for n in args.sizes:
        docs = synthetic(base, n)
        keep = args.keep is not None and n == max(args.sizes)
        root = args.keep / "index" if keep else Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))  # type: ignore[operator]
        store = EdgeStore(root)
        t = time.perf_counter()
        store.create("g", embedder.dim, None)
        for points in docs:
            store.upsert("g", points)
        store.seal("g")
        store.publish("g")
        index_s = time.perf_counter() - t
        n_points = sum(len(d) for d in docs)
        store.close()
        del docs
        gc.collect()

        # Serving is measured in a fresh process, as `kb serve` would run: its RSS is the index plus the model.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            lat, rss = pool.apply(serve_and_measure, (str(root), queries))
        # The floor: one query embedding plus an exact numpy scan over all chunk vectors.
        matrix = np.stack([p.dense for _, ps in base for p in ps])
        matrix = np.concatenate([jitter(matrix, np.random.default_rng(1))] * (n_points // len(matrix) + 1))[:n_points]
        floor = []
        for q in queries:
            t = time.perf_counter()
            qv = embedder.embed([q])[0]
            scores = matrix @ qv
            np.argpartition(-scores, 10)[:10]
            floor.append((time.perf_counter() - t) * 1000)
        print(
            f"{n_points:>8} {index_s:>8.1f} {n_points / index_s:>7.0f} {np.percentile(lat, 50):>7.2f} "
            f"{np.percentile(lat, 95):>7.2f} {np.percentile(floor, 50):>9.2f} {np.percentile(floor, 95):>9.2f} "
            f"{rss:>7.0f}",
            flush=True,
        )
        del matrix


if __name__ == "__main__":
    main()
