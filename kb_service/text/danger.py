"""Danger signals: words in a tenant's message that say an emergency is happening now (煤气味, 水管爆, 困在电梯).

The shipped list (kb_service/data/danger.yaml) was written from domain knowledge by someone who saw no queries,
SOPs or engine code, for precision first: bare words that ordinary questions use (烟, 着火 of 打不着火, 漏电 of
漏电保护器) are left out; `ignore` phrases are taken out of the message first (打不着火 holds 着火).

A signal of three characters or more matches with up to two filler characters between its characters (灯里滴水
in 灯里也在滴水, 往下灌水 in 往下哗哗灌水: a trial's tenants put adverbs and sounds inside the listed phrases), and an
entry of parts joined by `+` (漏气+头晕) matches when every part is in the message: words that are ordinary alone
(空调漏气) and alarming together."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import yaml

from kb_service.text.normalize import normalize


@dataclass(frozen=True)
class Signal:
    kind: str  # a kind of danger.yaml: fire, gas, water, lift, power, electrical, medical, security, falling, …
    words: str


# Characters a tenant puts inside a phrase without changing it: adverbs, particles, sounds (也 在 都 还 的 了 哗哗),
# and a pause: a recogniser's segments are joined with a comma (kb_service/assist/context.py), and a tenant on the
# phone pauses between the thing and what it does (水管 · 爆了, 厨房那个煤气 · 味道好大 lost the danger).
_FILLERS = "也都在还又正一直的地得了着哗啦正，,、"
_GAP = f"[{_FILLERS}]{{0,2}}"
# A bulleted line naming its case before a colon (`- 电梯困人：…`): the cases of a list in no order (numbered steps,
# and lines of a list that name no case, keep theirs)
_CASE_LABEL = re.compile(r"^\s*[-*•]\s*(?:\*\*)?([^：:\n]{1,12}?)(?:\*\*)?[：:]")


def _pattern(signal: str) -> re.Pattern[str]:
    """A signal's parts, each with up to two fillers between its characters (a part of three characters or more: 水
    都漫到脚脖子 in a shower is no 水漫); all parts must occur (any order)."""
    parts = [p for p in signal.split("+") if p]
    gapped = [
        "".join(re.escape(c) + (_GAP if i < len(p) - 1 and len(p) >= 3 else "") for i, c in enumerate(p)) for p in parts
    ]
    return re.compile("".join(f"(?=.*{g})" for g in gapped), re.DOTALL)


def _plain(text: str) -> str:
    """Compared without spaces, so ASR and typing spaces do not matter (and `smell gas` matches `I smell gas`)."""
    return normalize(str(text)).replace(" ", "")


class DangerSignals:
    def __init__(
        self,
        signals: Mapping[str, Sequence[str]],
        ignore: Sequence[str] = (),
        topics: Mapping[str, Sequence[str]] | None = None,
        advice: Mapping[str, str] | None = None,
        calm: Sequence[str] = (),
        procedures: Mapping[str, Sequence[str]] | None = None,
        confined: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        self._signals = [
            (kind, w, frozenset(w.replace("+", "")), _pattern(w))
            for kind, ws in signals.items()
            for w in map(_plain, ws)
            if w
        ]
        self._ignore = sorted((_plain(w) for w in ignore if _plain(w)), key=len, reverse=True)
        self._topics = {kind: [normalize(str(w)) for w in ws] for kind, ws in (topics or {}).items()}
        self._advice = dict(advice or {})
        self._calm = [_plain(w) for w in calm if _plain(w)]
        self._procedures = {kind: [normalize(str(w)) for w in ws] for kind, ws in (procedures or {}).items()}
        # kind -> (its signals a confining phrase cancels, the phrases): 别的房间有电 makes 突然没电 one room's
        self._confined = {
            kind: (
                frozenset(_plain(w) for w in entry.get("signals", ())),
                [(frozenset(w.replace("+", "")), _pattern(w)) for w in map(_plain, entry.get("phrases", ())) if w],
            )
            for kind, entry in (confined or {}).items()
        }

    @classmethod
    def builtin(cls) -> DangerSignals:
        ref = resources.files("kb_service") / "data" / "danger.yaml"
        data = yaml.safe_load(ref.read_text(encoding="utf-8"))
        return cls(
            data["signals"],
            data.get("ignore", ()),
            data.get("topics"),
            data.get("advice"),
            data.get("calm", ()),
            data.get("procedures"),
            data.get("confined"),
        )

    def calm(self, text: str) -> bool:
        """The text says nothing dangerous is happening (a supply cut, a bill) and carries no danger signal."""
        plain = _plain(text)
        return any(w in plain for w in self._calm) and not self.found(text)

    def found(self, text: str) -> list[Signal]:
        """The signals in the text, in the list's order."""
        plain = _plain(text)
        for phrase in self._ignore:
            plain = plain.replace(phrase, "|")
        chars = set(plain)  # a signal's characters must all be there before its gapped pattern is tried
        cancelled = {
            w
            for signals, phrases in self._confined.values()
            if any(needed <= chars and pattern.match(plain) for needed, pattern in phrases)
            for w in signals
        }
        return [
            Signal(kind, w)
            for kind, w, needed, pattern in self._signals
            if w not in cancelled and (w in plain or (needed <= chars and pattern.match(plain)))
        ]

    def advice(self, text: str) -> list[str]:
        """The first thing to do for each kind of danger in the text, in the list's order, each once."""
        kinds = dict.fromkeys(s.kind for s in self.found(text))
        return [self._advice[k] for k in kinds if k in self._advice]

    def names_procedure(self, title: str, kinds: Sequence[str]) -> bool:
        """Whether a procedure's title (and tags) names it as the one for one of these kinds of danger."""
        plain = normalize(title)
        return any(w in plain for k in kinds for w in self._procedures.get(k, ()))

    def about(self, text: str, kinds: Sequence[str]) -> bool:
        """Whether an instruction mentions one of these kinds of danger (a kind without topics: any text)."""
        plain = normalize(text)
        return any(not self._topics.get(k) or any(w in plain for w in self._topics[k]) for k in kinds)

    def lines_first(self, text: str, kinds: Sequence[str]) -> str:
        """The text with the bulleted lines whose case label speaks of these kinds of danger moved before the list's
        other lines (the emergency contacts' 「电梯困人：按下轿厢内的紧急呼叫按钮…」 for a tenant trapped in a lift,
        after the gas company's number: a supervisor's trial). Unchanged when no line's label does."""
        topical = [k for k in kinds if self._topics.get(k)]
        lines = text.split("\n")
        listed = [i for i, line in enumerate(lines) if re.match(r"\s*[-*•]\s", line)]
        ours = [i for i in listed if (m := _CASE_LABEL.match(lines[i])) and self.about(m[1], topical)]
        if not ours:
            return text
        moved = dict(zip(listed, ours + [i for i in listed if i not in ours], strict=True))
        return "\n".join(lines[moved.get(i, i)] for i in range(len(lines)))

    def for_another(self, heading: str, title: str, kinds: Sequence[str]) -> bool:
        """Whether an instruction is another danger's: by its heading, or as a part of another danger's own procedure
        (a company's gas-leak steps were shown for a fire and for a lift)."""
        return self.headed_for_another(heading, kinds) or self.only_for_another(title, kinds)

    def is_guide(self, title: str) -> bool:
        """Whether a procedure's title names several kinds of danger (租客安全须知：火灾、燃气、停电停水…): a guide
        whose general steps hold for any emergency."""
        return sum(self.names_procedure(title, [k]) for k in self._procedures) >= 2

    def only_for_another(self, title: str, kinds: Sequence[str]) -> bool:
        """Whether a procedure's title names exactly one kind of danger, not one of these (燃气泄漏应急处置 for a fire:
        its steps say 不要打电话, 打开门窗通风). A guide naming several kinds is no one danger's."""
        named = [k for k in self._procedures if self.names_procedure(title, [k])]
        return len(named) == 1 and named[0] not in kinds

    def headed_for_another(self, heading: str, kinds: Sequence[str]) -> bool:
        """Whether an instruction's heading names another kind's procedure and nothing of these kinds (火灾逃生 for
        a break-in: it lists 110 as every safety page does, and was shown for 有人在撬我家的门)."""
        plain = normalize(heading)
        own = {w for k in kinds for w in (*self._topics.get(k, ()), *self._procedures.get(k, ()))}
        if any(w in plain for w in own):
            return False
        return any(w in plain for k, ws in self._procedures.items() if k not in kinds for w in ws)
