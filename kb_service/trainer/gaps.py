"""The gap report: what agents and tenants asked that the knowledge base could not answer well.

Its cost is bounded whatever the traffic, and anonymous floods cannot push the trainers' real gaps out of it:
- **Capped.** At most MAX_QUESTIONS distinct questions with a gap reason (no result, handoff, low confidence, thumbs
  down) are considered, the most asked first (then the most recent). "Asked" counts each staff row (staff are few and
  authenticated) and each anonymous client once (a keyed hash of its address, `queries.client`), for a question and for
  a group alike; one anonymous client brings at most PER_CLIENT questions (its latest), and the report reads at most
  its latest HEAVY_ROWS rows. A script sending thousands of questions from one address adds a group asked once; a need
  that two tenants or agents met ranks above it.
- **Grouped incrementally** (kb_service/trainer/gap_groups.py): only questions no report has seen are embedded, in small
  batches between the searches, and compared with the stored groups in one matrix product.
- **Off the request path** (kb_service/trainer/gap_store.py): computed reports are stored in the database and served to
every
  process; a background refresh keeps them at most about a minute old.

Live-call suggestions are logged too (source `assist`, kb_service/assist/service.py): they are what agents were shown
during calls, not questions anyone typed, so they count only where a SOP was retrieved ("never found"); the question
counts, the most asked questions and the unanswered groups are searches and chat questions alone.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, Field

from kb_service.db.logbook import Logbook
from kb_service.embedding.embedders import Embedder
from kb_service.models import Sop
from kb_service.search import smalltalk
from kb_service.search.catalog import every_sop
from kb_service.search.confidence import CALIBRATION
from kb_service.search.results import SearchResponse
from kb_service.text.danger import DangerSignals
from kb_service.trainer.gap_groups import QuestionGroups

MAX_QUESTIONS = 500  # distinct unanswered questions one report considers
PER_CLIENT = 20  # distinct questions one anonymous client brings into a report
HEAVY_ROWS = 10 * PER_CLIENT  # rows of one anonymous client the report reads at most (its latest)

# A chat question the chat answered on a weak match is no unanswered question: the tenant got an answer, which may be
# wrong (a trial: 宠物押金多少钱 listed as 低置信度 beside questions nobody answered). It is listed as 已答·置信度低,
# the answers worth checking first. A weak agent search whose first result the agent opened or copied found what it
# needed (a trial: 我要投诉你们保洁阿姨把我东西拿走了, opened, was listed as 低置信度), and so did every search of the
# same words when one of them did, or when an agent's 👍 confirmed its first result (a trial: 楼上好吵，半夜还在蹦迪,
# searched twice, copied and voted up the second time, was listed as 低置信度 for the first). The words that did are
# read once (an uncorrelated subquery, hashed by SQLite and PostgreSQL), not per row.
# Every question of the window once per client (NULL: staff, each row counts) and reason (NULL: answered well;
# 点踩: a thumbs down on it; `again`: the search voted down already counts for a reason of its own), with how many rows
# and when last. One pass over the window, without the clients that sent
# more than HEAVY_ROWS rows: those are read from their latest HEAVY_ROWS rows only (_HEAVY_ROWS, on an index), so a
# flood from one address costs the report next to nothing. The per-client caps are applied in Python (SQLite's
# window functions took seconds on 100,000 rows).
_WHY = """CASE WHEN result_ids = '[]' THEN '无结果' WHEN handoff <> 0 THEN '转人工'
                WHEN confidence < CASE source WHEN 'search' THEN :weak ELSE :low END
                THEN CASE WHEN source = 'chat' THEN '已答·置信度低'
                          WHEN (query, top_sop) IN (
                              SELECT s.query, e.sop_id FROM events e JOIN queries s ON s.id = e.query_id
                              UNION SELECT s.query, f.sop_id FROM feedback f JOIN queries s ON s.id = f.query_id
                              WHERE f.vote = 1 AND s.source = 'search') THEN NULL
                          ELSE '低置信度' END END"""  # a question's gap reason, NULL when answered well
_ASKED = f"""
SELECT client, query, why, again, COUNT(*) AS n, MAX(ts) AS last FROM (
    SELECT query, client, ts,
           {_WHY} AS why,
           0 AS again
    FROM queries
    WHERE ts >= :since AND ts < :until AND (client IS NULL OR client NOT IN :heavy) AND source <> 'assist'
    UNION ALL
    SELECT q.query, q.client, f.ts, '点踩',
           CASE WHEN q.result_ids = '[]' OR q.handoff <> 0
                     OR q.confidence < CASE q.source WHEN 'search' THEN :weak ELSE :low END THEN 1 ELSE 0 END
    FROM feedback f JOIN queries q ON q.id = f.query_id
    WHERE f.vote = -1 AND f.ts >= :since AND f.ts < :until AND q.source <> 'assist'
) AS asked GROUP BY client, query, why, again
"""
_HEAVY = """
SELECT client FROM queries WHERE client IS NOT NULL AND ts >= :since AND ts < :until
GROUP BY client HAVING COUNT(*) > :rows ORDER BY COUNT(*) DESC LIMIT 1000
"""
_HEAVY_ROWS = f"""
SELECT client, query, why, 0 AS again, COUNT(*) AS n, MAX(ts) AS last FROM (
    SELECT query, client, ts,
           {_WHY} AS why
    FROM queries WHERE client = :client AND ts >= :since AND ts < :until ORDER BY ts DESC LIMIT :rows
) AS asked GROUP BY client, query, why
"""

# The SOPs in the first three results of the window's queries (`result_ids` is a JSON list), live-call suggestions too.
_FOUND = {
    "sqlite": "SELECT DISTINCT j.value AS sop_id FROM queries q, json_each(q.result_ids) j "
    "WHERE q.ts >= :since AND q.ts < :until AND j.key < 3",
    "postgresql": "SELECT DISTINCT j.value AS sop_id FROM queries q, "
    "jsonb_array_elements_text(q.result_ids::jsonb) WITH ORDINALITY AS j(value, n) "
    "WHERE q.ts >= :since AND q.ts < :until AND j.n <= 3",
}


@dataclass(frozen=True)
class _Asked:
    client: str | None
    query: str
    why: str | None
    n: int
    last: float
    again: bool = False  # a thumbs down on a search that already counts for another reason


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


def _settled(rows: Sequence[_Asked]) -> list[_Asked]:
    """Without staff searches typed on the way to a longer one: the console searches as an agent types, so 门, 门锁,
    门锁没 were each logged before 门锁没电了 (a trainer's trial found them at the top of the report). A staff
    question that begins another staff question of the window is left out; tenants' questions are sent whole."""
    staff = sorted({r.query for r in rows if r.client is None})
    # Sorted, every question that begins with q follows q at once: one look at the next one
    typed = {q for q, after in itertools.pairwise(staff) if after.startswith(q)}
    return [r for r in rows if r.client is not None or r.query not in typed]


def _ranked(asked: Counter[str], last: dict[str, float], limit: int) -> list[str]:
    """The most asked questions first, then the most recent."""
    return heapq.nsmallest(limit, asked, key=lambda q: (-asked[q], -last[q], q))


class CountedQuery(BaseModel):
    query: str
    count: int


class StaffAnswer(BaseModel):
    """A staff-only SOP that answers a group tenants asked: the knowledge base has the answer, tenants cannot see it
    (a public FAQ, or a public section of that SOP, would let the chat answer it)."""

    sop_id: str
    title: str
    section: str | None = Field(
        default=None, description="a public SOP's staff-only section that answers it ([内部]), when that is the answer"
    )


class GapMark(BaseModel):
    """A trainer's 已处理 on a group's questions (kb_service/trainer/gap_resolutions.py)."""

    resolved_ts: float
    who: str
    note: str = ""


class GapGroup(BaseModel):
    representative: str
    count: int
    examples: list[str]
    reasons: dict[str, int]
    tenants: int = 0  # anonymous clients (tenants) who asked it
    urgent: bool = False  # one of its questions carries a danger signal (煤气味, 水管爆了…): listed first
    staff_answer: StaffAnswer | None = None  # set when the report is served (staff_answer_of)
    last_asked: float = 0.0  # when one of its questions was last asked (stored before session 52: 0)
    # the latest 已处理 on its questions, set when the report is served: under `resolved` when it is later than
    # `last_asked`, else the group is open again (asked after it was marked)
    resolved: GapMark | None = None


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
    # total_queries by where they were asked (search: agents' searches, chat: tenants' chat, console: staff testing the
    # chat, handover: cases' questions): a trial read 服务指标's chat count against this total and found them apart
    queries_by_source: dict[str, int] = Field(default_factory=dict)
    unanswered_questions: int  # distinct questions with a gap reason; the MAX_QUESTIONS most asked are grouped
    # Of those, the ones left out: only anonymous clients over their PER_CLIENT cap asked them (behind a proxy not in
    # KB_TRUSTED_PROXIES every tenant is one client, and most questions land here)
    left_out_questions: int = 0
    top_queries: list[CountedQuery]
    unanswered: list[GapGroup]
    # groups a trainer marked 已处理 since they were last asked (not counted in `unanswered`)
    resolved: list[GapGroup] = Field(default_factory=list)
    never_found: list[str]
    review_overdue: list[ReviewDue]
    feedback: list[SopFeedback]
    never_found_titles: dict[str, str] = Field(default_factory=dict)  # sop_id -> title (the CSV showed ids alone)


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
    queries_by_source: dict[str, int] = Field(default_factory=dict)  # snapshots stored before session 34 have none
    unanswered_questions: int
    left_out_questions: int = 0
    top_queries: list[CountedQuery]
    unanswered: list[GapGroup]
    found: list[str]  # SOPs in the top 3 of some query
    feedback: list[FeedbackCount]

    def report(self, catalog: Mapping[str, Sop], today: date | None = None) -> GapReport:
        """The full report: the snapshot plus what depends on the current catalog."""
        today = today or date.today()
        never = sorted(set(catalog) - set(self.found))
        return GapReport(
            since=self.since,
            until=self.until,
            computed_at=self.computed_at,
            total_queries=self.total_queries,
            queries_by_source=self.queries_by_source,
            unanswered_questions=self.unanswered_questions,
            left_out_questions=self.left_out_questions,
            top_queries=self.top_queries,
            unanswered=self.unanswered,
            never_found=never,
            never_found_titles={k: catalog[k].title for k in never},
            review_overdue=[
                ReviewDue(sop_id=s.meta.id, title=s.title, review_by=s.meta.review_by.isoformat(), owner=s.meta.owner)
                for s in sorted(every_sop(catalog), key=lambda s: s.meta.id)
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
    again: int = 0  # staff thumbs down on searches counted for another reason already: a reason, not one more search

    def add(self, other: _Tally) -> None:
        self.staff.update(other.staff)
        self.again += other.again
        for why, who in other.clients.items():
            self.clients.setdefault(why, set()).update(who)
        self.last = max(self.last, other.last)

    @property
    def count(self) -> int:
        return sum(self.staff.values()) - self.again + len(set().union(*self.clients.values()))

    @property
    def reasons(self) -> dict[str, int]:
        return {why: self.staff[why] + len(self.clients.get(why, ())) for why in [*self.staff, *self.clients]}


@dataclass
class GapReporter:
    """Computes a report (bounded: see the module docstring); kb_service/trainer/gap_store.py serves stored ones."""

    logbook: Logbook
    embedder: Embedder
    low_confidence: float  # the chat's (a cosine similarity)
    weak_confidence: float = CALIBRATION.threshold  # searches' (calibrated: kb_service/search/confidence.py)
    max_questions: int = MAX_QUESTIONS
    per_client: int = PER_CLIENT
    groups: QuestionGroups = field(init=False)
    danger: DangerSignals = field(default_factory=DangerSignals.builtin)

    def __post_init__(self) -> None:
        self.groups = QuestionGroups(self.logbook, self.embedder)

    def _limits(self) -> dict[str, float]:
        return {"low": self.low_confidence, "weak": self.weak_confidence}

    def report(self, since: float, until: float, catalog: Mapping[str, Sop], today: date | None = None) -> GapReport:
        return self.compute(since, until).report(catalog, today)

    def compute(self, since: float, until: float) -> GapSnapshot:
        window = {"since": since, "until": until}
        heavy = [r["client"] for r in self.logbook.rows(_HEAVY, {**window, "rows": HEAVY_ROWS})]
        found_rows = self.logbook.rows(_ASKED, {**window, **self._limits(), "heavy": heavy})
        for client in heavy:
            params = {**window, **self._limits(), "client": client, "rows": HEAVY_ROWS}
            found_rows += self.logbook.rows(_HEAVY_ROWS, params)
        rows = _settled(
            [
                _Asked(r["client"], r["query"], r["why"], int(r["n"]), float(r["last"]), bool(r["again"]))
                for r in found_rows
                if smalltalk.reply(r["query"]) is None  # a greeting the chat answered as small talk: no question
            ]
        )
        candidates, questions, left_out = self._candidates([r for r in rows if r.why is not None])
        top = self._top([r for r in rows if r.why != "点踩"])
        by_source = {
            str(r["source"]): int(r["n"])
            for r in self.logbook.rows(
                "SELECT source, COUNT(*) AS n FROM queries WHERE ts >= :since AND ts < :until AND source <> 'assist' "
                "GROUP BY source",
                window,
            )
        }
        found = self.logbook.rows(_FOUND[self.logbook.db.dialect], window)
        fb = self.logbook.rows(
            "SELECT sop_id, SUM(CASE WHEN vote = 1 THEN 1 ELSE 0 END) AS up,"
            " SUM(CASE WHEN vote = -1 THEN 1 ELSE 0 END) AS down FROM feedback "
            "WHERE ts >= :since AND ts < :until GROUP BY sop_id ORDER BY down DESC, up DESC",
            window,
        )
        return GapSnapshot(
            since=since,
            until=until,
            computed_at=time.time(),
            total_queries=sum(by_source.values()),
            queries_by_source=by_source,
            unanswered_questions=questions,
            left_out_questions=left_out,
            top_queries=top,
            unanswered=self._group(candidates),
            found=sorted(str(r["sop_id"]) for r in found),
            feedback=[FeedbackCount(sop_id=f["sop_id"], up=int(f["up"] or 0), down=int(f["down"] or 0)) for f in fb],
        )

    def _candidates(self, rows: Sequence[_Asked]) -> tuple[list[tuple[str, _Tally]], int, int]:
        """The `max_questions` most asked unanswered questions, how many distinct ones were read, and how many of
        those no client's cap let in. An anonymous client counts once, for its `per_client` latest questions only."""
        kept = _kept(rows, self.per_client)
        tallies: dict[str, _Tally] = {}
        for r in rows:
            if r.why is None or (r.client is not None and (r.client, r.query) not in kept):
                continue
            tally = tallies.setdefault(r.query, _Tally())
            if r.client is None:
                tally.staff[r.why] += r.n
                tally.again += r.n if r.again else 0
            else:
                tally.clients.setdefault(r.why, set()).add(r.client)
            tally.last = max(tally.last, r.last)
        asked = Counter({q: t.count for q, t in tallies.items()})
        chosen = _ranked(asked, {q: t.last for q, t in tallies.items()}, self.max_questions)
        read = len({r.query for r in rows})
        return [(q, tallies[q]) for q in chosen], read, read - len(tallies)

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

    def _group(self, candidates: Sequence[tuple[str, _Tally]]) -> list[GapGroup]:
        """Questions of one meaning together; a group counts each anonymous client once, so one client's many
        phrasings of a question weigh no more than one tenant asking it once."""
        leaders = self.groups.leaders([q for q, _ in candidates])
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
                tenants=len(set().union(*tallies[leader].clients.values())),
                urgent=any(self.danger.found(q) for q in questions),
                last_asked=tallies[leader].last,
            )
            for leader, questions in members.items()
        ]
        return sorted(groups, key=lambda g: (not g.urgent, -g.count))  # an emergency nobody could answer first


STAFF_ANSWER_GROUPS = 30  # the most asked groups looked up in agent search when a report is served


def staff_answer_of(agent_search: SearchResponse) -> StaffAnswer | None:
    """The staff-only SOP that agent search finds first and confidently for a tenants' question, or the staff-only
    section of a public SOP that it matched first (a trial: 货梯保护押金 is in a [内部] section, and the report said
    nothing of it)."""
    top = agent_search.results[0] if agent_search.results else None
    if top is None or agent_search.weak is not False:
        return None
    if top.audience != "public":
        return StaffAnswer(sop_id=top.sop_id, title=top.title)
    first = top.sections[0] if top.sections else None
    if first is not None and first.audience != "public":
        return StaffAnswer(sop_id=top.sop_id, title=top.title, section=first.heading)
    return None
