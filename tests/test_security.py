"""Security headers and connection limits, through a live `kb serve` (two workers behind the balancer): a CSP on
pages and API, nosniff, frame protection except for the embeddable widget and demo, Referrer-Policy, Swagger UI
from this server only, and clients with huge heads or slow requests cut off in bounded time and memory
(api/serving/security.py, api/serving/protocol.py). The pages run under their CSP in headless Chromium where it is
installed."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, index_with_hash, serving, wait_for, workers_of

AGENT = "agent-key-123456"
REQUEST_TIMEOUT = 2.0
MAX_HEAD = 8192
PAGES = ("/", "/trainer")
JSON = {"Content-Type": "application/json"}
EMBEDDABLE = ("/demo", "/widget.js", "/widget-handover.js", "/widget-feedback.js", "/widget.css")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int]]:
    """(base URL, port, parent pid) of a live server with small limits."""
    tmp = tmp_path_factory.mktemp("security")
    sops = tmp / "sops"
    shutil.copytree(ROOT / "sops", sops)
    index_with_hash(tmp, sops)
    env = {
        "KB_API_KEYS": f"agent:{AGENT}",
        "KB_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "KB_MAX_HEADER_BYTES": str(MAX_HEAD),
    }
    with serving(tmp / "data", sops, tmp / "serve.log", **env) as svc:
        ready = wait_for(lambda: all(get(svc.port, "/healthz")[0] == 200 for _ in range(4)), 120)
        assert ready, svc.output()
        yield svc.url, svc.port, svc.pid


def get(port: int, path: str, method: str = "GET", **kw: object) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, **kw)  # type: ignore[arg-type]
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except OSError:
        return -1, {}, b""
    finally:
        conn.close()


def test_pages_forbid_inline_code_and_framing(server: tuple[str, int, int]) -> None:
    _, port, _ = server
    for path in PAGES:
        status, headers, _ = get(port, path)
        csp = headers["content-security-policy"]
        assert status == 200 and "script-src 'self';" in csp and "style-src 'self';" in csp, (path, csp)
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, (path, csp)
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_the_widget_script_and_its_demo_page_stay_embeddable(server: tuple[str, int, int]) -> None:
    _, port, _ = server
    for path in EMBEDDABLE:
        status, headers, _ = get(port, path)
        assert status == 200 and "x-frame-options" not in headers, (path, headers)
        assert "frame-ancestors" not in headers["content-security-policy"], (path, headers)
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert get(port, "/widget.js")[1]["content-type"].startswith("application/javascript")  # nosniff needs it
    assert get(port, "/widget.css")[1]["content-type"].startswith("text/css")


def test_api_responses_and_refusals_carry_the_headers_too(server: tuple[str, int, int]) -> None:
    _, port, _ = server
    responses = [
        get(port, "/healthz"),
        get(port, "/openapi.json"),
        get(port, "/v1/search", "POST", body='{"query": "漏水"}'.encode(), headers=JSON),
        get(port, "/v1/search", "POST", body="x" * 70_000, headers=JSON),  # 413
        get(port, "/v1/sops", headers={"Authorization": "Bearer wrong-key-0000"}),  # 401
        get(port, "/static/console/main.js"),
    ]
    assert [r[0] for r in responses] == [200, 200, 200, 413, 401, 200]
    for status, headers, _ in responses:
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'", (status, headers)
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"


def test_served_pages_hold_no_inline_script_style_or_handler(server: tuple[str, int, int]) -> None:
    _, port, _ = server
    for path in (*PAGES, "/demo"):
        html = get(port, path)[2].decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), path


def test_swagger_ui_comes_from_this_server_and_only_its_own_inline_script_may_run(
    server: tuple[str, int, int],
) -> None:
    _, port, _ = server
    status, headers, body = get(port, "/docs")
    html = body.decode()
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert status == 200 and links and all(u.startswith("/docs-assets/") or u == "data:," for u in links), links
    assert "http" not in html.replace("http_", "")  # no absolute URL anywhere: no CDN, no validator
    for url in links:
        if url.startswith("/"):
            asset = get(port, url)
            assert asset[0] == 200 and len(asset[2]) > 10_000, url
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    csp = headers["content-security-policy"]
    assert len(inline) == 1 and f"script-src 'self' 'sha256-{digest}';" in csp and "frame-ancestors 'none'" in csp


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def test_a_50_mb_header_is_refused_after_a_few_hundred_kilobytes(server: tuple[str, int, int]) -> None:
    _, port, parent = server
    workers = workers_of(parent)
    before = rss_kb(workers)
    sent, reply = 0, b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        line = b"X-Filler: " + b"a" * 8000 + b"\r\n"
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
            while sent < 50_000_000:
                s.sendall(line)
                sent += len(line)
        except OSError:
            pass  # the server closed the connection: what we still had to send was never read
        with contextlib.suppress(OSError):
            reply = s.recv(200)
    assert sent < 50_000_000 and time.monotonic() - started < 10, sent
    assert reply.startswith(b"HTTP/1.1 431"), reply
    assert rss_kb(workers) - before < 20_000  # KB: the 50 MB never reached the workers' memory
    assert get(port, "/healthz")[0] == 200  # and they go on serving


def test_a_large_head_sent_in_one_write_is_refused_too(server: tuple[str, int, int]) -> None:
    """A security review: 40 KB of headers in one write were accepted over a 32 KB limit, 4 KB pieces were not."""
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (MAX_HEAD + 2000) + b"\r\n\r\n")
        reply = read_until_closed(s)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # within the limit, body after it: served
        body = b'{"query": "' + "漏水".encode() * 400 + b'"}'
        s.sendall(
            b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + b"X-Pad: "
            + b"a" * (MAX_HEAD - 500)
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        reply = read_until_closed(s)
    assert not reply.startswith(b"HTTP/1.1 431"), reply[:100]


def read_until_closed(s: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:  # we kept sending after the server closed: what it sent before is kept
        pass
    return data


def test_a_client_that_connects_and_says_nothing_is_cut_off(server: tuple[str, int, int]) -> None:
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT + 5) as s:
        started = time.monotonic()
        reply = read_until_closed(s)
        waited = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408") and REQUEST_TIMEOUT - 0.5 < waited < REQUEST_TIMEOUT + 2, (reply, waited)


def test_a_request_trickled_byte_by_byte_is_cut_off(server: tuple[str, int, int]) -> None:
    _, port, _ = server
    request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT + 5) as s:
        started = time.monotonic()
        try:
            for byte in request:  # one byte every 0.1 s: 24 s for the whole head
                s.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass
        reply = read_until_closed(s)
        waited = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408") and waited < REQUEST_TIMEOUT + 2, (reply, waited)


def test_a_body_trickled_byte_by_byte_is_cut_off(server: tuple[str, int, int]) -> None:
    _, port, _ = server
    head = b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT + 5) as s:
        s.sendall(head)
        started = time.monotonic()
        try:
            for _ in range(200):
                s.send(b" ")
                time.sleep(0.1)
        except OSError:
            pass
        read_until_closed(s)
        waited = time.monotonic() - started
    assert waited < REQUEST_TIMEOUT + 2, waited


def test_kept_alive_connections_serve_requests_slower_than_the_request_timeout(server: tuple[str, int, int]) -> None:
    # The deadline counts the client's time to send a request, not the time between requests on one connection.
    _, port, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(3):
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        time.sleep(REQUEST_TIMEOUT * 0.8)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()


def test_a_websocket_message_over_64_kb_closes_the_socket_and_a_segment_still_gets_its_answer(
    server: tuple[str, int, int],
) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    _, port, _ = server
    url, headers = f"ws://127.0.0.1:{port}/v1/assist", {"Authorization": f"Bearer {AGENT}"}
    segment = {"type": "segment", "call_id": "big", "speaker": "tenant", "text": "天花板在滴水", "final": True}
    with connect(url, additional_headers=headers, max_size=2**22) as ws:
        ws.send(json.dumps({**segment, "text": "漏" * 1_000_000}))  # 3 MB of UTF-8
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big
    with connect(url, additional_headers=headers) as ws:
        ws.send(json.dumps({**segment, "text": "天花板在滴水" * 10}))
        answer = json.loads(ws.recv(timeout=10))
    assert answer["type"] == "suggestions" and answer["call_id"] == "big"


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_pages_and_swagger_ui_run_under_their_csp_without_violations(server: tuple[str, int, int]) -> None:
    from playwright.sync_api import sync_playwright

    from tests.browser_kit import wait_for_js

    base, _, _ = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
        page = browser.new_page()
        page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        for path in ("/", "/trainer", "/demo"):
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__csp") == [], path
        page.goto(base + "/demo")
        page.locator("#kb-chat-widget").wait_for(state="attached")  # the widget mounts under the demo page's CSP
        page.goto(base + "/docs")
        page.locator(".opblock").first.wait_for(timeout=20_000)  # Swagger UI rendered the operations
        assert page.locator(".opblock").count() > 5
        assert page.evaluate("window.__csp") == []
        page.evaluate("document.body.setAttribute('style', 'color: red')")  # the watch itself sees a violation
        wait_for_js(page, "() => window.__csp.length === 1", timeout=5)
        browser.close()
