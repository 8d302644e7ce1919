"""Service figures for monitoring (Prometheus's /metrics), read from the service database on each scrape.

They are what every worker process and replica share, so any of them reports the same: questions of the last
minutes by source and outcome, hand-over cases waiting, webhook events by status, live calls being followed, learned
phrasings. Read with a handful of small indexed queries; a scrape every 15-60 s costs next to nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kb_service.db.logbook import Logbook

WINDOW_SECONDS = 300  # "recent" questions: the last five minutes

_QUERIES = """
SELECT source,
       COUNT(*) AS n,
       SUM(CASE WHEN handoff <> 0 THEN 1 ELSE 0 END) AS handed,
       SUM(CASE WHEN result_ids = '[]' THEN 1 ELSE 0 END) AS empty
FROM queries WHERE ts >= :since GROUP BY source
"""
_WAITING = """
SELECT priority, COUNT(*) AS n, MIN(created_at) AS oldest FROM handover_cases
WHERE status = 'open' GROUP BY priority
"""
_TAKEN = "SELECT COUNT(*) AS n FROM handover_cases WHERE status = 'taken'"
_OUTBOX = "SELECT status, COUNT(*) AS n FROM handover_outbox GROUP BY status"
_CALLS = "SELECT COUNT(*) AS n FROM assist_calls WHERE updated >= :since"
_LEARNED = "SELECT COUNT(*) AS n FROM learned WHERE removed_ts IS NULL"


@dataclass
class SourceFigures:
    questions: int = 0
    handed_over: int = 0
    no_result: int = 0


@dataclass
class Vitals:
    window_seconds: int
    recent: dict[str, SourceFigures] = field(default_factory=dict)  # by source: search, chat, assist, handover
    waiting: dict[str, int] = field(default_factory=dict)  # cases nobody has taken, by priority
    oldest_wait_s: dict[str, float] = field(default_factory=dict)
    taken: int = 0  # cases an agent holds, not closed
    webhook: dict[str, int] = field(default_factory=dict)  # outbox events by status
    live_calls: int = 0  # calls with a segment in the window
    learned: int = 0  # learned phrasings in force


def read_vitals(logbook: Logbook, now: float | None = None, window: int = WINDOW_SECONDS) -> Vitals:
    now = time.time() if now is None else now
    since = {"since": now - window}
    out = Vitals(window_seconds=window)
    for r in logbook.rows(_QUERIES, since):
        out.recent[r["source"]] = SourceFigures(int(r["n"]), int(r["handed"] or 0), int(r["empty"] or 0))
    for r in logbook.rows(_WAITING):
        out.waiting[r["priority"]] = int(r["n"])
        out.oldest_wait_s[r["priority"]] = round(max(0.0, now - float(r["oldest"])), 1)
    out.taken = int(logbook.rows(_TAKEN)[0]["n"] or 0)
    out.webhook = {r["status"]: int(r["n"]) for r in logbook.rows(_OUTBOX)}
    out.live_calls = int(logbook.rows(_CALLS, since)[0]["n"] or 0)
    out.learned = int(logbook.rows(_LEARNED)[0]["n"] or 0)
    return out
