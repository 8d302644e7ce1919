"""The browser pages: agent console at `/`, trainer workspace, the embeddable widget and its demo page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/")
def console() -> FileResponse:
    return FileResponse(STATIC / "console.html", media_type="text/html; charset=utf-8")


@router.get("/trainer")
def trainer() -> FileResponse:
    return FileResponse(STATIC / "trainer.html", media_type="text/html; charset=utf-8")


@router.get("/widget.js")
def widget() -> FileResponse:
    return FileResponse(STATIC / "widget.js", media_type="application/javascript; charset=utf-8")


@router.get("/demo")
def demo() -> FileResponse:
    return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")
