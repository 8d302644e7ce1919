"""Live-call assist on whole calls, in process: tenant and agent turns, topics announced or not, a topic the tenant
comes back to. Each call of a labelled file (`eval/calls_multi.jsonl`: every tenant segment names the SOP the agent
should see first after it) is streamed through the Follower segment by segment, beside two plain searches: the
latest tenant segment alone, and all the tenant's words so far.

Reports per variant:
- first right: tenant segments after which the expected SOP is the first suggestion;
- at a switch: segments where the expected SOP differs from the one before (a new or returning topic), first right
  there (within one segment, as the issue asks) and by the next tenant segment;
- steady: the other tenant segments (the topic goes on), first right;
- false changes: `topic_changed` on a segment whose expected SOP is the one before.

    python benchmarks/assist_multi.py [--calls eval/calls_multi.jsonl] [--sops sops] [--variants shipped no_latest]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, sample_kb
from assist_offline import VARIANTS

from kb_service.assist.context import CallContext
from kb_service.assist.follower import Follower
from kb_service.search.confidence import Confidence


@dataclass
class Tally:
    right: int = 0
    segments: int = 0
    switch_right: int = 0
    switch_next: int = 0
    switches: int = 0
    steady_right: int = 0
    steady: int = 0
    false_changes: int = 0
    misses: list[str] = field(default_factory=list)

    def row(self, name: str) -> str:
        def pct(a: int, b: int) -> str:
            return f"{a / b:6.1%} ({a}/{b})" if b else "     -"

        return (
            f"{name:<18} first right {pct(self.right, self.segments)}"
            f"  at a switch {pct(self.switch_right, self.switches)}"
            f"  by the next {pct(self.switch_next, self.switches)}  steady {pct(self.steady_right, self.steady)}"
            f"  false changes {self.false_changes}"
        )


def load_calls(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _score(tally: Tally, firsts: list[str | None], expects: list[str], changed: list[bool], call: str) -> None:
    for i, (first, expect) in enumerate(zip(firsts, expects, strict=True)):
        ok = first == expect
        tally.segments += 1
        tally.right += ok
        if i > 0 and expect != expects[i - 1]:
            tally.switches += 1
            tally.switch_right += ok
            tally.switch_next += ok or (i + 1 < len(firsts) and firsts[i + 1] == expect)
        else:
            tally.steady += 1
            tally.steady_right += ok
            tally.false_changes += changed[i] and i > 0
        if not ok:
            tally.misses.append(f"{call}#{i}: {first} (expected {expect})")


def run(kb, calls: list[dict[str, object]], variants: list[str]) -> dict[str, Tally]:  # type: ignore[no-untyped-def]
    out: dict[str, Tally] = {}
    for name in variants:
        follower = Follower(kb.searcher, Confidence(), VARIANTS[name])
        tally = out[name] = Tally()
        for call in calls:
            ctx = CallContext(str(call["id"]))
            firsts: list[str | None] = []
            expects: list[str] = []
            changed: list[bool] = []
            for seg in call["segments"]:  # type: ignore[attr-defined]
                answer = follower.step(ctx, seg["speaker"], seg["text"], True)
                if seg["speaker"] != "tenant" or not seg.get("expect"):
                    continue
                firsts.append(answer.items[0]["sop_id"] if answer and answer.items else None)
                expects.append(seg["expect"])
                changed.append(bool(answer and answer.topic_changed))
            _score(tally, firsts, expects, changed, str(call["id"]))
    for label, whole in (("search: latest", False), ("search: all so far", True)):
        tally = out[label] = Tally()
        for call in calls:
            said: list[str] = []
            firsts, expects = [], []
            for seg in call["segments"]:  # type: ignore[attr-defined]
                if seg["speaker"] != "tenant":
                    continue
                said.append(seg["text"])
                if not seg.get("expect"):
                    continue
                query = "，".join(said)[-240:] if whole else seg["text"]
                hits = kb.searcher.search(query, top_k=3, audience="agent").results
                firsts.append(hits[0].sop_id if hits else None)
                expects.append(seg["expect"])
            _score(tally, firsts, expects, [False] * len(firsts), str(call["id"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", default="eval/calls_multi.jsonl")
    ap.add_argument("--sops", default="sops")
    ap.add_argument("--variants", nargs="+", default=["shipped"], choices=sorted(VARIANTS))
    ap.add_argument("--show", action="store_true", help="list the segments where the first suggestion is wrong")
    args = ap.parse_args()
    calls = load_calls(ROOT / args.calls)
    kb = sample_kb(ROOT / args.sops)
    try:
        results = run(kb, calls, args.variants)
    finally:
        kb.close()
    print(f"{args.calls}: {len(calls)} calls")
    for name, tally in results.items():
        print(tally.row(name), flush=True)
        if args.show and name in args.variants:
            print("  " + "\n  ".join(tally.misses))


if __name__ == "__main__":
    main()
