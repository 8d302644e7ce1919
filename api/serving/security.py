"""Security headers on every response, as a pure ASGI middleware (Starlette's BaseHTTPMiddleware would add a task and
a memory stream to every request).

Pages may load only this origin's own scripts, styles and API (no inline code: the pages keep theirs in
/static), and no site may frame them; the tenant widget's script and its demo page are made to be embedded by other
sites, so they carry no frame protection. A response that sets its own Content-Security-Policy (the API docs, whose
page has one inline script allowed by its hash) keeps it.
"""

from __future__ import annotations

import logging
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kb_service.text.privacy import mask

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
# JSON, scripts and styles: nothing in them may run as a document, or be framed.
OTHER_CSP = "default-src 'none'"
NO_FRAMING = "frame-ancestors 'none'"
EMBEDDABLE = frozenset({"/widget.js", "/widget-handover.js", "/widget-feedback.js", "/widget.css", "/demo"})


def csp(base: str, embeddable: bool) -> str:
    return base if embeddable else f"{base}; {NO_FRAMING}"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        embeddable = scope["path"] in EMBEDDABLE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("Content-Security-Policy", csp(PAGE_CSP if html else OTHER_CSP, embeddable))
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if not embeddable:
                    headers.setdefault("X-Frame-Options", "DENY")  # for browsers without frame-ancestors
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HideTickets(logging.Filter):
    """uvicorn logs each WebSocket's path ("WebSocket /v1/assist?ticket=…" [accepted]): a ticket opens a staff socket
    for a minute, so the log shows `ticket=…` instead of it; a key a client put in the address by mistake (`key=`,
    `api_key=`, `token=`, `access_token=`) is hidden the same way. So are the values of parameters that name a person
    or carry words (`person=`, `prompt=`, `q=`…), and personal numbers anywhere in a query string (an operator's
    trial found `?phone=13912345678` in the access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_hidden(a) if isinstance(a, str) else a for a in record.args)
        return True


def _hidden(text: str) -> str:
    text = _PERSONAL.sub(r"\1…", _TICKET.sub(r"\1…", text))
    path, mark, query = text.partition("?")
    return f"{path}{mark}{mask(query)}" if mark else text


_TICKET = re.compile(r"([?&](?:ticket|key|api_key|apikey|token|access_token)=)[^&\s\"]+", re.I)
_PERSONAL = re.compile(r"([?&](?:person|prompt|q|query|question|name|phone|room|contact)=)[^&\s\"]+", re.I)


def hide_tickets(logger: logging.Logger) -> None:
    """Install HideTickets on `logger` once."""
    if not any(isinstance(f, HideTickets) for f in logger.filters):
        logger.addFilter(HideTickets())
