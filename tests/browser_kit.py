"""Shared browser-test fixtures: Debian's chromium driven by Playwright, a live `kb serve` over a private copy of the
indexed sample corpus, and a tenant site on another origin. Test modules import what they use from here (the module
skips when chromium is missing)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import AGENT, ROOT, SOPS, TRAINER, free_port, serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():  # `make test` installs it; a bare `pytest` on a machine without it skips
    pytest.skip("Debian's chromium is not installed (make test installs it)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from kb_service.store import files  # noqa: E402

# What the page must come to show, it may take up to 10 s to show (Playwright's 5 s default failed on a CI machine
# running four test processes and browsers on two cores); a page that never shows it still fails.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def site_port() -> int:
    return free_port()


SERVED_DATA: dict[str, Path] = {}  # each live server's data folder, by its URL


@pytest.fixture(scope="module")
def server(
    use_data: Path, tmp_path_factory: pytest.TempPathFactory, site_port: int, server_env: dict[str, str]
) -> Iterator[str]:
    """A live `kb serve` over a private copy of the indexed sample corpus (publishing changes the copy only)."""
    work = tmp_path_factory.mktemp("browser")
    files.copy_tree(use_data, work / "data", ignore=shutil.ignore_patterns("*.lock", "service.sqlite3*"))
    shutil.copytree(SOPS, work / "sops")
    env = {
        "KB_API_KEYS": f"agent:{AGENT},trainer:{TRAINER}",
        "KB_CORS_ORIGINS": f"http://127.0.0.1:{site_port}",
        **server_env,
    }
    # One model-loading worker is enough for one browser; the serving tests cover several.
    with serving(work / "data", work / "sops", work / "serve.log", workers=1, embedder=None, **env) as svc:
        SERVED_DATA[svc.url] = work / "data"
        yield svc.url


@pytest.fixture(scope="module")
def tenant_site(server: str, site_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another origin: a plain page that embeds the widget with one script tag."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(
        f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>某公寓官网</title>
<style>body{{font-family:serif;background:#fafafa}} button{{background:red!important}} div{{color:green}}</style>
</head><body><h1>欢迎来到某公寓</h1><p>这是一个嵌入了客服窗口的第三方页面。</p>
<script src="{server}/widget.js" data-title="在线客服" async></script></body></html>""",
        encoding="utf-8",
    )
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", site_port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site_port}/index.html"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    p = context.new_page()
    yield p
    context.close()


def login(page: Page, server: str, key: str, path: str = "/") -> None:
    page.goto(server + path)
    page.fill("#api-key", key)
    page.click("#save-key")


def wait_for_js(page: Page, function: str, timeout: float = 10.0) -> None:
    """Poll `function` (JavaScript, e.g. "() => ...") until it returns true. Not `page.wait_for_function`: it evaluates
    its predicate with eval inside the page once it has to poll, which the pages' CSP (no 'unsafe-eval') refuses, so
    it failed whenever the condition was not already true at the first look."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout} s: {function}")
        time.sleep(0.1)
