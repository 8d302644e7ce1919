"""Whether a passage speaks of the object a question names or of a narrower one: every 押金 of a pet policy's steps
is 宠物押金, so they answer no question about the rental deposit."""

from __future__ import annotations

import re
from collections.abc import Sequence

from jieba import posseg

from kb_service.search.kinds import member_named
from kb_service.search.passages import PLACE_WORDS

_POTENTIAL = re.compile(r"^[\u4e00-\u9fff]{1,2}[不没得][\u4e00-\u9fff了]{1,2}$")
# "According to" before a qualifier, within a few characters of the same clause: 按(临停)标准收费, 按照合同约定退还
_MANNER = re.compile(r"(?:按照?|依照|根据|参照)[^，,。；;、\n]*$")
MANNER_CHARS = 4
_DOERS = frozenset("员司傅工客户队商")  # 人员 公司 师傅 维修工 租客 住户 车队 供应商: who, not which kind


def qualified_everywhere(question_words: Sequence[str], question: str, text: str, heading: str = "") -> str | None:
    """A noun the question names that the passage only ever mentions qualified by another noun the question does
    not name (every 押金 of a pet policy's steps is 宠物押金): the passage is about that other object. Unless its
    heading names the noun as the question does (插卡电表充值步骤 for 插卡电表怎么充值, whose steps say 网点充值)."""
    tags = posseg.dt.word_tag_tab
    # Not a verb: an action is no object (滤网清洗 is still 清洗); nouns, verbal nouns (优惠) and unknown words are.
    # Nor a verb with its potential complement (连不上, 打不开: jieba tags 连不上 an idiom): 手机连不上但电脑能连的 in a
    # broadband SOP's steps is no other object of 连不上 (a new customer's WiFi连不上 was handed over)
    objects = (w for w in question_words if len(w) >= 2 and tags.get(w) != "v" and not _POTENTIAL.match(w))
    for w in (w for w in objects if w in text):
        if w in heading and not _qualifiers(w, question, heading):
            continue
        qualifiers = _qualifiers(w, question, text)
        if qualifiers:
            return sorted(qualifiers)[0]
    return None


def _qualifiers(w: str, question: str, text: str) -> set[str]:
    """The nouns the question does not name that qualify every mention of `w` in the text (empty: some does not)."""
    tags = posseg.dt.word_tag_tab
    qualifiers = set()
    for m in re.finditer(re.escape(w), text):
        before = text[max(0, m.start() - 2) : m.start()]
        named = before in question or member_named(before, question)  # 宠物押金 for 导盲犬要交押金吗
        # 按临停标准收费: a noun after 按 (according to) says how, not which object (临时停车怎么收费 was handed over)
        manner = _MANNER.search(text[max(0, m.start() - 2 - MANNER_CHARS) : m.start() - 2]) is not None
        # 服务人员上门, 消杀公司上门: who does it (a person, a company) is no narrower kind of it (保洁上门的时候我
        # 不在家可以吗 was handed over: jieba tags 上门 a place, and each 上门 of the booking steps has its doer first)
        doer = bool(before) and before[-1] in _DOERS
        # 在房间过夜: where it happens (房间, 家里, 屋里) is no narrower kind of it (朋友来住几天需要登记吗？可以过夜吗
        # lost 「只要在房间过夜就请做留宿登记」 to the check-in FAQ: a tenant's trial)
        where = before in PLACE_WORDS
        if len(before) < 2 or not tags.get(before, "").startswith("n") or named or manner or doer or where:
            return set()
        qualifiers.add(before)
    return qualifiers
