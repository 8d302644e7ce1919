"""Short-lived tickets for the console's WebSocket (a browser cannot set an Authorization header on one): the role,
the person it was issued to, an expiry and a nonce, signed with HMAC-SHA256 by the secret every worker process
shares (CallStore.secret). The person is named so that a socket opened with a ticket stops, like one opened with a
key, when that person's account is disabled."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

TICKET_SECONDS = 60
ROLES = ("agent", "trainer")


@dataclass(frozen=True)
class Holder:
    role: str
    who: str  # the account (or service key) name the ticket was issued to
    nonce: str = ""  # one ticket opens one socket (api/routes/assist.py spends it)


def _sign(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()


def _name(who: str) -> str:
    return base64.urlsafe_b64encode(who.encode()).decode().rstrip("=")


def issue(secret: bytes, role: str, who: str, seconds: int = TICKET_SECONDS, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + seconds)
    body = f"{role}.{expires}.{secrets.token_hex(8)}.{_name(who)}"
    return f"{body}.{_sign(secret, body)}"


def verify(secret: bytes, ticket: str, now: float | None = None) -> Holder | None:
    """Who holds the ticket, or None when it is forged, malformed or expired."""
    body, _, signature = ticket.rpartition(".")
    parts = body.split(".")
    if len(parts) != 4 or not hmac.compare_digest(_sign(secret, body), signature):
        return None
    role, expires, nonce, name = parts
    if role not in ROLES or not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
        return None
    try:
        who = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return Holder(role, who, nonce)
