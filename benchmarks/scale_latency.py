"""Search latency and ingest throughput at 1k, 10k and 100k chunks, in process, beside the floor of a numpy
brute-force scan plus one query embedding measured in the same run.

Scale comes from synthetic copies of the sample corpus: every copy of a SOP gets its own id and slightly jittered
vectors, so the index holds N distinct chunks with realistic Chinese text statistics. The real USE model embeds
every query; the full search path (query embedding, lexical encoding, fused Qdrant query, grouping per SOP,
payload fetch) is timed.

Each index layout (`--layouts`, default: the previous one beside the shipped one) is built and served in turn, so
RSS, latency and recall at scale print side by side from one run. Recall at scale: the labeled queries' expected
SOP or any synthetic copy of it ranked first (R@1) or in the top three (R@3).

    python benchmarks/scale_latency.py [--sizes 1000 10000 100000] [--queries 300] [--layouts previous shipped]
    python benchmarks/scale_latency.py --sizes 100000 --reuse /tmp/kb-scale --rounds 3 --breakdown
    KB_EMBED_DIMENSIONS=128 python benchmarks/scale_latency.py ...   # vectors shortened as `kb serve` would
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import multiprocessing
import os
import pickle
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import ROOT, rss_mb

from ingest.documents import load_corpus
from ingest.indexer import Indexer
from kb_service.embedding.embedders import UseEmbedder
from kb_service.ids import chunk_id
from kb_service.search.searcher import SearchConfig, Searcher
from kb_service.settings import get_settings
from kb_service.store.base import IndexPoint
from kb_service.store.edge import EdgeStore
from kb_service.store.layout import BINARY_F32, ENGINE_RESCORED, INT8, PREVIOUS, IndexLayout
from kb_service.text import glossary
from kb_service.text.lexical import LexicalEncoder
from kb_service.trainer.evaluation import LabeledQuery, evaluate, load_queries


def jitter(v: np.ndarray, rng: np.random.Generator, scale: float = 0.03) -> np.ndarray:
    """`scale` is per dimension of a 512-d vector: shorter vectors (KB_EMBED_DIMENSIONS) get the same noise in all,
    and keep their length (below 1: their dot products are the full vectors' cosines)."""
    scale *= (512 / v.shape[-1]) ** 0.5
    out = v + rng.normal(scale=scale, size=v.shape).astype(np.float32)
    return out / np.linalg.norm(out, axis=-1, keepdims=True) * np.linalg.norm(v, axis=-1, keepdims=True)


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
                    sop = json.loads(payload["sop"]) if isinstance(payload["sop"], str) else payload["sop"]
                    sop["meta"]["id"] = new_id
                    payload["sop"] = json.dumps(sop, ensure_ascii=False)
                if payload.get("expansion_id"):  # the overview names the copy's own lexicon-expansion chunk
                    payload["expansion_id"] = chunk_id(new_id, payload["expansion_id"])
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


LAYOUTS: dict[str, IndexLayout] = {
    "previous": PREVIOUS,  # Float16 vectors all in memory: the release before int8 quantisation
    "int8": INT8,  # int8 codes for every vector channel, originals on disk: the default before session 13
    "shipped": IndexLayout(),  # two-bit codes for the ranked sentence vectors, hit-test-only channels on disk
    "engine-rescored": ENGINE_RESCORED,  # sessions 18-56: the engine rescores from its mapped originals
    "allrows": IndexLayout(sentence_rows=None),  # sessions 57-60: every sentence row in its point (no parts)
    "rows12": IndexLayout(sentence_rows=12),
    "rows16": IndexLayout(sentence_rows=16),
    "shipped-norescore": IndexLayout(rescore=False),  # KB_INDEX_RESCORE=false: the ranking search reads the codes alone
    "shipped-t8": IndexLayout(originals="turbo8"),  # the rescored originals as eight-bit TurboQuant codes
    "lexf32": BINARY_F32,  # the default of sessions 13-17: float32 lexical weights
    "lexf32-norescore": replace(BINARY_F32, rescore=False),
    "shipped-os1": IndexLayout(oversampling=1.0),  # only the limit's candidates rescored, no extra ones
    "shipped-os2": IndexLayout(oversampling=2.0),
    "int8-ram": IndexLayout(quantization="int8", vectors_on_disk=False, aux_on_disk=False),
    "f16-disk": IndexLayout(quantization="none", aux_on_disk=False),
    "int8-aux-disk": IndexLayout(quantization="int8"),  # int8, passage vector and pinyin terms left on disk
    "int8-aux-disk-norescore": IndexLayout(quantization="int8", rescore=False),
}
_COPY = re.compile(r"-x\d+$")


def memory_breakdown(index_root: str) -> dict[str, float]:
    """Resident MB of this process: anonymous memory, the index's mapped files (by file name), other files."""
    out: dict[str, float] = {}
    name = "anon"
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()
            if (
                head and "-" in head[0] and ":" not in head[0]
            ):  # a mapping's first line: range perms offset dev inode path
                path = head[5] if len(head) > 5 else ""
                if path.startswith(index_root):  # e.g. vector_storage-sent/vectors, payload_storage
                    parts = Path(path).relative_to(index_root).parts
                    name = "/".join(parts[3:-1] if len(parts) > 4 else parts[-2:-1]) or parts[-1]
                elif path and not path.startswith("["):
                    name = "other files"
                else:
                    name = "anon"
            elif head and head[0] == "Rss:":
                out[name] = out.get(name, 0.0) + int(head[1]) / 1024
    return out


def memory_cgroup(limit_mb: int) -> Path:
    """A new memory cgroup (v1 or v2) below this process's own, capped at `limit_mb`; this process moves into it.
    The kernel then reclaims the index's mapped pages within the cap, as it would in a container with that limit."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            group, limit_file = (
                Path("/sys/fs/cgroup/memory") / path.lstrip("/") / f"kb-scale-{os.getpid()}",
                "memory.limit_in_bytes",
            )
            break
    else:
        path = Path("/proc/self/cgroup").read_text().split("::", 1)[-1].strip()
        group, limit_file = Path("/sys/fs/cgroup") / path.lstrip("/") / f"kb-scale-{os.getpid()}", "memory.max"
    group.mkdir()
    (group / limit_file).write_text(str(limit_mb * 1024 * 1024))
    (group / "cgroup.procs").write_text(str(os.getpid()))
    return group


def cgroup_peak_mb(group: Path) -> float | None:
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        if (group / name).is_file():
            return int((group / name).read_text()) / 2**20
    return None


def serve_and_measure(
    root: str,
    layout: IndexLayout,
    queries: list[LabeledQuery],
    limit_mb: int | None = None,
    rerank: bool = True,
    rate: float = 0.0,
) -> dict[str, object]:
    """In a new process: open the published index, warm up, time every query through the full search path
    (`limit_mb`: inside a memory cgroup with that cap; `rerank` False: fused evidence without the learned ranker;
    `rate`: searches a second, 0 = back to back). RSS is read before every tenth query: its largest reading is
    reported too."""
    group = memory_cgroup(limit_mb) if limit_mb else None
    settings = get_settings()
    # as `kb serve` embeds queries (kb_service/embedding/embedders.create): the token cache, the token table read
    # from its file (session 35; before, this process embedded without either)
    embedder = UseEmbedder(
        threads=settings.cpu_threads,
        token_cache=settings.embed_token_cache,
        table_dir=Path(root).parent / "models",
        dimensions=settings.embed_dimensions,
    )
    lexical = LexicalEncoder(glossary.load(ROOT / "sops"))
    embedder.warm_up()
    lexical.warm_up()
    store = EdgeStore(Path(root), layout=layout)
    searcher = Searcher(store, embedder, lexical, SearchConfig(rerank=rerank))
    searcher.refresh(force=True)
    for q in queries[:20]:
        searcher.search(q.query, top_k=5)
    lat = []
    stages: dict[str, list[float]] = {}
    ranked: list[list[str]] = []
    readings = []
    start = time.perf_counter()
    for i, q in enumerate(queries):
        if i % 10 == 0:
            readings.append(rss_mb())
        if rate > 0:  # paced as a worker's share of a call centre's traffic
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        t = time.perf_counter()
        res = searcher.search(q.query, top_k=10, audience=q.audience, with_confidence=True)
        lat.append((time.perf_counter() - t) * 1000)
        for stage, ms in res.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        ranked.append(list(dict.fromkeys(_COPY.sub("", r.sop_id) for r in res.results)))
    # A copy of the expected SOP counts as finding it: each copy holds the same text.
    metrics = evaluate(queries, lambda q, it=iter(ranked): next(it))
    rss = rss_mb()
    parts = memory_breakdown(str(Path(root).resolve()))
    store.close()
    peak = cgroup_peak_mb(group) if group else None
    out = {"lat": lat, "rss": rss, "r1": metrics["recall@1"], "r3": metrics["recall@3"], "parts": parts, "peak": peak}
    out["rss_max"] = max([*readings, rss])
    out["stages"] = {k: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for k, v in stages.items()}
    return out | {"group": str(group) if group else None}


def build(root: Path, layout: IndexLayout, docs: list[list[IndexPoint]], dim: int) -> float:
    store = EdgeStore(root, layout=layout)
    t = time.perf_counter()
    store.create("g", dim, None)
    for points in docs:
        store.upsert("g", points)
    store.seal("g")
    store.publish("g")
    store.close()
    return time.perf_counter() - t


def floor_ms(base: list[tuple[str, list[IndexPoint]]], n_points: int, embedder: UseEmbedder, queries: list[str]):
    """One query embedding plus an exact numpy scan over n_points chunk vectors."""
    matrix = np.stack([p.dense for _, ps in base for p in ps])
    matrix = np.concatenate([jitter(matrix, np.random.default_rng(1))] * (n_points // len(matrix) + 1))[:n_points]
    floor = []
    for q in queries:
        t = time.perf_counter()
        qv = embedder.embed([q])[0]
        scores = matrix @ qv
        np.argpartition(-scores, 10)[:10]
        floor.append((time.perf_counter() - t) * 1000)
    return floor


def serve_runs(
    root: Path, layout: IndexLayout, queries: list[LabeledQuery], args: argparse.Namespace
) -> list[dict[str, object]]:
    """Serving is measured in a fresh process, as `kb serve` would run: its RSS is the index plus the model."""
    runs = []
    for _ in range(args.rounds):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            args_ = (str(root), layout, queries, args.memory_limit, not args.no_rerank, args.rate)
            runs.append(pool.apply(serve_and_measure, args_))
    return runs


def report(
    name: str,
    n_points: int,
    index_s: float,
    floor: list[float],
    runs: list[dict[str, object]],
    args: argparse.Namespace,
) -> None:
    p50 = statistics.median(float(np.percentile(r["lat"], 50)) for r in runs)  # type: ignore[arg-type]
    p95 = statistics.median(float(np.percentile(r["lat"], 95)) for r in runs)  # type: ignore[arg-type]
    rss = statistics.median(float(r["rss"]) for r in runs)  # type: ignore[arg-type]
    rss_max = statistics.median(float(r["rss_max"]) for r in runs)  # type: ignore[arg-type]
    print(
        f"{name:<9} {n_points:>8} {index_s:>8.1f} {n_points / index_s:>7.0f} {p50:>7.2f} {p95:>7.2f} "
        f"{np.percentile(floor, 50):>9.2f} {np.percentile(floor, 95):>9.2f} {rss:>7.0f} {rss_max:>7.0f} "
        f"{runs[0]['r1']:>6.3f} {runs[0]['r3']:>6.3f}",
        flush=True,
    )
    for r in runs:  # the serving processes have exited: their cgroups are empty
        if r["group"]:
            os.rmdir(str(r["group"]))
    if args.memory_limit:
        peaks = [r["peak"] for r in runs]
        print(f"          inside a {args.memory_limit} MB memory cgroup: peak charged MB {peaks}", flush=True)
    if args.breakdown:
        parts: dict[str, float] = runs[-1]["parts"]  # type: ignore[assignment]
        top = sorted(parts.items(), key=lambda kv: -kv[1])[:8]
        print("          resident MB: " + ", ".join(f"{k} {v:.0f}" for k, v in top), flush=True)
        st: dict[str, tuple[float, float]] = runs[-1]["stages"]  # type: ignore[assignment]
        print("          stages p50/p95 ms: " + ", ".join(f"{k} {a:.1f}/{b:.1f}" for k, (a, b) in st.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument(
        "--layouts", nargs="+", default=["previous", "shipped"], choices=sorted(LAYOUTS), help="side by side"
    )
    ap.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="build each index once under DIR/<layout>-<size>/index and reuse it in later runs",
    )
    ap.add_argument("--no-rerank", action="store_true", help="search without the learned ranker (before session 31)")
    ap.add_argument("--rounds", type=int, default=1, help="serving measurements per index (medians are printed)")
    ap.add_argument(
        "--breakdown", action="store_true", help="also print where the resident memory is and each search stage's time"
    )
    ap.add_argument(
        "--memory-limit",
        type=int,
        default=None,
        metavar="MB",
        help="serve inside a memory cgroup capped at MB (needs a writable cgroup hierarchy, e.g. root in a container)",
    )
    ap.add_argument("--rate", type=float, default=0.0, help="searches a second while serving (0: back to back)")
    args = ap.parse_args()
    settings = get_settings()
    embedder = UseEmbedder(threads=settings.cpu_threads, dimensions=settings.embed_dimensions)
    lexical = LexicalEncoder(glossary.load(ROOT / "sops"))
    embedder.warm_up()
    lexical.warm_up()
    corpus = load_corpus([ROOT / "sops"], root=ROOT / "sops")
    cached = args.reuse / "base-points.pickle" if args.reuse else None
    t = time.perf_counter()
    if cached is not None and cached.is_file():  # the reused indexes were built from these very points
        base = pickle.loads(cached.read_bytes())
    else:
        indexer = Indexer(Path(tempfile.mkdtemp()), EdgeStore(Path(tempfile.mkdtemp())), embedder, lexical)
        base = [(sop_id, indexer.points_for(sop)) for sop_id, sop in corpus.sops.items()]
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(pickle.dumps(base))
    embed_s = time.perf_counter() - t
    n_base = sum(len(p) for _, p in base)
    n_vecs = sum(1 + len(p.sentences) for _, ps in base for p in ps)
    print(
        f"embedding (real model{', cached points' if cached and embed_s < 5 else ''}): {n_base} chunks "
        f"({n_vecs} vectors) in {embed_s:.1f} s = "
        f"{n_base / embed_s:.0f} chunks/s, {n_vecs / embed_s:.0f} texts/s"
    )
    queries = load_queries(ROOT / "eval" / "queries.jsonl")[: args.queries]
    print(
        f"{'layout':<9} {'chunks':>8} {'index s':>8} {'pts/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'floor p50':>9} "
        f"{'floor p95':>9} {'RSS MB':>7} {'max RSS':>7} {'R@1':>6} {'R@3':>6}"
    )
    for n in args.sizes:
        docs = synthetic(base, n)
        n_points = sum(len(d) for d in docs)
        floor = floor_ms(base, n_points, embedder, [q.query for q in queries])
        for name in args.layouts:
            layout = LAYOUTS[name]
            root = args.reuse / f"{name}-{n}" / "index" if args.reuse else Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
            if (root / "CURRENT").is_file():
                index_s = float("nan")
            else:
                shutil.rmtree(root, ignore_errors=True)
                index_s = build(root, layout, docs, embedder.dim)
            gc.collect()
            report(name, n_points, index_s, floor, serve_runs(root, layout, queries, args), args)
        del docs


if __name__ == "__main__":
    main()
