"""What the tenant chat answers with: the answer, its source passages, and what a hand-over case records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

Priority = Literal["urgent", "normal"]


class ChatSource(BaseModel):
    sop_id: str
    title: str
    section: str


class ChatAnswer(BaseModel):
    answer: str
    sources: list[ChatSource]
    handoff: bool
    confidence: float
    urgent: bool = Field(default=False, description="An emergency: show `emergency_phone` and the answer first")
    emergency_phone: str | None = None
    priority: Priority = "normal"
    handover_fields: list[str] = Field(
        default_factory=list, description="What the hand-over form asks beyond name, room, phone and best time"
    )
    full_text: str | None = Field(
        default=None, description="The whole section when `answer` shows only the lines of it that answer the question"
    )
    complaint: bool = Field(
        default=False, description="The tenant complains: an answer opens with an apology, and a person is offered"
    )


@dataclass(frozen=True)
class Match:
    """What a hand-over case records: the SOP that best matches the question (for the agent) and the priority."""

    sop_id: str | None
    title: str | None
    priority: Priority
    handover_fields: list[str]
