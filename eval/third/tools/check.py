# -*- coding: utf-8 -*-
"""Consistency checks for the third-party corpus (ids, audiences, counts)."""
import json, re, pathlib, collections, sys
root = pathlib.Path(__file__).resolve().parent.parent
docs = {}
for p in sorted((root / "sops").rglob("*.md")):
    fm = p.read_text(encoding="utf-8").split("---")[1]
    did = re.search(r"^id:\s*(\S+)", fm, re.M).group(1)
    aud = re.search(r"^audience:\s*(\S+)", fm, re.M).group(1)
    assert did == p.stem, (p, did)
    assert did not in docs, did
    assert "examples" not in fm, p
    docs[did] = aud
errors = []
qs = [json.loads(l) for l in (root / "queries.jsonl").open(encoding="utf-8")]
per_doc = collections.Counter()
seen = set()
for i, q in enumerate(qs, 1):
    assert set(q) == {"query", "expected", "audience", "kind"}, i
    if len(q["expected"]) != 1: errors.append(f"line {i}: not exactly one expected id")
    e = q["expected"][0]
    if e not in docs: errors.append(f"line {i}: unknown id {e}")
    if q["kind"] == "public_question":
        if docs.get(e) != "public": errors.append(f"line {i}: public_question expects non-public {e}")
        if q["audience"] != "public": errors.append(f"line {i}: public_question audience not public")
    if q["audience"] == "public" and docs.get(e) != "public": errors.append(f"line {i}: public audience, agent doc")
    if q["query"] in seen: errors.append(f"line {i}: duplicate query")
    seen.add(q["query"])
    per_doc[e] += 1
oos = [json.loads(l) for l in (root / "out_of_scope.jsonl").open(encoding="utf-8")]
for j, o in enumerate(oos, 1):
    if set(o) != {"query", "kind"} or o["kind"] != "off_topic": errors.append(f"oos line {j}: bad shape")
    if o["query"] in seen: errors.append(f"oos line {j}: also an in-scope query")
DISTRACTORS = {l.split()[0] for l in (root / "tools" / "distractors.txt").read_text().split("\n") if l.strip()}
mains = [d for d in docs if d not in DISTRACTORS]
for d in mains:
    if per_doc[d] < 6: errors.append(f"main {d} has only {per_doc[d]} queries")
for d in DISTRACTORS:
    if d not in docs: errors.append(f"distractor {d} not a doc")
kinds = collections.Counter(q["kind"] for q in qs)
print("docs", len(docs), "main", len(mains), "distractor", len(DISTRACTORS),
      "public", sum(a == "public" for a in docs.values()), "agent", sum(a == "agent" for a in docs.values()))
print("queries", len(qs), dict(kinds), {k: f"{v/len(qs):.1%}" for k, v in kinds.items()})
print("hard_negative expecting distractor:", sum(1 for q in qs if q["kind"] == "hard_negative" and q["expected"][0] in DISTRACTORS),
      "expecting main:", sum(1 for q in qs if q["kind"] == "hard_negative" and q["expected"][0] not in DISTRACTORS))
print("min queries per main:", min(per_doc[d] for d in mains), "out_of_scope:", len(oos))
print("\n".join(errors) if errors else "OK: no errors")
sys.exit(1 if errors else 0)
