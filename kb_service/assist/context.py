"""What the assistant remembers of one call: its final segments, the latest partial of each speaker, where the
current topic started and what it last suggested. Plain data, serialisable, so a call can live in a shared store
between the requests of the HTTP form (several worker processes) or in a WebSocket connection's memory."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from kb_service.errors import KbError
from kb_service.text.normalize import normalize, strip_fillers
from kb_service.text.privacy import mask, redact

Speaker = Literal["tenant", "agent"]
SPEAKERS: tuple[Speaker, ...] = ("tenant", "agent")
MAX_FINALS = 200  # final segments a call keeps (the oldest go first; a topic rarely spans more than a few)
CONTEXT_CHARS = 240  # the tenant text of the current topic that is searched (its latest part)
AGENT_SEGMENTS = 2  # the agent's latest final segments used as weak context
CALL_ID = r"^[A-Za-z0-9._:\-]{1,100}$"  # a call's id, on the socket, the HTTP form and `kb assist replay`
SEGMENT_IDS = 50  # segment ids a call remembers to recognise a retry
TRANSCRIPT_SEGMENTS = 60  # final segments a watching console is sent (the latest)
SHOWN_CHARS = 500
# A stuttered character ("我我我家") or word said three times or more ("漏水漏水漏水") from the recogniser: keep one
# (not "天天", not digits). A word said twice is how people speak (检查检查, 好多好多, 咕噜咕噜) and stays as plain
# search reads it: collapsing it put assist below plain search of the same words (session 34, docs/assist.md).
_STUTTER = re.compile(r"([\u4e00-\u9fff])\1{2,}|([\u4e00-\u9fff]{2,3})\2{2,}")
# Sound words repeat by nature, and what a tenant hears is how a noise or a fault is told apart (咚咚咚 upstairs,
# 咔哒咔哒 in the air conditioner, 滴答滴答 from the ceiling): a repetition made only of these is kept.
_SOUNDS = frozenset("咚咔哒嗒嗡哗滴答嘀吱嘎砰轰噔叮当啪呼嘶嘟喀咕噗哐嘭咣突哧嗞铛隆咯噼啵")


def _one(m: re.Match[str]) -> str:
    unit = m.group(1) or m.group(2)
    if "不" in unit or "没" in unit:  # 能不能不赔钱 is a question, not a stutter
        return m.group(0)
    return m.group(0) if set(unit) <= _SOUNDS else unit


# A call opens with a greeting the recogniser transcribes ("喂，你好"): a segment of nothing else says nothing about the
# need (喂 alone matched the pet SOP's 喂养). With words after it, the segment is kept whole, as a search of the same
# words would have it. Only at a segment's start: 喂猫 is a need.
_GREETING = re.compile(r"^(?:(?:喂+(?![猫狗养食奶药饭鱼宠])|哈喽|[你您]好(?=[，,。!！\s喂]|$))[，,。!！\s]*)+")


# A tenant saying who they are (「我是5栋803的李小明，电话139…」, personal data left out: 「我是的，电话」) says nothing
# about the need either: searched, its leftover words matched the angry-tenant script with confidence (a training
# team's trial). A segment of nothing but these words is not searched; with anything else it is kept whole.
_INTRODUCTION = re.compile(
    r"(?:我|俺|本人)?(?:是|叫|姓)|的|这边|那边|这里|那个|租客|住户|业主|住在|住|房间|房号|电话|手机号?|号码|联系方式|"
    r"栋|号楼|号|室|单元|座|楼|[，,。.!！\s]"
)


_PAUSE_END = re.compile(r"[，,。.！!？?；;、：:…\s]$")


def _joined(texts: list[str]) -> str:
    """Segments as one text, a comma at each pause the recogniser did not punctuate."""
    out = ""
    for text in texts:
        out += text if not out or _PAUSE_END.search(out) else "，" + text
    return out


def clean(text: str) -> str:
    """Speech-recognition text as the searches take it: normalised, fillers and stutters dropped (a segment of
    fillers alone becomes empty: it adds nothing to the call's context)."""
    said = strip_fillers(_STUTTER.sub(_one, normalize(text)), keep_if_empty=False).strip()
    # A greeting with content stays, as search has it; one character beside it (喂那个就 → 就) is no content, and
    # searched with the greeting it matched the pet policy (喂 as in feeding).
    rest = _GREETING.sub("", said).strip()
    if not _INTRODUCTION.sub("", rest):
        return ""
    return "" if not rest or (rest != said and len(rest) < 2) else said


@dataclass
class Utterance:
    speaker: Speaker
    text: str  # as searched (clean(), personal data left out)
    at: float
    said: str = ""  # as spoken, personal numbers masked: what a watching console shows


@dataclass
class CallContext:
    call_id: str
    finals: list[Utterance] = field(default_factory=list)
    partials: dict[str, Utterance] = field(default_factory=dict)
    topic_start: int = 0  # index into `finals` of the current topic's first segment
    shown: list[str] = field(default_factory=list)  # SOP ids last suggested, first one first
    settled: str | None = None  # the first SOP suggested after the latest final segment (partials do not move it)
    # Its search hit (a SopHit as JSON: the context is stored between processes): an emergency procedure first is
    # held while the topic's danger lasts
    settled_hit: dict[str, Any] | None = None
    agent_scores: dict[str, float] = field(default_factory=dict)  # weak context: the agent's words' search
    segments: int = 0  # segments received (final or not)
    topics: int = 1
    updated: float = field(default_factory=time.time)
    started: float = field(default_factory=time.time)  # the call's first segment
    segment_ids: list[str] = field(default_factory=list)  # the platform's ids of the latest segments (retries)
    logged: str = ""  # digest of the tenant's words last written to the query log (each wording logged once)

    def add(self, speaker: Speaker, text: str, final: bool) -> None:
        if speaker not in SPEAKERS:
            raise KbError("speaker 只能是 tenant 或 agent / speaker must be tenant or agent")
        now = time.time()
        self.segments += 1
        self.updated = now
        # Personal data is left out of what is searched and kept (the call lives in the shared store for hours)
        utterance = Utterance(speaker, clean(redact(text)), now, mask(text.strip())[:SHOWN_CHARS])
        if not final:
            self.partials[speaker] = utterance
            return
        self.partials.pop(speaker, None)
        # Kept for the transcript even when nothing of it is searched (B座2301房 is personal data alone, 嗯嗯 a
        # filler): an integrator's stored transcript lacked a segment the call had counted
        if utterance.text or utterance.said:
            self.finals.append(utterance)
        if len(self.finals) > MAX_FINALS:
            drop = len(self.finals) - MAX_FINALS
            del self.finals[:drop]
            self.topic_start = max(0, self.topic_start - drop)

    def _topic(self, speaker: Speaker) -> list[str]:
        texts = [u.text for u in self.finals[self.topic_start :] if u.speaker == speaker and u.text]
        partial = self.partials.get(speaker)
        if partial is not None and partial.text:
            texts.append(partial.text)
        return texts

    def tenant_latest(self) -> str:
        """The tenant's current utterance: the partial being spoken, else the latest final segment of the topic."""
        texts = self._topic("tenant")
        return texts[-1] if texts else ""

    def tenant_context(self) -> str:
        """The tenant's words since the topic started, latest last, cut to the last CONTEXT_CHARS characters.

        A recogniser's segment ends at a pause, and most pauses end a clause: segments are joined by a comma (none
        after a segment the recogniser already punctuated), as the tenant's words read when typed. Run together, assist
        was below plain search of the same words on 7 calls of the four sets of `benchmarks/assist_offline.py`,
        with commas on 3 (second company +2 calls, the others unchanged; session 32, docs/assist.md)."""
        return _joined(self._topic("tenant"))[-CONTEXT_CHARS:]

    def tenant_turn(self) -> str:
        """The tenant's current turn: their words since the agent last spoke in this topic (the partial included)."""
        texts: list[str] = []
        for u in reversed(self.finals[self.topic_start :]):
            if u.speaker != "tenant" and u.text:
                break
            if u.text:
                texts.append(u.text)
        texts.reverse()
        partial = self.partials.get("tenant")
        if partial is not None and partial.text:
            texts.append(partial.text)
        return _joined(texts)[-CONTEXT_CHARS:]

    def tenant_turns(self) -> int:
        return len(self._topic("tenant"))

    def agent_context(self) -> str:
        return "，".join(self._topic("agent")[-AGENT_SEGMENTS:])[-CONTEXT_CHARS:]

    def start_topic_at_latest_tenant(self, carries: Callable[[str], bool] | None = None) -> None:
        """The tenant's latest final segment starts a new topic: what came before stops counting. With `carries`, the
        topic starts at the latest of the tenant's segments from which their words still carry it (a danger told
        over two pauses, 厨房那个煤气 · 味道好大: cut at the latest alone, the words lost the danger that started the
        topic)."""
        tenant = [i for i in range(self.topic_start, len(self.finals)) if self._is_tenant(i)]
        if not tenant:
            return
        start = tenant[-1]
        if carries is not None:
            start = next(
                (i for i in reversed(tenant) if carries(_joined([self.finals[j].text for j in tenant if j >= i]))),
                start,
            )
        self.topic_start = start
        self.agent_scores = {}
        self.topics += 1

    def _is_tenant(self, i: int) -> bool:
        return self.finals[i].speaker == "tenant" and bool(self.finals[i].text)

    def transcript(self) -> list[dict[str, Any]]:
        """The latest final segments, then the partials being spoken, as a console shows them."""
        first = max(0, len(self.finals) - TRANSCRIPT_SEGMENTS)
        rows = [
            {"speaker": u.speaker, "text": u.said, "final": True, "topic_start": i == self.topic_start}
            for i, u in enumerate(self.finals[first:], start=first)
        ]
        rows += [{"speaker": u.speaker, "text": u.said, "final": False} for u in self.partials.values() if u.said]
        return rows

    def repeated(self, segment_id: str | None, final: bool = True) -> bool:
        """Whether a final segment with this id was taken already (a platform's retry); else remember the id. A
        partial takes no id: recognisers send an utterance's partials and its final under one id (an integrator's
        trial: the final 我的门禁卡丢了，进不去大门 was dropped as a retry of its partial 我的门禁卡)."""
        if segment_id is None or not final:
            return False
        if segment_id in self.segment_ids:
            return True
        self.segment_ids = [*self.segment_ids[-(SEGMENT_IDS - 1) :], segment_id]
        return False

    def topic_started(self) -> float:
        """When the current topic's first segment came (the call's start for its first topic): a time limit counted
        from the call (接电话后 1 分钟内) runs from here, not from when an agent pinned the procedure."""
        if self.topic_start == 0 or self.topic_start >= len(self.finals):
            return self.started
        return self.finals[self.topic_start].at

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallContext:
        finals = [Utterance(**u) for u in data.get("finals", [])]
        partials = {k: Utterance(**u) for k, u in data.get("partials", {}).items()}
        # A field a newer release stored is left out (replicas mid-upgrade share the call store)
        known = {f.name for f in fields(cls)} - {"finals", "partials"}
        rest = {k: v for k, v in data.items() if k in known}
        return cls(finals=finals, partials=partials, **rest)
