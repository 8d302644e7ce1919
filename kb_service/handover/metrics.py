"""Service figures for supervisors (服务指标): how fast a person answers a tenant the chat handed over (响应), how
many of those cases are closed (闭环), and how many of them after one reply (a first-contact resolution proxy),
overall, by priority, for the tenants' complaints (complaint closure) and per agent, with the tenants' ratings of
the closed cases (satisfaction); how many chat questions the chat answered itself; who is waiting now.

Read from the hand-over tables and the query log (portable SQL, both service databases). Response time is the first
agent message after the case was opened; a case with none counts as not answered. Targets come from settings
(`KB_CASE_RESPONSE_MINUTES`): the time a case of each priority should be answered in.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from kb_service.db.logbook import Logbook
from kb_service.text import tone

_CASES = """
SELECT c.case_id, c.priority, c.status, c.taken_by, c.created_at, c.closed_at, c.question, c.rating,
       (SELECT MIN(m.created_at) FROM handover_messages m WHERE m.case_id = c.case_id AND m.author = 'agent')
           AS first_reply,
       (SELECT COUNT(*) FROM handover_messages m WHERE m.case_id = c.case_id AND m.author = 'agent') AS replies,
       (SELECT m.sender FROM handover_messages m WHERE m.case_id = c.case_id AND m.author = 'agent'
        ORDER BY m.seq LIMIT 1) AS first_replier
FROM handover_cases c WHERE c.created_at >= :since AND c.created_at < :until
"""
_WAITING = """
SELECT c.priority, c.created_at FROM handover_cases c
WHERE c.status <> 'closed'
  AND NOT EXISTS (SELECT 1 FROM handover_messages m WHERE m.case_id = c.case_id AND m.author = 'agent')
"""
# An emergency handed over by policy with a safety instruction is logged with no hand-over and no confidence (it is no
# gap in the knowledge base: api/routes/chat.py); it was still handed over, not self-served.
# An answer the tenant marked 没帮助 is no self-service (a training lead's trial: wrong answers counted as served)
# ... nor one after which the same conversation asked for a person within FOLLOWED_S (a supervisor's trial: two WiFi
# answers followed by 转人工 counted as served): the same widget session, or without one the same client address (an
# operator's trial: behind a proxy every tenant has one address, and every answer counted as followed); unless the
# tenant marked the answer 有帮助 (a later trial's door-card answer, 👍, then a person asked about something else)
FOLLOWED_S = 600.0
_DOWN = "EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = queries.id AND f.vote < 0)"
_VOTED = "EXISTS (SELECT 1 FROM feedback f WHERE f.query_id = queries.id AND f.vote <> 0)"  # 没帮助 or 有帮助
# A hand-over of the same conversation (by `key`, session or client: each with its index) within FOLLOWED_S
_LATER = (
    "EXISTS (SELECT 1 FROM queries h WHERE h.{key} = queries.{key} AND h.source = 'handover'"
    " AND h.ts > queries.ts AND h.ts <= queries.ts + :followed)"
)
_CHAT = f"""
SELECT COUNT(*) AS n, SUM(CASE WHEN handoff <> 0 OR confidence IS NULL THEN 1 ELSE 0 END) AS handed,
  SUM(CASE WHEN handoff = 0 AND confidence IS NOT NULL AND {_DOWN} THEN 1 ELSE 0 END) AS down,
  SUM(CASE WHEN handoff = 0 AND confidence IS NOT NULL AND NOT {_VOTED}
    AND CASE WHEN session IS NOT NULL THEN {_LATER.format(key="session")} ELSE {_LATER.format(key="client")} END
    THEN 1 ELSE 0 END) AS followed,
  SUM(CASE WHEN handoff = 0 AND confidence IS NOT NULL AND confidence < :low AND NOT {_VOTED}
    AND NOT CASE WHEN session IS NOT NULL THEN {_LATER.format(key="session")} ELSE {_LATER.format(key="client")} END
    THEN 1 ELSE 0 END) AS low
FROM queries WHERE source = 'chat' AND ts >= :since AND ts < :until
"""


class ResponseFigures(BaseModel):
    cases: int
    answered: int = Field(description="有坐席回复的工单数")
    within_target: float | None = Field(
        description="在目标时间内首次回复的比例（占已有结果的工单：已回复的，和未回复但已超时的；还在目标时间内等待的不计）"
    )
    median_first_reply_s: float | None = Field(description="首次回复用时中位数（秒，只算已回复的）")
    p90_first_reply_s: float | None
    closed: int
    closed_after_one_reply: int = Field(description="坐席只回复一次就关闭的工单（一次解决的近似）")
    median_close_s: float | None = Field(description="从创建到关闭的用时中位数（秒）")
    rated: int = Field(default=0, description="租客在关闭后评价了的工单数")
    satisfaction: float | None = Field(default=None, description="评价为满意的比例（占已评价的）")


class AgentFigures(ResponseFigures):
    """`cases` and the closing figures count the cases the agent holds (接单); `answered` and the first-reply figures
    the cases whose first reply the agent sent (a case taken over later is still answered by who answered it), with
    the cases they hold that nobody answered."""

    name: str
    complaints: int = Field(default=0, description="其中租客在投诉的工单数")
    complaints_closed: int = Field(default=0, description="其中已关闭的投诉工单数（投诉闭环）")


class Waiting(BaseModel):
    cases: int = Field(description="现在等待坐席首次回复的工单（未关闭）")
    urgent: int
    oldest_wait_s: float | None
    over_target: int = Field(description="其中已超过目标时间的")


class ServiceReport(BaseModel):
    since: float
    until: float
    targets_s: dict[str, float] = Field(description="各优先级的首次回复目标（秒）")
    overall: ResponseFigures
    by_priority: dict[str, ResponseFigures]
    complaints: ResponseFigures = Field(
        description="其中租客在投诉（问题里有对服务的不满：投诉、差评、没人管、拖了…）的工单：投诉的响应与闭环"
    )
    agents: list[AgentFigures] = Field(description="按接单坐席（taken_by），工单多的在前")
    waiting: Waiting
    chat_questions: int = Field(description="租客在聊天中提的问题数")
    chat_self_served: float | None = Field(
        description="聊天自己答复（未转人工，紧急情况也算转人工；租客点了「没帮助」或随后又转人工的不算）的比例"
    )
    chat_voted_down: int = Field(0, description="聊天答复了、租客却点了「没帮助」的问题数（检查这些回答）")
    chat_followed_by_case: int = Field(0, description="聊天答复了、同一租客随后 10 分钟内又转人工的问题数")
    chat_low_confidence: int = Field(
        0,
        description="聊天在置信度低时答复、租客没有评价也没有随后转人工的问题数（缺口报告的「已答·置信度低」：可能答错，不算自助答复）",
    )
    chat_handed_over: int


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1)


def _figures(rows: Iterable[Mapping[str, Any]], targets: Mapping[str, float], now: float) -> dict[str, Any]:
    rows = list(rows)
    replies = [r["first_reply"] - r["created_at"] for r in rows if r["first_reply"] is not None]

    def target(r: Mapping[str, Any]) -> float:
        return targets.get(r["priority"], 0.0)

    on_time = [r for r in rows if r["first_reply"] is not None and r["first_reply"] - r["created_at"] <= target(r)]
    # A case still waiting within its target has no verdict yet; one waiting past it is late already
    decided = [r for r in rows if r["first_reply"] is not None or now - r["created_at"] > target(r)]
    closed = [r for r in rows if r["status"] == "closed" and r["closed_at"] is not None]
    rated = [r for r in closed if r["rating"] is not None]
    return {
        "cases": len(rows),
        "answered": len(replies),
        "within_target": round(len(on_time) / len(decided), 4) if decided else None,
        "median_first_reply_s": _median(replies),
        "p90_first_reply_s": _p90(replies),
        "closed": len(closed),
        "closed_after_one_reply": sum(1 for r in closed if int(r["replies"] or 0) == 1),
        "median_close_s": _median([r["closed_at"] - r["created_at"] for r in closed]),
        "rated": len(rated),
        "satisfaction": round(sum(1 for r in rated if r["rating"] > 0) / len(rated), 4) if rated else None,
    }


_FIRST_REPLY = ("answered", "within_target", "median_first_reply_s", "p90_first_reply_s")


def _agent(
    name: str, held: list[dict[str, Any]], replied: list[dict[str, Any]], targets: Mapping[str, float], now: float
) -> AgentFigures:
    """One agent's cases, with their complaints and how many of those are closed (complaint closure per person); the
    first replies they sent, wherever the case went after (a supervisor's trial: a take-over moved the credit)."""
    complaints = [r for r in held if tone.complains(r["question"] or "")]
    closed = sum(1 for r in complaints if r["status"] == "closed")
    figures = _figures(held, targets, now)
    answering = replied + [r for r in held if r["first_reply"] is None]
    figures.update({k: v for k, v in _figures(answering, targets, now).items() if k in _FIRST_REPLY})
    return AgentFigures(name=name, complaints=len(complaints), complaints_closed=closed, **figures)


def service_report(
    logbook: Logbook, since: float, until: float, targets: Mapping[str, float], now: float, low: float = 0.0
) -> ServiceReport:
    """The figures of the cases opened in [since, until), and of the cases waiting `now`. `low`: the chat's confidence
    below which an answer is no self-service unless the tenant said it helped (the gap report's 已答·置信度低: a
    training manager's trial read the same two wrong answers as self-served there and as low-confidence here)."""
    window = {"since": since, "until": until}
    rows = [dict(r) for r in logbook.rows(_CASES, window)]
    by_priority: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    first_replies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_priority[r["priority"]].append(r)
        if r["taken_by"]:
            by_agent[r["taken_by"]].append(r)
        if r["first_reply"] is not None and (replier := r["first_replier"] or r["taken_by"]):
            first_replies[replier].append(r)  # messages from before migration 0013 name no sender: the holder's
    waiting = [dict(r) for r in logbook.rows(_WAITING)]
    waits = [now - r["created_at"] for r in waiting]
    chat = logbook.rows(_CHAT, {**window, "followed": FOLLOWED_S, "low": low})[0]
    asked, handed, down = int(chat["n"] or 0), int(chat["handed"] or 0), int(chat["down"] or 0)
    followed, unsure = int(chat["followed"] or 0), int(chat["low"] or 0)
    return ServiceReport(
        since=since,
        until=until,
        targets_s=dict(targets),
        overall=ResponseFigures(**_figures(rows, targets, now)),
        by_priority={p: ResponseFigures(**_figures(rs, targets, now)) for p, rs in sorted(by_priority.items())},
        complaints=ResponseFigures(**_figures([r for r in rows if tone.complains(r["question"] or "")], targets, now)),
        agents=sorted(
            (_agent(name, by_agent[name], first_replies[name], targets, now) for name in {*by_agent, *first_replies}),
            key=lambda a: (-a.cases, a.name),
        ),
        waiting=Waiting(
            cases=len(waiting),
            urgent=sum(1 for r in waiting if r["priority"] == "urgent"),
            oldest_wait_s=round(max(waits), 1) if waits else None,
            over_target=sum(1 for r, w in zip(waiting, waits, strict=True) if w > targets.get(r["priority"], 0)),
        ),
        chat_questions=asked,
        chat_self_served=round((asked - handed - down - followed - unsure) / asked, 4) if asked else None,
        chat_handed_over=handed,
        chat_voted_down=down,
        chat_followed_by_case=followed,
        chat_low_confidence=unsure,
    )
