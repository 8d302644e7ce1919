"""Greetings, thanks and acknowledgements in the tenant chat: a message that is only small talk (你好, 在吗, 谢谢,
好的) gets a short reply instead of a hand-over, and so does a tenant asking whether a machine answers (你是机器人吗).
Nothing else is small talk: a message with anything more (你好，押金什么时候退) is a question, read without the
courtesy it opens with (`question`)."""

from __future__ import annotations

import re

from kb_service.text.normalize import normalize

_KINDS: dict[str, tuple[str, ...]] = {
    "greeting": (
        *("你好", "您好", "在吗", "在不在", "有人吗", "有人在吗", "哈喽", "嗨", "喂", "早上好", "晚上好"),
        *("hi", "hello"),
    ),
    "thanks": ("谢谢", "多谢", "感谢", "谢啦", "谢了", "辛苦了", "thanks", "thankyou", "thx"),
    "ack": (
        *("好的", "好", "嗯", "嗯嗯", "哦", "噢", "行", "可以", "知道了", "明白了", "收到", "懂了", "对"),
        *("ok", "okay"),
    ),
    "bye": ("再见", "拜拜", "bye", "没事了", "没有了", "没问题了"),
    "identity": tuple(
        f"{who}{what}{end}"
        for who in ("你是", "你是不是", "是不是", "是", "你们是", "")
        for what in ("机器人", "真人", "人工", "ai", "自动回复", "谁")
        for end in ("吗", "")
        if who or end  # 真人 / 人工 alone ask for a person: not small talk
    ),
}
REPLIES = {
    "greeting": "您好，我是智能客服。请直接描述您遇到的问题，例如“押金什么时候退”“门禁卡丢了怎么办”。",
    "thanks": "不客气，还有其他问题随时问我。",
    "ack": "好的，还有其他需要帮忙的吗？",
    "bye": "感谢您的咨询，祝您生活愉快！",
    # a trial's tenant asking 你是机器人吗 got "no answer" and the hand-over form
    "identity": "我是智能客服，不是真人，可以解答报修、缴费、门禁、退租等公寓服务问题；需要真人帮忙请点「转人工」。",
}
_SPLIT = re.compile(r"[\s，。！？、,.!?~～…]+")
_MAX_CHARS = 16


def reply(message: str) -> str | None:
    """The reply when every part of the message is small talk (你好 / 好的谢谢 / 嗯嗯对对对); None otherwise. The last
    part decides the kind (好的谢谢 is thanks)."""
    text = normalize(message).lower()
    if not text or len(text) > _MAX_CHARS:
        return None
    kinds = [_kind(part) for part in _SPLIT.split(text) if part]
    if not kinds or None in kinds:
        return None
    return REPLIES[kinds[-1]]  # type: ignore[index]


def _kind(part: str) -> str | None:
    """The kind of a part made only of small-talk words (好的谢谢 = 好的 + 谢谢; 嗯嗯对对对), else None."""
    last = None
    while part:
        match = max(
            ((kind, w) for kind, words in _KINDS.items() for w in words if part.startswith(w)),
            key=lambda kw: len(kw[1]),
            default=None,
        )
        if match is None:
            stripped = part.lstrip("啊呀呢吧哈啦了的")
            if stripped == part:
                return None
            part = stripped
            continue
        last, part = match[0], part[len(match[1]) :]
    return last


# A courtesy a question opens with: 你好，/ 您好 请问 / 麻烦问一下 / 在吗？ (a trial: 押金什么时候退 was answered,
# 你好，押金什么时候退 handed over: the greeting's words weighed in the search and the passages)
_OPENING = re.compile(
    r"^(?:(?:你好|您好|哈喽|嗨|hi|hello|在吗|在不在|有人吗|有人在吗|打扰一下|打扰了|麻烦问一下|麻烦问下|麻烦一下|"
    r"想问一下|想问下|问一下|问下|请问一下|请问|我想问一下|我想问下|我想问|咨询一下|你好呀|您好呀|喂)"
    r"[\s，。！？、,.!?~～…:：啊呀]*)+",
    re.IGNORECASE,
)


def question(message: str) -> str:
    """The message without the courtesies it opens with (你好，请问押金什么时候退 → 押金什么时候退); the message
    itself when nothing else is left."""
    rest = _OPENING.sub("", message.strip(), count=1)
    return rest if rest.strip() else message
