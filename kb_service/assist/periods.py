"""When a time limit's circumstance holds by the calendar or the clock: 「冬季（11 月–次年 3 月）：」 in those months,
「夜间（22:00–7:00）：」 in those hours, 「其他月份：」 beside 冬季 in the rest of the year. Call mode starts such a
limit by itself when the call falls in its period (a trial in December had to click 适用 on 冬季 while 其他月份 waited
beside it, and could have started both)."""

from __future__ import annotations

import re
from typing import TypedDict

_MONTHS = re.compile(r"(\d{1,2})\s*月?\s*[–—\-~～至到]\s*(?:次年|翌年)?\s*(\d{1,2})\s*月")
_CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})\s*[–—\-~～至到]\s*(?:次日|第二天|翌日)?\s*(\d{1,2})[:：](\d{2})")
_OTHER = re.compile(r"^(?:其他|其余|其它|别的)")


class Period(TypedDict, total=False):
    months: list[int]  # 1–12, in the order the period runs
    minutes: list[int]  # [start, end) in minutes of the day; an end before the start runs across midnight


def period(clause: str) -> Period | None:
    """The months or hours a circumstance's own words give (「冬季（11 月–次年 3 月）」, 「夜间（22:00–7:00）」)."""
    if (m := _MONTHS.search(clause)) and 1 <= int(m[1]) <= 12 and 1 <= int(m[2]) <= 12:
        first, last = int(m[1]), int(m[2])
        return {"months": [(first - 1 + i) % 12 + 1 for i in range((last - first) % 12 + 1)]}
    if m := _CLOCK.search(clause):
        start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
        if start != end and start < 24 * 60 and end <= 24 * 60:
            return {"minutes": [start, end]}
    return None


def the_rest(label: str, before: Period | None) -> Period | None:
    """「其他月份」 / 「其余时间」 after a circumstance with a period: the rest of the year or of the day."""
    if before is None or not _OTHER.match(label):
        return None
    if "months" in before:
        return {"months": [m for m in range(1, 13) if m not in before["months"]]}
    start, end = before["minutes"]
    return {"minutes": [end, start]}
