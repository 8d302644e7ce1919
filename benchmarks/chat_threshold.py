"""Choose the chat widget's hand-over threshold by measurement.

In-scope: the `public` queries of eval/queries.jsonl (an answer is right when its source SOP is expected).
Out-of-scope: eval/chat_out_of_scope.jsonl (off-topic questions and topics only staff documents cover), which
must be handed over. The threshold is chosen on the tuning half of the in-scope queries and on the odd lines of the
out-of-scope file, then reported on the held-out half and the even lines.

    python benchmarks/chat_threshold.py eval/queries.jsonl eval/chat_out_of_scope.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import sample_kb

from kb_service.search.answers import ChatResponder
from kb_service.trainer.evaluation import load_queries

WRONG_ANSWER_COST = 2.0  # a wrong answer costs a tenant more than a hand-over to a human


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("queries", type=Path)
    ap.add_argument("out_of_scope", type=Path)
    ap.add_argument("--sops", type=Path, default=Path("sops"))
    args = ap.parse_args()
    kb = sample_kb(args.sops)
    chat = ChatResponder(kb.searcher, min_confidence=0.0)

    def scored(split: str) -> tuple[list[tuple[float, bool]], list[float]]:
        inscope = []
        for q in load_queries(args.queries, split):  # type: ignore[arg-type]
            if q.audience != "public":
                continue
            ans, _ = chat.answer(q.query)
            inscope.append((ans.confidence, bool(ans.sources) and ans.sources[0].sop_id in q.expected))
        lines = [json.loads(x) for x in args.out_of_scope.read_text(encoding="utf-8").splitlines() if x.strip()]
        part = lines[0::2] if split == "tune" else lines[1::2]
        return inscope, [chat.answer(x["query"])[0].confidence for x in part]

    def rates(inscope: list[tuple[float, bool]], oos: list[float], t: float) -> dict[str, float]:
        answered = [(c, ok) for c, ok in inscope if c >= t]
        right = sum(ok for _, ok in answered)
        wrong = len(answered) - right + sum(c >= t for c in oos)
        return {
            "threshold": t,
            "in_scope_answered_right": right / len(inscope),
            "wrong_answers": wrong / (len(inscope) + len(oos)),
            "out_of_scope_handed_over": sum(c < t for c in oos) / len(oos),
            "utility": (right - WRONG_ANSWER_COST * wrong) / (len(inscope) + len(oos)),
        }

    tune_in, tune_oos = scored("tune")
    held_in, held_oos = scored("heldout")
    grid = [round(0.30 + 0.02 * i, 2) for i in range(26)]
    best = max(grid, key=lambda t: rates(tune_in, tune_oos, t)["utility"])
    print(f"chosen on the tuning half: threshold {best}")
    for name, (i, o) in {"tune": (tune_in, tune_oos), "heldout": (held_in, held_oos)}.items():
        r = rates(i, o, best)
        print(
            f"{name:<8} n_in={len(i)} n_out={len(o)}  answered right {r['in_scope_answered_right']:.3f}  "
            f"wrong answers {r['wrong_answers']:.3f}  out-of-scope handed over {r['out_of_scope_handed_over']:.3f}"
        )
    print("threshold sweep on the tuning half:")
    for t in grid[::2]:
        r = rates(tune_in, tune_oos, t)
        print(
            f"  {t:.2f}: right {r['in_scope_answered_right']:.3f} wrong {r['wrong_answers']:.3f} "
            f"handover(out) {r['out_of_scope_handed_over']:.3f}"
        )
    kb.close()


if __name__ == "__main__":
    main()
