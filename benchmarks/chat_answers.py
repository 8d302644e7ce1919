"""How the tenant chat answers: right (the answer's source SOP is expected), wrong, or handed over.

In-scope: the `public` queries of a labelled set (by kind: `public_question`, and `hard_negative` where the set has
them). Out-of-scope questions must all be handed over (an answer to one counts as wrong).

    python benchmarks/chat_answers.py eval/queries.jsonl eval/chat_out_of_scope.jsonl --sops sops
    python benchmarks/chat_answers.py eval/blind/queries.jsonl eval/blind/out_of_scope.jsonl --sops eval/blind/sops

`--split tune|heldout` keeps one half of the in-scope queries (the halves of kb_service/trainer/evaluation.py);
An urgent answer shows a passage and hands over at once: it counts by its passage (right or wrong) in-scope, as
handed over out-of-scope. `--show` prints each wrong answer and hand-over (never use it on the blind set while tuning).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from _common import sample_kb

from kb_service.search.answers import ChatResponder
from kb_service.settings import get_settings
from kb_service.trainer.evaluation import load_queries


def _row(name: str, c: Counter[str]) -> str:
    total = c["right"] + c["wrong"] + c["handover"]
    n = total or 1
    return (
        f"{name:<16} n={total:>3}  right {c['right'] / n:6.1%}  wrong {c['wrong'] / n:6.1%}  "
        f"handed over {c['handover'] / n:6.1%}  (urgent: {c['urgent']})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("queries", type=Path)
    ap.add_argument("out_of_scope", type=Path)
    ap.add_argument("--sops", type=Path, default=Path("sops"))
    ap.add_argument("--split", default="all", choices=["all", "tune", "heldout"])
    ap.add_argument("--min-score", type=float, default=None, help="default: the shipped KB_CHAT_MIN_ANSWER_SCORE")
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    kb = sample_kb(args.sops)
    chat = ChatResponder.from_settings(kb.searcher, get_settings())
    if args.min_score is not None:
        chat.min_answer_score = args.min_score
    threshold = chat.min_answer_score
    by_kind: dict[str, Counter[str]] = {}
    for q in load_queries(args.queries, args.split):  # type: ignore[arg-type]
        if q.audience != "public":
            continue
        ans, _ = chat.answer(q.query)
        # An urgent answer both shows a passage (judged like any answer) and hands over.
        outcome = "handover" if not ans.sources else ("right" if ans.sources[0].sop_id in q.expected else "wrong")
        by_kind.setdefault(q.kind or "public", Counter())[outcome] += 1
        by_kind[q.kind or "public"]["urgent"] += ans.urgent
        if args.show and outcome != "right":
            got = ans.sources[0].sop_id + " · " + ans.sources[0].section if ans.sources else "-"
            print(f"  {outcome:<8} {q.query}  expected {q.expected[0]}  got {got}  conf {ans.confidence}")
    oos: Counter[str] = Counter()
    for line in args.out_of_scope.read_text(encoding="utf-8").splitlines():
        if line.strip():
            question = json.loads(line)["query"]
            ans, _ = chat.answer(question)
            oos["handover" if ans.handoff else "wrong"] += 1
            oos["urgent"] += ans.urgent
            if args.show and not ans.handoff:
                print(f"  answered out-of-scope: {question}  got {ans.sources[0].sop_id}")
    print(f"{args.queries} (threshold {threshold})")
    for kind, c in sorted(by_kind.items()):
        print(_row(kind, c))
    print(_row("out_of_scope", oos))
    kb.close()


if __name__ == "__main__":
    main()
