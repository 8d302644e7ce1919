"""Live-call assist measured against a running server: labelled tenant-phone and speech-transcript queries streamed as
calls over WS /v1/assist, each cut into segments, at several numbers of concurrent calls.

Reports: top-1 after the last segment (and plain POST /v1/search on the whole text, for comparison), how many
segments until the right SOP is first, and segment-to-suggestion latency p50/p95 (client round trip, final segments)
per concurrency level. Each call is its own connection; a call sends its next segment `--pause` seconds after the
answer to the previous one (speech arrives a segment every few seconds), so N concurrent calls are N agents' calls.

    kb serve --port 8000 &     # over the SOP folder the queries are labelled for
    python benchmarks/assist_calls.py eval/queries.jsonl --url http://127.0.0.1:8000 --key $AGENT_KEY
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kb_service.trainer.evaluation import LabeledQuery, load_queries

KINDS = ("tenant_phone", "asr_noisy")
_CLAUSE = re.compile(r"[，。！？!?；;、,\s]+")
MIN_SEGMENT = 4  # characters: shorter pieces join the next one
SPLIT_AT = 14  # a query without punctuation longer than this is cut into pieces of about this many characters


def segments_of(text: str) -> list[str]:
    """A query cut as a recogniser would send it: at pauses (punctuation, spaces), else every ~SPLIT_AT characters."""
    pieces = [p for p in _CLAUSE.split(text) if p]
    if len(pieces) <= 1:
        whole = pieces[0] if pieces else text
        n = max(1, round(len(whole) / SPLIT_AT))
        size = -(-len(whole) // n)
        pieces = [whole[i : i + size] for i in range(0, len(whole), size)]
    merged: list[str] = []
    for p in pieces:
        if merged and len(merged[-1]) < MIN_SEGMENT:
            merged[-1] += p
        else:
            merged.append(p)
    if len(merged) > 1 and len(merged[-1]) < MIN_SEGMENT:
        last = merged.pop()
        merged[-1] += last
    return merged


@dataclass
class CallResult:
    expected: tuple[str, ...]
    tops: list[str | None] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def right_at_end(self) -> bool:
        return bool(self.tops) and self.tops[-1] in self.expected

    @property
    def first_right(self) -> int | None:
        return next((i + 1 for i, t in enumerate(self.tops) if t in self.expected), None)


async def run_call(url: str, headers: dict[str, str], call_id: str, q: LabeledQuery, pause: float) -> CallResult:
    result = CallResult(q.expected)
    async with connect(url, additional_headers=headers, max_size=2**22) as ws:
        for i, text in enumerate(segments_of(q.query)):
            if i:
                await asyncio.sleep(pause)
            msg = {"type": "segment", "call_id": call_id, "speaker": "tenant", "text": text, "final": True}
            started = time.perf_counter()
            await ws.send(json.dumps(msg, ensure_ascii=False))
            reply = json.loads(await ws.recv())
            result.latencies.append((time.perf_counter() - started) * 1000)
            if reply.get("type") != "suggestions":
                raise RuntimeError(f"unexpected reply: {reply}")
            result.tops.append(reply["items"][0]["sop_id"] if reply["items"] else None)
        await ws.send(json.dumps({"type": "end", "call_id": call_id}))
    return result


async def run_level(
    url: str, headers: dict[str, str], queries: list[LabeledQuery], concurrency: int, pause: float
) -> tuple[list[CallResult], float]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, q: LabeledQuery) -> CallResult:
        async with gate:
            return await run_call(url, headers, f"bench-{concurrency}-{i}", q, pause)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i, q) for i, q in enumerate(queries)))
    return list(results), time.perf_counter() - started


def plain_search(base: str, headers: dict[str, str], queries: list[LabeledQuery]) -> tuple[float, list[float]]:
    right, took = 0, []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        for q in queries:
            started = time.perf_counter()
            body = c.post("/v1/search", json={"query": q.query, "top_k": 5, "audience": "agent"}).json()
            took.append((time.perf_counter() - started) * 1000)
            right += bool(body["results"]) and body["results"][0]["sop_id"] in q.expected
    return right / len(queries), took


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def summary(results: list[CallResult]) -> dict[str, Any]:
    lat = [x for r in results for x in r.latencies]
    firsts = [r.first_right for r in results if r.first_right is not None]
    return {
        "calls": len(results),
        "segments": sum(len(r.tops) for r in results),
        "top1_after_last": round(sum(r.right_at_end for r in results) / len(results), 4),
        "ever_first": round(len(firsts) / len(results), 4),
        "segments_until_first_mean": round(statistics.mean(firsts), 2) if firsts else None,
        "first_on_segment_1": round(sum(f == 1 for f in firsts) / len(results), 4),
        "latency_p50_ms": round(pct(lat, 50), 1),
        "latency_p95_ms": round(pct(lat, 95), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--key", default="")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between a call's segments")
    ap.add_argument("--calls-at-1", type=int, default=30, help="calls run one at a time (latency only: slow)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    queries = [q for q in load_queries(args.queries) if q.kind in args.kinds]
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    ws_url = "ws" + args.url.rstrip("/")[4:] + "/v1/assist"
    plain, plain_took = plain_search(args.url, headers, queries)
    cut = [len(segments_of(q.query)) for q in queries]
    print(
        f"{args.queries} kinds={','.join(args.kinds)}: {len(queries)} calls, {statistics.mean(cut):.2f} segments each"
    )
    print(f"plain search on the whole text: top-1 {plain:.3f}, p50 {pct(plain_took, 50):.1f} ms")
    figures: dict[str, Any] = {"calls": len(queries), "plain_top1": round(plain, 4), "levels": {}}
    for n in args.concurrency:
        chosen = queries[: args.calls_at_1] if n == 1 else queries
        results, wall = asyncio.run(run_level(ws_url, headers, chosen, n, args.pause))
        s = summary(results)
        figures["levels"][n] = s
        print(
            f"concurrency {n:>2}: calls {s['calls']:>3}  top-1 after last {s['top1_after_last']:.3f}  "
            f"right first at some point {s['ever_first']:.3f} (mean segment {s['segments_until_first_mean']})  "
            f"latency p50 {s['latency_p50_ms']} ms p95 {s['latency_p95_ms']} ms  ({wall:.0f} s)"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
