"""Which script line answers a tenant's words, which steps form a real sequence, and which SOPs an answer refers to.

Pure functions over parsed SOPs, deterministic (no model, no randomness), so a drill's right answer can be explained:

- **Script lines** are compared with the prompt by shared character bigrams (Chinese has no spaces; two characters are
  about a word), each bigram weighted by its rarity among all the knowledge base's script lines (idf: 您好、请您 count
  for little, 打孔、挂画 for much). similarity(line) = cos(prompt, line) + ANSWER_WEIGHT × cos(answer, line), where
  `answer` is the FAQ answer the prompt came from (or whose question contains it), when there is one. A line
  *answers* the prompt when its similarity is at least MIN_MATCH and at least MARGIN times the next best line of the
  same SOP; a line is *unrelated* (a fair distractor) when its similarity is at most UNRELATED × the best one's.
- **Steps** form a sequence only in a steps section (`## 处理步骤`, kind `steps`) and only where consecutive numbered
  items are not case headings: an item that starts with a short label and a colon (「狗叫扰民：…」「充值问题：…」) is
  one of several parallel cases, whose file order is no order at all, so such items break a run; so does an item
  that opens as a rule or a permission (禁止…, 不接受…, 按消防规定…, 可…). An item for one case only (「确认误报的，…」,
  「宠物伤人的，…」) is left out of the order: it is a branch, its place in the file is no step of the sequence.
- **References**: an answer names another SOP when it contains that SOP's id, its title, or its title's leading
  name (the title up to its first bracket, colon or comma, at least NAME_CHARS characters: 「提前退租（提前解约）…」
  → 「提前退租」).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from kb_service.models import Sop

MIN_MATCH = 0.12  # a line answering the prompt shares at least this (idf-weighted cosine) with it
MARGIN = 1.5  # ... and beats the SOP's next best line by this factor
UNRELATED = 1 / 3  # a distractor scores at most this share of the right line
ANSWER_WEIGHT = 0.5  # the FAQ answer is evidence, the tenant's words come first
# A script line for a FAQ question shares at least this with the question's written answer, or the written answer is
# the second stage (a training lead's trial: 「麻烦您看下遥控器屏幕上是雪花还是太阳的图标？」 was the "right" line for
# 遥控器丢了或者坏了怎么办？, 「…同住人登记，我先帮您预约…」 for 同住人登记收费吗？)
MIN_ANSWER_MATCH = 0.1
MIN_RUN = 3  # steps in an ordering drill, at least
NAME_CHARS = 4
_PUNCT = re.compile(r"[\W_]+")
_CASE = re.compile(r"^\s*[^，。；,;：:]{1,12}[：:]")
# ... unless the label says when it comes (「先做电话排查：插头是否插好…」 is a step, with its details after the colon)
_FIRST = re.compile(r"^\s*(?:先|首先|然后|接着|最后)")
# An item that states a rule, a permission or a fact of policy rather than an action (「不接受现金，也请勿转账…」,
# 「按消防规定，电动车禁止…」, 「可补开当年…」): numbered lists of rules under a how-to heading have no order.
_RULE = re.compile(
    r"^\s*(?:按[^，。；]{0,10}规定|禁止|严禁|不得|不准|不接受|不允许|不可|不能|请勿|切勿|凡|可[^以]|可以|均|一律)"
)
# 「确认误报的，在楼栋群发布…」, 「宠物伤人的，先指导…」: what to do in one case, beside the steps, not after them.
_CONDITION = re.compile(r"^\s*[^，。；,;：:]{2,24}的[，,]")
_FAILED = re.compile(r"无效|无法修|修不好|不能修|仍|还是|未能|不了")
_HEAD = re.compile(r"[（(【\[：:，,、—\s]")
_BRACKETED = re.compile(r"（[^）]*）|\([^)]*\)")  # 「非签约人（同住人、朋友、家属）要求开门：…」 is a labelled case


def bigrams(text: str) -> set[str]:
    key = _PUNCT.sub("", text).lower()
    return {key[i : i + 2] for i in range(len(key) - 1)}


class LineIndex:
    """Idf of bigrams over every script line of the knowledge base."""

    def __init__(self, sops: Iterable[Sop]) -> None:
        lines = [line for sop in sops for s in sop.sections for line in s.scripts]
        df: Counter[str] = Counter(b for line in lines for b in bigrams(line))
        self.n = max(1, len(lines))
        self.idf = {b: math.log((1 + self.n) / (1 + c)) + 1 for b, c in df.items()}

    def _weight(self, b: str) -> float:
        return self.idf.get(b, math.log(1 + self.n) + 1)

    def cosine(self, a: str, b: str) -> float:
        x, y = bigrams(a), bigrams(b)
        if not x or not y:
            return 0.0
        shared = sum(self._weight(g) ** 2 for g in x & y)
        norm = math.sqrt(sum(self._weight(g) ** 2 for g in x) * sum(self._weight(g) ** 2 for g in y))
        return shared / norm

    def similarity(self, prompt: str, answer: str, line: str) -> float:
        score = self.cosine(prompt, line)
        return score + ANSWER_WEIGHT * self.cosine(answer, line) if answer else score

    def answering(self, prompt: str, answer: str, lines: Sequence[str]) -> tuple[str, float] | None:
        """The one line that clearly answers the prompt, with its similarity; None when no line clearly does."""
        ranked = sorted(((self.similarity(prompt, answer, ln), ln) for ln in lines), key=lambda x: -x[0])
        if not ranked or ranked[0][0] < MIN_MATCH:
            return None
        if len(ranked) > 1 and ranked[0][0] < MARGIN * ranked[1][0]:
            return None
        return ranked[0][1], ranked[0][0]


def faq_answer(prompt: str, sop: Sop) -> str:
    """The answer of the SOP's FAQ question this prompt is (or is contained in); empty when none."""
    key = _PUNCT.sub("", prompt).lower()
    for s in sop.sections:
        for q in s.qa:
            question = _PUNCT.sub("", q.question).lower()
            if key and (key == question or key in question or question in key):
                return q.answer
    return ""


def is_case(step: str) -> bool:
    """「狗叫扰民：记录时段…」: a labelled case among parallel ones, or a rule (「不接受现金…」), not a step of
    a sequence."""
    labelled = _CASE.match(_BRACKETED.sub("", step)) and not _FIRST.match(step)
    return bool(labelled or _RULE.match(step))


def is_branch(step: str) -> bool:
    """An item for one case only (「确认误报的，…」); not one that goes on when the step before failed (「排查无效的，建
    工单」: the next step of the procedure)."""
    m = _CONDITION.match(step)
    return m is not None and _FAILED.search(m.group()) is None


def sequence(sop: Sop, limit: int, prompt: str = "", index: LineIndex | None = None) -> list[str]:
    """The first run of at least MIN_RUN consecutive non-case items of a steps section (at most `limit`), without the
    items for one case only (「确认误报的，…」); [] if none. With a `prompt` (and the `index` that weighs its words),
    the step sharing most with it is the one the tenant's words are about: kept when it is for one case only, and
    the steps shown end with it when it lies beyond the first `limit` (a trial was asked to order a leak's first
    five steps for 「马桶水箱一直在流水」 without 「马桶水箱一直流水的，…」)."""
    for section in sop.sections:
        if section.kind != "steps":
            continue
        shared = {step: index.cosine(prompt, step) for step in section.steps} if prompt and index else {}
        focus = max(section.steps, key=lambda step: shared.get(step, 0.0), default="")
        focus = focus if shared.get(focus, 0.0) > 0 else ""
        others = other_objects(sop.title, prompt)
        steps = [step for step in section.steps if not (others and about_others(step, others))]
        for run in _runs(steps, keep=focus):
            at = run.index(focus) if focus in run else 0
            return run[:limit] if at < limit else run[at - limit + 1 : at + 1]
    return []


# The objects a title lists (冰箱、洗衣机、微波炉、电磁炉、油烟机等家电故障报修), each up to 等 or eight characters
_LISTED = re.compile(r"[^、，,：:（(]{1,8}(?:、[^、，,：:（(]{1,8})+")
_LEADING = re.compile(r"[，,；;。：:]")


def other_objects(title: str, prompt: str) -> frozenset[str]:
    """The objects the title lists that the prompt does not name, when it names one of them (none otherwise)."""
    m = _LISTED.search(title)
    if not m or not prompt:
        return frozenset()
    listed = [item.split("等")[0].strip() for item in m.group().split("、")]
    named = [o for o in listed if o and o in prompt]
    return frozenset(o for o in listed if o and o not in named) if named else frozenset()


def about_others(step: str, others: frozenset[str]) -> bool:
    """A step whose first clause is about another of the listed objects (「电磁炉报警多为锅具不匹配…」 is no step
    of 冰箱不制冷了: a training manager's trial); examples in brackets do not count."""
    first = _LEADING.split(_BRACKETED.sub("", step), maxsplit=1)[0]
    return any(o in first for o in others)


# A step that goes on from steps before it (「以上排查无效的，建工单」): no first step of an ordering drill, whose
# steps before were cases (燃气热水器：…, 电热水器：…) left out of it (a training manager's trial)
_GOES_ON = re.compile(r"^\s*(?:以上|上述|如仍|若仍|仍然|仍不|还是不行)")


def _runs(steps: Sequence[str], keep: str = "") -> Iterable[list[str]]:
    """The runs of at least MIN_RUN consecutive non-case items, items for one case only left out but the one to
    `keep`, none starting with a step that goes on from the ones before it."""
    run: list[str] = []
    for step in steps:
        if is_branch(step) and step != keep:  # left out of the order, the run goes on around it
            continue
        if is_case(step):
            if len(run) >= MIN_RUN:
                yield run
            run = []
            continue
        if not run and _GOES_ON.match(step):
            continue
        run.append(step)
    if len(run) >= MIN_RUN:
        yield run


def names(sop: Sop) -> list[str]:
    """What another SOP's text calls this one: its id, its title, its title's leading name."""
    head = _HEAD.split(sop.title, maxsplit=1)[0]
    return [n for n in {sop.meta.id, sop.title, head} if len(n) >= NAME_CHARS]


def referred(text: str, sops: Iterable[Sop], own: str) -> list[str]:
    """Ids of the other SOPs `text` names, in the given order."""
    return [s.meta.id for s in sops if s.meta.id != own and any(n in text for n in names(s))]
