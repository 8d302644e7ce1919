"""What a console shows of a pinned SOP during a call: its time limits as countdowns and what to ask the tenant.

Both are read from the parsed SOP's own text (time-limit sections, steps and script lines), so a trainer's wording is
what the agent sees: 「持续滴水：30 分钟内到场」 becomes a 30-minute countdown labelled with that clause; a step that
starts with 问清/询问/确认/了解 and a script line that asks the tenant something become "ask next" items.
"""

from __future__ import annotations

import re
from typing import Any, NotRequired, TypedDict

from kb_service.assist.periods import Period, period, the_rest
from kb_service.models import Sop
from kb_service.search.config import SearchConfig
from kb_service.search.hits import to_hit
from kb_service.search.results import SopHit

# "30 分钟内到场", "2 小时内找到并关断水源", "半小时内回电": a number (or 半) and a unit up to a day.
_LIMIT = re.compile(r"(\d+(?:\.\d+)?|半|一|两)\s*(分钟|个小时|小时|个钟头|min|h)\s*内([^，。；,;\n]*)")
_WORDS = {"半": 0.5, "一": 1.0, "两": 2.0}
_ASK_STEP = re.compile(r"^(问清|询问|确认|了解|核实|问明)")
_LABEL_END = re.compile(r"(?<!\d)[：:]|[：:](?!\d)")  # a label's colon, not a clock time's (22:00)
_BULLET = re.compile(r"^[-*•\d.、)\s]+")
_PAREN = re.compile(r"（[^）]*）|\([^)]*\)")
MAX_DEADLINES = 6
MAX_QUESTIONS = 6


# A limit counted from a later event ("到场后 2 小时内", "结案后 24 小时内") starts when the agent says so; one counted
# from the call itself ("接报后 5 分钟内", "接到电话：1 分钟内") or from nothing named starts with the call.
_AFTER_EVENT = re.compile(r"(?:后|以后|之后)\s*$")
_FROM_CALL = re.compile(r"(?:接报|报修|接电话|接到电话|来电|接听|受理|接到投诉)(?:后|以后|之后)?\s*$")


# Who acts is no circumstance: 「安保：5 分钟内到达」 and 「维保单位 30 分钟内到场」 run with the call.
_ROLE = re.compile(
    r"(?:安保|保安|工程|维保|维修|电工|客服|管家|值班|主管|店长|中控|前台|保洁|物业|经理|专员|师傅|技术员|工程师|门岗"
    r"|中心|单位|人员|部|组|班|队|室)+"
)


class Deadline(TypedDict):
    label: str  # the clause, e.g. "持续滴水：30 分钟内到场"
    minutes: float
    # "call": counts from now (the call); "event": from the event the label names, started by the agent; "case": only
    # in the circumstance its label names (冬季, 夜间, 无人被困的故障, 一级), started by the agent when it applies
    starts: str
    # a circumstance the calendar or the clock decides (冬季（11 月–次年 3 月）): the console starts it in its period
    period: NotRequired[Period]


def deadlines(time_limits: list[str]) -> list[Deadline]:
    """Countdowns from a SOP's time-limit sections (days and longer are left out: a call does not last that long)."""
    out: list[Deadline] = []
    for block in time_limits:
        last: Period | None = None  # the latest circumstance's period in this block (其他月份 is the rest of it)
        named: dict[str, Period] = {}  # each circumstance's period by its label (夜间：…15 分钟内…，30 分钟内…)
        for line in block.splitlines():
            for m in _LIMIT.finditer(line):
                amount = _WORDS.get(m.group(1)) or float(m.group(1))
                minutes = amount if m.group(2) in ("分钟", "min") else amount * 60
                prefix = _prefix(line[: m.start()])
                # 「扣款争议：管家24小时内…」 keeps its own colon: no second one after 管家
                sep = "" if not prefix or _LABEL_END.search(prefix) else " " if prefix.endswith(("后", "前")) else "："
                label = f"{prefix}{sep}{m.group(0).strip()}"
                starts = _starts(prefix)
                when = period(re.split(r"[，；。,;]", line[: m.start()])[-1]) if starts == "case" else None
                when = when or named.get(prefix) or (the_rest(prefix, last) if starts == "case" else None)
                if when is not None:
                    last = named[prefix] = when
                if 0 < minutes <= 24 * 60:
                    out.append(Deadline(label=label, minutes=minutes, starts=starts))
                    if when is not None:
                        out[-1]["period"] = when
    return out[:MAX_DEADLINES]


_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.、)])\s*")  # a list item's marker, not the number it starts with


def untimed(time_limits: list[str]) -> list[str]:
    """The time-limit clauses that give the call no countdown (only days, more than a day, or no minutes or hours):
    what a trainer's preview lists beside the countdowns (a trial's 48 小时内上门 vanished without a word)."""
    lines = [_MARKER.sub("", line) for block in time_limits for line in block.splitlines()]
    clauses = [c.strip() for line in lines for c in re.split(r"[；;。]", line)]
    return [c for c in clauses if c and not deadlines([c])]


def _starts(prefix: str) -> str:
    """When a limit's countdown starts, from what stands before it: a later event (到场后, 辱骂结束通话后：值班主管), a
    circumstance that may not be this call's (冬季：, 其他月份：, 无人被困的故障) or, for the call itself, nothing, the
    call (接报后, 受理：) or who acts (安保：, 工程值班)."""
    colons = list(_LABEL_END.finditer(prefix))
    head = prefix[: colons[-1].start()].strip() if colons else prefix.strip()
    for part in (prefix.strip(), head):
        if _AFTER_EVENT.search(part) and not _FROM_CALL.search(part):
            return "event"
    if not head or _FROM_CALL.search(head) or _ROLE.fullmatch(head.replace(" ", "")):
        return "call"
    return "case"


def _prefix(head: str) -> str:
    """What stands before a time limit in its clause ("到场后", "白天（8:00–22:00）" → "白天"), else the line's label
    ("夜间（22:00–7:00）：" → "夜间")."""
    clause = _PAREN.sub("", _BULLET.sub("", re.split(r"[，；。,;]", head)[-1])).strip()
    colons = list(_LABEL_END.finditer(clause))
    if clause and not (colons and colons[-1].end() == len(clause)):
        return clause[:20]
    label = _PAREN.sub("", _BULLET.sub("", head))
    colons = list(_LABEL_END.finditer(label))
    return re.split(r"[，；。,;]", label[: colons[-1].start()])[-1].strip()[:14] if colons else ""


# A script line whose only question is a tag at its end (「您先听我说，现在不要开灯…好吗？」) tells the tenant what to
# do: it is no question to ask (a trial's gas call listed instructions under 接下来问租客)
_TAG_QUESTION = re.compile(r"[，,]?\s*(?:好吗|好不好|行吗|行不行|可以吗|好么|对吧|明白吗|听清楚了吗)\s*[？?]\s*$")


def first_clause(step: str) -> str:
    """A step up to its first 。 or ； outside brackets (「…带排烟管的是燃气；…）」 was cut inside its bracket)."""
    depth = 0
    for i, ch in enumerate(step):
        if ch in "（(":
            depth += 1
        elif ch in "）)":
            depth = max(0, depth - 1)
        elif ch in "。；" and depth == 0:
            return step[:i]
    return step


def asks(line: str) -> bool:
    """A script line that asks the tenant something (a question mark that is not only a closing 好吗？)."""
    rest = _TAG_QUESTION.sub("", line.rstrip())
    return "？" in rest or "?" in rest


# A script line's greeting is said once, not asked: 「您好，这里是安居优寓客服，请问门锁…？」 lists 「请问门锁…？」.
_GREETING = re.compile(r"^(?:您好|你好)[，,！!。\s]*(?:(?:这里是|我是)[^，,。！!？?]*[，,。！!]\s*)?")
_SENTENCE = re.compile(r"[^。！!？?]*[。！!？?]*")
# A step the agent does in the company's own systems is no question to the tenant, unless it says to ask them
# (「核实租客身份…，在系统中查看合同付款周期」, 「确认为前台签收后丢失的，按公司标准处理赔付」).
_INTERNAL = re.compile(r"系统|工单|后台|台账|按公司|按标准")
_ASKS_TENANT = re.compile(r"请租客|问租客|让租客|租客描述|问清|询问")


# A clause that says what has happened already (好的，水已经关住了，…): the question comes later in the call, and
# listed with it the console told a new agent the water was off before the tenant had said so (a trial)
_DONE = re.compile(r"^(?:好的|好|嗯|明白|收到|了解)$|已经|已[^经]|了$")


def question(line: str) -> str:
    """The part of a script line that asks: without its greeting, from its first sentence that asks to its last
    question (「您现在出门了吗？好的，我们挂了电话后请您…」 → 「您现在出门了吗？」), and without the clauses before
    it that say what has happened already (「好的，水已经关住了，我这边给您约…？」 → 「我这边给您约…？」)."""
    sentences = [s for s in _SENTENCE.findall(_GREETING.sub("", line.strip())) if s]
    asking = [i for i, s in enumerate(sentences) if "？" in s or "?" in s]
    if not asking:
        return line
    asked = "".join(sentences[asking[0] : asking[-1] + 1])
    clauses = re.split(r"(?<=[，,])", asked)
    while len(clauses) > 1 and _DONE.search(clauses[0].rstrip("，, ")):
        clauses.pop(0)
    return "".join(clauses)


def ask_next(steps: list[str], scripts: list[str]) -> list[str]:
    """What to ask the tenant: steps that say to ask or confirm something with the tenant, and the questions of the
    script lines that ask one."""
    found = [
        first_clause(step)
        for step in steps
        if _ASK_STEP.match(step) and (not _INTERNAL.search(step) or _ASKS_TENANT.search(step))
    ]
    found += [question(line) for line in scripts if asks(line)]
    unique = list(dict.fromkeys(found))
    return unique[:MAX_QUESTIONS]


def card(hit: SopHit, score: float) -> dict[str, Any]:
    """A suggestion as the console shows it: the search result's fields, the call's score, the time limits as
    countdowns and what to ask next."""
    item = hit.model_dump(exclude={"explain", "best_section"})
    item["search_score"] = item["score"]
    item["score"] = round(score, 4)
    item["deadlines"] = deadlines(hit.time_limits)
    item["ask_next"] = ask_next(hit.steps, hit.scripts)
    return item


def sop_card(sop: Sop, config: SearchConfig) -> dict[str, Any]:
    """A SOP pinned on a call as a card of its own, not from a search (another tab following the call shows it)."""
    return card(to_hit(sop, 0.0, [], "agent", config), 0.0)
