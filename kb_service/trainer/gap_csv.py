"""The gap report as CSV, for a spreadsheet: one row per item, text that a spreadsheet would run as a formula made
plain (OWASP: prefixed with ')."""

from __future__ import annotations

import csv
import io

from kb_service.trainer.gaps import GapReport

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

    row("section", "item", "count", "detail", "urgent")  # urgent appended: the four columns keep their places
    for q in report.top_queries:
        row("热门问题", q.query, q.count, "")
    for g in report.unanswered:
        detail = "；".join(f"{k}{v}" for k, v in g.reasons.items()) + " | " + " / ".join(g.examples)
        if g.staff_answer is not None:
            where = f"·小节“{g.staff_answer.section}”" if g.staff_answer.section else ""
            detail += f" | 仅员工文档有答案：{g.staff_answer.title}{where}（{g.staff_answer.sop_id}）"
        row("未解决问题", g.representative, g.count, detail, "紧急" if g.urgent else "")
    for sop_id in report.never_found:
        row("从未被检索到的SOP", sop_id, 0, report.never_found_titles.get(sop_id, ""))
    for r in report.review_overdue:
        row("复核过期", r.sop_id, "", f"{r.title} 复核日期 {r.review_by} 负责人 {r.owner}")
    for f in report.feedback:
        row("反馈", f.sop_id, f.up - f.down, f"👍{f.up} 👎{f.down} {f.title}")
    return buf.getvalue()
