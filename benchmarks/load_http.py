"""HTTP load against a live `kb serve` on 127.0.0.1: requests/s and p50/p95/p99 latency at 1, 8 and 32
concurrent clients, with an error count. The script starts the server itself on a free loopback port, waits for
/healthz, runs each level for a bounded time (wrk, from Debian's `wrk` package, one thread so that the load
generator leaves the cores to the server) or a bounded count (`--tool httpx`), and stops the server.

    python benchmarks/load_http.py --data-dir data [--tool wrk|httpx] [--seconds 10] [--levels 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _common import ROOT

from kb_service.evaluation import load_queries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def level(base: str, queries: list[str], clients: int, total: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker(client: httpx.AsyncClient, wid: int) -> None:
        nonlocal errors
        for i in counter:
            q = queries[(i + wid) % len(queries)]
            t = time.perf_counter()
            try:
                r = await client.post(f"{base}/v1/search", json={"query": q, "top_k": 5})
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
    return total / elapsed, latencies, errors


def run_wrk(base: str, queries: list[str], clients: int, seconds: int) -> tuple[float, float, float, float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
        fh.write("\n".join(q.replace("\n", " ") for q in queries))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(Path(__file__).with_name("wrk_search.lua")),
            base,
        ],
        env={**os.environ, "WRK_QUERIES": fh.name},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(kv.split("=") for kv in out.split("RESULT ", 1)[1].split())
    return (
        float(fields["rps"]),
        float(fields["p50"]),
        float(fields["p95"]),
        float(fields["p99"]),
        int(fields["errors"]),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--sops", type=Path, default=ROOT / "sops")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--tool", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx")
    ap.add_argument("--seconds", type=int, default=10, help="duration of each level with wrk")
    args = ap.parse_args()
    port = free_port()
    env = {**os.environ, "KB_DATA_DIR": str(args.data_dir), "KB_SOPS_DIR": str(args.sops), "KB_API_KEYS": ""}
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        cwd=ROOT,
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
            sys.exit("server did not become healthy")
        health = httpx.get(f"{base}/healthz").json()
        print(f"server: {health['documents']} SOPs, {health['chunks']} chunks, {health['embedder']}")
        queries = [q.query for q in load_queries(ROOT / "eval" / "queries.jsonl")]
        asyncio.run(level(base, queries, 4, 40))  # warm-up
        print(f"{'clients':>7} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}")
        for clients in args.levels:
            rps, lat, errors = asyncio.run(level(base, queries, clients, args.requests))
            print(
                f"{clients:>7} {rps:>7.1f} {np.percentile(lat, 50):>7.1f} {np.percentile(lat, 95):>7.1f} "
                f"{np.percentile(lat, 99):>7.1f} {errors:>6}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
