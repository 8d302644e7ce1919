"""Whether a passage the chat could answer with is about another situation than the tenant's question."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Literal

from kb_service.models import Sop
from kb_service.search.objects import focus, other_situation, qualifiers, subject, which_of
from kb_service.search.passages import Scored, document_texts, names_no_object, passages, words
from kb_service.search.results import SopHit
from kb_service.text.normalize import normalize


def situation(
    s: Scored,
    question: str,
    qwords: list[str],
    texts: Callable[[], tuple[str, str]],
    synonyms: Callable[[str], Collection[str]] = lambda _: (),
    pointed: Callable[[str], Sequence[str]] = lambda _: (),
) -> Literal["another", "elsewhere"] | None:
    """Whether a passage is about another situation than the question: "another" when what ranks below it is no
    better (a person answers), "elsewhere" when it is only not this passage. `texts` gives the passage's document and
    the other documents among the answers; a word counts as named there with any of its `synonyms`.

    - "another": an FAQ pair's yes or no about another object (可以自己装洗碗机吗 was told 「可以。请先断电…」 of
      我自己可以清洗滤网吗？: a yes reads as permission; skipping every such pair cost blind public answers 88.5 ->
      82.7 %). A word the pair's own question names is judged there (`mismatch`).
    - "another": a noun the question writes right before a noun the passage names (`qualifiers`: 货梯 of
      货梯押金什么时候退 against the moving-out rule's 押金退还) which the passage's document never names and
      another document does: the question is about that document's thing (a trial).
    - "elsewhere": for a question closed by yes or no, what it asks about (`focus`) is a word the passage's document
      never names and another document does (搬家要交押金吗 is not answered by 搬家预约's steps: 押金 is the 续租
      FAQ's, a trial).
    - "elsewhere": the question names a situation the document writes only where it passes it on (`pointed` of
      the document's id: pointers.sent_elsewhere; 提前退租 of the moving-out rules' 属于提前退租，请联系管家…),
      and the passage does not name it.
    - "elsewhere": a question for which one of a kind of thing (去哪个派出所, `objects.which_of`) and a passage that
      names no such thing, nor a synonym of it (补办身份证去哪个派出所 got the door card's 到门店前台补办).
    - "elsewhere": an FAQ pair that names none of a short question's objects, nor a synonym of them (家里发现蟑螂了
      怎么办 and 发现老鼠怎么办？, eval/dev's out-of-scope questions; `passages.names_no_object`)."""
    pair = normalize(f"{s.passage.heading}\n{s.passage.body}")  # as words() are: lower case (wifi), half width
    away = pointed(s.passage.sop_id)
    if away and not all(p in pair for p in away):
        return "elsewhere"
    which = which_of(question)  # 补办身份证去哪个派出所 is not answered by the door card's 到门店前台补办
    if which is not None and which not in pair and not any(normalize(x) in pair for x in synonyms(which)):
        return "elsewhere"
    heading = words(s.passage.heading)
    yes_no = s.passage.kind == "qa" and _YES_NO.match(s.passage.body) is not None
    said = lambda: any(normalize(x) in pair for w in qwords for x in synonyms(w))  # noqa: E731
    if s.passage.kind == "qa" and not yes_no and names_no_object(qwords, pair) and not said():
        return "elsewhere"  # 家里发现蟑螂了怎么办 is not answered by 发现老鼠怎么办？ (eval/dev, out of scope)
    if yes_no:
        named = names_no_object(qwords, pair)
        short = synonyms if len(question) <= SHORT_QUESTION_CHARS else None
        return "another" if named or other_situation(qwords, heading, question, texts, short) else None
    qualifying = qualifiers(question, pair)
    if qualifying and any(_only_elsewhere(w, texts, synonyms) for w in qualifying):
        return "another"
    asked = focus(question, qwords)
    if asked is None and s.passage.kind == "qa":  # 电费在哪交 is not asked by 房租在哪里交？
        asked = subject(question, qwords)
    if asked is None or not other_situation([asked], heading, question, texts):
        return None
    return "elsewhere" if _only_elsewhere(asked, texts, synonyms) else None


# A question this short names its situation in few words (停车位要交押金吗): a word of it that the answering FAQ pair's
# document never names is its situation, whether or not another document names it
SHORT_QUESTION_CHARS = 12


def _only_elsewhere(
    word: str, texts: Callable[[], tuple[str, str]], synonyms: Callable[[str], Collection[str]]
) -> bool:
    document, others = texts()
    return word not in document and word in others and not any(w in document for w in synonyms(word))


# An FAQ answer that starts with a yes or a no (可以。 不能， 需要。): it answers its own question's object only.
_YES_NO = re.compile(
    r"\s*(?:可以|不可以|能|不能|允许|不允许|需要|不需要|要|不要|不用|不必|无需|必须|会|不会|是的|是|不是|有|没有|行|不行)[。，,.！!；;：:]"
)


STAFF_SOPS = 3  # the first documents of all whose titles may name the question's situation
# A longer message tells a story in many words, some of which a staff title names by chance (a tenant's parcel of
# seafood and 冷藏 was handed over, eval/dev): only short questions name their situation in few words
STAFF_SITUATION_CHARS = 20


def staff_situation(question: str, sop: Sop | None, overall: Sequence[SopHit]) -> bool:
    """A yes-or-no question saying a word of the title or tags of a staff-only document among the first of all (转租,
    提前) that the answering public document never names: its rule is that document's, and a person gives it
    (转租给朋友押金还退吗 was told the moving-out refund, which a sublet forfeits; 提前退租押金能退吗 likewise: a
    trial). The staff document only decides whether to answer; none of its text reaches the tenant."""
    if sop is None or len(question) > STAFF_SITUATION_CHARS or focus(question, words(question)) is None:
        return False
    named = {w for h in overall[:STAFF_SOPS] if h.audience != "public" for w in words(" ".join([h.title, *h.tags]))}
    said = [w for w in named if len(w) >= 2 and w in normalize(question)]
    if not said:
        return False
    document = normalize(document_texts(passages(sop, 0), sop.meta.id)[0])
    return any(w not in document for w in said)


# Section kinds whose text is for staff (whom to pass a case to), never a tenant's answer (passages._NOT_ANSWERS)
_STAFF_KINDS = ("escalation",)


# A tenant asking for money off or back (能不能减点房租, 要赔偿, 退一部分钱; not 免费: whether a thing is free), and
# the words of an answer that speaks of such money
# What a tenant asks for, and the words of an answer that speaks of that kind of money: the moving-out steps' 押金…
# 原路退回 is no answer to 保洁没打扫干净能赔吗 (an integrator's trial), nor a parcel's steps to 快递丢了你们赔吗
_MONEY_ASKED = (
    (re.compile(r"赔(?:钱|偿|付|多少|我|吗|不赔)|补偿"), re.compile(r"赔|补偿|减|免收|折|返还")),
    (re.compile(r"补贴"), re.compile(r"补贴")),
    (
        re.compile(r"(?:减|少收|便宜)(?:一?点|些|一些)|减(?:免|房租|租金|钱|费)|减免|打折|折扣|免掉|[可能]以?免吗"),
        re.compile(r"减|免|折|优惠"),
    ),
    (re.compile(r"退(?:一部分|部分|一点|点)?(?:钱|款|房租|租金)"), re.compile(r"退还|退回|返还|退款|抵扣|退费")),
)


def handled_by_staff(question: str, sop: Sop | None, answer: str) -> bool:
    """A line of the answering document's escalation rules names two words of the question, one of which neither
    the tenant-readable text, nor the document's own statement of what it covers (适用场景), nor the answer names:
    the document's way with that situation is to pass it to someone (房租重复扣款怎么办 was told where rent is paid,
    while only 升级处理 says 重复扣款…转财务结算部核查), so a person answers. One shared word is not enough: 读书会 in
    「租客希望发起自组织活动（跑团、读书会）…」 is not the tenant asking how to sign up for one; 退还 of
    押金是当场退还 is in the moving-out document's 适用场景."""
    if sop is None:
        return False
    given = normalize(answer)
    # Money a tenant asks for is a person's decision unless the answer speaks of it: 空调修了三天还没修好，能不能减点
    # 房租 got the repair steps (a new customer's trial)
    asked = normalize(question)
    if any(wants.search(asked) and not gives.search(given) for wants, gives in _MONEY_ASKED):
        return True
    qwords = [w for w in dict.fromkeys(words(question)) if len(w) >= 2]
    scope = "\n".join(s.text for s in sop.sections if s.kind == "scenario" and s.audience == "public")
    known = normalize(document_texts(passages(sop, 0), sop.meta.id)[0] + "\n" + scope) + "\n" + given
    for section in sop.sections:
        if section.kind not in _STAFF_KINDS or section.audience != "public":
            continue
        for line in map(normalize, section.text.splitlines()):
            named = [w for w in qwords if w in line]
            if len(named) >= 2 and any(w not in known for w in named):
                return True
    return False
