"""The hand-over webhook's events as OpenAPI `webhooks` (an integrator reads them in /docs beside the endpoints).

Each model is the exact body one event sends (`kb_service/handover/store.py` writes them; the tests validate every
body a receiver gets against these models, which forbid fields they do not name, so the two cannot drift apart).
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field

from api.routes.case_models import Contact, Turn

webhooks = APIRouter()

_HEADERS_DOC = (
    "\n\nHeaders: `X-KB-Signature: sha256=<hex HMAC-SHA256 of the exact body with KB_HANDOVER_WEBHOOK_SECRET>`, "
    "`X-KB-Event-Id` (the same for every attempt of one event: deduplicate on it). Delivery is at least once, in no "
    "guaranteed order: order a case's events by `occurred_at` (then `seq` for messages). Answer 2xx within 10 s; "
    "anything else is retried after 2, 4, 8 … seconds (at most an hour apart), 12 attempts in all."
)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    occurred_at: float = Field(description="Unix seconds, covered by the signature")


class CaseOpened(_Event):
    event: Literal["case.opened"]
    priority: Literal["normal", "urgent"]
    question: str
    contact: Contact
    sop_id: str | None = Field(description="The SOP the question matched (null when none did)")
    sop_title: str | None
    conversation: list[Turn] = Field(description="The chat as the tenant's widget sent it")
    conversation_verified: Literal[False] = Field(
        description="Always false: the service keeps no transcript to check the widget's `bot` lines against"
    )


class CaseMessage(_Event):
    event: Literal["case.message"]
    author: Literal["tenant", "agent"]
    seq: int = Field(description="The message's place in the case's conversation")
    text: str


class CasePriorityRaised(_Event):
    event: Literal["case.priority_raised"]
    priority: Literal["urgent"]
    sop_id: str | None = Field(description="The emergency's SOP")
    sop_title: str | None


class CaseContactChanged(_Event):
    event: Literal["case.contact_changed"]
    contact: Contact = Field(description="The tenant's contact details as they are now (all of them)")


class CaseTaken(_Event):
    event: Literal["case.taken"]
    taken_by: str = Field(description="The agent's account name")


class CaseClosed(_Event):
    event: Literal["case.closed"]


EVENTS: dict[str, type[_Event]] = {
    "case.opened": CaseOpened,
    "case.message": CaseMessage,
    "case.priority_raised": CasePriorityRaised,
    "case.contact_changed": CaseContactChanged,
    "case.taken": CaseTaken,
    "case.closed": CaseClosed,
}
_WHEN = {
    "case.opened": "A tenant's hand-over opened a case (the event that puts it in the company's system).",
    "case.message": "The tenant or an agent wrote in the case (not the service's own notices).",
    "case.priority_raised": "A tenant's message in the case reported an emergency: the case is urgent now.",
    "case.contact_changed": "The tenant sent the hand-over form again (its first answer lost) with other contact "
    "details: use these.",
    "case.taken": "An agent took the case (or took it over from another).",
    "case.closed": "The case was closed.",
}
Signature = Annotated[str, Header(alias="X-KB-Signature", description="sha256=<hex HMAC-SHA256 of the body>")]
EventId = Annotated[str, Header(alias="X-KB-Event-Id", description="The same for every attempt of one event")]


def _document(name: str, model: type[_Event]) -> None:
    # annotations evaluated here (no `from __future__ import annotations`): FastAPI reads `model` as the body
    def receive(body: model, signature: Signature, event_id: EventId) -> None:  # type: ignore[valid-type]
        """Implemented by the company's system at KB_HANDOVER_WEBHOOK_URL."""

    webhooks.post(name, summary=_WHEN[name], description=_WHEN[name] + _HEADERS_DOC, status_code=200)(receive)


for _name, _model in EVENTS.items():
    _document(_name, _model)
