"""HTTP load against a live `kb serve` on 127.0.0.1: requests/s and p50/p95/p99 latency at 1, 8 and 32
concurrent clients, with an error count, optionally next to a baseline server built from another git revision.

The script starts the server itself on a free loopback port, waits for /healthz, runs each level for a bounded time
(wrk, from Debian's `wrk` package, one thread so that the load generator leaves the cores to the server) or a
bounded count (`--tool httpx`, much slower: the Python client competes with the server for the cores), and stops
the server. Every request is a different labeled query from eval/queries.jsonl, in turn.

With `--baseline REV` a second server runs the code of that git revision (a temporary worktree) on the same index;
the two are measured alternately, level by level, `--rounds` times, and the table shows medians over the rounds.
Shared machines are noisy from one minute to the next; alternating runs compares like with like.

    python benchmarks/load_http.py --data-dir data [--tool wrk|httpx] [--seconds 10] [--levels 1 8 32]
    python benchmarks/load_http.py --data-dir data --baseline 9788c08 --rounds 5 --levels 8
    python benchmarks/load_http.py --data-dir data --endpoint chat   # the tenant chat (rate limit raised for it)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from _common import ROOT

from kb_service.trainer.evaluation import load_queries


@dataclass
class Figures:
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ENDPOINTS = {"search": ("/v1/search", "query"), "chat": ("/v1/chat", "question")}


async def run_httpx(base: str, queries: list[str], clients: int, total: int, endpoint: str = "search") -> Figures:
    path, field = ENDPOINTS[endpoint]
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker(client: httpx.AsyncClient, wid: int) -> None:
        nonlocal errors
        for i in counter:
            q = queries[(i + wid) % len(queries)]
            t = time.perf_counter()
            try:
                r = await client.post(f"{base}{path}", json={field: q})
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - t) * 1000)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client, w) for w in range(clients)))
        elapsed = time.perf_counter() - started
    p50, p95, p99 = (float(np.percentile(latencies, p)) for p in (50, 95, 99))
    return Figures(total / elapsed, p50, p95, p99, errors)


def run_wrk(base: str, query_file: Path, clients: int, seconds: int, endpoint: str = "search") -> Figures:
    script = str(Path(__file__).with_name("wrk_search.lua"))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", script, base],
        env={**os.environ, "WRK_QUERIES": str(query_file), "WRK_PATH": ENDPOINTS[endpoint][0]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(kv.split("=") for kv in out.split("RESULT ", 1)[1].split())
    return Figures(
        float(fields["rps"]), float(fields["p50"]), float(fields["p95"]), float(fields["p99"]), int(fields["errors"])
    )


@contextlib.contextmanager
def serving(code_dir: Path, data_dir: Path, sops: Path, queries: list[str]) -> Iterator[str]:
    """`kb serve` (one process per core) from the code in `code_dir`; yields its base URL once warm."""
    port = free_port()
    # The chat's per-client rate limit would answer most of a load test with 429: raised for the benchmark only.
    env = {
        **os.environ,
        "KB_DATA_DIR": str(data_dir),
        "KB_SOPS_DIR": str(sops),
        "KB_API_KEYS": "",
        "KB_CHAT_RATE_LIMIT": "100000000",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        cwd=code_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            sys.exit(f"server from {code_dir} did not become healthy")
        asyncio.run(run_httpx(base, queries, 4, 40))  # warm-up
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kb-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--sops", type=Path, default=ROOT / "sops")
    ap.add_argument("--requests", type=int, default=400, help="requests per level with httpx")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--tool", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx")
    ap.add_argument("--seconds", type=int, default=10, help="duration of each level with wrk")
    ap.add_argument("--baseline", metavar="REV", help="also serve this git revision and measure both alternately")
    ap.add_argument("--rounds", type=int, default=1, help="measurements per level (medians are shown)")
    ap.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="search", help="POST /v1/search or /v1/chat")
    args = ap.parse_args()
    queries = [q.query for q in load_queries(ROOT / "eval" / "queries.jsonl")]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        fh.write("\n".join(q.replace("\n", " ") for q in queries))
    query_file = Path(fh.name)
    data_dir, sops = args.data_dir.resolve(), args.sops.resolve()

    def measure(base: str, clients: int) -> Figures:
        if args.tool == "wrk":
            return run_wrk(base, query_file, clients, args.seconds, args.endpoint)
        return asyncio.run(run_httpx(base, queries, clients, args.requests, args.endpoint))

    with contextlib.ExitStack() as stack:
        servers = {"current": stack.enter_context(serving(ROOT, data_dir, sops, queries))}
        if args.baseline:
            code = stack.enter_context(worktree(args.baseline))
            servers[f"baseline {args.baseline}"] = stack.enter_context(serving(code, data_dir, sops, queries))
        health = httpx.get(f"{servers['current']}/healthz").json()
        print(f"server: {health['documents']} SOPs, {health['chunks']} chunks, {health['embedder']}")
        target = ENDPOINTS[args.endpoint][0]
        print(f"load generator: {args.tool} on {target}; {args.rounds} round(s) per level, medians shown")
        print(f"{'server':<18} {'clients':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}")
        for clients in args.levels:
            runs: dict[str, list[Figures]] = {name: [] for name in servers}
            for r in range(args.rounds):
                order = list(servers.items()) if r % 2 == 0 else list(reversed(servers.items()))
                for name, base in order:
                    runs[name].append(measure(base, clients))
            for name, figures in runs.items():
                med = {k: statistics.median(getattr(f, k) for f in figures) for k in ("rps", "p50", "p95", "p99")}
                errors = sum(f.errors for f in figures)
                print(
                    f"{name:<18} {clients:>7} {med['rps']:>7.1f} {med['p50']:>7.1f} {med['p95']:>7.1f} "
                    f"{med['p99']:>7.1f} {errors:>6}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
