"""The messages of live-call assist (api/routes/assist.py): what a platform sends (a segment, a call's end, watching
a call) and what it gets back, on the WebSocket and the HTTP form alike."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kb_service.assist.context import CALL_ID


class SegmentIn(BaseModel):
    """A segment of the call's transcript (`final: false` for a partial result the recogniser may still revise)."""

    model_config = ConfigDict(extra="forbid")  # the HTTP form refuses unknown fields, like every request body

    speaker: Literal["tenant", "agent"]
    text: str = Field(
        max_length=5000,
        description="At most 5,000 characters; a longer segment than KB_MAX_QUERY_CHARS (default 500) is searched by "
        "its last characters (`clipped` in the answer)",
    )
    final: bool = Field(True, strict=True)  # true or false; "yes" or 1 is refused
    segment_id: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="The platform's id of this segment: a final segment with an id the call has taken already (a "
        "retry) is not added again and is answered with the call's latest suggestions (`repeated`); partials take "
        "no id, so an utterance's partials and its final may share one",
    )


class SegmentMessage(SegmentIn):
    model_config = ConfigDict(extra="ignore")  # a platform's own fields on a socket message (timestamps…) are ignored

    type: Literal["segment"]
    call_id: str = Field(pattern=CALL_ID)


class CallMessage(BaseModel):
    type: Literal["end", "watch", "unwatch"]
    call_id: str = Field(pattern=CALL_ID)


class SuggestionsOut(BaseModel):
    type: Literal["suggestions"] = "suggestions"
    call_id: str
    segment: int = Field(description="Segments the call has received, this one included")
    items: list[dict[str, Any]] = Field(
        description="SOP cards, best first: sop_id, title, score (combined), match_confidence, weak, steps, "
        "script_lines, scripts, time_limits, escalation, sections… (the fields of a search result)"
    )
    weak: bool = Field(description="The best suggestion is a weak match (below the measured threshold)")
    topic_changed: bool = Field(description="This segment started a new topic in the call")
    changed: bool = Field(description="The first suggestion differs from the one before")
    clipped: bool = Field(
        False, description="The segment was longer than KB_MAX_QUERY_CHARS: its last characters were used"
    )
    took_ms: float
    repeated: bool = Field(
        False,
        description="A final segment whose segment_id the call had taken (a retry): nothing was added; these are the "
        "call's latest suggestions and `segment` its latest number",
    )


class Ticket(BaseModel):
    ticket: str
    expires_in: int


def clipped_text(text: str, limit: int) -> str:
    """A segment longer than KB_MAX_QUERY_CHARS (a recogniser that merged a long turn into one final) is searched by
    its last `limit` characters, from a sentence start when one is near: the latest words say what the tenant wants
    now, and refusing the segment lost the turn."""
    if len(text) <= limit:
        return text
    tail = text[-limit:]
    cut = max(tail.find(p) for p in "。！？!?；;，,")
    return tail[cut + 1 :] if 0 <= cut < limit // 5 else tail


class LiveCall(BaseModel):
    """A call the console can follow: one that had a segment lately."""

    call_id: str
    started: float = Field(description="When its first segment came (Unix seconds)")
    updated: float = Field(description="When its latest segment came")
    segments: int
    topic: str | None = Field(description="The title of the SOP suggested first now (none yet, or a weak match: null)")
    weak: bool = Field(description="Nothing suggested yet, or the first suggestion is a weak match")
    urgent: bool = Field(description="An emergency procedure is suggested first (listed before the other calls)")
