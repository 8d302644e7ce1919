"""Tenant phrasings to suggest to a trainer for a SOP that has few practice utterances (a terse knowledge base without
`examples` gives practice and exams nothing to ask): what tenants say for what the SOP's title or tags name, from the
colloquial lexicon. Only suggestions: the lexicon's procedure words are coarse (「就我家没电」 means 停电, which also
names a planned building outage), so a trainer confirms each before it becomes an example and so a drill.

An entry is suggested for a SOP when its first procedure word is in the SOP's title and in no other SOP's title or
tags (tags name neighbours too: a trial got 隔壁有臭味 for 空调清洗 through its tag 异味); per entry, its first
phrasing that is long enough, says something happens (a verb or an adjective: 储水式热水器 is no sentence), names none
of the entry's procedure words (the tenant's words, not the trade's), is no homophone slip of another phrasing of the
entry (天花板楼水 of 天花板漏水: the lexicon lists speech-recognition errors), carries no danger signal unless the SOP
is the procedure for that danger (热水器有煤气味 is the gas-leak procedure's, not the water heater's: a trial), and
gives away neither the SOP's title nor its id."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

import jieba
from jieba import posseg

from kb_service.models import Sop
from kb_service.text.danger import DangerSignals
from kb_service.text.glossary import Glossary, normalize
from kb_service.training import drills


def _pinyin(text: str) -> list[str]:
    from pypinyin import lazy_pinyin  # on first use: its phrase dictionary holds ~60 MB (kb_service/text/normalize.py)

    return lazy_pinyin(text)


LIMIT = 8  # suggestions shown at once
MIN_CHARS = 5  # shorter phrasings are keywords more than sentences
# Characters only Cantonese writes (坏咗, 唔见, 冇水): the lexicon lists how such callers are transcribed, which a
# trainee practising Mandarin calls should not read as the tenant's words
_CANTONESE = frozenset("咗唔嚟冇嘅啲佢咁乜嘢喺係哋嗰噉")


def _named(sop: Sop) -> str:
    return normalize(" ".join([sop.title, *sop.meta.tags]))


def _first_means(means: Sequence[str]) -> str:
    return next((n for n in (normalize(m) for m in means) if len(n) >= 2), "")


@functools.cache
def _tagger() -> posseg.POSTokenizer:
    """Parts of speech from jieba's own dictionary: the shared one learns the lexicon's phrasings as words without a
    part of speech once the search warms up (a whole 挂衣服的杆子 tagged `x`)."""
    return posseg.POSTokenizer(jieba.Tokenizer())


def _says_something(phrase: str) -> bool:
    return any(t.flag[:1] in ("v", "a", "d") for t in _tagger().cut(phrase))


def _slips(says: Sequence[str]) -> set[str]:
    """Phrasings that sound like an earlier one of the entry and are written otherwise (speech-recognition slips)."""
    seen: dict[str, str] = {}
    out = set()
    for phrase in says:
        sound = " ".join(_pinyin(normalize(phrase)))
        if sound in seen and seen[sound] != normalize(phrase):
            out.add(phrase)
        seen.setdefault(sound, normalize(phrase))
    return out


def suggestions(
    sop: Sop,
    everything: Sequence[Sop],
    glossary: Glossary,
    taken: Collection[str],
    danger: DangerSignals | None = None,
    urgent: bool = False,
) -> list[str]:
    """Up to LIMIT phrasings for `sop`, none already in `taken` (its practice utterances, compared without
    punctuation); `urgent`: the SOP is an emergency procedure (its phrasings may carry danger signals)."""
    title = normalize(sop.title)
    named = [(says, means, first) for says, means in glossary.phrases if (first := _first_means(means)) in title]
    others = [_named(s) for s in everything if s.meta.id != sop.meta.id]
    shared = {first for _, _, first in named if any(first in text for text in others)}
    seen = {drills.key(t) for t in taken}
    own = _sound_index(" ".join([sop.title, *sop.meta.tags, *(x.text for x in sop.sections)]))
    out: list[str] = []
    for says, means, first in named:
        if not first or first in shared:
            continue
        words = [n for n in (normalize(m) for m in means) if n]
        slips = _slips(says) | misspelt(glossary, says) | {p for p in says if _sounds_like_other(p, own)}
        for phrase in says:
            n = normalize(phrase)
            if len(n) < MIN_CHARS or any((c.isascii() and c.isalpha()) or c in _CANTONESE for c in phrase):
                continue
            if any(w in n for w in words):
                continue
            if phrase in slips or drills.key(phrase) in seen or not drills.usable(phrase, sop):
                continue
            if not _says_something(phrase) or (danger is not None and _other_danger(phrase, sop, danger, urgent)):
                continue
            seen.add(drills.key(phrase))
            out.append(phrase)
            break
        if len(out) >= LIMIT:
            break
    return out


def _other_danger(phrase: str, sop: Sop, danger: DangerSignals, urgent: bool) -> bool:
    """A danger the phrasing signals that this SOP is not the emergency procedure for (室内渗漏水报修 names 漏水,
    yet 水管爆开 is the flooding emergency's)."""
    kinds = [s.kind for s in danger.found(phrase)]
    return bool(kinds) and not (urgent and danger.names_procedure(_named(sop), kinds))


def _syllables(text: str) -> list[str]:
    return [_pinyin(c)[0] for c in text]


def _sound_index(text: str) -> dict[str, set[str]]:
    """Every run of two to four characters of the SOP's text by its sound."""
    chars = normalize(text)
    sounds = _syllables(chars)
    index: dict[str, set[str]] = {}
    for n in (2, 3, 4):
        for i in range(len(chars) - n + 1):
            index.setdefault(" ".join(sounds[i : i + n]), set()).add(chars[i : i + n])
    return index


def _sounds_like_other(phrase: str, own: dict[str, set[str]]) -> bool:
    """A run of the phrasing sounds like one of the SOP's words written otherwise (凉衣架 of 晾衣架, 热水气 of
    热水器): a speech-recognition slip the lexicon lists on purpose, no phrasing to practise on."""
    chars = normalize(phrase)
    sounds = _syllables(chars)
    for n in (2, 3, 4):
        for i in range(len(chars) - n + 1):
            written = own.get(" ".join(sounds[i : i + n]))
            if written and chars[i : i + n] not in written:
                return True
    return False


_sounds: tuple[Glossary, dict[str, str]] | None = None  # the glossary last read and its phrasings by sound


def misspelt(glossary: Glossary, says: Sequence[str]) -> set[str]:
    """Phrasings that sound like a phrasing of another entry of the lexicon written otherwise (电平车 of 电瓶车); the
    lexicon's sounds are read once per glossary (a process has one: the knowledge base's)."""
    global _sounds
    if _sounds is None or _sounds[0] is not glossary:
        sounds: dict[str, str] = {}
        for entry, _ in glossary.phrases:
            for p in entry:
                sounds.setdefault(" ".join(_pinyin(normalize(p))), normalize(p))
        _sounds = (glossary, sounds)
    by_sound = _sounds[1]
    return {p for p in says if by_sound.get(" ".join(_pinyin(normalize(p))), normalize(p)) != normalize(p)}


@functools.cache
def danger_signals() -> DangerSignals:
    """The shipped danger signals, read once per process."""
    return DangerSignals.builtin()
