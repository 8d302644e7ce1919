#!/usr/bin/env bash
# The tenant chat on every labelled set, for a tree and a baseline git revision side by side: the six
# chat_answers.py runs (the repository with its out-of-scope and hard out-of-scope questions, eval/dev, eval/fourth,
# the blind corpus, the third corpus) and the four chat_urgent.py runs (the tuning half with the written emergencies,
# the held-out half with the sealed check set, the blind corpus, the fourth), each set's figures printed as
# "baseline" then "this tree". The blind and third sets are reported, never read while tuning (no --show here).
#
#   benchmarks/chat_sets.sh <baseline-rev> [chat|urgent|all]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_REV=${1:?baseline git revision}
WHAT=${2:-all}
PY=$PWD/.venv/bin/python
OUT=$(mktemp -d /tmp/kb-chat-sets.XXXXXX)
BASE=$OUT/base
git worktree add -q --detach "$BASE" "$BASE_REV"
trap 'git worktree remove --force "$BASE"' EXIT

chat() {  # chat ROOT TAG
  (cd "$1" && {
    "$PY" benchmarks/chat_answers.py eval/queries.jsonl eval/chat_out_of_scope.jsonl --sops sops --answers eval/answers.jsonl >"$OUT/$2.repo" 2>&1
    "$PY" benchmarks/chat_answers.py eval/queries.jsonl eval/chat_out_of_scope_hard.jsonl --sops sops >"$OUT/$2.hard" 2>&1
    "$PY" benchmarks/chat_answers.py eval/dev/queries.jsonl eval/chat_out_of_scope.jsonl --sops eval/dev/sops >"$OUT/$2.dev" 2>&1
    "$PY" benchmarks/chat_answers.py eval/fourth/queries.jsonl eval/fourth/out_of_scope.jsonl --sops eval/fourth/sops --answers eval/fourth/answers.jsonl >"$OUT/$2.fourth" 2>&1
    "$PY" benchmarks/chat_answers.py eval/blind/queries.jsonl eval/blind/out_of_scope.jsonl --sops eval/blind/sops --answers eval/blind/answers.jsonl >"$OUT/$2.blind" 2>&1
    "$PY" benchmarks/chat_answers.py eval/third/queries.jsonl eval/third/out_of_scope.jsonl --sops eval/third/sops >"$OUT/$2.third" 2>&1
  })
}
urgent() {  # urgent ROOT TAG
  (cd "$1" && {
    "$PY" benchmarks/chat_urgent.py eval/queries.jsonl --split tune --extra eval/chat_urgent.txt >"$OUT/$2.u-tune" 2>&1
    "$PY" benchmarks/chat_urgent.py eval/queries.jsonl --split heldout --extra eval/urgent_check.jsonl >"$OUT/$2.u-held" 2>&1
    "$PY" benchmarks/chat_urgent.py eval/blind/queries.jsonl --sops eval/blind/sops >"$OUT/$2.u-blind" 2>&1
    "$PY" benchmarks/chat_urgent.py eval/fourth/queries.jsonl --sops eval/fourth/sops >"$OUT/$2.u-fourth" 2>&1
  })
}
sets=()
if [ "$WHAT" != urgent ]; then chat "$BASE" base & chat "$PWD" tree & wait; sets+=(repo hard dev fourth blind third); fi
if [ "$WHAT" != chat ]; then urgent "$BASE" base & urgent "$PWD" tree & wait; sets+=(u-tune u-held u-blind u-fourth); fi
for s in "${sets[@]}"; do
  echo "== $s (baseline $BASE_REV, then this tree)"
  for tag in base tree; do  # the shipped configuration's rows (each script prints the previous release first)
    awk '/· shipped/ {p = 1; buf = ""} p {buf = buf $0 "\n"} END {printf "%s", buf}' "$OUT/$tag.$s" |
      grep -E "shipped:| n= *[0-9]" | sed "s/^/$tag  /"
  done
done
echo "(outputs in $OUT)"
