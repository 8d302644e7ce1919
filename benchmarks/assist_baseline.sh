#!/usr/bin/env bash
# Live-call assist latency of this tree beside a baseline git revision, side by side: the two servers are started in
# turn on the same index (KB_DATA_DIR, built by `kb ingest` beforehand) and benchmarks/assist_calls.py runs against
# each, alternating for ROUNDS rounds (the machine's load drifts; compare within a round).
#
#   KB_DATA_DIR=/tmp/asb-data KB_SOPS_DIR=sops .venv/bin/kb ingest
#   KB_DATA_DIR=/tmp/asb-data KB_SOPS_DIR=sops benchmarks/assist_baseline.sh <baseline-rev> [rounds] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_REV=${1:?baseline git revision}
ROUNDS=${2:-2}
CONCURRENCY=${3:-8}
PORT=${PORT:-8801}
PY=$PWD/.venv/bin/python
KEY=assist-baseline-agent-key-123456
export KB_API_KEYS="agent:$KEY"
BASE=$(mktemp -d /tmp/kb-assist-base.XXXXXX)
git worktree add -q --detach "$BASE" "$BASE_REV"
cleanup() { pkill -f "cli.main serve --port $PORT" || true; git worktree remove --force "$BASE"; }
trap cleanup EXIT
for round in $(seq 1 "$ROUNDS"); do
  for which in this baseline; do
    src=$PWD; [ "$which" = baseline ] && src=$BASE
    (cd "$src" && PYTHONPATH=$src "$PY" -m cli.main serve --port "$PORT" --workers 2 >/dev/null 2>&1 &)
    for _ in $(seq 1 180); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 1; done
    echo "== round $round: $which"
    "$PY" benchmarks/assist_calls.py eval/queries.jsonl --url "http://127.0.0.1:$PORT" --key "$KEY" \
      --concurrency "$CONCURRENCY" --calls-at-1 0 | grep concurrency
    pkill -f "cli.main serve --port $PORT" || true
    sleep 3
  done
done
