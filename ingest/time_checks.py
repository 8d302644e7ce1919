"""A script line that promises a time the SOP's time limits do not set (a trainer's trial changed 30 分钟内到场 to 20
in the time limits, and the script kept telling tenants 30 分钟内到, with no word from the check)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from kb_service.models import Issue, Sop

_NUMERALS = {"半": 0.5, "一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_DAY = 24 * 60  # 两天内 is 48小时内; working days are a measure of their own
_UNITS = {"分钟": ("min", 1), "小时": ("min", 60), "钟头": ("min", 60), "天": ("min", _DAY), "日": ("min", _DAY)}
_UNITS |= {"工作日": ("workday", 1), "个工作日": ("workday", 1)}
# What a deadline is for, read in the few characters after it: arriving, answering back, or having it done
_ACTIONS = (
    ("arrive", re.compile(r"到场|上门|到达|赶到|赶过去|过去|过来|到(?![账期位时])")),
    ("reply", re.compile(r"回复|答复|回电|回访|联系|给您回|反馈|告知|通知")),
    ("done", re.compile(r"修好|修复|处理完|处理好|完成|解决|办好|退还|退回|退款|打款|到账")),
)
_DURATION = re.compile(
    r"(?P<n>\d+(?:\.\d+)?|[半一两二三四五六七八九十]+)\s*(?:个)?\s*(?P<u>工作日|分钟|小时|钟头|天|日)\s*(?:之内|以内|内)"
)
_REACH = 8  # characters after a deadline searched for what it is for


def _number(text: str) -> float | None:
    if text[0].isdigit():
        return float(text)
    if text == "半":
        return 0.5
    if "十" in text:  # 十, 十五, 二十, 三十
        tens, _, ones = text.partition("十")
        return (
            float(_NUMERALS.get(tens, 1) * 10 + _NUMERALS.get(ones, 0))
            if all(c in _NUMERALS for c in tens + ones)
            else None
        )
    value = _NUMERALS.get(text)
    return float(value) if value is not None else None


def deadlines(text: str) -> list[tuple[str, str, float, str]]:
    """(action, unit kind, amount in that kind, the words as written) of each deadline that says what it is for."""
    found = []
    for m in _DURATION.finditer(text):
        if (key := _amount(m)) is None:
            continue
        after = text[m.end() : m.end() + _REACH]
        for action, pattern in _ACTIONS:
            if pattern.search(after):
                found.append((action, *key, m.group(0)))
                break
    return found


def _rules(sop: Sop) -> list[tuple[str, str, float, str]]:
    texts: Iterable[str] = (s.text for s in sop.sections if s.kind in ("time_limit", "steps"))
    return [d for t in texts for d in deadlines(t)]


def time_issues(path: str, sop: Sop, text: str) -> list[Issue]:
    """A script line's deadline for an action whose time limits name other durations only."""
    rules = _rules(sop)
    if not rules:
        return []
    lines = text.split("\n")
    issues: list[Issue] = []
    for section in (s for s in sop.sections if s.kind == "script"):
        for line in section.scripts:
            for action, kind, amount, said in deadlines(line):
                same = [r for r in rules if r[0] == action]
                if not same or any((k, a) == (kind, amount) for _, k, a, _ in same):
                    continue
                written = "、".join(dict.fromkeys(w for _, _, _, w in same))
                msg = (
                    f"话术说「{said}」，但时限要求和处理步骤里写的是「{written}」：改了时限的话，请把话术一起改掉 / "
                    f"the script promises {said}, the time limits say {written}"
                )
                number = next((n for n, t in enumerate(lines, start=1) if line[:12] in t), section.line_start)
                issues.append(Issue(path=path, line=number, severity="warning", message=msg))
    return issues


def stale_times(before: Sop | None, after: Sop, path: str, text: str) -> list[Issue]:
    """Lines that still say a time the edit took out of the time limits (a training lead's trial changed 30 分钟 to
    20 in 时限要求 and the script, a step and an FAQ answer went on saying 30; nothing matched their actions)."""
    if before is None:
        return []
    old, new = (_limits(s) for s in (before, after))
    gone = {k: w for k, w in old.items() if k not in new}
    if not gone:
        return []
    added = [w for k, w in new.items() if k not in old]
    now = f"（现在写的是「{'」「'.join(added)}」）" if added else ""
    inside = [(s.line_start, s.line_end) for s in after.sections if s.kind == "time_limit"]
    issues = []
    for number, line in enumerate(text.split("\n"), start=1):
        if any(a <= number <= b for a, b in inside):
            continue
        for m in _DURATION.finditer(line):
            key = _amount(m)
            if key in gone:
                msg = (
                    f"时限要求里的「{gone[key]}」已经改了{now}，这一行还写着「{m.group(0)}」：请一并修改 / the "
                    f"time limits no longer say {gone[key]}; this line still does"
                )
                issues.append(Issue(path=path, line=number, severity="warning", message=msg))
                break
    return issues


def _limits(sop: Sop) -> dict[tuple[str, float], str]:
    """The durations the time-limit sections set, by (unit kind, amount), as first written."""
    found: dict[tuple[str, float], str] = {}
    for s in sop.sections:
        if s.kind == "time_limit":
            for m in _DURATION.finditer(s.text):
                if (key := _amount(m)) is not None:
                    found.setdefault(key, m.group(0))
    return found


def _amount(m: re.Match[str]) -> tuple[str, float] | None:
    n = _number(m.group("n"))
    if n is None:
        return None
    kind, scale = _UNITS[m.group("u")]
    return kind, n * scale
