"""What a caller says a problem is not: `不是门锁坏了，是阳台推拉门滑不动` is about the sliding door.

Tenants set their problem apart from a near one (不是邻居家的, 楼道的灯是亮的，是我房间…, 没停水，是屋里进水了), and the
words of the near problem pull the search toward its procedure. A clause that opens with a denial (不是…), or that
denies or calls normal (没问题, 是正常的, 不用改) and is followed by a clause saying what it is instead (是…, 就是…,
但是…), is left out of what is searched. A symptom said with 没 (没电了, 没有热水) is no denial: only 没停, 没问题 and
the like count, and only before a contrast."""

from __future__ import annotations

import re

_CLAUSE = re.compile(r"[^，,。；;！!？?\s]+")
_DENIAL_OPENING = re.compile(r"^(?:不是|并不是|也不是|倒不是|又不是)(?!说)")
_DENIAL = re.compile(
    r"不是|没问题|没毛病|没坏|正常的?$|是好的|好好的|是亮的|不用|不改|不换|没有人|没人投诉|有余额|没停"
)
_CONTRAST = re.compile(r"^(?:而是|就是|是|但是|但|只是|可是|其实是|我是|我就是|我只是|反而|倒是)")


def without_dismissed(query: str) -> str:
    """The query without its clauses that say what the problem is not; the query itself when that would leave
    nothing or there are none."""
    spans = [(m.start(), m.end(), m.group()) for m in _CLAUSE.finditer(query)]
    drop = []
    for i, (start, end, clause) in enumerate(spans):
        after = spans[i + 1][2] if i + 1 < len(spans) else ""
        if _DENIAL_OPENING.match(clause) or (_DENIAL.search(clause) and _CONTRAST.match(after)):
            drop.append((start, spans[i + 1][0] if i + 1 < len(spans) else end))  # with the comma after it
    if not drop or len(drop) == len(spans):
        return query
    kept, at = [], 0
    for start, end in drop:
        kept.append(query[at:start])
        at = end
    kept.append(query[at:])
    return "".join(kept).strip(" ，,")
