"""The bodies of the hand-over endpoints (api/routes/cases.py and its neighbours): what a tenant's widget sends to open
a case and write in it, and what staff and the tenant read back."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import MAX_CHAT_CHARS
from kb_service.text.privacy import documents_masked

MAX_TEXT = 1000
MAX_FIELD = 40
MAX_TURNS = 20


def _stripped(v: str) -> str:
    return v.strip()


def _filled(v: str) -> str:
    """Stripped, and not blank: a question, a room or a message of spaces only is refused like an empty one."""
    v = v.strip()
    if not v:
        raise ValueError("不能只填空格 / must not be blank")
    return v


def _said(v: str) -> str:
    """A tenant's or an agent's words as a case keeps them: ID-card, passport and bank-card numbers masked (no agent
    needs them; the case is shown to every agent and sent in the webhook)."""
    return documents_masked(_filled(v))


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=MAX_FIELD, description="May be empty (the widget's form for an emergency)")
    room: str = Field(min_length=1, max_length=MAX_FIELD)
    phone: str = Field(max_length=30)
    best_time: str = Field("", max_length=MAX_FIELD)
    extra: dict[str, str] = Field(
        default_factory=dict, max_length=6, description="Answers to the matched SOP's `handover_fields`"
    )

    _strip = field_validator("name", "phone", "best_time")(_stripped)
    _room = field_validator("room")(_filled)

    @field_validator("phone")
    @classmethod
    def _callable(cls, v: str) -> str:
        """A number an agent can call back: an 11-digit mobile (1…), or a landline of 7–12 digits."""
        if not re.fullmatch(r"[0-9+\- ()]+", v):
            raise ValueError("电话只能包含数字、空格和 + - ( ) / digits, spaces and + - ( ) only")
        digits = re.sub(r"\D", "", v)
        digits = re.sub(r"^(0086|86)(?=1\d{10}$)", "", digits)
        if not (len(digits) == 11 if digits.startswith("1") else 7 <= len(digits) <= 12):
            raise ValueError("请填写正确的电话：11 位手机号或固定电话 / an 11-digit mobile or a landline number")
        return v

    @field_validator("extra")
    @classmethod
    def _short(cls, v: dict[str, str]) -> dict[str, str]:
        if any(len(k) > MAX_FIELD or len(x) > 200 for k, x in v.items()):
            raise ValueError("附加信息过长 / extra answers too long (labels ≤ 40, answers ≤ 200 characters)")
        return {k: documents_masked(x) for k, x in v.items()}


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["tenant", "bot"]
    text: str = Field(min_length=1, max_length=MAX_TEXT)

    _text = field_validator("text")(documents_masked)


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    question: str = Field(min_length=1, max_length=MAX_CHAT_CHARS)
    contact: Contact
    conversation: list[Turn] = Field(default_factory=list, max_length=MAX_TURNS)
    request_id: str | None = Field(
        None,
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The client's own id of this request (a random one per form sent): sent again with the same "
        "session_id when no answer came, it gets the case the first one opened, with a new token (the first token "
        "stops working), instead of a second case",
    )
    request_key: str | None = Field(
        None,
        min_length=16,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A random secret the client keeps with its request_id and never shows: a repeat of a tenant's "
        "request that sends the same key gets its case back from any address (a phone that moved from Wi-Fi to 4G "
        "before the answer came); without a key, only from the address that sent it first. Only a keyed hash is "
        "kept",
    )

    _question = field_validator("question")(_said)


class CaseCreated(BaseModel):
    case_id: str
    token: str = Field(description="Send as X-Case-Token to read and add messages")
    status: str
    priority: str
    emergency_phone: str | None = Field(
        None, description="The emergency number: for an urgent case, and for any case outside KB_SERVICE_HOURS"
    )
    ahead: int = Field(0, description="Cases waiting before this one in the agents' queue (nobody has taken them)")
    reply_within_minutes: int = Field(
        description="The company's target for a first reply to a case of this priority (KB_CASE_RESPONSE_MINUTES)"
    )
    in_service_hours: bool = Field(True, description="Agents answer cases now (KB_SERVICE_HOURS; always without it)")
    service_hours: str | None = Field(None, description="When agents answer cases, e.g. 09:00–21:00; null = always")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT)

    _strip = field_validator("text")(_said)


class MessageOut(BaseModel):
    seq: int
    author: str
    text: str
    created_at: float


class TenantMessageOut(MessageOut):
    """A tenant's message in an open case; when it reports an emergency (a danger signal), the case is raised to
    urgent and the tenant gets the emergency number and the safety instruction at once."""

    urgent: bool = False
    emergency_phone: str | None = None
    answer: str | None = Field(None, description="The chat's urgent answer: the number, then the safety instruction")


class Conversation(BaseModel):
    case_id: str
    status: str
    messages: list[MessageOut]
    ahead: int | None = Field(
        None, description="While nobody has taken the case: how many cases wait before it (None once taken or closed)"
    )


class DeliveryOut(BaseModel):
    status: str
    attempts: int
    last_error: str | None
    delivered_at: float | None
    next_attempt_at: float | None


class CaseOut(BaseModel):
    """A case as staff see it (contact details included)."""

    case_id: str
    status: str
    priority: str
    question: str
    contact: dict[str, Any]
    sop_id: str | None
    sop_title: str | None
    taken_by: str | None
    created_at: float
    updated_at: float
    closed_at: float | None
    delivery: DeliveryOut
    rating: int | None = Field(None, description="The tenant's rating of a closed case: 1 满意, -1 不满意, null none")
    complaint: bool = Field(False, description="The question voices dissatisfaction with the service (投诉)")
    urgent_question: str | None = Field(
        None, description="The tenant's words that raised the case to urgent (null: opened urgent, or never raised)"
    )


class CaseDetail(CaseOut):
    messages: list[MessageOut]


class CaseList(BaseModel):
    cases: list[CaseOut]
    deliveries: dict[str, int] = Field(description="Webhook events by status: pending, delivered, failed")
    targets_s: dict[str, float] = Field(
        default_factory=dict, description="The first-reply target per priority (KB_CASE_RESPONSE_MINUTES), seconds"
    )


class TakeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field("", max_length=MAX_FIELD, description="Who takes the case (shown to other agents)")
    force: bool = Field(False, description="Take over a case another agent holds (otherwise 409)")
