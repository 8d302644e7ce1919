"""A pure ASGI middleware that refuses oversized bodies and non-JSON bodies on JSON endpoints before any
handler runs (cheaper than Starlette's BaseHTTPMiddleware, and it also bounds bodies sent without a length)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors

MAX_JSON_BYTES = 64 * 1024
MARKDOWN_PATHS = ("/v1/preview",)


class BodyGuard:
    def __init__(self, app: ASGIApp, max_markdown_bytes: int) -> None:
        self.app = app
        self.max_markdown_bytes = max_markdown_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        markdown = scope["method"] == "PUT" or path in MARKDOWN_PATHS
        limit = self.max_markdown_bytes if markdown else MAX_JSON_BYTES
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

        def too_large() -> Response:
            return errors.error(413, "too_large", f"请求体过大（上限 {limit} 字节）/ request body too large")

        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await too_large()(scope, receive, send)
            return
        if scope["method"] == "POST" and path.startswith("/v1/") and not markdown:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            # An empty POST with no type is no other format (platforms end a call with a bare POST …/end)
            empty = not ctype and (length == "0" or (length is None and "transfer-encoding" not in headers))
            if ctype != "application/json" and not empty:
                message = "请求体必须是 JSON（Content-Type: application/json）/ body must be application/json"
                await errors.error(415, "unsupported_media_type", message)(scope, receive, send)
                return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, bounded, send)
        except _TooLarge:
            await too_large()(scope, receive, send)


class _TooLarge(Exception):
    """A streamed body went past the limit (only raised before the handler has answered)."""
