"""Which object a passage's heading is about, against the one a question names: an FAQ pair about the pet deposit
(宠物押金多少钱) or a friend's pet (朋友的宠物也要登记吗) answers no question about the deposit or the friend."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Collection, Sequence

from jieba import posseg

from kb_service.search.kinds import class_named, member_named, names_kind
from kb_service.text.glossary import Glossary
from kb_service.text.normalize import normalize

# A question answered by yes or no: 能不能养猫 (what follows the words asks), 搬家要交押金吗 (what comes before 吗)
_ASKS_AFTER = re.compile(r"是否|能不能|可不可以|要不要|需不需要|用不用|有没有|会不会|行不行")
_ASKS_BEFORE = re.compile(r"吗[？?。！!~～\s]*$")
# What separates words in a heading or a question
PUNCT = re.compile(r"[\s，。！？、；：,.!?;:（）()\"'“”‘’《》【】\[\]…—-]+")


@functools.lru_cache(maxsize=4096)
def _tagged(key: str) -> tuple[tuple[str, str], ...]:
    """A heading's words with their parts of speech (cached: headings recur across questions, tagging is slow)."""
    return tuple((t.word, t.flag) for t in posseg.cut(PUNCT.sub(" ", normalize(key))) if t.word.strip())


def mismatch(question_words: Sequence[str], question: str, key: str, meant: str = "") -> str | None:
    """A noun of the passage's heading that qualifies a noun the question names, when the question names nothing
    of it: `宠物押金多少钱` qualifies 押金 with 宠物, which `押金什么时候退` does not name: another object. Or one the
    named noun owns: `朋友的宠物也要登记吗` is about the pet, not `我朋友来住几天需要登记吗` (a trial). `meant`: the
    procedure words the question's colloquial phrases stand for (再住一年 names 续租: `meant_words`)."""
    named = [w for w in question_words if len(w) >= 2]
    tagged = _tagged(key)
    for i, (word, flag) in enumerate(tagged):
        for w in named:
            # one dictionary word: 宠物押金 (named by a member too: 养条狗要交押金吗 asks the pet deposit)
            if word != w and word.endswith(w) and not _qualifier_named(word[: -len(w)], w, question, meant):
                return word[: -len(w)]
            if word == w and i > 0:
                before, before_flag = tagged[i - 1]
                nouns = before_flag.startswith("n") and flag.startswith("n")
                if len(before) >= 2 and nouns and not _qualifier_named(before, w, question, meant):
                    return before
            if word == w and i + 2 < len(tagged) and tagged[i + 1][0] == "的":  # 朋友的宠物: about the 宠物
                owned, owned_flag = tagged[i + 2]
                if len(owned) >= 2 and owned_flag.startswith("n") and not names_kind(owned, question):
                    return owned
    return None


def _qualifier_named(qualifier: str, noun: str, question: str, meant: str) -> bool:
    """Whether the question, or what its colloquial phrases stand for, names the qualifier by a character of its own
    (续租 of 续租房租 is not named by the 租 of 房租 or 租金: 房租几号交 got 续租房租会涨吗？'s answer; 再住一年 means
    续租) or by a member (养条狗要交押金吗 names 宠物 of 宠物押金)."""
    own = "".join(ch for ch in qualifier if ch not in noun) or qualifier
    text = f"{question.replace(noun, ' ')} {meant}"
    return any(ch in text for ch in own) or member_named(qualifier, text)


def meant_words(glossary: Glossary, question: str) -> str:
    """The procedure words the question's colloquial phrases stand for (再住一年房租会涨吗: 续租 …), for `mismatch`."""
    return " ".join(w for e in glossary.meanings(question) for w in e.synonyms)


def focus(question: str, question_words: Sequence[str]) -> str | None:
    """What a question closed by yes or no asks about: the first word of two characters or more after 能不能 (and the
    like), else the last one before a final 吗 (搬家要交押金吗: 押金); None for other questions."""
    text = question.strip()
    after = _ASKS_AFTER.search(text)
    named = [w for w in question_words if len(w) >= 2]
    if after is not None:
        return next((w for w in named if text.find(w, after.end()) >= 0), None)
    before = _ASKS_BEFORE.search(text)
    return _last_before(text, named, before.start()) if before is not None else None


def _last_before(text: str, named: Sequence[str], end: int) -> str | None:
    """The last of the named words the text writes before `end`."""
    return next((w for w in reversed(named) if 0 <= text.rfind(w) < end), None)


# A question for a value or a way (在哪交, 怎么办理, 多少钱, 什么时候): what it is asked of comes before these words
_ASKS_WH = re.compile(r"在哪|哪里|哪儿|去哪|怎么|如何|多少|什么时候|啥时候|几点|几号|哪天")


def subject(question: str, question_words: Sequence[str]) -> str | None:
    """What a question for a value or a way is asked of: the last word of two characters or more before its
    question word (电费在哪交: 电费); None for a question without one, or with nothing named before it."""
    text = question.strip()
    asks = _ASKS_WH.search(text)
    if asks is None:
        return None
    return _last_before(text, [w for w in question_words if len(w) >= 2], asks.start())


# A question for which one of a kind of thing (补办身份证去哪个派出所, 找哪位管家); words for any place, time or way
# (哪个部门, 哪个地方) are asked by every where, when and how question and say nothing of which thing
_WHICH = re.compile(r"哪(?:一)?(?:个|家|位)")
_ANY_THING = frozenset({"部门", "地方", "位置", "时间", "时候", "渠道", "方式", "方法", "平台"})


def which_of(question: str) -> str | None:
    """The noun a question asks which one of (去哪个派出所: 派出所); None for other questions."""
    asked = _WHICH.search(question)
    tagged = _tagged(question[asked.end() :]) if asked is not None else ()
    if not tagged:
        return None
    word, flag = tagged[0]
    thing = (flag.startswith("n") or flag == "x") and len(word) >= 2 and word.isalpha()
    return word if thing and word not in _ANY_THING else None


def qualifiers(question: str, text: str) -> list[str]:
    """Nouns the question writes right before a noun the text names, which the text does not name: 货梯 of
    货梯押金什么时候退 against a moving-out rule's 押金退还 (nouns only: 帮忙遛狗 is no qualified thing; a word the
    glossary taught jieba has no part of speech, `x`, and is a thing's name)."""
    nouns = [(w, (f.startswith("n") or f == "x") and w.isalpha() and len(w) >= 2) for w, f in _tagged(question)]
    return [a for (a, na), (b, nb) in itertools.pairwise(nouns) if na and nb and b in text and a not in text]


def other_situation(
    question_words: Sequence[str],
    heading_words: Sequence[str],
    question: str,
    texts: Callable[[], tuple[str, str]],
    synonyms: Callable[[str], Collection[str]] | None = None,
) -> bool:
    """A FAQ pair asked about another situation than the question: its question names a word the question shares
    no character with (续租), and the question names a word its whole document never names but another document
    among the answers does (搬家: the lift's 保养期间搬家怎么办？). Its yes or no (「不用。」 of 续租还要再交押金吗？)
    is no answer to 搬家要交押金吗 (a trial). A class noun and its members are one (宠物, 猫). (Without `elsewhere`:
    two blind tenant sentences whose own words no document uses were handed over.) With `synonyms` (for a short
    question, which names its situation in few words), a word the document names neither itself nor by a synonym
    suffices too, whether or not another document names it: 停车位要交押金吗 was told 「不用。」 of
    续租还要再交押金吗？ (a trial; neutral on the repository, dev and blind chat figures). `texts` gives
    the document's text and the others' (read only when the pair's question names such a word)."""
    theirs = [w for w in heading_words if len(w) >= 2 and not set(w) & set(question) and not names_kind(w, question)]
    if not theirs:
        return False
    document, elsewhere = texts()
    ours = [w for w in question_words if len(w) >= 2 and w not in document and not class_named(w, document)]
    if synonyms is not None:  # a situation is said with a thing or an action (not 还要 of 续租还要交押金吗)
        tags = dict(_tagged(question))
        said = [w for w in ours if tags.get(w, "x")[:1] in ("n", "v", "x")]
        return any(w in elsewhere for w in ours) or any(not any(s in document for s in synonyms(w)) for w in said)
    return any(w in elsewhere for w in ours)
