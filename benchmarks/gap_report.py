"""How long the gap report takes over a large query log: synthetic weak agent searches (texts repeated, 50 SOPs) with
opens, copies and votes, the report computed twice (the second run as a trainer's refresh would).

    python benchmarks/gap_report.py                  # 100,000 searches, 5,000 events and 5,000 votes
    python benchmarks/gap_report.py --queries 20000

Run it from two checkouts to compare releases (each inserts its own repository on sys.path).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_service.db.logbook import Logbook
from kb_service.embedding.embedders import HashEmbedder
from kb_service.trainer.gaps import GapReporter

QUERY = (
    "INSERT INTO queries (ts, source, audience, query, result_ids, top_sop, top_score, confidence, handoff, took_ms,"
    " client) VALUES (:ts, 'search', 'agent', :q, :ids, :sop, 0.5, :conf, 0, 5.0, NULL)"
)


def fill(log: Logbook, n: int, actions: int, seed: int = 1) -> None:
    rng, now = random.Random(seed), time.time()
    rows = []
    for i in range(n):
        sop = f"sop-{rng.randint(0, 49)}"
        rows.append(
            {"ts": now - 3600 + i * 3000 / n, "q": f"问题{rng.randint(0, n // 5)}号", "ids": f'["{sop}"]', "sop": sop,
             "conf": rng.random() * 0.6}
        )  # fmt: skip
    with log.transaction() as c:
        c.executemany(QUERY, rows)
        ids = [int(r["id"]) for r in c.execute("SELECT id FROM queries").rows]
        events = [{"q": rng.choice(ids), "s": f"sop-{rng.randint(0, 49)}"} for _ in range(actions)]
        c.executemany("INSERT INTO events (ts, query_id, sop_id, type, who) VALUES (0, :q, :s, 'copy', 'a')", events)
        c.executemany(
            "INSERT INTO feedback (ts, query_id, sop_id, vote, source, comment) VALUES (0, :q, :s, 1, 'console', '')",
            events,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--actions", type=int, default=5_000, help="opens/copies, and as many 👍 votes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-gaps-") as tmp:
        log = Logbook(Path(tmp) / "db.sqlite3")
        fill(log, args.queries, args.actions)
        for run in (1, 2):
            started = time.perf_counter()
            report = GapReporter(log, HashEmbedder(), 0.6).report(time.time() - 7200, time.time() + 1, {})
            took = time.perf_counter() - started
            print(f"run {run}: {took:.2f} s, {len(report.unanswered)} groups of unanswered questions")
        log.close()


if __name__ == "__main__":
    main()
