"""Live-call assist measured in process (no server, no latency): each labelled tenant-phone and speech-transcript query
streamed as a call through the Follower, cut into segments as `assist_calls.py` cuts them, against plain search on the
whole text. Fast enough to compare assist settings on several sets side by side in one run.

Reports per set: plain search top-1, assist top-1 after the last segment, calls where assist is below / above plain
search, and how many calls a topic change cut in two (every call here is one need, so each one is a false topic change).

    python benchmarks/assist_offline.py                       # repository, without examples, dev, blind
    python benchmarks/assist_offline.py --variants shipped no_topic_change
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from _common import ROOT, sample_kb, without_examples
from assist_calls import KINDS, segments_of

from kb_service.assist.context import CallContext
from kb_service.assist.follower import AssistConfig, Follower
from kb_service.search.confidence import Confidence
from kb_service.trainer.evaluation import load_queries

DEFAULT_SETS = (
    "repo=eval/queries.jsonl:sops",
    "repo-noex=eval/queries.jsonl:sops-noex",
    "dev=eval/dev/queries.jsonl:eval/dev/sops",
    "blind=eval/blind/queries.jsonl:eval/blind/sops",
    "third=eval/third/queries.jsonl:eval/third/sops",
    "fourth=eval/fourth/queries.jsonl:eval/fourth/sops",
)
_BASE = AssistConfig()
VARIANTS: dict[str, AssistConfig] = {
    "shipped": _BASE,
    "no_latest": replace(_BASE, latest_weight=0.0),
    "no_topic_change": replace(_BASE, topic_depth=_BASE.search_k + 100),
    "announced_not_weak": replace(_BASE, announced_confidence=0.422),  # the weak threshold
    "no_turn_change": replace(_BASE, turn_confidence=1.01),
}


def run_set(kb, queries, variants: list[str]) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    calls = [q for q in queries if q.kind in KINDS]
    plain = [kb.searcher.search(q.query, top_k=5, audience="agent").results for q in calls]
    plain_ok = [bool(r) and r[0].sop_id in q.expected for q, r in zip(calls, plain, strict=True)]
    out: dict[str, dict[str, float]] = {}
    for name in variants:
        follower = Follower(kb.searcher, Confidence(), VARIANTS[name])
        ok, changes = [], 0
        for i, q in enumerate(calls):
            ctx = CallContext(call_id=f"c{i}")
            answer = None
            for piece in segments_of(q.query):
                answer = follower.step(ctx, "tenant", piece, True)
            first = answer.items[0]["sop_id"] if answer and answer.items else None
            ok.append(first in q.expected)
            changes += ctx.topics > 1
        n = len(calls)
        out[name] = {
            "n": n,
            "plain": sum(plain_ok) / n,
            "assist": sum(ok) / n,
            "below": sum(p and not a for p, a in zip(plain_ok, ok, strict=True)),
            "above": sum(a and not p for p, a in zip(plain_ok, ok, strict=True)),
            "topic_changes": changes,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", help="name=queries.jsonl:sops_dir ('-noex' suffix: examples left out)")
    ap.add_argument("--variants", nargs="+", default=["shipped"], choices=sorted(VARIANTS))
    args = ap.parse_args()
    sets = args.set or [s for s in DEFAULT_SETS if (ROOT / s.split("=")[1].split(":")[0]).exists()]
    print(f"{'set':<10} {'variant':<16} {'calls':>5} {'plain':>6} {'assist':>6} {'below':>5} {'above':>5} {'topic':>5}")
    for spec in sets:
        name, rest = spec.split("=", 1)
        queries_path, sops = rest.split(":")[:2]
        folder = without_examples(ROOT / sops.removesuffix("-noex")) if sops.endswith("-noex") else ROOT / sops
        kb = sample_kb(Path(folder))
        try:
            for variant, m in run_set(kb, load_queries(ROOT / queries_path, "all"), args.variants).items():
                print(
                    f"{name:<10} {variant:<16} {m['n']:>5} {m['plain']:>6.3f} {m['assist']:>6.3f}"
                    f" {m['below']:>5} {m['above']:>5} {m['topic_changes']:>5}",
                    flush=True,
                )
        finally:
            kb.close()


if __name__ == "__main__":
    main()
