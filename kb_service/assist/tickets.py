"""Short-lived tickets for the console's WebSocket (a browser cannot set an Authorization header on one): the role,
an expiry and a nonce, signed with HMAC-SHA256 by the secret every worker process shares (CallStore.secret)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

TICKET_SECONDS = 60
ROLES = ("agent", "trainer")


def _sign(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()


def issue(secret: bytes, role: str, seconds: int = TICKET_SECONDS, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + seconds)
    body = f"{role}.{expires}.{secrets.token_hex(8)}"
    return f"{body}.{_sign(secret, body)}"


def verify(secret: bytes, ticket: str, now: float | None = None) -> str | None:
    """The ticket's role, or None when it is forged, malformed or expired."""
    body, _, signature = ticket.rpartition(".")
    role, _, rest = body.partition(".")
    expires, _, _nonce = rest.partition(".")
    if not hmac.compare_digest(_sign(secret, body), signature) or role not in ROLES or not expires.isdigit():
        return None
    return role if int(expires) >= (now if now is not None else time.time()) else None
