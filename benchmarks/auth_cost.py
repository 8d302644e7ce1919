"""What resolving the caller costs per request (`api.deps.resolve_caller`): a named account's key from the
per-process cache, a KB_API_KEYS key, no key, and a cache miss (a database read on a worker thread).

    python benchmarks/auth_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.deps import resolve_caller
from kb_service.accounts.directory import Directory
from kb_service.accounts.store import AccountStore
from kb_service.db.logbook import Logbook

ENV_KEY = "agent-env-key-123456"


async def per_request(state: Any, header: str | None, n: int) -> float:
    await resolve_caller(state, header)  # warm the cache
    started = time.perf_counter()
    for _ in range(n):
        await resolve_caller(state, header)
    return (time.perf_counter() - started) / n * 1e6


async def main(requests: int) -> None:
    logbook = Logbook(Path(tempfile.mkdtemp()) / "service.sqlite3")
    store = AccountStore(logbook)
    _, key = store.add("bench", "agent", by="bench")
    directory = Directory({ENV_KEY: "agent"})
    directory.attach(store)
    state = SimpleNamespace(accounts=directory)
    print(f"account key (cached):  {await per_request(state, 'Bearer ' + key, requests):8.1f} µs/request")
    print(f"KB_API_KEYS key:       {await per_request(state, 'Bearer ' + ENV_KEY, requests):8.1f} µs/request")
    print(f"no key:                {await per_request(state, None, requests):8.1f} µs/request")
    directory.ttl = 0
    print(f"account key, no cache: {await per_request(state, 'Bearer ' + key, max(1, requests // 40)):8.1f} µs/request")
    logbook.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=20000, help="per kind of caller (a fortieth without the cache)")
    asyncio.run(main(ap.parse_args().requests))
