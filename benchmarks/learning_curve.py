"""Learning curve: how much agent search improves once agents' 👍 have taught it, measured through the HTTP API.

For each labeled set the script starts the real service (`kb serve`, two worker processes, an agent key) on a fresh
temporary data directory with the set's SOP folder ingested, then:

1. splits each SOP's queries into two halves by content hash (the same split every run): `replay` and `held out`;
2. measures R@1 / R@3 / MRR@10 of agent search on the held-out half (before);
3. replays the other half as agents would: search, then 👍 on the right SOP with the search's `query_id`
   (`POST /v1/feedback`), even when that SOP was not among the results;
4. waits until the learned state applies in every worker (the last replayed phrasing ranks its SOP first on fresh
   connections), and measures the held-out half again (after), plus the replayed half itself.

    python benchmarks/learning_curve.py                    # the tuning set and the blind corpus
    python benchmarks/learning_curve.py --set tune=eval/queries.jsonl:sops

It ends with the cost the learned channel adds to a search: its stage time in the searches after the replay, and its
match over 3,000 learned phrasings in process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from _common import ROOT

from kb_service.text.danger import DangerSignals
from kb_service.trainer.evaluation import LabeledQuery, load_queries

AGENT = "bench-agent-key-0001"
DEFAULT_SETS = ["tune=eval/queries.jsonl:sops", "blind=eval/blind/queries.jsonl:eval/blind/sops"]


def halves(queries: list[LabeledQuery]) -> tuple[list[LabeledQuery], list[LabeledQuery]]:
    """(replay, held out): each SOP's queries (by first expected SOP) ordered by a hash of their text, the first
    half replayed. Deterministic, and independent of the file's order."""
    by_sop: dict[str, list[LabeledQuery]] = defaultdict(list)
    for q in queries:
        by_sop[q.expected[0]].append(q)
    replay: list[LabeledQuery] = []
    held: list[LabeledQuery] = []
    for group in by_sop.values():
        ordered = sorted(group, key=lambda q: (zlib.crc32(q.query.encode("utf-8")), q.query))
        replay += ordered[: len(ordered) // 2]
        held += ordered[len(ordered) // 2 :]
    return replay, held


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def service(sops: Path, workers: int) -> Iterator[str]:
    """`kb serve` over a fresh index of `sops` in a temporary data directory; yields the base URL."""
    work = Path(tempfile.mkdtemp(prefix="kb-learn-"))
    env = {
        **os.environ,
        "KB_DATA_DIR": str(work / "data"),
        "KB_SOPS_DIR": str(sops),
        "KB_API_KEYS": f"agent:{AGENT}",
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run([sys.executable, "-m", "cli.main", "ingest"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"the service did not start: {(work / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.5)
        time.sleep(2)  # every worker past its own start-up
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def search(client: httpx.Client, query: str) -> dict[str, object]:
    r = client.post("/v1/search", json={"query": query, "top_k": 10, "audience": "agent"})
    r.raise_for_status()
    body: dict[str, object] = r.json()
    return body


def measure(client: httpx.Client, queries: list[LabeledQuery]) -> tuple[dict[str, float], list[float]]:
    """R@1, R@3 and MRR@10 of agent search, and the learned channel's stage time of each search (ms)."""
    ranks: list[int | None] = []
    stage: list[float] = []
    for q in queries:
        body = search(client, q.query)
        ids = [h["sop_id"] for h in body["results"]]  # type: ignore[attr-defined, index]
        ranks.append(next((i for i, s in enumerate(ids, 1) if s in q.expected), None))
        stage.append(float(body["timings_ms"].get("learned", 0.0)))  # type: ignore[attr-defined]
    n = len(ranks) or 1
    return {
        "r1": sum(r == 1 for r in ranks) / n,
        "r3": sum(r is not None and r <= 3 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r is not None) / n,
    }, stage


def replay(client: httpx.Client, queries: list[LabeledQuery]) -> dict[str, int]:
    """Search, then 👍 on the right SOP with the search's query_id; counts of what each vote taught."""
    outcomes: dict[str, int] = defaultdict(int)
    for q in queries:
        query_id = search(client, q.query)["query_id"]
        r = client.post("/v1/feedback", json={"query_id": query_id, "sop_id": q.expected[0], "vote": 1})
        r.raise_for_status()
        outcomes[str(r.json().get("learned"))] += 1
    return dict(outcomes)


def wait_applied(base: str, probe: LabeledQuery, seconds: float = 30) -> float:
    """Seconds until the probe ranks its SOP first on 6 fresh connections in a row (spread over the workers)."""
    started = time.time()
    streak = 0
    while time.time() - started < seconds:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {AGENT}"}, timeout=30) as fresh:
            top = search(fresh, probe.query)["results"]
        streak = streak + 1 if top and top[0]["sop_id"] == probe.expected[0] else 0  # type: ignore[index]
        if streak >= 6:
            return time.time() - started
        time.sleep(0.1)
    raise SystemExit(f"learned state not applied after {seconds} s")  # (no query text: the blind set stays unread)


def run_set(name: str, queries_path: Path, sops: Path, workers: int) -> dict[str, object]:
    queries = [q for q in load_queries(queries_path) if q.expected]
    learn, held = halves(queries)
    with service(sops, workers) as base:
        headers = {"Authorization": f"Bearer {AGENT}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            before, _ = measure(client, held)
            replay_before, _ = measure(client, learn)
            started = time.time()
            outcomes = replay(client, learn)
            replay_s = time.time() - started
            # The probe is a phrasing without danger signals: for those an emergency procedure stays first whatever
            # agents taught (着火了应该怎么逃生 keeps the fire procedure above the taught safety guide)
            danger = DangerSignals.builtin()
            applied_s = wait_applied(base, next((q for q in reversed(learn) if not danger.found(q.query)), learn[-1]))
            after, stage = measure(client, held)
            replay_after, _ = measure(client, learn)
    return {
        "name": name,
        "n_held": len(held),
        "n_replay": len(learn),
        "before": before,
        "after": after,
        "replay_before": replay_before,
        "replay_after": replay_after,
        "outcomes": outcomes,
        "replay_s": replay_s,
        "applied_s": applied_s,
        "stage_ms": stage,
    }


def channel_cost(n: int = 3000, dim: int = 512, repeats: int = 2000) -> tuple[float, float]:
    """p50/p95 ms of the learned channel's match (matrix product, top candidates, character overlap) over n learned
    phrasings with random vectors, on one BLAS thread as in the service."""
    from threadpoolctl import threadpool_limits

    from kb_service.db.logbook import Logbook
    from kb_service.learning.matcher import LearnedIndex
    from kb_service.learning.store import LearnedStore

    class Named:  # stands in for the model: the vectors are stored, nothing is embedded
        name, dim = "bench", 512

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    db = Path(tempfile.mkdtemp(prefix="kb-learned-")) / "service.sqlite3"
    Logbook(db).close()
    store = LearnedStore(db)
    words = "漏水停电门卡钥匙空调热水押金退租续租噪音快递停车宠物保洁投诉"
    for i, vec in enumerate(vectors):
        text = "".join(words[j] for j in rng.integers(0, len(words), 12))
        store.learn(
            sop_id=f"sop-{i % 200}",
            phrasing=f"{text}{i}",
            vector=vec,
            embedder="bench",
            source="vote",
            who="bench",
            query_id=i + 1,
        )
    index = LearnedIndex(store, Named())  # type: ignore[arg-type]
    index.sync()
    allowed = {f"sop-{i}" for i in range(200)}
    queries = rng.standard_normal((100, dim)).astype(np.float32)
    times = []
    with threadpool_limits(limits=1, user_api="blas"):
        for i in range(repeats):
            t = time.perf_counter()
            index.match(queries[i % 100], "楼上漏水了滴到我家天花板", allowed)
            times.append((time.perf_counter() - t) * 1000)
    store.close()
    shutil.rmtree(db.parent, ignore_errors=True)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", help="name=queries.jsonl:sops_dir (default: the tuning set and blind)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sets = args.set or [s for s in DEFAULT_SETS if (ROOT / s.split("=")[1].split(":")[0]).exists()]
    rows = []
    for spec in sets:
        name, rest = spec.split("=", 1)
        queries_path, sops = rest.split(":")
        rows.append(run_set(name, ROOT / queries_path, ROOT / sops, args.workers))
        print(f"[{name}] done", file=sys.stderr, flush=True)
    print(f"Agent search through the HTTP API ({args.workers} workers): half of each SOP's queries replayed as 👍")
    print(
        f"{'set':<8}{'held out':>9}{'R@1 before':>12}{'R@1 after':>11}{'R@3 before':>12}{'R@3 after':>11}"
        f"{'MRR before':>12}{'MRR after':>11}{'replayed R@1 before→after':>28}"
    )
    for r in rows:
        b, a, rb, ra = r["before"], r["after"], r["replay_before"], r["replay_after"]
        print(
            f"{r['name']:<8}{r['n_held']:>9}{b['r1']:>12.3f}{a['r1']:>11.3f}{b['r3']:>12.3f}{a['r3']:>11.3f}"  # type: ignore[index]
            f"{b['mrr']:>12.3f}{a['mrr']:>11.3f}{rb['r1']:>18.3f} → {ra['r1']:.3f} ({r['n_replay']})"
        )  # type: ignore[index]
    for r in rows:
        stage = np.array(r["stage_ms"])  # type: ignore[arg-type]
        print(
            f"{r['name']}: votes {r['outcomes']} in {r['replay_s']:.1f} s; applied in every worker "
            f"{r['applied_s']:.1f} s after the last vote; learned stage p50 {np.percentile(stage, 50):.3f} ms, "
            f"p95 {np.percentile(stage, 95):.3f} ms"
        )
    p50, p95 = channel_cost()
    print(f"learned channel match over 3,000 learned phrasings (512-d, in process): p50 {p50:.3f} ms, p95 {p95:.3f} ms")


if __name__ == "__main__":
    main()
