"""How the tenant chat treats emergencies: of the labelled queries (every kind) whose expected SOP is urgent, how many
the chat flags urgent and how many of those show a safety instruction from a public SOP; of all other queries, how
many it flags urgent (false alarms). Previous (only the best-matching SOP decides, no instruction search) beside
shipped (danger signals too).

    python benchmarks/chat_urgent.py eval/queries.jsonl --sops sops
    python benchmarks/chat_urgent.py eval/blind/queries.jsonl --sops eval/blind/sops

`--split tune|heldout` keeps one half (kb_service/trainer/evaluation.py); `--extra FILE` adds questions, one per
line, that are all emergencies (e.g. eval/chat_urgent.txt), or JSONL labelled `urgent` true or false
(eval/urgent_check.jsonl, a helper's set nobody reads while tuning); `--show` prints the misses and false alarms
(never on the blind set while tuning).
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


def _extra(path: Path) -> list[tuple[str, bool]]:
    """Questions one per line, all emergencies; or JSONL with `query` and `urgent`."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in lines if line]
        return [(r["query"], bool(r["urgent"])) for r in rows]
    return [(line, True) for line in lines if line and not line.startswith("#")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("queries", type=Path)
    ap.add_argument("--sops", type=Path, default=Path("sops"))
    ap.add_argument("--split", default="all", choices=["all", "tune", "heldout"])
    ap.add_argument("--extra", type=Path, default=None, help="emergency questions, one per line")
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    kb = sample_kb(args.sops)
    chat = ChatResponder.from_settings(kb.searcher, get_settings())

    def urgent_sop(sop_id: str) -> bool:
        sop = kb.searcher.get_sop(sop_id, "agent")
        return sop is not None and sop.urgent(chat.urgent_categories)

    labelled = [(q.query, any(urgent_sop(e) for e in q.expected)) for q in load_queries(args.queries, args.split)]  # type: ignore[arg-type]
    if args.extra is not None:
        labelled += _extra(args.extra)
    danger = chat.danger
    for name, signals in (("previous", None), ("shipped", danger)):
        chat.danger = signals
        c: Counter[str] = Counter()
        for query, emergency in labelled:
            ans, _ = chat.answer(query)
            if emergency:
                c["emergencies"] += 1
                c["flagged"] += ans.urgent
                c["instruction"] += ans.urgent and bool(ans.sources)
                if args.show and not (ans.urgent and ans.sources):
                    print(f"  missed   {query}  urgent {ans.urgent}  sources {[s.section for s in ans.sources]}")
            else:
                c["others"] += 1
                c["false_alarm"] += ans.urgent
                if args.show and ans.urgent:
                    print(f"  alarm    {query}")
        print(
            f"{args.queries} · {name}: emergencies n={c['emergencies']} flagged urgent {c['flagged']} "
            f"with a safety instruction {c['instruction']} · other queries n={c['others']} "
            f"flagged urgent {c['false_alarm']}"
        )
    kb.close()


if __name__ == "__main__":
    main()
