"""The HTTP protocol of `kb serve`: uvicorn's httptools protocol with the two bounds it lacks.

- Request head size. httptools (llhttp) has no limit of its own and uvicorn keeps every header a client sends, so
  50 MB of headers were 50 MB of memory per connection (`h11_max_incomplete_event_size` bounds only uvicorn's other
  parser, h11). Here a head (request line and headers) larger than that same setting gets 431 and the connection is
  closed, before the read that crosses the limit is parsed.
- WebSocket message size. uvicorn accepts frames of up to 16 MB and parses them before the application sees them;
  `WS /v1/assist` messages are a segment of a transcript, so a message larger than MAX_WS_MESSAGE_BYTES closes the
  connection (code 1009) before it is read.
- Time to send a request. uvicorn's only timer is the keep-alive timeout between requests, and every byte received
  cancels it: a client that connects and sends nothing, or sends a request a byte at a time, held its connection
  forever. Here a request must arrive in full (head and body) within `request_timeout` seconds of its first byte (of
  the connection, for the first request); after that it gets 408 (while still in the head) and is disconnected. The
  time the application takes to answer is not counted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("kb.api")
DEFAULT_REQUEST_TIMEOUT = 20.0
MAX_WS_MESSAGE_BYTES = 64 * 1024  # as a JSON request body (api/serving/guards.py)


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration with this protocol and the time a client has to send a request. Picklable, so the
    balancer's worker processes get the same bounds."""

    def __init__(self, app: Any, *, request_timeout: float = DEFAULT_REQUEST_TIMEOUT, **kwargs: Any) -> None:
        kwargs.setdefault("http", BoundedHttpToolsProtocol)
        kwargs.setdefault("ws_max_size", MAX_WS_MESSAGE_BYTES)
        super().__init__(app, **kwargs)
        self.request_timeout = request_timeout


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._max_head = config.h11_max_incomplete_event_size or 16 * 1024
        self._request_timeout: float = getattr(config, "request_timeout", DEFAULT_REQUEST_TIMEOUT)
        self._head: int | None = 0  # bytes of the current request's head so far; None while its body is read
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:  # the first bytes of a new request on a kept-alive connection
            self._start_deadline()
        if self._head is not None:
            # Counted before parsing: a head that arrives in one read is parsed whole at once, and a security review's
            # 128 KB of headers in one write passed (only the head's part of the read counts, not a body after it)
            end = data.find(b"\r\n\r\n")
            self._head += len(data) if end < 0 else end + 4
            if self._head > self._max_head and not self.transport.is_closing():
                log.debug("request head over %d bytes from %s: 431", self._max_head, self.client)
                self._refuse(431, "request header fields too large")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_deadline()  # the whole request is in: the application's time is not the client's
        self._head = 0
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        """A WebSocket (WS /v1/assist) lives as long as its call: no request deadline. The connection now belongs to
        the WebSocket protocol; its close must still reach this protocol's `connection_lost` (the balancer counts the
        worker's open connections there)."""
        self._stop_deadline()
        super().handle_websocket_upgrade()
        upgraded = self.transport.get_protocol()
        lost = upgraded.connection_lost
        http_lost = self.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            try:
                lost(exc)
            finally:
                http_lost(exc)

        upgraded.connection_lost = connection_lost  # type: ignore[method-assign]

    def _start_deadline(self) -> None:
        self._deadline = self.loop.call_later(self._request_timeout, self._on_deadline)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._head is not None and answering:  # a pipelined request waits for the answer to the one before
            self._start_deadline()
            return
        log.debug("request from %s not received within %.0f s: closing", self.client, self._request_timeout)
        if self._head is not None:
            self._refuse(408, "request timeout")
        else:  # in the body: the application sees the client disconnect
            self.transport.close()

    def _refuse(self, status: int, reason: str) -> None:
        body = reason.encode("ascii")
        head = (
            f"HTTP/1.1 {status} {reason.title()}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()
