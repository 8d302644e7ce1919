"""Which lines of a long answering section to show first: a tenant who asks 健身房几点开门 is shown the gym's line of
a five-line opening-hours section, and can unfold the rest. Only sections that are lists of labelled cases are cut
(`- 健身房：06:00–23:00…`, `4. 指纹识别不了：…`): a plain sequence of steps answers a "how" question as a whole.
FAQ answers and short sections are shown whole."""

from __future__ import annotations

import math
import re

import numpy as np

from kb_service.search import answer_types
from kb_service.search.key_embeddings import KeyEmbeddings
from kb_service.search.passages import Passage, key_line, words
from kb_service.text.normalize import normalize

MIN_LINES = 4  # a section of fewer lines is shown whole
MAX_LINES = 3  # at most this many of its lines are shown first
# A line is shown when it scores at least this share of the best line (coverage of the question's words, weighted by
# how few lines hold each word, and the line's similarity to the question, equally).
KEEP_RATIO = 0.85
# A line whose case label the question names in full (押金 in 退租押金多久能到账) over one whose label it names in part
# (退租申请): a Chinese noun phrase ends in its head, so 退租押金 asks about the deposit, and the line labelled 押金
# answers it. Added to the score in proportion to the share of the label's characters the question holds.
LABEL_WEIGHT = 0.25
# A line giving a day or deadline (账单日…前付清) for a question asking for one (几号之前要交): 每个月 in the
# question had shown the line about 月付, the payment period (a trial)
DAY_WEIGHT = 0.25


# Of a list that is not labelled cases, the lines giving the kind of answer asked for: a time (几天, 多久) or a sum.
TYPED_LINES = ("time", "amount")
MAX_TYPED = 2

LABEL_CHARS = 12  # a labelled line names its case before a colon within this many characters


def _lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.strip()]


def _head(line: str) -> str:
    """The line's opening without its list marker and emphasis (`- **电**：…` names the case 电)."""
    return re.sub(r"\*\*|__", "", re.sub(r"^[\s\-*>•\d.、)）]+", "", line))[: LABEL_CHARS + 1]


# A bulleted line opening with the condition it is for (- 停电时请…, - 退租的时候…): 停电停水时怎么办 was shown whole
# to 怎么突然停水了, its lines for a power cut first. Not a time (24小时内, 同时, 临时, 平时) and not a numbered step
# (1. 到场时…: a sequence answers a "how" question whole).
_CONDITION = re.compile(r"^[-*•]\s*(?:\*\*)?([^\s，,。；;：:*]{2,8}?)(?:的时候|时)(?![间候刻段])")
_NOT_CONDITION = frozenset("小平同及随按准届当临暂有顿定实计超几")


def _colon_label(line: str) -> str | None:
    """The text before a colon near the line's start (`- 健身房：…` names 健身房), if any."""
    head = _head(line)
    return re.split(r"[：:]", head, maxsplit=1)[0] if "：" in head or ":" in head else None


def _label(line: str) -> str | None:
    """A line's case label: the text before its colon, or the condition a bulleted line opens with."""
    colon = _colon_label(line)
    if colon is not None:
        return colon
    m = _CONDITION.match(line.strip())
    return m.group(1) if m and m.group(1)[-1] not in _NOT_CONDITION else None


def labelled(line: str) -> bool:
    """`- 健身房：…`, `4. 指纹识别不了：…` or `- 停电时…`: a line that names its case first."""
    return _label(line) is not None


def label_named(line: str, question: str) -> float:
    """The share of a labelled line's case label (the text before its colon) that the question holds. A condition
    (停电时) is no such label: 停电了怎么办 lost 「先看楼道灯和邻居家：整栋停电…」 to the line 停电时 opens."""
    label = normalize(_colon_label(line) or "")
    chars = [c for c in label if not c.isspace()]
    return sum(c in question for c in chars) / len(chars) if chars else 0.0


_ITEM_NUMBER = re.compile(r"^\s*\d{1,2}\s*[.、．)）]\s*")


def excerpt(question: str, qvec: np.ndarray, passage: Passage, keys: KeyEmbeddings) -> str | None:
    """The lines of `passage` that answer the question, in their order; None when the whole passage is the answer
    (an FAQ pair, a short section, or no line names more of the question than the others). A list of labelled cases
    shows the cases the question names; any other list, only for a question asking for a time or a sum, the line
    that gives one when it is also the line that best matches the question (押金多久能退回来 → 押金在交接完成后
    7个工作日内原路退回, not the six steps of moving out)."""
    lines = _lines(passage.body)
    if passage.kind == "qa" or len(lines) < MIN_LINES:
        return None
    cases = 2 * sum(map(labelled, lines)) >= len(lines)
    kinds = [t for t in answer_types.asked(question) if t.name in TYPED_LINES]
    if not cases and not kinds:
        return None
    scored = _line_scores(question, qvec, lines, keys)
    if scored is None:
        return None
    coverage, scores = scored
    best = max(scores)
    ranked = sorted(range(len(lines)), key=lambda i: -scores[i])
    if not cases:
        top = [i for i in ranked[:MAX_TYPED] if scores[i] >= KEEP_RATIO * best and coverage[i] > 0]
        if not top or any(not answer_types.holds(kinds, lines[i]) for i in top):
            return None  # the best lines do not give the time or sum asked for: the section as a whole answers
        # Lines picked out of a numbered list lose their numbers (「2. 每月赠送…」 alone read as a fragment: a trial)
        return "\n".join(_ITEM_NUMBER.sub("", lines[i], count=1) for i in sorted(top))
    # A case the question names by its label counts as named (水电费在哪交 names the cases 水 and 电)
    asked = normalize(question)
    keep = sorted(
        {
            i
            for i in ranked[:MAX_LINES]
            if scores[i] >= KEEP_RATIO * best
            and (coverage[i] > 0 or label_named(lines[i], asked) == 1.0)
            and labelled(lines[i])
        }
        | set(_each_part(question, qvec, lines, keys))
    )
    # A kept case keeps the unlabelled lines that follow it (挂失后到门店前台补办… continues 门禁卡丢失：…).
    shown = [j for i in keep for j in range(i, _case_end(lines, i))]
    if not shown or len(shown) == len(lines):
        return None
    return "\n".join(lines[i] for i in shown)


def _line_scores(
    question: str, qvec: np.ndarray, lines: list[str], keys: KeyEmbeddings
) -> tuple[list[float], list[float]] | None:
    """Each line's coverage of the question's words (weighted by how few lines hold each word) and its score (that
    coverage and the line's similarity to the question, equally, and whether the question names its case label);
    None when no line names the question's words: nothing tells the lines apart."""
    qwords = list(dict.fromkeys(words(question)))
    plain = [normalize(line) for line in lines]
    # IDF over the section's lines: a word every line has (the topic) does not tell them apart.
    idf = {w: math.log(1 + len(plain) / (1 + sum(w in t for t in plain))) for w in qwords}
    total = sum(idf.values())
    if not total:
        return None
    coverage = [sum(idf[w] for w in qwords if w in t) / total for t in plain]
    if max(coverage) == 0:
        return None
    # The same texts the passage scoring embedded: their vectors come from the cache.
    sims = keys.get([key_line(line) or line for line in lines]) @ (qvec / (np.linalg.norm(qvec) or 1.0))
    asked = normalize(question)
    # A line giving the day asked for answers the question though it names none of its words: it counts as naming it
    days = [answer_types.asks_day(question) and answer_types.holds_day(line) for line in lines]
    scores = [
        0.5 * c + 0.5 * float(s) + LABEL_WEIGHT * label_named(line, asked) + DAY_WEIGHT * d
        for line, c, s, d in zip(lines, coverage, sims, days, strict=True)
    ]
    return [c + d for c, d in zip(coverage, days, strict=True)], scores


_PARTS = re.compile(r"[？?！!；;。]+")


def _each_part(question: str, qvec: np.ndarray, lines: list[str], keys: KeyEmbeddings) -> list[int]:
    """Of a question in several parts (房租可以用微信交吗？每个月几号之前要交？), the case that best answers each part
    it names: the first part's 微信 line beside the second's deadline, not one line for the two. Each part's words
    are its own; the lines' similarity is to the whole question (`qvec`: no embedding per part)."""
    parts = [part for part in _PARTS.split(question) if words(part)]
    if len(parts) < 2:
        return []
    out = []
    for part in parts:
        scored = _line_scores(part, qvec, lines, keys)
        if scored is not None:
            coverage, scores = scored
            i = max(range(len(lines)), key=lambda j: scores[j])
            if coverage[i] > 0 and labelled(lines[i]):
                out.append(i)
    return out


def _case_end(lines: list[str], start: int) -> int:
    end = start + 1
    while end < len(lines) and not labelled(lines[end]):
        end += 1
    return end
