"""Chinese text helpers: normalisation, sentence splitting, character n-grams and pinyin."""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
_RUN = re.compile(rf"[{_CJK}]+|[a-z0-9]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|\n+")
# Spoken fillers that carry no meaning in a pasted phone transcript.
_FILLERS = re.compile(r"(那个|就是说|就是|然后呢|然后|嗯+|呃+|啊+|哎呀|那啥|这个这个|你知道吧|对吧)")


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, collapsed whitespace."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().lower()


def strip_fillers(text: str, keep_if_empty: bool = True) -> str:
    """Drop spoken filler words; keeps the text if nothing else would remain (unless `keep_if_empty` is false: a
    call's segment of fillers alone, 那个 or 喂, says nothing to search for)."""
    stripped = _FILLERS.sub(" ", text)
    return stripped if stripped.strip() or not keep_if_empty else text


def sentences(text: str, min_chars: int = 4) -> list[str]:
    """Split into sentences on Chinese and Western sentence ends and line breaks."""
    parts = (p.strip(" -*>#\t") for p in _SENTENCE_END.split(text))
    return [p for p in parts if len(p) >= min_chars]


def char_terms(text: str) -> list[str]:
    """Single CJK characters plus adjacent pairs, and whole ASCII words."""
    terms: list[str] = []
    for run in _RUN.findall(normalize(text)):
        if run[0].isascii():
            terms.append(run)
            continue
        terms.extend(run)
        terms.extend(run[i : i + 2] for i in range(len(run) - 1))
    return terms


@lru_cache(maxsize=65536)
def _syllables(run: str) -> tuple[str, ...]:
    # Imported on first use: its phrase dictionary holds ~60 MB, and only indexing, hit tests and the pinyin channel
    # (not fused by default) read pinyin, so a process that only searches never loads it (docs/benchmarks.md)
    from pypinyin import Style, lazy_pinyin

    return tuple(lazy_pinyin(run, style=Style.NORMAL, errors="ignore"))


def pinyin_terms(text: str) -> list[str]:
    """Toneless pinyin syllables and syllable pairs: homophones (水笼头/水龙头, 抱修/报修) share them."""
    terms: list[str] = []
    for run in _CJK_RUN.findall(normalize(text)):
        syl = _syllables(run)
        terms.extend(syl)
        terms.extend(f"{a}_{b}" for a, b in itertools.pairwise(syl))
    return terms
