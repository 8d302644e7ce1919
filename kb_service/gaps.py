"""The gap report: what agents and tenants asked that the knowledge base could not answer well.

Its cost is bounded whatever the traffic, and anonymous floods cannot push the trainers' real gaps out of it:
- **Capped.** At most MAX_QUESTIONS distinct questions with a gap reason (no result, handoff, low confidence, thumbs
  down) are considered, the most asked first (then the most recent). "Asked" counts each staff row (staff are few and
  authenticated) and each anonymous client once (a keyed hash of its address, `queries.client`), for a question and for
  a group alike; one anonymous client brings at most PER_CLIENT questions (its latest), and the report reads at most
  its latest HEAVY_ROWS rows. A script sending thousands of questions from one address adds a group asked once; a need
  that two tenants or agents met ranks above it.
- **Grouped incrementally.** A question's vector and group are stored (`gap_questions`) the first time a report sees
  it; a later report embeds only questions it has not seen, in small batches that let searches use the model between
  them, and compares them with the stored group leaders in one matrix product.
- **Off the request path.** A computed report is stored (`gap_reports`) and served to every process: a request gets
  the stored one at once, and when it is older than TTL one process refreshes it in the background. Only a window
  nobody asked for before is computed in the request (bounded as above).
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import logging
import math
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from pydantic import BaseModel

from kb_service.embedders import SMALL_BATCH, Embedder
from kb_service.logbook import Logbook
from kb_service.models import Sop

log = logging.getLogger(__name__)

SIMILAR = 0.75  # cosine above which two questions count as the same need (USE-multilingual)
MAX_QUESTIONS = 500  # distinct unanswered questions one report considers
PER_CLIENT = 20  # distinct questions one anonymous client brings into a report
HEAVY_ROWS = 10 * PER_CLIENT  # rows of one anonymous client the report reads at most (its latest)
MAX_LEADERS = 5000  # stored groups a new question is compared with (the most recently seen)
KEEP_SECONDS = 180 * 86400  # stored questions no report has seen for this long are forgotten
TTL = 60.0  # seconds a stored report is served before a background refresh
REFRESH_TIMEOUT = 600.0  # seconds after which another process may take over a refresh that never finished
DEFAULT_DAYS = 30

SCHEMA = """
CREATE TABLE IF NOT EXISTS gap_questions (
    embedder TEXT NOT NULL,
    query TEXT NOT NULL,
    leader TEXT NOT NULL,            -- the question that opened its group (a leader's leader is itself)
    vector BLOB NOT NULL,            -- float32, L2-normalised
    seen REAL NOT NULL,              -- when a report last considered it
    PRIMARY KEY (embedder, query)
);
CREATE INDEX IF NOT EXISTS gap_questions_seen ON gap_questions(embedder, seen);
CREATE TABLE IF NOT EXISTS gap_reports (
    key TEXT PRIMARY KEY,            -- the window: recent:<minutes> (up to now) or fixed:<since>:<until>
    computed_at REAL NOT NULL,
    body TEXT NOT NULL,              -- GapSnapshot as JSON
    refreshing_until REAL NOT NULL DEFAULT 0
);
"""

# Every question of the window once per client (NULL: staff, each row counts) and reason (NULL: answered well;
# 点踩: a thumbs down on it), with how many rows and when last. One pass over the window, without the clients that sent
# more than HEAVY_ROWS rows: those are read from their latest HEAVY_ROWS rows only (_HEAVY_ROWS, on an index), so a
# flood from one address costs the report next to nothing. The per-client caps are applied in Python (SQLite's
# window functions took seconds on 100,000 rows).
_ASKED = """
SELECT client, query, why, COUNT(*) AS n, MAX(ts) AS last FROM (
    SELECT query, client, ts,
           CASE WHEN result_ids = '[]' THEN '无结果' WHEN handoff THEN '转人工'
                WHEN confidence < :low THEN '低置信度' END AS why
    FROM queries
    WHERE ts >= :since AND ts < :until AND (client IS NULL OR client NOT IN (SELECT value FROM json_each(:heavy)))
    UNION ALL
    SELECT q.query, q.client, f.ts, '点踩' FROM feedback f JOIN queries q ON q.id = f.query_id
    WHERE f.vote = -1 AND f.ts >= :since AND f.ts < :until
) GROUP BY client, query, why
"""
_HEAVY = """
SELECT client FROM queries WHERE client IS NOT NULL AND ts >= :since AND ts < :until
GROUP BY client HAVING COUNT(*) > :rows ORDER BY COUNT(*) DESC LIMIT 1000
"""
_HEAVY_ROWS = """
SELECT client, query, why, COUNT(*) AS n, MAX(ts) AS last FROM (
    SELECT query, client, ts,
           CASE WHEN result_ids = '[]' THEN '无结果' WHEN handoff THEN '转人工'
                WHEN confidence < :low THEN '低置信度' END AS why
    FROM queries WHERE client = :client AND ts >= :since AND ts < :until ORDER BY ts DESC LIMIT :rows
) GROUP BY query, why
"""


@dataclass(frozen=True)
class _Asked:
    client: str | None
    query: str
    why: str | None
    n: int
    last: float


def _kept(rows: Sequence[_Asked], per_client: int) -> set[tuple[str, str]]:
    """The (client, question) pairs that count: each anonymous client's `per_client` latest questions."""
    latest: dict[str, dict[str, float]] = {}
    for r in rows:
        if r.client is not None:
            mine = latest.setdefault(r.client, {})
            mine[r.query] = max(mine.get(r.query, 0.0), r.last)
    kept: set[tuple[str, str]] = set()
    for client, mine in latest.items():
        questions = mine if len(mine) <= per_client else heapq.nlargest(per_client, mine, key=mine.__getitem__)
        kept.update((client, q) for q in questions)
    return kept


def _ranked(asked: Counter[str], last: dict[str, float], limit: int) -> list[str]:
    """The most asked questions first, then the most recent."""
    return heapq.nsmallest(limit, asked, key=lambda q: (-asked[q], -last[q], q))


class CountedQuery(BaseModel):
    query: str
    count: int


class GapGroup(BaseModel):
    representative: str
    count: int
    examples: list[str]
    reasons: dict[str, int]


class SopFeedback(BaseModel):
    sop_id: str
    title: str
    up: int
    down: int


class ReviewDue(BaseModel):
    sop_id: str
    title: str
    review_by: str
    owner: str


class GapReport(BaseModel):
    since: float
    until: float
    computed_at: float
    total_queries: int
    unanswered_questions: int  # distinct questions with a gap reason; the MAX_QUESTIONS most asked are grouped
    top_queries: list[CountedQuery]
    unanswered: list[GapGroup]
    never_found: list[str]
    review_overdue: list[ReviewDue]
    feedback: list[SopFeedback]


class FeedbackCount(BaseModel):
    sop_id: str
    up: int
    down: int


class GapSnapshot(BaseModel):
    """The part of a report that costs something to compute: stored, shared by every process."""

    since: float
    until: float
    computed_at: float
    total_queries: int
    unanswered_questions: int
    top_queries: list[CountedQuery]
    unanswered: list[GapGroup]
    found: list[str]  # SOPs in the top 3 of some query
    feedback: list[FeedbackCount]

    def report(self, catalog: Mapping[str, Sop], today: date | None = None) -> GapReport:
        """The full report: the snapshot plus what depends on the current catalog."""
        today = today or date.today()
        return GapReport(
            since=self.since,
            until=self.until,
            computed_at=self.computed_at,
            total_queries=self.total_queries,
            unanswered_questions=self.unanswered_questions,
            top_queries=self.top_queries,
            unanswered=self.unanswered,
            never_found=sorted(set(catalog) - set(self.found)),
            review_overdue=[
                ReviewDue(sop_id=s.meta.id, title=s.title, review_by=s.meta.review_by.isoformat(), owner=s.meta.owner)
                for s in sorted(catalog.values(), key=lambda s: s.meta.id)
                if s.meta.review_by is not None and s.meta.review_by < today
            ],
            feedback=[
                SopFeedback(
                    sop_id=f.sop_id,
                    title=catalog[f.sop_id].title if f.sop_id in catalog else f.sop_id,
                    up=f.up,
                    down=f.down,
                )
                for f in self.feedback
            ],
        )


@dataclass
class _Tally:
    """Who met a gap: staff rows by reason, anonymous clients by reason (a client counts once, however often)."""

    staff: Counter[str] = field(default_factory=Counter)
    clients: dict[str, set[str]] = field(default_factory=dict)
    last: float = 0.0

    def add(self, other: _Tally) -> None:
        self.staff.update(other.staff)
        for why, who in other.clients.items():
            self.clients.setdefault(why, set()).update(who)
        self.last = max(self.last, other.last)

    @property
    def count(self) -> int:
        return sum(self.staff.values()) + len(set().union(*self.clients.values()))

    @property
    def reasons(self) -> dict[str, int]:
        return {why: self.staff[why] + len(self.clients.get(why, ())) for why in [*self.staff, *self.clients]}


@dataclass
class GapReporter:
    """Computes a report (bounded: see the module docstring). `GapReports` serves stored ones."""

    logbook: Logbook
    embedder: Embedder
    low_confidence: float
    max_questions: int = MAX_QUESTIONS
    per_client: int = PER_CLIENT
    _schema_ready: bool = field(default=False, init=False, repr=False)

    def report(self, since: float, until: float, catalog: Mapping[str, Sop], today: date | None = None) -> GapReport:
        return self.compute(since, until).report(catalog, today)

    def compute(self, since: float, until: float) -> GapSnapshot:
        self._ensure_schema()
        window = {"since": since, "until": until}
        heavy = [r["client"] for r in self.logbook.rows(_HEAVY, {**window, "rows": HEAVY_ROWS})]
        found_rows = self.logbook.rows(_ASKED, {**window, "low": self.low_confidence, "heavy": json.dumps(heavy)})
        for client in heavy:
            params = {**window, "low": self.low_confidence, "client": client, "rows": HEAVY_ROWS}
            found_rows += self.logbook.rows(_HEAVY_ROWS, params)
        rows = [_Asked(r["client"], r["query"], r["why"], int(r["n"]), float(r["last"])) for r in found_rows]
        candidates, questions = self._candidates([r for r in rows if r.why is not None])
        top = self._top([r for r in rows if r.why != "点踩"])
        total = self.logbook.rows("SELECT COUNT(*) AS n FROM queries WHERE ts >= :since AND ts < :until", window)
        found = self.logbook.rows(
            "SELECT DISTINCT j.value AS sop_id FROM queries q, json_each(q.result_ids) j "
            "WHERE q.ts >= :since AND q.ts < :until AND j.key < 3",
            window,
        )
        fb = self.logbook.rows(
            "SELECT sop_id, SUM(vote = 1) AS up, SUM(vote = -1) AS down FROM feedback "
            "WHERE ts >= :since AND ts < :until GROUP BY sop_id ORDER BY down DESC, up DESC",
            window,
        )
        return GapSnapshot(
            since=since,
            until=until,
            computed_at=time.time(),
            total_queries=int(total[0]["n"]),
            unanswered_questions=questions,
            top_queries=top,
            unanswered=self._group(candidates),
            found=sorted(str(r["sop_id"]) for r in found),
            feedback=[FeedbackCount(sop_id=f["sop_id"], up=int(f["up"] or 0), down=int(f["down"] or 0)) for f in fb],
        )

    def _candidates(self, rows: Sequence[_Asked]) -> tuple[list[tuple[str, _Tally]], int]:
        """The `max_questions` most asked unanswered questions and how many distinct ones were read. An anonymous
        client counts once, for its `per_client` latest questions only."""
        kept = _kept(rows, self.per_client)
        tallies: dict[str, _Tally] = {}
        for r in rows:
            if r.why is None or (r.client is not None and (r.client, r.query) not in kept):
                continue
            tally = tallies.setdefault(r.query, _Tally())
            if r.client is None:
                tally.staff[r.why] += r.n
            else:
                tally.clients.setdefault(r.why, set()).add(r.client)
            tally.last = max(tally.last, r.last)
        asked = Counter({q: t.count for q, t in tallies.items()})
        chosen = _ranked(asked, {q: t.last for q, t in tallies.items()}, self.max_questions)
        return [(q, tallies[q]) for q in chosen], len({r.query for r in rows})

    def _top(self, rows: Sequence[_Asked]) -> list[CountedQuery]:
        """The 20 most asked questions: staff rows each, an anonymous client once per question (latest only)."""
        kept = _kept(rows, self.per_client)
        asked: Counter[str] = Counter()
        last: dict[str, float] = {}
        for r in rows:
            if r.client is None:
                asked[r.query] += r.n
            elif (r.client, r.query) in kept:
                kept.discard((r.client, r.query))  # once per client, whatever the reasons
                asked[r.query] += 1
            else:
                continue
            last[r.query] = max(last.get(r.query, 0.0), r.last)
        return [CountedQuery(query=q, count=asked[q]) for q in _ranked(asked, last, 20)]

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            try:
                with self.logbook.transaction() as c:
                    for statement in filter(str.strip, SCHEMA.split(";")):
                        c.execute(statement)
            except sqlite3.Error as exc:  # a read-only database: groups are computed, not stored
                log.warning("gap report tables cannot be created (%s)", exc)
            else:
                self._schema_ready = True

    def _group(self, candidates: Sequence[tuple[str, _Tally]]) -> list[GapGroup]:
        """Questions of one meaning together; a group counts each anonymous client once, so one client's many
        phrasings of a question weigh no more than one tenant asking it once."""
        leaders = self._leaders([q for q, _ in candidates])
        members: dict[str, list[str]] = {}
        tallies: dict[str, _Tally] = {}
        for q, tally in candidates:  # most asked first: a group's first member represents it
            members.setdefault(leaders[q], []).append(q)
            tallies.setdefault(leaders[q], _Tally()).add(tally)
        groups = [
            GapGroup(
                representative=questions[0],
                count=tallies[leader].count,
                examples=questions[:5],
                reasons=tallies[leader].reasons,
            )
            for leader, questions in members.items()
        ]
        return sorted(groups, key=lambda g: -g.count)

    def _leaders(self, questions: list[str]) -> dict[str, str]:
        """Each question's group leader. Only questions never seen before are embedded; each joins the most similar
        stored (or new) leader above SIMILAR, or opens a group of its own."""
        name, now = self.embedder.name, time.time()
        known = self._stored_leaders(name, questions)
        new = [q for q in questions if q not in known]
        if new:
            vectors = self._embed(new)
            stored = [
                r
                for r in self._read(
                    "SELECT query, vector FROM gap_questions WHERE embedder = ? AND leader = query "
                    "ORDER BY seen DESC LIMIT ?",
                    (name, MAX_LEADERS),
                )
                if len(r["vector"]) == vectors.shape[1] * 4
            ]
            n_stored = len(stored)
            names = [r["query"] for r in stored] + [""] * len(new)
            matrix = np.zeros((len(names), vectors.shape[1]), dtype=np.float32)
            for j, r in enumerate(stored):
                matrix[j] = np.frombuffer(r["vector"], dtype=np.float32)
            to_stored = vectors @ matrix[:n_stored].T
            filled = n_stored
            for i, q in enumerate(new):
                sims = np.concatenate([to_stored[i], matrix[n_stored:filled] @ vectors[i]])
                j = int(np.argmax(sims)) if sims.size else -1
                if j >= 0 and sims[j] >= SIMILAR:
                    known[q] = names[j]
                else:  # a group of its own, which the next questions may join
                    known[q] = names[filled] = q
                    matrix[filled] = vectors[i]
                    filled += 1
            self._store(name, now, [(q, known[q], vectors[i]) for i, q in enumerate(new)])
            # Another process may have stored some of these meanwhile: its assignment wins, for every process.
            known.update(self._stored_leaders(name, new))
        self._touch(name, now, questions)
        return known

    def _stored_leaders(self, name: str, questions: list[str]) -> dict[str, str]:
        known: dict[str, str] = {}
        for i in range(0, len(questions), 500):
            chunk = questions[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT query, leader FROM gap_questions WHERE embedder = ? AND query IN ({marks})"
            known.update((r["query"], r["leader"]) for r in self._read(sql, (name, *chunk)))
        return known

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Small batches with a pause between them: the model is shared with the searches, which get it in between
        (one call for everything held it for seconds and stalled agents' searches)."""
        parts = []
        for i in range(0, len(texts), SMALL_BATCH):
            parts.append(self.embedder.embed(texts[i : i + SMALL_BATCH]))
            time.sleep(0.002)
        return np.concatenate(parts).astype(np.float32)

    def _read(self, sql: str, params: tuple[object, ...]) -> list[sqlite3.Row]:
        return _read(self.logbook, sql, params)

    def _store(self, name: str, now: float, rows: list[tuple[str, str, np.ndarray]]) -> None:
        try:
            with self.logbook.transaction() as c:
                c.executemany(
                    "INSERT OR IGNORE INTO gap_questions (embedder, query, leader, vector, seen)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(name, q, leader, v.astype(np.float32).tobytes(), now) for q, leader, v in rows],
                )
        except sqlite3.Error as exc:
            log.warning("gap groups cannot be stored (%s): they are computed again next time", exc)

    def _touch(self, name: str, now: float, questions: list[str]) -> None:
        try:
            with self.logbook.transaction() as c:
                c.executemany(
                    "UPDATE gap_questions SET seen = ? WHERE embedder = ? AND query = ?",
                    [(now, name, q) for q in questions],
                )
                c.execute("DELETE FROM gap_questions WHERE seen < ? OR embedder != ?", (now - KEEP_SECONDS, name))
        except sqlite3.Error as exc:
            log.warning("gap groups cannot be updated (%s)", exc)


def _read(logbook: Logbook, sql: str, params: tuple[object, ...]) -> list[sqlite3.Row]:
    """Rows of the gap report's own tables: none when a read-only database could not create them."""
    try:
        return logbook.rows(sql, params)
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return []


def window_key(since: float | None, until: float | None, now: float) -> tuple[str, float, float]:
    """The stored report's key and the window it covers. A window up to now is keyed by its start, rounded to about
    1-2% of its length (a power of two minutes), so that "the last 7 days" asked an hour later or "today" asked in
    the afternoon is the stored report (refreshed in the background), not a new one computed in the request."""
    if until is None:
        start = since if since is not None else now - DEFAULT_DAYS * 86400
        grain = 60 * 2 ** max(0, math.floor(math.log2(max(now - start, 1) / 6000)))
        return f"recent:{grain}:{int(start // grain)}", start, now + 1
    start = since if since is not None else until - DEFAULT_DAYS * 86400
    return f"fixed:{start!r}:{until!r}", start, until


class GapReports:
    """Stored reports shared by every process (see the module docstring): `report()` answers at once unless nobody
    has asked for the window before."""

    def __init__(self, reporter: GapReporter, ttl: float = TTL) -> None:
        self.reporter = reporter
        self.ttl = ttl
        self._memory: dict[str, GapSnapshot] = {}  # when the database cannot store a report
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def report(
        self, since: float | None, until: float | None, catalog: Mapping[str, Sop], today: date | None = None
    ) -> GapReport:
        key, start, end = window_key(since, until, time.time())
        snapshot = self._stored(key)
        if snapshot is None:
            snapshot = self._compute(key, start, end)
        elif time.time() - snapshot.computed_at >= self.ttl:
            self._refresh_in_background(key, since, until)
        return snapshot.report(catalog, today)

    def _stored(self, key: str) -> GapSnapshot | None:
        rows = _read(self.reporter.logbook, "SELECT body FROM gap_reports WHERE key = ?", (key,))
        stored = GapSnapshot.model_validate_json(rows[0]["body"]) if rows else None
        memory = self._memory.get(key)
        if memory is not None and (stored is None or memory.computed_at > stored.computed_at):
            return memory
        return stored

    def _compute(self, key: str, start: float, end: float) -> GapSnapshot:
        snapshot = self.reporter.compute(start, end)
        try:
            with self.reporter.logbook.transaction() as c:
                c.execute(
                    "INSERT INTO gap_reports (key, computed_at, body) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                    "computed_at = excluded.computed_at, body = excluded.body, refreshing_until = 0 "
                    "WHERE excluded.computed_at > gap_reports.computed_at",
                    (key, snapshot.computed_at, snapshot.model_dump_json()),
                )
                c.execute("DELETE FROM gap_reports WHERE computed_at < ?", (snapshot.computed_at - 86400,))
        except sqlite3.Error as exc:
            log.warning("gap report cannot be stored (%s): kept in this process", exc)
            with self._lock:
                self._memory[key] = snapshot
        return snapshot

    def _claim(self, key: str) -> bool:
        """Whether this process refreshes `key` now (one process at a time; every process if none can write)."""
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
        now = time.time()
        try:
            with self.reporter.logbook.transaction() as c:
                claimed = c.execute(
                    "UPDATE gap_reports SET refreshing_until = ? WHERE key = ? AND refreshing_until < ?",
                    (now + REFRESH_TIMEOUT, key, now),
                ).rowcount
        except sqlite3.Error:
            claimed = 1
        if not claimed:
            with self._lock:
                self._refreshing.discard(key)
        return bool(claimed)

    def _refresh_in_background(self, key: str, since: float | None, until: float | None) -> None:
        if not self._claim(key):
            return

        def run() -> None:
            try:
                _, start, end = window_key(since, until, time.time())
                self._compute(key, start, end)
            except Exception:  # a failed refresh leaves the stored report; the claim expires
                log.exception("gap report refresh failed")
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, name="gap-report", daemon=True).start()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> object:
    """A text cell that a spreadsheet would run as a formula, made plain text (OWASP: prefix with ')."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def to_csv(report: GapReport) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)

    def row(*cells: object) -> None:
        w.writerow([neutralise(c) for c in cells])

    row("section", "item", "count", "detail")
    for q in report.top_queries:
        row("热门问题", q.query, q.count, "")
    for g in report.unanswered:
        detail = "；".join(f"{k}{v}" for k, v in g.reasons.items()) + " | " + " / ".join(g.examples)
        row("未解决问题", g.representative, g.count, detail)
    for sop_id in report.never_found:
        row("从未被检索到的SOP", sop_id, 0, "")
    for r in report.review_overdue:
        row("复核过期", r.sop_id, "", f"{r.title} 复核日期 {r.review_by} 负责人 {r.owner}")
    for f in report.feedback:
        row("反馈", f.sop_id, f.up - f.down, f"👍{f.up} 👎{f.down} {f.title}")
    return buf.getvalue()

