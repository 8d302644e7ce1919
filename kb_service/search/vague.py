"""Questions about the tenant's own business that name nothing (我的那个申请呢, 上次的事怎么样了, 帮我查一下): no
document answers them, whatever a passage's heading shares with them (申请方式 answered 我的那个申请呢 with the
invoice steps). A person who can look the tenant up does."""

from __future__ import annotations

from collections.abc import Sequence

import jieba
from jieba import posseg

from kb_service.search.objects import PUNCT
from kb_service.search.passages import PLACE_WORDS
from kb_service.text.normalize import normalize, strip_fillers

# Words that refer to some business without saying which: applications, matters, progress, replies, and the verbs of
# asking after them; a charge or a sum without what it is for (这个费用是怎么回事, 为什么扣我钱: the tenant's own bill,
# which a person looks up; the hard out-of-scope questions had one answered from the utilities FAQ). A question of
# these words only (besides question words and particles) names nothing; nor does 房子 alone (我想问一下房子的事: once
# its courtesy is read off, 房子的事 was answered with the moving-out steps).
_GENERIC_WORDS = """
申请 办理 办 手续 事情 事儿 事 问题 情况 进度 结果 处理 回复 答复 消息 通知 东西 单子 工单 订单 记录 提交 交 一步 哪步
上次 之前 刚才 昨天 前天 那天 那件 这件 怎么样 咋样 如何 好了 弄 搞 弄好 搞定 说 问 帮 帮忙 看看 看 查 我查 查查 查询
到 哪 哪儿 一下 帮我 麻烦 到底 为啥 咋 呀 哦 嘛 啦 么
费用 钱 扣 扣款 扣费 这笔 那笔 一笔 账单 多 算 回事 怎么回事 意思
房子
"""
_GENERIC = frozenset(_GENERIC_WORDS.split())


def names_nothing(question_words: Sequence[str]) -> bool:
    """True when the question has words and every one of them is generic (`_GENERIC`)."""
    return bool(question_words) and all(w in _GENERIC for w in question_words)


def names_an_object(question: str) -> bool:
    """Whether the question names a thing (a noun of two characters or more): 门卡丢了怎么办 does, 试过了还是不行
    does not (a follow-up, about what was asked before)."""
    clean = PUNCT.sub(" ", strip_fillers(normalize(question)))
    return any(
        len(t.word) >= 2
        and (t.flag.startswith("n") or t.word.isascii() or _holds_a_noun(t))
        and t.word not in PLACE_WORDS
        for t in posseg.cut(clean)
    )


def _holds_a_noun(token: posseg.pair) -> bool:
    """A glossary word the lexical encoder added to jieba has no part of speech ('x'): it names a thing when a noun of
    jieba's own dictionary is inside it (智能门锁 holds 门锁; a trial's 「智能门锁没电了，进不去门」 read as naming
    nothing, and its case was filed under the tenant's earlier parking question)."""
    if token.flag != "x" or len(token.word) < 3:
        return False
    tags = posseg.dt.word_tag_tab
    return any(
        len(w) >= 2 and w != token.word and tags.get(w, "").startswith("n") for w in jieba.cut_for_search(token.word)
    )
