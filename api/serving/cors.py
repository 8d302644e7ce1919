"""CORS for the routes a tenant's page calls from another origin (the widget: chat, hand-over cases, votes, the service
hours, public search, and its own files), and for no other: a security review found the tenant site's origin allowed
on every staff route (`GET /v1/cases` with an Authorization header passed the preflight)."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

TENANT_PATHS = ("/v1/chat", "/v1/cases", "/v1/feedback", "/v1/service-hours", "/v1/search", "/widget")


class TenantCors:
    def __init__(self, app: ASGIApp, allow_origins: list[str], max_age: int = 600) -> None:
        self.app = app
        # No Authorization header from another origin: the widget never sends a key, and a staff key has no business
        # in a tenant site's page (the preflight of GET /v1/cases with one is refused)
        self.cors = CORSMiddleware(
            app,
            allow_origins=allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Case-Token"],
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tenant = scope["type"] == "http" and str(scope.get("path", "")).startswith(TENANT_PATHS)
        await (self.cors if tenant else self.app)(scope, receive, send)
