"""Danger signals: words in a tenant's message that say an emergency is happening now (煤气味, 水管爆, 困在电梯).

The shipped list (kb_service/data/danger.yaml) was written from domain knowledge by someone who saw no queries,
SOPs or engine code, for precision first: bare words that ordinary questions use (烟, 着火 of 打不着火, 漏电 of
漏电保护器) are left out; `ignore` phrases are taken out of the message first (打不着火 holds 着火)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import yaml

from kb_service.text.normalize import normalize


@dataclass(frozen=True)
class Signal:
    kind: str  # a kind of danger.yaml: fire, gas, water, lift, power, electrical, medical, security, falling, …
    words: str


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
    ) -> None:
        self._signals = [(kind, _plain(w)) for kind, ws in signals.items() for w in ws if _plain(w)]
        self._ignore = sorted((_plain(w) for w in ignore if _plain(w)), key=len, reverse=True)
        self._topics = {kind: [normalize(str(w)) for w in ws] for kind, ws in (topics or {}).items()}
        self._advice = dict(advice or {})
        self._calm = [_plain(w) for w in calm if _plain(w)]

    @classmethod
    def builtin(cls) -> DangerSignals:
        ref = resources.files("kb_service") / "data" / "danger.yaml"
        data = yaml.safe_load(ref.read_text(encoding="utf-8"))
        return cls(
            data["signals"], data.get("ignore", ()), data.get("topics"), data.get("advice"), data.get("calm", ())
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
        return [Signal(kind, w) for kind, w in self._signals if w in plain]

    def advice(self, text: str) -> list[str]:
        """The first thing to do for each kind of danger in the text, in the list's order, each once."""
        kinds = dict.fromkeys(s.kind for s in self.found(text))
        return [self._advice[k] for k in kinds if k in self._advice]

    def about(self, text: str, kinds: Sequence[str]) -> bool:
        """Whether an instruction mentions one of these kinds of danger (a kind without topics: any text)."""
        plain = normalize(text)
        return any(not self._topics.get(k) or any(w in plain for w in self._topics[k]) for k in kinds)
