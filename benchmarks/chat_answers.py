"""How the tenant chat answers: right (the answer's source SOP is expected), wrong, or handed over.

In-scope: the `public` queries of a labelled set (by kind: `public_question`, and `hard_negative` where the set has
them). Out-of-scope questions must all be handed over (an answer to one counts as wrong). Tenants' spoken sentences
(`tenant_phone`) are asked too, split by whether a public SOP is expected (`:public`) or only staff documents answer
them (`:staff`: handing over is right, an answer from any SOP is wrong).

    python benchmarks/chat_answers.py eval/queries.jsonl eval/chat_out_of_scope.jsonl --sops sops
    python benchmarks/chat_answers.py eval/blind/queries.jsonl eval/blind/out_of_scope.jsonl --sops eval/blind/sops

`--answers FILE` (e.g. eval/blind/answers.jsonl: for each tenant question, the headings or FAQ questions of the
expected SOP that answer it, labelled by the helper who wrote the blind set) also counts, among the labelled
questions, how many were answered with one of those passages (not only from the right SOP).

`--split tune|heldout` keeps one half of the in-scope queries (the halves of kb_service/trainer/evaluation.py);
An urgent answer shows a passage and hands over at once: it counts by its passage (right or wrong) for a question a
public SOP answers, as handed over for one only staff documents answer (the passage is then the public safety
instruction) and out-of-scope. `--show` prints each wrong answer and hand-over (never use it on the blind set while
tuning).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from _common import sample_kb

from ingest.knowledge_base import KnowledgeBase
from kb_service.search.answers import CONFIDENT_MIN_SCORE, TYPED_OVERRIDE, ChatResponder
from kb_service.search.passages import FAQ_FOCUS_WEIGHT, TYPE_WEIGHT
from kb_service.settings import get_settings
from kb_service.trainer.evaluation import LabeledQuery, load_queries

# Tenants' own sentences (labelled for agent search) also go through the chat: answered from an expected public SOP
# or, when only staff documents answer them, handed over, is right.
TENANT_KINDS = ("tenant_phone",)


def _row(name: str, c: Counter[str]) -> str:
    total = c["right"] + c["wrong"] + c["handover"] + c["smalltalk"]
    n = total or 1
    passages = f"  right passage {c['passage']}/{c['labelled']}" if c["labelled"] else ""
    passages += f"  small-talk reply {c['smalltalk']}" if c["smalltalk"] else ""
    # answers of a message of several questions (kb_service/search/question_parts.py): judged by their first source
    # above; here how many there were and in how many another part is from an expected SOP
    passages += f"  in parts {c['parts']} (an expected SOP in another part: {c['parts_other']})" if c["parts"] else ""
    return (
        f"{name:<16} n={total:>3}  right {c['right'] / n:6.1%}  wrong {c['wrong'] / n:6.1%}  "
        f"handed over {c['handover'] / n:6.1%}  (urgent: {c['urgent']}){passages}"
    )


def _plain(text: str) -> str:
    """A heading or FAQ question compared without spaces, markers and end punctuation."""
    return re.sub(r"[\s*#:：?？。.!！]+", "", text)


def load_answers(path: Path | None) -> dict[str, set[str]]:
    """Query text → the passages (plain headings or FAQ questions) that answer it."""
    if path is None:
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["query"]: {_plain(p) for p in r["passages"]} for r in rows}


def _judge(kb: KnowledgeBase, chat: ChatResponder, q: LabeledQuery) -> tuple[str, str, bool, str, str | None]:
    """(kind, outcome, urgent, what was answered, the answering passage) for one labelled query."""
    ans, _ = chat.answer(q.query)
    # An urgent answer both shows a passage (judged like any answer) and hands over.
    outcome = "handover" if not ans.sources else ("right" if ans.sources[0].sop_id in q.expected else "wrong")
    kind = q.kind or "public"
    if q.audience != "public":  # a tenant's sentence: when only staff documents answer it, a person must
        public = any(kb.searcher.get_sop(e, "public") is not None for e in q.expected)
        kind = f"{kind}:{'public' if public else 'staff'}"
        if not public and ans.handoff:
            outcome = "right"  # a person answers; an urgent hand-over also shows the public safety instruction
    got = ans.sources[0].sop_id + " · " + ans.sources[0].section if ans.sources else "-"
    passage = ans.sources[0].section if ans.sources and outcome == "right" else None
    if len(ans.sources) > 1:
        other = any(s.sop_id in q.expected for s in ans.sources[1:])
        got += " + parts" + (" (expected in another)" if other and outcome == "wrong" else "")
    return kind, outcome, ans.urgent, got, passage


def evaluate(
    kb: KnowledgeBase,
    chat: ChatResponder,
    queries: list[LabeledQuery],
    out_of_scope: list[str],
    show: bool,
    answers: dict[str, set[str]],
) -> None:
    by_kind: dict[str, Counter[str]] = {}
    for q in queries:
        kind, outcome, urgent, got, passage = _judge(kb, chat, q)
        counts = by_kind.setdefault(kind, Counter())
        counts[outcome] += 1
        counts["urgent"] += urgent
        counts["parts"] += "+ parts" in got
        counts["parts_other"] += got.endswith("(expected in another)")
        if q.query in answers:
            counts["labelled"] += 1
            counts["passage"] += passage is not None and _plain(passage) in answers[q.query]
            if show and passage is not None and _plain(passage) not in answers[q.query]:
                print(f"  passage  {q.query}  got {got}  labelled {sorted(answers[q.query])}")
        if show and outcome != "right":
            print(f"  {outcome:<8} {q.query}  expected {q.expected[0]}  got {got}")
    oos: Counter[str] = Counter()
    for question in out_of_scope:
        ans, _ = chat.answer(question)
        # a small-talk reply (嗯嗯对对对 → 好的，还有其他需要帮忙的吗？) cites nothing: not an answer, not a hand-over
        oos["handover" if ans.handoff else ("wrong" if ans.sources else "smalltalk")] += 1
        oos["urgent"] += ans.urgent
        if show and ans.sources and not ans.handoff:
            print(f"  answered out-of-scope: {question}  got {ans.sources[0].sop_id}")
    for kind, c in sorted(by_kind.items()):
        print(_row(kind, c))
    print(_row("out_of_scope", oos))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("queries", type=Path)
    ap.add_argument("out_of_scope", type=Path)
    ap.add_argument("--sops", type=Path, default=Path("sops"))
    ap.add_argument("--split", default="all", choices=["all", "tune", "heldout"])
    ap.add_argument("--min-score", type=float, default=None, help="default: the shipped KB_CHAT_MIN_ANSWER_SCORE")
    ap.add_argument("--show", action="store_true")
    ap.add_argument("--confident", type=float, default=CONFIDENT_MIN_SCORE, help="bar for a confident document")
    ap.add_argument("--answers", type=Path, default=None, help="passage labels (JSONL: query, sop_id, passages)")
    args = ap.parse_args()
    answers = load_answers(args.answers)
    kb = sample_kb(args.sops)
    chat = ChatResponder.from_settings(kb.searcher, get_settings())
    if args.min_score is not None:
        chat.min_answer_score = args.min_score
    queries = [
        q
        for q in load_queries(args.queries, args.split)  # type: ignore[arg-type]
        if q.audience == "public" or q.kind in TENANT_KINDS
    ]
    lines = args.out_of_scope.read_text(encoding="utf-8").splitlines()
    out_of_scope = [json.loads(line)["query"] for line in lines if line.strip()]
    # Side by side: the first version (no staff-topic check, no kind of answer), the previous release (a staff topic
    # handed over whatever time or sum a public passage gives; a question for a sum answered by a passage naming none
    # when it ranks above the passages that name one), then what ships.
    versions = (
        ("first version", False, 0.0, 0.0, None, None),
        ("previous", True, TYPE_WEIGHT, FAQ_FOCUS_WEIGHT, args.confident, None),
        ("shipped", True, TYPE_WEIGHT, FAQ_FOCUS_WEIGHT, args.confident, TYPED_OVERRIDE),
    )
    for name, check, weight, focus, confident, typed in versions:
        chat.staff_topic_check, chat.type_weight, chat.faq_focus = check, weight, focus
        chat.confident_min_score, chat.typed_override = confident, typed
        chat.price_strict = typed is not None
        chat.weak_floor = chat.smalltalk = chat.price_gate = confident is not None
        print(
            f"{args.queries} · {name} (threshold {chat.min_answer_score}, staff topics {check}, type weight {weight}, "
            f"FAQ focus {focus}, confident document bar {confident}, weak-match floor {chat.weak_floor}, "
            f"price gate {chat.price_gate}, typed override {chat.typed_override})"
        )
        evaluate(kb, chat, queries, out_of_scope, args.show, answers)
    kb.close()


if __name__ == "__main__":
    main()
