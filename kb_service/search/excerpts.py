"""Which lines of a long answering section to show first: a tenant who asks 健身房几点开门 is shown the gym's line of
a five-line opening-hours section, and can unfold the rest. Only sections that are lists of labelled cases are cut
(`- 健身房：06:00–23:00…`, `4. 指纹识别不了：…`): a plain sequence of steps answers a "how" question as a whole.
FAQ answers and short sections are shown whole."""

from __future__ import annotations

import math
import re

import numpy as np

from kb_service.search.passages import KeyEmbeddings, Passage, key_line, words
from kb_service.text.normalize import normalize

MIN_LINES = 4  # a section of fewer lines is shown whole
MAX_LINES = 3  # at most this many of its lines are shown first
# A line is shown when it scores at least this share of the best line (coverage of the question's words, weighted by
# how few lines hold each word, and the line's similarity to the question, equally).
KEEP_RATIO = 0.85


LABEL_CHARS = 12  # a labelled line names its case before a colon within this many characters


def _lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.strip()]


def labelled(line: str) -> bool:
    """`- 健身房：…` or `4. 指纹识别不了：…`: a line that names its case before a colon."""
    head = re.sub(r"^[\s\-*>•\d.、)）]+", "", line)[: LABEL_CHARS + 1]
    return "：" in head or ":" in head


def excerpt(question: str, qvec: np.ndarray, passage: Passage, keys: KeyEmbeddings) -> str | None:
    """The lines of `passage` that answer the question, in their order; None when the whole passage is the answer
    (an FAQ pair, a short section, or no line names more of the question than the others)."""
    lines = _lines(passage.body)
    if passage.kind == "qa" or len(lines) < MIN_LINES or 2 * sum(map(labelled, lines)) < len(lines):
        return None
    qwords = list(dict.fromkeys(words(question)))
    plain = [normalize(line) for line in lines]
    # IDF over the section's lines: a word every line has (the topic) does not tell them apart.
    idf = {w: math.log(1 + len(plain) / (1 + sum(w in t for t in plain))) for w in qwords}
    total = sum(idf.values())
    if not total:
        return None
    coverage = [sum(idf[w] for w in qwords if w in t) / total for t in plain]
    if max(coverage) == 0:
        return None  # no line names the question's words: nothing tells the lines apart
    # The same texts the passage scoring embedded: their vectors come from the cache.
    sims = keys.get([key_line(line) or line for line in lines]) @ (qvec / (np.linalg.norm(qvec) or 1.0))
    scores = [0.5 * c + 0.5 * float(s) for c, s in zip(coverage, sims, strict=True)]
    best = max(scores)
    ranked = sorted(range(len(lines)), key=lambda i: -scores[i])
    keep = sorted(
        i for i in ranked[:MAX_LINES] if scores[i] >= KEEP_RATIO * best and coverage[i] > 0 and labelled(lines[i])
    )
    # A kept case keeps the unlabelled lines that follow it (挂失后到门店前台补办… continues 门禁卡丢失：…).
    shown = [j for i in keep for j in range(i, _case_end(lines, i))]
    if not shown or len(shown) == len(lines):
        return None
    return "\n".join(lines[i] for i in shown)


def _case_end(lines: list[str], start: int) -> int:
    end = start + 1
    while end < len(lines) and not labelled(lines[end]):
        end += 1
    return end
