"""What the chat says in its own words: a hand-over, an apology to a tenant who complains, an emergency."""

from __future__ import annotations

HANDOFF_MESSAGE = "这个问题我暂时没法给您准确的答复，为您转人工客服。"
# A complaint the documents answer all the same (保洁太差了，多久打扫一次): the answer, after an apology
APOLOGY = "非常抱歉给您带来了不好的体验。"
# ... and one they do not: an apology and a person who follows it up, not "no answer"
COMPLAINT_MESSAGE = "非常抱歉给您带来了不好的体验，您反映的情况我们会认真处理。正在为您转接人工客服，会有专人跟进。"
URGENT_MESSAGE = (
    "这可能是紧急情况，请先确保自身安全、离开危险区域；危及生命请立即拨打急救电话。{advice}"  # advice: danger.yaml
    "我们正在优先为您转接人工客服，到了安全的地方可以在这里继续留言。"
)


def urgent_message(advice: str) -> str:
    """The urgent message with the advice for the kind of danger, saying nothing twice: the medical advice names 120
    (危及生命请立即拨打急救电话。危及生命请立即拨打 120), the gas advice already says where to leave a message."""
    text = URGENT_MESSAGE.format(advice=advice)
    if "危及生命" in advice:
        text = text.replace("危及生命请立即拨打急救电话。", "", 1)
    if "继续留言" in advice:
        text = text.replace("，到了安全的地方可以在这里继续留言。", "。", 1)
    return text
