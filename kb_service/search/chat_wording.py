"""What the chat says in its own words: a hand-over, an apology to a tenant who complains, an emergency."""

from __future__ import annotations

import re

from kb_service.search.chat_models import ChatSource
from kb_service.search.passages import Scored

MAX_ANSWER_CHARS = 400
MAX_FULL_CHARS = 2000  # the whole section a tenant unfolds under an excerpt

# Nothing is handed to anyone before the widget's form creates a case (or the host page opens its own channel), so
# neither says 转人工 / 转接 as if it had happened (a new customer's trial)
# ... saying what the chat does answer: a trial's tenant asking about the weather got the form with no word that the
# question was outside the service
HANDOFF_MESSAGE = (
    "这个问题我暂时没法给您准确的答复（我能解答报修、缴费、门禁、退租等公寓服务问题），需要人工客服为您处理。"
)
# ... but not to a tenant whose question the documents place (空调坏了不制冷: a repair a person arranges): 「我能解答
# 报修…」 read as "but not yours" (a supervisor's trial)
HANDOFF_PLACED = "您说的情况需要人工客服为您处理。"
# A complaint the documents answer all the same (保洁太差了，多久打扫一次): the answer, after an apology
APOLOGY = "非常抱歉给您带来了不好的体验。"
# ... and one they do not: an apology and a person who follows it up, not "no answer"
COMPLAINT_MESSAGE = "非常抱歉给您带来了不好的体验，您反映的情况我们会认真处理，会有专人跟进。"
# No case exists before the tenant leaves a room and a phone (a new customer's trial read 「正在优先为您转接」 and
# found nobody had been told): the words say what happens next. The sentence is replaced where the form does not come
# (a case open already, nobody on duty: urgent_in_case, urgent_after_hours)
FORM_LINE = "请在下方留下房号和电话"
URGENT_MESSAGE = (
    "这可能是紧急情况，请先确保自身安全、离开危险区域；危及生命请立即拨打急救电话。{advice}"  # advice: danger.yaml
    f"{FORM_LINE}，我们会优先安排人工客服联系您；到了安全的地方也可以在这里继续留言。"
)


def urgent_message(advice: str) -> str:
    """The urgent message with the advice for the kind of danger, saying nothing twice: the medical advice names 120
    (危及生命请立即拨打急救电话。危及生命请立即拨打 120), the gas advice already says where to leave a message."""
    text = URGENT_MESSAGE.format(advice=advice)
    if "危及生命" in advice:
        text = text.replace("危及生命请立即拨打急救电话。", "", 1)
    if "轿厢" in advice or "搬动伤者" in advice:  # someone trapped in a lift or hurt cannot, or must not, leave
        text = text.replace("、离开危险区域", "", 1)  # (a supervisor's trial: told to a tenant stuck in a lift)
    if "继续留言" in advice:
        text = text.replace("；到了安全的地方也可以在这里继续留言。", "。", 1)
    return text


_FORM_ASKED = re.compile(re.escape(FORM_LINE) + "[^。]*。")  # to the end of its sentence, whichever ending it has
CLOSED_NOW = "现在是人工客服非工作时间，请立即拨打上面的紧急电话"
AFTER_HOURS = f"{CLOSED_NOW}；也可以在下方留下房号和电话，客服上班后第一时间联系您。"


def urgent_in_case(text: str, in_hours: bool = True) -> str:
    """An urgent answer to a tenant whose case is open already: they left their room and phone in it, so it asks for
    them no more (an integrator's tenant was asked again for what the form had taken); outside service hours it
    promises no quick call back (a re-check trial)."""
    said = "您的请求已升为紧急，客服会优先联系您。" if in_hours else f"{CLOSED_NOW}。"
    return _FORM_ASKED.sub(said, text, count=1)


def urgent_after_hours(text: str) -> str:
    """An urgent answer outside service hours: call the number now; a person answers the form when on duty."""
    return _FORM_ASKED.sub(AFTER_HOURS, text, count=1)


def passage_body(s: Scored, limit: int = MAX_ANSWER_CHARS) -> str:
    body = s.passage.body
    return body if len(body) <= limit else body[:limit].rstrip() + "……"


def source(s: Scored) -> ChatSource:
    """What the tenant is told an answer comes from: the passage's document and section."""
    return ChatSource(sop_id=s.passage.sop_id, title=s.passage.title, section=s.passage.heading)


def citation(s: Scored) -> str:
    return f"（来源：《{s.passage.title}》· {s.passage.heading}）"
