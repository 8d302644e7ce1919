"""The training-needs report as one CSV table for spreadsheets: a row per person, SOP, category, week and exam attempt,
under Chinese headings (trainers open it in Excel); a section fills the columns it has, the rest stay empty. Shares
are written as percentages (80%, which a spreadsheet reads as a number; a trial read 0.8 as a count). Cells that a
spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from kb_service.trainer.gap_csv import neutralise
from kb_service.training.report import ExamAttempt, PersonFigures, TrainingReport

# Positions are stable (columns were only ever appended); the headings name what each column holds for a person row,
# and `说明` holds a SOP's title, a category's certified people and an exam's category and verdict.
CSV_COLUMNS = (
    *("分组", "名称", "练习题数", "找对率", "找SOP用时中位数(毫秒)", "检索次数", "检索成功率"),
    *("复制话术用时中位数(毫秒)", "👎比例", "待确认变更", "说明"),
    *("第二步正确率", "已过期认证", "常找错的SOP"),
    *("过快作答数", "日志检索次数", "日志检索成功率", "👎次数", "误选为"),
    "认证后的变更",
    *("未完成培训任务", "逾期培训任务"),
)
CHINA = timedelta(hours=8)  # dates in the table are read in China


def _pct(x: float | None) -> str:
    """Halves rounded up, as the pages round them (Python's round(62.5) is 62: a trial read 63% on the page and 62%
    in the CSV for 5 of 8)."""
    return "" if x is None else f"{math.floor(x * 100 + 0.5)}%"


def _ms(x: float | None) -> int | str:
    """Whole milliseconds (a trial read 6622.0)."""
    return "" if x is None else round(x)


def _day(ts: float) -> str:
    return (datetime.fromtimestamp(ts, tz=UTC) + CHINA).strftime("%Y-%m-%d %H:%M")


def _exam_detail(x: ExamAttempt) -> str:
    """「报修｜未通过（第二步须全对），得分 80%，及格线 80%｜2026-12-04 10:31」"""
    verdict = "未完成" if not x.finished else {True: "通过", False: "未通过", None: "未设及格线"}[x.passed]
    if x.passed and x.certified is False:  # the exam was withdrawn or its category lost its last SOP by then
        verdict = "达到及格线，未计认证"
    if x.passed is False and x.every_stage and x.score is not None and x.pass_mark is not None:
        verdict += "（第二步须全对）" if x.score >= x.pass_mark else ""
    mark = f"，及格线 {_pct(x.pass_mark)}" if x.pass_mark is not None else ""
    score = f"，得分 {_pct(x.score)}" if x.score is not None else ""
    return f"{x.category}｜{verdict}{score}{mark}｜{_day(x.ts)}"


def _person(p: PersonFigures, titles: dict[str, str]) -> tuple[object, ...]:
    return (
        "人员",
        p.name,
        p.drills,
        _pct(p.accuracy),
        _ms(p.median_ms),
        p.searches,
        _pct(p.search_success),
        _ms(p.median_copy_ms),
        _pct(p.thumbs_down_rate),
        p.unacknowledged_changes,
        "、".join(p.certified),
        _pct(p.followup_accuracy),
        "、".join(p.expired),
        "；".join(f"{titles.get(k, k)}×{v}" for k, v in p.missed_sops.items()),
        p.too_fast,
        *("",) * 4,
        "；".join(f"{k}×{v}" for k, v in p.changed_since.items()),
        p.assignments_open,
        p.assignments_overdue,
    )


def to_csv(report: TrainingReport, known: Mapping[str, str] | None = None) -> str:
    """The report as CSV; `known`: every SOP's title by id, for SOPs named that the report's own rows do not hold (a
    training manager's trial read ids beside titles in 误选为)."""
    buf = io.StringIO()
    w = csv.writer(buf)

    def row(*cells: object) -> None:  # padded: a section fills the columns it has
        w.writerow([neutralise(c) for c in cells] + [""] * (len(CSV_COLUMNS) - len(cells)))

    row(*CSV_COLUMNS)
    # SOPs by title, as the page names them (a trial read ids)
    titles = {**(known or {}), **{s.sop_id: s.title for s in report.sops}}
    for p in report.people:
        row(*_person(p, titles))
    for s in report.sops:
        confused = "；".join(f"{titles.get(k, k)}×{v}" for k, v in s.confused_with.items())
        row(
            "SOP",
            s.sop_id,
            s.drills,
            _pct(s.accuracy),
            _ms(s.median_ms),
            s.searches,
            _pct(s.search_success),
            "",
            "",
            "",
            f"{s.title} {confused}".strip(),
            _pct(s.followup_accuracy),
            "",
            "",
            "",
            s.logged_searches,
            _pct(s.logged_success),
            s.thumbs_down,
            confused,
        )
    for c in report.categories:
        blank = ("",) * 5
        row("分类", c.category, c.drills, _pct(c.accuracy), _ms(c.median_ms), *blank, "、".join(c.certified))
    for wk in report.weeks:
        row("周", wk.week, wk.drills, _pct(wk.accuracy), "", wk.searches, _pct(wk.search_success), *("",) * 7)
    for x in report.exams:
        row("考试", x.who, x.size, _pct(x.score), "", "", "", "", "", "", _exam_detail(x))
    return buf.getvalue()
