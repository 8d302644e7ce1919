"""The training-needs report (培训缺口): per person, per SOP and per category, practice accuracy and time, search
success on the job, time from first keystroke to a copied script, 👎 rate and unacknowledged changes, with weekly
trends. Computed from the training tables on request (they hold people's actions, a few thousand rows a week)."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from kb_service.models import Sop
from kb_service.training import verdict
from kb_service.training.changes import changed_since
from kb_service.training.hub import Training

SUCCESS = ("copy", "open")  # a search followed by one of these found what the agent needed
# Finding a SOP takes reading the tenant's words and typing a search: an answer under this was not practised on the
# page (answers posted by a script right after the round started showed a 0.0 s median, unflagged: a trial).
TOO_FAST_MS = 1000


class PersonFigures(BaseModel):
    name: str
    role: str = Field(description="agent / trainer / admin；服务密钥为 service，试用模式为 trial")
    drills: int
    correct: int
    accuracy: float | None
    median_ms: float | None = Field(description="找到 SOP 的用时中位数（毫秒）")
    too_fast: int = Field(default=0, description="用时不足 1 秒的作答数：多半不是在练习页上作答，用时和正确率不可信")
    followups: int
    followup_accuracy: float | None = Field(description="第二步（选话术、排步骤）的正确率")
    searches: int = Field(description="控制台上报的检索次数")
    search_success: float | None = Field(description="检索后查看或复制的比例（其余为重搜或放弃）")
    median_copy_ms: float | None = Field(description="从第一次按键到复制话术的用时中位数（毫秒）")
    votes: int
    thumbs_down_rate: float | None
    unacknowledged_changes: int = Field(
        description="还需确认的变更数（只要求在用的坐席和培训师账号确认；管理员、服务密钥为 0）"
    )
    certified: list[str] = Field(description="现在有效的认证（分类）")
    expired: list[str] = Field(default_factory=list, description="通过过、但已过期需要重考的分类")
    changed_since: dict[str, int] = Field(
        default_factory=dict,
        description="有效认证之后，该分类 SOP 的步骤、话术、时限或升级又发布了几处变更（分类 → 处数）：可安排重考",
    )
    assignments_open: int = Field(default=0, description="布置给此人、现在还未完成的培训任务数（含已逾期）")
    assignments_overdue: int = Field(default=0, description="其中已过截止时间的")
    missed_sops: dict[str, int] = Field(
        default_factory=dict, description="本期练习中找错最多的 SOP 及次数（最多 5 个）：个人的薄弱点"
    )


class SopFigures(BaseModel):
    sop_id: str
    title: str
    category: str
    drills: int
    accuracy: float | None
    median_ms: float | None
    confused_with: dict[str, int] = Field(description="练习中被误选的 SOP 及次数")
    followup_accuracy: float | None = Field(
        default=None, description="第二步（选话术、排步骤）的正确率：找对了 SOP，却不会用它"
    )
    searches: int
    search_success: float | None
    logged_searches: int = Field(description="查询日志中把它排第一的坐席检索次数")
    logged_success: float | None = Field(
        description="其中坐席随后查看或复制了这份 SOP 的比例（学习事件；复制其他 SOP 的话术不算）"
    )
    thumbs_down: int


class CategoryFigures(BaseModel):
    category: str
    drills: int
    accuracy: float | None
    median_ms: float | None
    certified: list[str]


class WeekFigures(BaseModel):
    week: str = Field(description="ISO 周，如 2026-W48")
    drills: int
    accuracy: float | None
    searches: int
    search_success: float | None


class ExamAttempt(BaseModel):
    who: str
    category: str
    ts: float = Field(description="开考时间")
    size: int = Field(description="题数")
    finished: bool
    score: float | None
    pass_mark: float | None = Field(description="开考时的及格线")
    passed: bool | None = Field(description="是否通过（未完成为空）")
    certified: bool | None = Field(
        default=None, description="交卷时是否取得认证（达到及格线但考试已撤下或分类已无 SOP 时为 false；旧记录为空）"
    )
    every_stage: bool = Field(default=False, description="开考时是否要求每题第二步都答对")


class TrainingReport(BaseModel):
    since: float
    until: float
    people: list[PersonFigures]
    sops: list[SopFigures]
    categories: list[CategoryFigures]
    weeks: list[WeekFigures]
    exams: list[ExamAttempt] = Field(default_factory=list, description="期间开考的每一次考试（含未通过和未完成）")


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _median(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return float(statistics.median(got)) if got else None


def week_of(ts: float) -> str:
    year, week, _ = datetime.fromtimestamp(ts, tz=UTC).isocalendar()
    return f"{year}-W{week:02d}"


def _tasks_to_do(t: Training) -> tuple[Counter[str], Counter[str]]:
    """Per person, the training assignments still to do, and how many of them are overdue."""
    tasks = t.assignments.list()
    stands = t.assignments.progress(tasks)
    todo = Counter(a.who for a in tasks if stands[a.assignment_id].status in ("open", "overdue"))
    return todo, Counter(a.who for a in tasks if stands[a.assignment_id].status == "overdue")


def _people(
    t: Training,
    catalog: Mapping[str, Sop],
    drills: list[dict[str, Any]],
    episodes: list[dict[str, Any]],
    votes: list[dict[str, Any]],
) -> list[PersonFigures]:
    accounts = {a.name: a for a in t.accounts.list()}
    names = {n for n, a in accounts.items() if a.active} | {r["who"] for r in (*drills, *episodes, *votes)}
    certs: dict[str, list[str]] = defaultdict(list)
    expired: dict[str, list[str]] = defaultdict(list)
    marks = t.records.marks()
    passes = t.records.certifications()
    for c in passes:
        if c.valid(marks.get(c.category)):
            certs[c.who].append(c.category)
        elif c.category in marks:  # an exam withdrawn since asks nobody to sit it again
            expired[c.who].append(c.category)
    stale = changed_since(
        [(c.who, c.category, c.ts) for c in passes if c.category in certs.get(c.who, ())],
        t.changes.dated(),
        catalog,
    )
    todo, late = _tasks_to_do(t)
    names |= set(todo)
    out = []
    for name in sorted(names):
        mine = [d for d in drills if d["who"] == name]
        follow = [d for d in mine if d["followup_correct"] is not None]
        eps = [e for e in episodes if e["who"] == name]
        vs = [v for v in votes if v["who"] == name]
        account = accounts.get(name)
        role = account.role if account else ("trial" if name == "trial" else "service")
        out.append(
            PersonFigures(
                name=name,
                role=role,
                drills=len(mine),
                correct=sum(1 for d in mine if d["correct"]),
                accuracy=_share(sum(1 for d in mine if d["correct"]), len(mine)),
                median_ms=_median(d["ms"] for d in mine),
                too_fast=sum(1 for d in mine if d["ms"] is not None and d["ms"] < TOO_FAST_MS),
                followups=len(follow),
                followup_accuracy=_share(sum(1 for d in follow if d["followup_correct"]), len(follow)),
                searches=len(eps),
                search_success=_share(sum(1 for e in eps if e["outcome"] in SUCCESS), len(eps)),
                median_copy_ms=_median(e["ms"] for e in eps if e["outcome"] == "copy"),
                votes=len(vs),
                thumbs_down_rate=_share(sum(1 for v in vs if v["vote"] < 0), len(vs)),
                unacknowledged_changes=t.changes.outstanding(account),
                certified=sorted(certs.get(name, [])),
                expired=sorted(expired.get(name, [])),
                changed_since={cat: n for (who, cat), n in sorted(stale.items()) if who == name},
                missed_sops=most_missed(mine),
                assignments_open=todo[name],
                assignments_overdue=late[name],
            )
        )
    return out


def most_missed(drills: Sequence[Mapping[str, Any]], n: int = 5) -> dict[str, int]:
    """The SOPs a person most often failed to find, the latest miss first among equal counts (what to coach now)."""
    count: Counter[str] = Counter()
    last: dict[str, float] = {}
    for d in drills:
        if not d["correct"]:
            count[d["sop_id"]] += 1
            last[d["sop_id"]] = max(last.get(d["sop_id"], 0.0), d["answered_ts"])
    return dict(sorted(count.items(), key=lambda kv: (-kv[1], -last[kv[0]]))[:n])


def _sops(
    catalog: Mapping[str, Sop],
    drills: list[dict[str, Any]],
    episodes: list[dict[str, Any]],
    votes: list[dict[str, Any]],
    answers: dict[str, Counter[str]],
    logged: dict[str, tuple[int, int]],
) -> list[SopFigures]:
    ids = {d["sop_id"] for d in drills} | {e["sop_id"] for e in episodes if e["sop_id"]} | set(logged)
    out = []
    for sop_id in sorted(ids):
        sop = catalog.get(sop_id)
        mine = [d for d in drills if d["sop_id"] == sop_id]
        follow = [d for d in mine if d["followup_correct"] is not None]
        eps = [e for e in episodes if e["sop_id"] == sop_id]
        out.append(
            SopFigures(
                sop_id=sop_id,
                title=sop.title if sop else sop_id,
                category=sop.meta.category if sop else "",
                drills=len(mine),
                accuracy=_share(sum(1 for d in mine if d["correct"]), len(mine)),
                median_ms=_median(d["ms"] for d in mine),
                confused_with=dict(answers.get(sop_id, Counter()).most_common(5)),
                followup_accuracy=_share(sum(1 for d in follow if d["followup_correct"]), len(follow)),
                searches=len(eps),
                search_success=_share(sum(1 for e in eps if e["outcome"] in SUCCESS), len(eps)),
                logged_searches=logged.get(sop_id, (0, 0))[0],
                logged_success=_share(logged.get(sop_id, (0, 0))[1], logged.get(sop_id, (0, 0))[0]),
                thumbs_down=sum(1 for v in votes if v["sop_id"] == sop_id and v["vote"] < 0),
            )
        )
    out.sort(key=_weakness)  # weakest first: the lower of finding the SOP and using it
    return out


def _weakness(s: SopFigures) -> tuple[float, int, int]:
    """The lowest of finding the SOP in practice, its second stage, finding it on the job and acting on it there
    (a trainer's trial: a SOP agents never found on the job, with no practice yet, sat below ones found every time);
    then the most 👎, the most evidence."""
    rates = (s.accuracy, s.followup_accuracy, s.search_success, s.logged_success)
    known = [a for a in rates if a is not None]
    return (min(known) if known else 2.0, -s.thumbs_down, -(s.drills + s.searches + s.logged_searches))


def _weeks(drills: list[dict[str, Any]], episodes: list[dict[str, Any]]) -> list[WeekFigures]:
    by_week: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = defaultdict(lambda: ([], []))
    for d in drills:
        by_week[week_of(d["answered_ts"])][0].append(d)
    for e in episodes:
        by_week[week_of(e["ts"])][1].append(e)
    return [
        WeekFigures(
            week=w,
            drills=len(ds),
            accuracy=_share(sum(1 for d in ds if d["correct"]), len(ds)),
            searches=len(es),
            search_success=_share(sum(1 for e in es if e["outcome"] in SUCCESS), len(es)),
        )
        for w, (ds, es) in sorted(by_week.items())
    ]


def build_report(
    t: Training, catalog: Mapping[str, Sop], since: float, until: float, person: str | None = None
) -> TrainingReport:
    drills = [d for d in t.practice.answered(since) if d["answered_ts"] < until and person in (None, d["who"])]
    episodes = [e for e in t.records.episodes(since) if e["ts"] < until and person in (None, e["who"])]
    votes = [v for v in t.records.votes(since) if v["ts"] < until and person in (None, v["who"])]
    confused: dict[str, Counter[str]] = defaultdict(Counter)
    for d in drills:
        if not d["correct"] and d["answer_sop"]:
            confused[d["sop_id"]][d["answer_sop"]] += 1
    people = _people(t, catalog, drills, episodes, votes)
    if person is not None:
        people = [p for p in people if p.name == person]
    cats: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in drills:
        cats[d["category"]].append(d)
    certified: dict[str, list[str]] = defaultdict(list)
    for c in t.records.valid_certifications():
        certified[c.category].append(c.who)
    categories = [
        CategoryFigures(
            category=c,
            drills=len(ds),
            accuracy=_share(sum(1 for d in ds if d["correct"]), len(ds)),
            median_ms=_median(d["ms"] for d in ds),
            certified=sorted(certified.get(c, [])),
        )
        for c, ds in sorted(cats.items())
    ]
    marks = t.records.marks()
    exams = [
        ExamAttempt(
            who=x.who,
            category=x.category or "",
            ts=x.ts,
            size=x.size,
            finished=x.finished_ts is not None,
            score=x.score,
            pass_mark=verdict.mark_of(x, marks),
            passed=verdict.passed(x, x.score, marks, rows),
            certified=x.certified,
            every_stage=x.every_stage,
        )
        for x, rows in t.practice.exams(since, until)
        if person in (None, x.who)
    ]
    return TrainingReport(
        since=since,
        until=until,
        exams=exams,
        people=people,
        sops=_sops(catalog, drills, episodes, votes, confused, t.records.logged_searches(since, until)),
        categories=categories,
        weeks=_weeks(drills, episodes),
    )


def default_window(since: float | None, until: float | None) -> tuple[float, float]:
    end = until if until is not None else time.time() + 1
    return (since if since is not None else end - 12 * 7 * 86400), end
