"""The browser pages: agent console at `/`, trainer workspace, the embeddable widget and its demo page, and the API
docs (Swagger UI) from assets on this server."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from api.serving.security import PAGE_CSP, csp

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"
# Swagger UI's files, served from the fastapi-offline package (mounted in app.py): the page that holds staff keys
# loads no script from another origin.
DOCS_ASSETS = "/docs-assets"


@router.get("/")
def console() -> FileResponse:
    return FileResponse(STATIC / "console.html", media_type="text/html; charset=utf-8")


@router.get("/trainer")
def trainer() -> FileResponse:
    return FileResponse(STATIC / "trainer.html", media_type="text/html; charset=utf-8")


@router.get("/practice")
def practice() -> FileResponse:
    return FileResponse(STATIC / "practice.html", media_type="text/html; charset=utf-8")


@router.get("/widget.js")
def widget() -> FileResponse:
    return FileResponse(STATIC / "widget.js", media_type="application/javascript; charset=utf-8")


@router.get("/widget-handover.js")
def widget_handover() -> FileResponse:
    """The widget's hand-over form and case conversation, loaded by widget.js on demand."""
    return FileResponse(STATIC / "widget-handover.js", media_type="application/javascript; charset=utf-8")


@router.get("/widget-feedback.js")
def widget_feedback() -> FileResponse:
    """The widget's 👍/👎 under an answer, loaded by widget.js when its panel first opens."""
    return FileResponse(STATIC / "widget-feedback.js", media_type="application/javascript; charset=utf-8")


@router.get("/widget.css")
def widget_css() -> FileResponse:
    """The widget's styles (its own and the hand-over's), adopted into its shadow root by widget.js."""
    return FileResponse(STATIC / "widget.css", media_type="text/css; charset=utf-8")


DEMO_NAME = "安居优寓"  # the name demo.html is written with, replaced by the company's own (KB_COMPANY_NAME)


@router.get("/demo")
def demo(request: Request) -> HTMLResponse:
    name = request.app.state.kb_state.settings.company_name
    page = (STATIC / "demo.html").read_text(encoding="utf-8")
    page = page.replace(DEMO_NAME, html.escape(name)).replace("<i>安</i>", f"<i>{html.escape(name[0])}</i>")
    return HTMLResponse(page)


# The pages' file names (a trial typed /trainer.html and got a JSON 404): sent on to the page
PAGE_FILES = {
    "/index.html": "/",
    "/console.html": "/",
    "/trainer.html": "/trainer",
    "/practice.html": "/practice",
    "/demo.html": "/demo",
}


@router.get("/{name}.html")
def page_file(name: str, request: Request) -> RedirectResponse:
    target = PAGE_FILES.get(f"/{name}.html")
    if target is None:
        raise HTTPException(status_code=404, detail="没有这个页面 / no such page")
    query = request.url.query
    return RedirectResponse(f"{target}?{query}" if query else target, status_code=308)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url="data:,",
        swagger_ui_parameters={"validatorUrl": None},  # the default sends the schema to an external validator
    )
    # The page starts Swagger UI with one inline script: allow exactly that script, by its hash.
    inline = re.findall(rb"<script>(.*?)</script>", bytes(page.body), flags=re.DOTALL)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in inline)
    page.headers["Content-Security-Policy"] = csp(
        PAGE_CSP.replace("script-src 'self'", f"script-src 'self' {hashes}"), embeddable=False
    )
    return page
